"""MatrixResult: all-pairs similarity computed lazily from cached per-layer statistics."""
from __future__ import annotations

import dataclasses
import threading

import numpy as np

from . import trust
from .cca import cca_from_pair, check_n_gt_d, pwcca_from_pair, svcca_from_bases
from .cka import convention as cka_convention
from .cka import from_kernels, linear_from_pair
from .conv import REDUCTIONS
from .jackknife import with_error
from .layer_work import LayerWork
from .plan import FAMILY, KERNEL, METRICS, Collector, Entry
from .result import CellReader, Result, layer_index
from .stats import Pair

__all__ = ["METRICS", "MatrixResult"]

MAX_KEPT_FEATURE_D = 8192  # CCA of kept activations forms d x d scatters per layer

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
        self.work = LayerWork(rtol, sigma)
        """:class:`~cnnlens.similarity.layer_work.LayerWork`: each layer's own work, shared by its pairs."""
        self.lock = threading.RLock()
        """Held while cells are computed (the widget reads cells from another thread)."""
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
        with self.lock:
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    if self.complete or (metric, i, j) in self._cells:
                        out[i, j] = self.result(metric, i, j).score
        return out

    def result(self, metric: str, i, j) -> Result:
        """The full :class:`~cnnlens.similarity.Result` of one cell."""
        self._check(metric)
        i, j = self._index(self.layers_a, i), self._index(self.layers_b, j)
        with self.lock:
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
            return f"{self._estimator_text(metric)}; {REDUCTIONS[how]}"
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
        return f"{base}; {REDUCTIONS[how]}"

    def _estimator_text(self, metric: str) -> str:
        b = self.batch_size
        kernel = (f"RBF kernel, sigma={self.sigma} x each batch's median distance"
                  if KERNEL[metric] == "rbf" else "linear kernel")
        name = {"linear_cka": "linear CKA", "debiased_cka": "debiased CKA", "rbf_cka": "RBF CKA",
                "minibatch_cka": "minibatch CKA"}[metric]
        return (f"{name}, minibatch (unbiased HSIC, Nguyen et al. 2021), {b} x {b} batches, "
                f"{kernel}; standard error: delete-one-group jackknife over the batches")

    @property
    def collector(self) -> Collector:
        """The statistics of the pass (:class:`~cnnlens.similarity.plan.Collector`)."""
        return self._c

    @property
    def reduce(self) -> dict[str, str]:
        """The conv reduction of each metric family ("cca", "cka")."""
        return dict(self._reduce)

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
        with self.lock:
            return trust.chance(self, metric, i, j)

    @property
    def warnings(self) -> list[str]:
        """Plain sentences on what makes these scores hard to read (e.g. too few images)."""
        with self.lock:
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
        values, errors = self.work.get(key, lambda: mb.matrices(kind))
        return Result(metric, float(values[i, j]), self.convention(metric, estimated=True),
                      n=self.n, se=float(errors[i, j]),
                      reason=f"{mb.skipped} batch(es) of < 4 images skipped" if mb.skipped
                      else None)

    def cell_entries(self, metric: str, i: int, j: int):
        """(entry a, entry b, group) holding cell (i, j) of ``metric``'s statistics, or
        (None, None, None) when the pass collected none for it."""
        how = self._reduce[FAMILY[metric]]
        ea, eb = self._c.entries.get(("a", i, how)), self._c.entries.get(("b", j, how))
        if ea is None or eb is None or ea.rows != eb.rows:
            return ea, eb, None
        return ea, eb, self._c.groups[how, ea.rows]

    def _compute(self, metric, i, j) -> Result:
        if metric == "minibatch_cka":
            return self._minibatch(metric, i, j)
        if metric in self._c.skipped:
            return self._nan(metric, f"not collected: {self._c.skipped[metric]}")
        how = self._reduce[FAMILY[metric]]
        ea, eb, g = self.cell_entries(metric, i, j)
        if ea is None or eb is None:
            return self._nan(metric, "not collected in this pass")
        if g is None:
            return self._nan(metric, f"{ea.layer!r} gives {ea.rows} datapoints per image and "
                             f"{eb.layer!r} {eb.rows} with reduce={how!r}: they cannot be paired; "
                             "use reduce='mean' or 'resize'")
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

    def release(self, side: str, index: int) -> None:
        """Drop what is cached for one layer (scatters, bases, whiteners, Grams, errors).

        The engine fills the matrix row by row and releases each row's layer of model a
        when its row is done, so the per-layer work held at once is that of model b's
        layers plus one of a's (as the plan prices it); a later read recomputes it.
        """
        with self.lock:
            for e in self._c.entries.values():
                if e.side == side and e.index == index:
                    self.work.release(e)

    def _stream_cell(self, metric, g, ea: Entry, eb: Entry) -> Result:
        p = g.joint.pair(ea.slot, eb.slot)
        if metric in ("cca", "pwcca"):
            wx, wy = self.work.whitener(ea, p.x), self.work.whitener(eb, p.y)
            if metric == "cca":
                return cca_from_pair(p, self.rtol, wx, wy)
            return pwcca_from_pair(p, self.side, self.rtol, wx, wy)
        if metric == "svcca":
            bx, by = self.work.basis(ea, p.x), self.work.basis(eb, p.y)
            return svcca_from_bases(bx, by, self.keep, p.n, p.M)
        return linear_from_pair(p, debiased=metric == "debiased_cka")

    def _memory_cell(self, metric, ea: Entry, eb: Entry) -> Result:
        n, work = ea.data.shape[0], self.work
        if metric in ("linear_cka", "debiased_cka", "rbf_cka"):
            kind = {"linear_cka": "c", "debiased_cka": "u", "rbf_cka": "r"}[metric]
            if kind == "u" and n < 4:
                raise ValueError(f"the debiased estimator needs n >= 4 datapoints; got {n}")
            (A, na), (B, nb) = work.centred(ea, kind), work.centred(eb, kind)
            if A is None or B is None:
                return self._nan(metric, na if A is None else nb, n)
            r = from_kernels(metric, A, na, B, nb, self.sigma)
            return dataclasses.replace(r, convention=self.convention(metric))
        if metric == "svcca":
            if n <= max(ea.d, eb.d):  # d > n: the n x n Gram is the smaller problem
                ba, bb = work.gram_basis(ea), work.gram_basis(eb)
                return svcca_from_bases(ba, bb, self.keep, n)
            sa, sb = work.side(ea), work.side(eb)
            ba, bb = work.basis(ea, sa), work.basis(eb, sb)
            return svcca_from_bases(ba, bb, self.keep, n, work.cross(ea, eb, sa, sb))
        if n <= max(ea.d, eb.d):  # decide on the non-constant neurons before any d x d work
            check_n_gt_d(metric.upper(), n, work.live(ea), work.live(eb))
            if max(ea.d, eb.d) > MAX_KEPT_FEATURE_D:
                raise ValueError(f"{max(ea.d, eb.d)} features (mostly constant) are too many for "
                                 "CCA here; use svcca or a CKA")
        sa, sb = work.side(ea), work.side(eb)
        p = Pair(sa, sb, work.cross(ea, eb, sa, sb))
        wa, wb = work.whitener(ea, sa), work.whitener(eb, sb)
        if metric == "cca":
            return cca_from_pair(p, self.rtol, wa, wb)
        return pwcca_from_pair(p, self.side, self.rtol, wa, wb)
