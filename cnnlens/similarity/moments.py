"""Streaming moments: feed batches, get CCA, SVCCA, PWCCA and (debiased) linear CKA exactly.

Memory is O(d_x^2 + d_y^2 + d_x d_y), independent of the number of datapoints;
the numerics (Chan-style merging of centred moments) are described in
:mod:`cnnlens.similarity.joint`.
"""
from __future__ import annotations

import torch

from ._inputs import as_matrix, as_tensor, check_finite, check_pair
from .cca import cca_from_pair, pwcca_from_pair, svcca_from_pair
from .cka import linear_from_pair
from .conv import reduce_pair
from .joint import Joint
from .layer_work import LayerWork
from .linalg import RTOL
from .result import Result
from .stats import Pair

__all__ = ["Joint", "Moments"]


class Moments:
    """Streaming statistics of two paired representations; any metric, exactly.

    Parameters
    ----------
    reduce : str, optional
        How conv batches (N, C, H, W) become 2-D ("positions", "mean", "flatten",
        "resize"); required only when such batches come in.
    higher : bool
        Keep the fourth-order sums debiased CKA needs (default True).

    Examples
    --------
    >>> import numpy as np
    >>> from cnnlens.similarity import Moments
    >>> rng = np.random.default_rng(0)
    >>> w = rng.normal(size=(6, 4))
    >>> m = Moments()
    >>> for _ in range(10):                      # batches of 100 datapoints
    ...     x = rng.normal(size=(100, 6))
    ...     _ = m.update(x, x @ w + 0.1 * rng.normal(size=(100, 4)))
    >>> m.n, round(m.cca().score, 2), m.cca().k_y
    (1000, 1.0, 4)
    """

    def __init__(self, reduce: str | None = None, higher: bool = True):
        self.reduce, self.higher = reduce, higher
        self._joint: Joint | None = None
        self._work = LayerWork()  # per-side whitening / principal directions, until new data
        self.batches = 0

    @property
    def n(self) -> int:
        """Datapoints accumulated so far."""
        return 0 if self._joint is None else self._joint.n

    def update(self, x, y) -> Moments:
        """Add a batch (rows = datapoints; conv batches are reduced with ``reduce``)."""
        k = self.batches
        tx, ty = as_tensor(x, f"x batch {k}"), as_tensor(y, f"y batch {k}")
        check_finite(tx, f"x batch {k}")
        check_finite(ty, f"y batch {k}")
        conv = tx.ndim == 4 or ty.ndim == 4
        if conv and self.reduce is None:
            raise ValueError("conv batches (N, C, H, W) need Moments(reduce=...): one of "
                             "'positions', 'mean', 'flatten', 'resize'")
        for t, name in ((tx, f"x batch {k}"), (ty, f"y batch {k}")):
            if t.ndim == 0:
                as_matrix(t, name)  # raises: not 2-D
            if len(t) == 0:
                raise ValueError(f"{name} is empty: shape {tuple(t.shape)} (need at least one "
                                 "datapoint)")
        if len(tx) != len(ty):
            check_pair(tx, ty, min_n=1)
        # cache-sized chunks (~2^20 values a side): conv chunks are reduced straight
        # to float64 in one pass, never as a whole reduced copy of the batch
        step = max(1, 2 ** 20 // max(tx[0].numel(), ty[0].numel(), 1))
        for i in range(0, max(len(tx), 1), step):
            cx, cy = tx[i:i + step], ty[i:i + step]
            if conv:
                cx, cy = reduce_pair(cx, cy, self.reduce, dtype=torch.float64)
            self._add(as_matrix(cx, f"x batch {k}", False), as_matrix(cy, f"y batch {k}", False),
                      (tx, ty), k)
        self._work.clear()
        self.batches += 1
        return self

    def _add(self, X: torch.Tensor, Y: torch.Tensor, inputs, k: int) -> None:
        check_pair(X, Y, min_n=1)
        if self._joint is None:
            self._joint = Joint([X.shape[1]], [Y.shape[1]], self.higher)
        elif (X.shape[1], Y.shape[1]) != (self._joint.gx.D, self._joint.gy.D):
            raise ValueError(f"batch {k} has {X.shape[1]} and {Y.shape[1]} features; earlier "
                             f"batches had {self._joint.gx.D} and {self._joint.gy.D}")
        # the accumulator centres in place: copy only tensors the caller still owns
        theirs = [t.untyped_storage().data_ptr() for t in inputs]
        owned = [t.untyped_storage().data_ptr() not in theirs for t in (X, Y)]
        self._joint.update([X], [Y], owned=owned)

    def merge(self, other: Moments) -> Moments:
        """Fold in an accumulator fed with other datapoints (e.g. from another worker)."""
        if other._joint is not None:
            if self._joint is None:
                self._joint = Joint(other._joint.gx.sizes, other._joint.gy.sizes, self.higher)
            self._joint.merge(other._joint)
            self._work.clear()
            self.batches += other.batches
        return self

    def pair(self) -> Pair:
        """The centred statistics (:class:`~cnnlens.similarity.stats.Pair`)."""
        if self._joint is None or self._joint.n < 2:
            raise ValueError(f"need at least 2 datapoints; got {self.n}")
        return self._joint.pair()

    def _whiteners(self, p: Pair, rtol: float):
        return self._work.whitener("x", p.x, rtol), self._work.whitener("y", p.y, rtol)

    def cca(self, rtol: float = RTOL) -> Result:
        p = self.pair()
        return cca_from_pair(p, rtol, *self._whiteners(p, rtol))

    def svcca(self, keep=0.99, rtol: float = RTOL) -> Result:
        p = self.pair()
        bx, by = self._work.basis("x", p.x, rtol), self._work.basis("y", p.y, rtol)
        return svcca_from_pair(p, keep, rtol, bx, by)

    def pwcca(self, side: str = "x", rtol: float = RTOL) -> Result:
        p = self.pair()
        return pwcca_from_pair(p, side, rtol, *self._whiteners(p, rtol))

    def linear_cka(self, debiased: bool = False) -> Result:
        if debiased and not self.higher:
            raise ValueError("debiased CKA needs Moments(higher=True)")
        return linear_from_pair(self.pair(), debiased)
