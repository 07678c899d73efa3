"""Each layer's own work, done once and shared by every pair the layer is in.

A layer's principal basis (SVCCA), whitener (CCA, PWCCA), centred Gram and kernels
(CKA) do not depend on the other side of a pair, so the all-pairs engine, the
streaming :class:`~cnnlens.similarity.moments.Moments` and the one-pair functions
all get them here, keyed by any hashable name of the layer ("x"/"y" for one pair,
an engine ``Entry`` for all pairs). :meth:`LayerWork.release` drops what one layer
holds when its pairs are done (the engine's memory plan counts on it).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from .gram import center, centred_gram, rbf_kernel, ucenter
from .linalg import RTOL, Basis, Whitener, feature_basis, gram_basis, live_count, whitener
from .stats import Side, side_from_data

__all__ = ["LayerWork"]

_CROSS_ROWS = 1024  # rows converted to float64 at a time for a kept pair's cross-scatter


class LayerWork:
    """A store of per-layer results; ``get(key, make)`` computes each key once.

    Layers given as moments (a :class:`~cnnlens.similarity.stats.Side`) get
    :meth:`basis` and :meth:`whitener`; layers whose activations are kept (an
    engine ``Entry``: ``.data``, ``.parts``, ``.shift``) also get :meth:`side`,
    :meth:`gram`, :meth:`gram_basis`, :meth:`centred`, :meth:`live` and, for a pair,
    :meth:`cross`.

    Examples
    --------
    >>> import torch
    >>> from cnnlens.similarity.stats import side_from_data
    >>> work = LayerWork()
    >>> side = side_from_data(torch.randn(50, 4, dtype=torch.float64))
    >>> work.whitener("x", side) is work.whitener("x", side)
    True
    """

    def __init__(self, rtol: float = RTOL, sigma: float = 0.8):
        self.rtol, self.sigma = rtol, sigma
        self.store: dict = {}
        self._last_cross: tuple = (None, None)
        self._last_rows: tuple = (None, None)

    def get(self, key, make: Callable):
        if key not in self.store:
            self.store[key] = make()
        return self.store[key]

    def release(self, layer) -> None:
        """Drop everything computed for ``layer`` (and any pair it is in)."""
        for key in [k for k in self.store if isinstance(k, tuple) and layer in k]:
            del self.store[key]
        if self._last_cross[0] is not None and layer in self._last_cross[0]:
            self._last_cross = (None, None)
        if self._last_rows[0] is layer:
            self._last_rows = (None, None)

    def clear(self) -> None:
        self.store.clear()
        self._last_cross = self._last_rows = (None, None)

    # -- the CCA family from moments -----------------------------------------------
    def basis(self, layer, side: Side, rtol: float | None = None) -> Basis:
        """Principal directions of the layer's scatter (SVCCA's basis)."""
        rtol = self.rtol if rtol is None else rtol
        return self.get(("basis", layer, rtol), lambda: feature_basis(side.S, rtol))

    def whitener(self, layer, side: Side, rtol: float | None = None) -> Whitener:
        """Rank-revealing whitening; reuses the layer's basis when that whitens it."""
        rtol = self.rtol if rtol is None else rtol
        return self.get(("whitener", layer, rtol), lambda: whitener(
            side.S, side.mean, side.n, rtol, basis=lambda: self.basis(layer, side, rtol)))

    # -- kept activations ----------------------------------------------------------
    def side(self, e) -> Side:
        """Centred float64 moments of a kept layer."""
        return self.get(("side", e), lambda: side_from_data(e.data.to(torch.float64),
                                                            higher=False))

    def live(self, e) -> int:
        """Non-constant neurons of a kept layer (:func:`~.linalg.live_count`)."""
        return self.get(("live", e), lambda: live_count(e.data))

    def gram(self, e) -> torch.Tensor:
        return self.get(("gram", e), lambda: centred_gram(e.parts, e.shift))

    def gram_basis(self, e) -> Basis:
        """Principal directions of a kept layer as orthonormal scores over the datapoints
        (n, r): SVCCA's Gram form, needed when the other layer of a pair is wider than n.

        A layer narrower than n gets them from its d x d feature basis (the scores
        Xc V lam^-1/2 are the Gram's eigenvectors, with the same eigenvalues): at
        n = 1024 that is a 64 x 64 eigh and one product instead of a 1024 x 1024 eigh.
        """
        def make():
            n = e.data.shape[0]
            if e.d >= n:
                return gram_basis(self.gram(e), self.rtol)
            side = self.side(e)
            b = self.basis(e, side)
            scores = (e.data.to(torch.float64) - side.mean) @ (b.vecs * b.lam.rsqrt())
            return Basis(b.lam, scores, b.total, gram=True)
        return self.get(("gram_basis", e), make)

    def centred(self, e, kind: str):
        """(kernel, squared norm): ``kind`` "c" centred Gram, "u" U-centred, "r" centred
        RBF kernel ((None, why) when its bandwidth is undefined)."""
        def make():
            if kind == "c":
                A = center(self.gram(e))
            elif kind == "u":
                A = ucenter(self.gram(e))
            else:
                K, why = rbf_kernel(self.gram(e), self.sigma)
                if K is None:
                    return None, why
                A = center(K)
            return A, float((A * A).sum())
        return self.get((kind, e), make)

    def cross(self, ea, eb, sa: Side, sb: Side) -> torch.Tensor:
        """Centred cross-scatter of two kept layers in float64; the last pair's is kept, since
        the engine fills every metric of a pair before the next pair.

        The engine goes row by row, so ``ea``'s centred float64 rows are kept for the
        row (one layer of model a at a time) and only ``eb``'s are converted per pair,
        one block of rows at a time.
        """
        if self._last_cross[0] != (ea, eb):
            if self._last_rows[0] is not ea:
                self._last_rows = (None, None)  # before the next one is allocated
                self._last_rows = (ea, ea.data.to(torch.float64) - sa.mean)
            Ea, Y = self._last_rows[1], eb.data
            M = torch.zeros(ea.d, eb.d, dtype=torch.float64)
            for r in range(0, Y.shape[0], _CROSS_ROWS):
                block = Y[r:r + _CROSS_ROWS].to(torch.float64)
                M.addmm_(Ea[r:r + _CROSS_ROWS].mT, block.sub_(sb.mean))
            self._last_cross = ((ea, eb), M)
        return self._last_cross[1]
