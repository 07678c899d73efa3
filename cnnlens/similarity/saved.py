"""A finished similarity result on disk: ``res.save(path)`` and ``cl.load_result(path)``.

The file is one ``.npz`` (numpy's zip of arrays, read with ``allow_pickle=False``):

- ``meta``: a JSON string: format version, layer names, metrics, n, the engine's
  settings (keep, side, sigma, rtol, batch size, reductions), the plan, the
  conventions, each undefined cell's reason, and the versions that wrote it;
- ``<metric>.score``, ``<metric>.se``, ``<metric>.n``: (La, Lb) float64 / int64;
- ``<metric>.convention``: (La, Lb) int16 index into ``meta["conventions"][metric]``
  (a plan may give groups of layers different forms);
- ``<metric>.rho`` (La, Lb, k) NaN-padded canonical correlations and ``<metric>.k``
  (La, Lb, 2) the dimensions kept per side, for the CCA family;
- ``<metric>.chance`` (La, Lb): the permutation-null chance level of the CKA metrics
  (closed forms, as cheap as the cells); the CCA family's sampled null (20 CCAs per
  cell) is not precomputed and reads NaN. ``meta["warnings"]``: the result's warnings.

A torchrun job saves on rank 0; a notebook then opens it in ``cl.Compare(...,
result=cl.load_result(path))`` without a pass over the data.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .budget import Plan
from .plan import METRICS
from .result import CellReader, Result, layer_index

__all__ = ["FORMAT", "SavedResult", "load_result", "save_result"]

FORMAT = 1
_CCA = ("cca", "svcca", "pwcca")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("cnnlens", "torch", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def save_result(res, path) -> None:
    """Write every metric of a complete :class:`MatrixResult` (or a loaded one) to ``path``."""
    if not res.complete:
        raise ValueError("the pass has not finished: save the result once it is complete")
    la, lb = len(res.layers_a), len(res.layers_b)
    arrays, reasons, conventions = {}, {}, {}
    for m in METRICS:
        score, se = np.full((la, lb), np.nan), np.full((la, lb), np.nan)
        n, conv = np.zeros((la, lb), np.int64), np.zeros((la, lb), np.int16)
        texts: list[str] = []
        spectra, ks = {}, np.zeros((la, lb, 2), np.int64)
        for i in range(la):
            for j in range(lb):
                r = res.result(m, i, j)
                score[i, j], se[i, j], n[i, j] = r.score, r.se, r.n
                if r.convention not in texts:
                    texts.append(r.convention)
                conv[i, j] = texts.index(r.convention)
                if r.reason:
                    reasons.setdefault(m, {})[f"{i},{j}"] = r.reason
                if m in _CCA and len(r.rho):
                    spectra[i, j] = r.rho
                    ks[i, j] = (r.k_x or 0, r.k_y or 0)
        arrays |= {f"{m}.score": score, f"{m}.se": se, f"{m}.n": n, f"{m}.convention": conv,
                   f"{m}.chance": _chance(res, m, (la, lb))}
        conventions[m] = texts
        if m in _CCA:
            k = max((len(v) for v in spectra.values()), default=0)
            rho = np.full((la, lb, k), np.nan)
            for (i, j), v in spectra.items():
                rho[i, j, :len(v)] = v
            arrays |= {f"{m}.rho": rho, f"{m}.k": ks}
    plan = getattr(res, "plan", None)
    meta = {
        "format": FORMAT, "layers_a": res.layers_a, "layers_b": res.layers_b,
        "metrics": list(res.metrics), "n": int(res.n),
        "settings": {"keep": res.keep, "side": res.side, "sigma": res.sigma, "rtol": res.rtol,
                     "batch_size": getattr(res, "batch_size", None),
                     "reduce": dict(getattr(res, "reduce", {}))},
        "plan": plan.to_dict() if plan is not None else None,
        "conventions": conventions, "reasons": reasons, "versions": _versions(),
        "warnings": list(getattr(res, "warnings", [])),
    }
    path = Path(path)
    with open(path, "wb") as f:  # np.savez appends ".npz" to a bare name; keep the user's
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)


def _chance(res, metric: str, shape) -> np.ndarray:
    if metric in _CCA or not hasattr(res, "chance"):
        return np.full(shape, np.nan)
    return np.asarray(res.chance(metric), dtype=np.float64).reshape(shape)


def load_result(path) -> SavedResult:
    """Read a result written by ``MatrixResult.save`` (no pickle is ever loaded).

    Raises
    ------
    ValueError
        The file was written by a newer format than this cnnlens reads, or is not one.
    """
    with np.load(Path(path), allow_pickle=False) as z:
        if "meta" not in z.files:
            raise ValueError(f"{path}: not a cnnlens similarity result (no 'meta' entry)")
        meta = json.loads(str(z["meta"]))
        fmt = meta.get("format")
        if not isinstance(fmt, int) or fmt > FORMAT:
            raise ValueError(f"{path} was written in result format {fmt!r}; this cnnlens "
                             f"reads formats up to {FORMAT}: upgrade cnnlens to open it")
        arrays = {k: z[k] for k in z.files if k != "meta"}
    return SavedResult(meta, arrays)


class SavedResult(CellReader):
    """A loaded result: the read API of :class:`MatrixResult`, no statistics behind it.

    Examples
    --------
    >>> res = cl.load_result("run.npz")                  # doctest: +SKIP
    >>> res.matrix("linear_cka"), res.se("linear_cka")   # doctest: +SKIP
    """

    complete = True

    def __init__(self, meta: dict, arrays: dict):
        self.meta, self._a = meta, arrays
        self.layers_a, self.layers_b = list(meta["layers_a"]), list(meta["layers_b"])
        self.metrics = tuple(meta["metrics"])
        settings = meta["settings"]
        self.keep, self.side = settings["keep"], settings["side"]
        self.sigma, self.rtol = settings["sigma"], settings["rtol"]
        self.batch_size, self.reduce = settings.get("batch_size"), settings.get("reduce", {})
        self.plan = Plan.from_dict(meta["plan"]) if meta.get("plan") else None
        self.versions = meta.get("versions", {})

    @property
    def n(self) -> int:
        return int(self.meta["n"])

    def __repr__(self):
        return (f"SavedResult({len(self.layers_a)}x{len(self.layers_b)} layers, n={self.n}, "
                f"metrics={self.metrics})")

    def _check(self, metric):
        if f"{metric}.score" not in self._a:
            raise ValueError(f"unknown metric {metric!r}; this file holds "
                             f"{', '.join(self.meta['conventions'])}")

    def matrix(self, metric: str) -> np.ndarray:
        self._check(metric)
        return self._a[f"{metric}.score"].copy()

    def se(self, metric: str) -> np.ndarray:
        self._check(metric)
        return self._a[f"{metric}.se"].copy()

    @property
    def warnings(self) -> list[str]:
        return list(self.meta.get("warnings", []))

    def chance(self, metric: str, i=None, j=None):
        """Saved chance levels (CKA metrics; NaN for the CCA family, see the module)."""
        self._check(metric)
        c = self._a.get(f"{metric}.chance")
        c = np.full((len(self.layers_a), len(self.layers_b)), np.nan) if c is None else c
        return c.copy() if i is None else float(c[i, j])

    def convention(self, metric: str) -> str:
        self._check(metric)
        texts = self.meta["conventions"][metric]
        return texts[0] if len(texts) == 1 else " | ".join(texts)

    def result(self, metric: str, i, j) -> Result:
        self._check(metric)
        i, j = layer_index(self.layers_a, i), layer_index(self.layers_b, j)
        conv = self.meta["conventions"][metric][int(self._a[f"{metric}.convention"][i, j])]
        rho, kx, ky = np.zeros(0), None, None
        if f"{metric}.rho" in self._a:
            r = self._a[f"{metric}.rho"][i, j]
            rho = r[np.isfinite(r)]
            kx, ky = (int(k) for k in self._a[f"{metric}.k"][i, j])
        return Result(metric, float(self._a[f"{metric}.score"][i, j]), conv, rho=rho,
                      k_x=kx, k_y=ky, n=int(self._a[f"{metric}.n"][i, j]),
                      reason=self.meta["reasons"].get(metric, {}).get(f"{i},{j}"),
                      se=float(self._a[f"{metric}.se"][i, j]))

    def save(self, path) -> None:
        save_result(self, path)
