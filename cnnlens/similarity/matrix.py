"""MatrixResult: all-pairs similarity computed lazily from cached per-layer statistics."""
from __future__ import annotations

import threading

import numpy as np
import torch

from . import trust
from .cca import cca_from_pair, check_n_gt_d, pwcca_from_pair, svcca_from_bases
from .cka import convention as cka_convention
from .cka import linear_from_pair
from .gram import center, centred_gram, rbf_kernel, ucenter
from .jackknife import with_error
from .linalg import feature_basis, gram_basis, live_count, whitener
from .plan import FAMILY, KERNEL, METRICS, Collector, Entry
from .result import CellReader, Result, layer_index
from .stats import Pair, side_from_data
from .threads import both

__all__ = ["METRICS", "MatrixResult"]

MAX_KEPT_FEATURE_D = 8192  # CCA of kept activations forms d x d scatters per layer
_CROSS_ROWS = 1024  # rows converted to float64 at a time for a kept pair's cross-scatter

_REDUCE_TEXT = {
    "mean": "conv layers averaged over positions (N, C)",
    "flatten": "conv layers flattened, every unit a neuron (N, C*H*W)",
    "positions": "every spatial position a datapoint (N*H*W, C); pairs need equal H, W",
    "resize": "conv maps area-resized to the smallest H, W, positions as datapoints",
}
_BASE = {
    "cca": "CCA: mean canonical correlation (rank-revealing, centred, float64)",
    "pwcca": "PWCCA (Morcos et al. 2018, google/svcca weights)",
}


class MatrixResult(CellReader):
    """Layer-by-layer similarity of two models, for every metric, from one pass.

    Cells are computed on first request from statistics cached per layer
    (moments or Gram matrices), so switching metric never runs the models
    again; each layer's own statistics (whitening, principal directions, Gram
    centring) are computed once and shared by all its pairs.

    Attributes
    ----------
    layers_a, layers_b : list of str
    metrics : tuple of str
        The metrics filled during the pass (any of ``METRICS`` can be asked for).
    n : int
        Images seen.
    complete : bool
        False while the pass is still running (cells read then are NaN).

    Examples
    --------
    >>> res = similarity_matrix(model_a, model_b, images)      # doctest: +SKIP
    >>> res.matrix("svcca").shape, res.spectrum(0, 0)[:3]      # doctest: +SKIP
    """

    def __init__(self, layers_a, layers_b, metrics, collector: Collector, reduce: dict,
                 keep, side: str, sigma: float, rtol: float, batch_size: int = 64):
        self.layers_a, self.layers_b = list(layers_a), list(layers_b)
        self.metrics = tuple(metrics)
        self.keep, self.side, self.sigma, self.rtol = keep, side, sigma, rtol
        self.batch_size = batch_size
        self._c, self._reduce = collector, dict(reduce)
        self._cells: dict[tuple[str, int, int], Result] = {}
        self._cache: dict = {}
        self._last_cross: tuple = (None, None)
        self._lock = threading.RLock()
        self.complete = False

    @property
    def n(self) -> int:
        return self._c.n

    def __repr__(self):
        return (f"MatrixResult({len(self.layers_a)}x{len(self.layers_b)} layers, n={self.n}, "
                f"metrics={self.metrics}, complete={self.complete})")

    # -- public accessors --------------------------------------------------------------
    def matrix(self, metric: str) -> np.ndarray:
        """(La, Lb) float64 array of ``metric``; NaN where undefined (see :meth:`reason`)."""
        self._check(metric)
        out = np.full((len(self.layers_a), len(self.layers_b)), np.nan)
        with self._lock:
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    if self.complete or (metric, i, j) in self._cells:
                        out[i, j] = self.result(metric, i, j).score
        return out

    def result(self, metric: str, i, j) -> Result:
        """The full :class:`~cnnlens.similarity.Result` of one cell."""
        self._check(metric)
        i, j = self._index(self.layers_a, i), self._index(self.layers_b, j)
        with self._lock:
            key = (metric, i, j)
            if key not in self._cells:
                if not self.complete:
                    return Result(metric, float("nan"), self.convention(metric),
                                  reason="not computed yet: the pass is still running")
                self._cells[key] = self._compute(metric, i, j)
            return self._cells[key]

    def convention(self, metric: str, estimated: bool | None = None) -> str:
        """What ``metric`` means here, incl. the conv reduction and the estimator.

        ``estimated``: describe the minibatch estimator (default: whichever form the
        plan gave this metric; "mixed" when groups of layers differ).
        """
        self._check(metric)
        how = self._reduce[FAMILY[metric]]
        if estimated is None:
            estimated = metric == "minibatch_cka" or (
                self.plan is not None and self.plan.form(metric) == "minibatch")
        if estimated and FAMILY[metric] == "cka":
            return f"{self._estimator_text(metric)}; {_REDUCE_TEXT[how]}"
        if metric == "svcca":
            kept = (f"explaining {self.keep:.4g} of the variance" if isinstance(self.keep, float)
                    else str(self.keep))
            base = (f"SVCCA (Raghu et al. 2017): top singular directions {kept} per side, then "
                    "CCA; mean correlation")
        elif metric in _BASE:
            base = _BASE[metric] + (f", weights from {self.side!r} (model "
                                    f"{'a' if self.side == 'x' else 'b'})" if metric == "pwcca"
                                    else "")
        else:
            base = cka_convention(metric, self.sigma)
        return f"{base}; {_REDUCE_TEXT[how]}"

    def _estimator_text(self, metric: str) -> str:
        b = self.batch_size
        kernel = (f"RBF kernel, sigma={self.sigma} x each batch's median distance"
                  if KERNEL[metric] == "rbf" else "linear kernel")
        name = {"linear_cka": "linear CKA", "debiased_cka": "debiased CKA", "rbf_cka": "RBF CKA",
                "minibatch_cka": "minibatch CKA"}[metric]
        return (f"{name}, minibatch (unbiased HSIC, Nguyen et al. 2021), {b} x {b} batches, "
                f"{kernel}; standard error: delete-one-group jackknife over the batches")

    @property
    def plan(self):
        """The :class:`~cnnlens.similarity.budget.Plan` the pass ran with."""
        return self._c.plan

    def se(self, metric: str) -> np.ndarray:
        """(La, Lb) standard errors of ``metric``; NaN where the form gives none."""
        self._check(metric)
        out = np.full((len(self.layers_a), len(self.layers_b)), np.nan)
        if self.complete:
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    out[i, j] = self.result(metric, i, j).se
        return out

    def chance(self, metric: str, i=None, j=None):
        """Chance level (permutation null) of cell (i, j), or (La, Lb) of all cells.

        Biased CKA: the exact mean over all shuffles of the images, from the kept
        kernels (linear CKA also from streamed moments), as cheap as the cell;
        debiased CKA: 0; the CCA family: the mean of 20 seeded shuffles (20 CCAs per
        cell: ask per cell on large matrices). NaN where the form keeps nothing to
        shuffle (the minibatch estimator). See :mod:`cnnlens.similarity.trust`.
        """
        self._check(metric)
        with self._lock:
            return trust.chance(self, metric, i, j)

    @property
    def warnings(self) -> list[str]:
        """Plain sentences on what makes these scores hard to read (e.g. too few images)."""
        with self._lock:
            out = trust.sampling_warnings(self) if self.complete else []
        return out + ([self._c.maps_why] if getattr(self._c, "maps_why", "") else [])

    def canonical_maps(self, i, j, acts_a=None, acts_b=None, k: int = 4, metric: str = "svcca",
                       image: int | None = None):
        """Canonical maps of cell (i, j) from this pass (``maps=True``): no pass over the data.

        ``acts_a``, ``acts_b``: the image's activations (C, H, W) or (C,), or None (then
        ``.for_image`` gives an image's maps). See :func:`.positions.maps_result`.
        """
        from .positions import maps_result
        return maps_result(self, i, j, acts_a, acts_b, k, metric, image)

    def save(self, path) -> None:
        """Write every metric, spectrum, error, convention and the plan (see :mod:`.saved`)."""
        from .saved import save_result
        save_result(self, path)

    # -- computation -------------------------------------------------------------------
    def _check(self, metric):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")

    @staticmethod
    def _index(names, key) -> int:
        return layer_index(names, key)

    def _nan(self, metric, why, n=0) -> Result:
        return Result(metric, float("nan"), self.convention(metric), n=n, reason=why)

    def _minibatch(self, metric, i, j) -> Result:
        """A cell from the per-batch kernels (Nguyen et al.), with its jackknife error."""
        mb = self._c.minibatch
        kind = KERNEL[metric]
        if mb is None or kind not in mb.kinds:
            return self._nan(metric, "accumulated only when requested (it depends on the "
                             "batches): pass metrics=(..., 'minibatch_cka')"
                             if metric == "minibatch_cka" else
                             "the minibatch estimator was not collected in this pass")
        for side, k in (("a", i), ("b", j)):
            if self._c.mb_rows[side, k] != 1:
                name = (self.layers_a if side == "a" else self.layers_b)[k]
                return self._nan(metric, f"{name!r} has several rows per image with "
                                 f"reduce={self._reduce['cka']!r}; use 'flatten' or 'mean'")
        key = ("mb", kind, mb.batches)
        values, errors = self._cached(key, lambda: mb.matrices(kind))
        return Result(metric, float(values[i, j]), self.convention(metric, estimated=True),
                      n=self.n, se=float(errors[i, j]),
                      reason=f"{mb.skipped} batch(es) of < 4 images skipped" if mb.skipped
                      else None)

    def _compute(self, metric, i, j) -> Result:
        if metric == "minibatch_cka":
            return self._minibatch(metric, i, j)
        if metric in self._c.skipped:
            return self._nan(metric, f"not collected: {self._c.skipped[metric]}")
        how = self._reduce[FAMILY[metric]]
        ea, eb = self._c.entries.get(("a", i, how)), self._c.entries.get(("b", j, how))
        if ea is None or eb is None:
            return self._nan(metric, "not collected in this pass")
        if ea.rows != eb.rows:
            return self._nan(metric, f"{ea.layer!r} gives {ea.rows} datapoints per image and "
                             f"{eb.layer!r} {eb.rows} with reduce={how!r}: they cannot be paired; "
                             "use reduce='mean' or 'resize'")
        g = self._c.groups[how, ea.rows]
        if metric not in g.exact:
            if metric in g.estimated:
                return self._minibatch(metric, i, j)
            return self._nan(metric, g.why or "not collected in this pass")
        try:
            if g.mode == "stream":
                return self._stream_cell(metric, g, ea, eb)
            return with_error(self, metric, self._memory_cell(metric, ea, eb), ea, eb)
        except ValueError as exc:
            return self._nan(metric, str(exc), n=self.n * ea.rows)

    def _cached(self, key, fn):
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def release(self, side: str, index: int) -> None:
        """Drop what is cached for one layer (scatters, bases, whiteners, Grams, errors).

        The engine fills the matrix row by row and releases each row's layer of model a
        when its row is done, so the per-layer work held at once is that of model b's
        layers plus one of a's (as the plan prices it); a later read recomputes it.
        """
        def mine(part):
            return isinstance(part, Entry) and part.side == side and part.index == index
        with self._lock:
            for key in [k for k in self._cache if isinstance(k, tuple) and any(map(mine, k))]:
                del self._cache[key]
            if self._last_cross[0] is not None and any(map(mine, self._last_cross[0])):
                self._last_cross = (None, None)

    def _stream_cell(self, metric, g, ea: Entry, eb: Entry) -> Result:
        p = g.joint.pair(ea.slot, eb.slot)
        if metric in ("cca", "pwcca"):
            wx, wy = self._per_layer("w", self._whitener, (ea, p.x), (eb, p.y))
            if metric == "cca":
                return cca_from_pair(p, self.rtol, wx, wy)
            return pwcca_from_pair(p, self.side, self.rtol, wx, wy)
        if metric == "svcca":
            bx, by = self._per_layer("fb", self._basis, (ea, p.x), (eb, p.y))
            return svcca_from_bases(bx, by, self.keep, p.n, p.M)
        return linear_from_pair(p, debiased=metric == "debiased_cka")

    def _per_layer(self, kind: str, make, a: tuple, b: tuple):
        """``make(*a), make(*b)`` for two layers (``make`` caches under (kind, entry)):
        two missing ones side by side; with one cached, a hand-over to the other
        thread is not worth it (every cell but the first of a row or column)."""
        if (kind, a[0]) in self._cache or (kind, b[0]) in self._cache:
            return make(*a), make(*b)
        return both(lambda args: make(*args), a, b)

    def _basis(self, e: Entry, side):
        return self._cached(("fb", e), lambda: feature_basis(side.S, self.rtol))

    def _whitener(self, e: Entry, side):
        """Per layer, once; reuses the layer's SVCCA basis when that whitens it."""
        return self._cached(("w", e), lambda: whitener(
            side.S, side.mean, side.n, self.rtol, basis=lambda: self._basis(e, side)))

    def _gram_basis(self, e: Entry):
        return self._cached(("gb", e), lambda: gram_basis(self._gram(e), self.rtol))

    def _gram(self, e: Entry) -> torch.Tensor:
        return self._cached(("K", e), lambda: centred_gram(e.parts, e.shift))

    def _centred(self, e: Entry, kind: str):
        """(matrix, squared norm) of a layer's centred / U-centred / RBF kernel."""
        def make():
            if kind == "c":
                A = center(self._gram(e))
            elif kind == "u":
                A = ucenter(self._gram(e))
            else:
                K, why = rbf_kernel(self._gram(e), self.sigma)
                if K is None:
                    return None, why
                A = center(K)
            return A, float((A * A).sum())
        return self._cached((kind, e), make)

    def _memory_cell(self, metric, ea: Entry, eb: Entry) -> Result:
        n = ea.data.shape[0]
        if metric in ("linear_cka", "debiased_cka", "rbf_cka"):
            kind = {"linear_cka": "c", "debiased_cka": "u", "rbf_cka": "r"}[metric]
            if kind == "u" and n < 4:
                raise ValueError(f"the debiased estimator needs n >= 4 datapoints; got {n}")
            (A, na), (B, nb) = self._centred(ea, kind), self._centred(eb, kind)
            if A is None or B is None:
                return self._nan(metric, na if A is None else nb, n)
            if not (na > 0 and nb > 0):
                side = "x" if not na > 0 else "y"
                return self._nan(metric, f"{side} has no variance (or a non-positive unbiased "
                                 "HSIC): undefined", n)
            return Result(metric, float((A * B).sum()) / float(np.sqrt(na * nb)),
                          self.convention(metric), n=n)
        if metric == "svcca":
            if n <= max(ea.d, eb.d):  # d > n: the n x n Gram is the smaller problem
                ba, bb = self._per_layer("gb", self._gram_basis, (ea,), (eb,))
                return svcca_from_bases(ba, bb, self.keep, n)
            sa, sb = self._side(ea), self._side(eb)
            ba, bb = self._per_layer("fb", self._basis, (ea, sa), (eb, sb))
            return svcca_from_bases(ba, bb, self.keep, n, self._cross(ea, eb, sa, sb))
        if n <= max(ea.d, eb.d):  # decide on the non-constant neurons before any d x d work
            la, lb = (self._cached(("live", e), lambda e=e: live_count(e.data)) for e in (ea, eb))
            check_n_gt_d(metric.upper(), n, la, lb)
            if max(ea.d, eb.d) > MAX_KEPT_FEATURE_D:
                raise ValueError(f"{max(ea.d, eb.d)} features (mostly constant) are too many for "
                                 "CCA here; use svcca or a CKA")
        sa, sb = self._side(ea), self._side(eb)
        p = Pair(sa, sb, self._cross(ea, eb, sa, sb))
        wa, wb = self._per_layer("w", self._whitener, (ea, sa), (eb, sb))
        if metric == "cca":
            return cca_from_pair(p, self.rtol, wa, wb)
        return pwcca_from_pair(p, self.side, self.rtol, wa, wb)

    def _cross(self, ea: Entry, eb: Entry, sa, sb) -> torch.Tensor:
        """Centred cross-scatter of two kept layers in float64, row block by row block (one
        block of each converted at a time); the last pair's is kept, since the engine fills
        every metric of a pair before the next pair."""
        if self._last_cross[0] != (ea, eb):
            X, Y = ea.data, eb.data
            M = torch.zeros(ea.d, eb.d, dtype=torch.float64)
            for r in range(0, X.shape[0], _CROSS_ROWS):
                M.addmm_((X[r:r + _CROSS_ROWS].to(torch.float64) - sa.mean).mT,
                         Y[r:r + _CROSS_ROWS].to(torch.float64) - sb.mean)
            self._last_cross = ((ea, eb), M)
        return self._last_cross[1]

    def _side(self, e: Entry):
        return self._cached(("side", e),
                            lambda: side_from_data(e.data.to(torch.float64), higher=False))
