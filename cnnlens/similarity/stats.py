"""Sufficient statistics of one representation (:class:`Side`) and of a pair (:class:`Pair`).

Everything in the feature-space form is computed from these, whether they come
from one in-memory array (:func:`cnnlens.similarity.joint.pair_from_data`) or from
the streaming accumulator in :mod:`cnnlens.similarity.moments`. All sums are about
the exact mean of the datapoints seen ("centred"), in float64:

- ``S = sum (x - mu)(x - mu)^T`` (scatter; covariance times n)
- ``H = sum |x - mu|^4`` (only for debiased CKA)
- ``M = sum (x - mu_x)(y - mu_y)^T`` and ``G = sum |x - mu_x|^2 |y - mu_y|^2`` (debiased CKA).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Pair", "Side", "side_from_data"]


@dataclass
class Side:
    """Centred moments of one (n, d) representation."""

    n: int
    mean: torch.Tensor
    S: torch.Tensor
    H: float | None = None

    @property
    def d(self) -> int:
        return int(self.mean.shape[0])

    @property
    def Q(self) -> float:
        """sum |x - mu|^2 = trace(S)."""
        return float(self.S.diagonal().real.sum())


@dataclass
class Pair:
    """Centred moments of two representations of the same n datapoints."""

    x: Side
    y: Side
    M: torch.Tensor
    G: float | None = None

    @property
    def n(self) -> int:
        return self.x.n

    def swapped(self) -> Pair:
        return Pair(self.y, self.x, self.M.mT, self.G)


def _centre(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu = X.mean(0)
    return mu, X - mu


def side_from_data(X: torch.Tensor, higher: bool = True) -> Side:
    """Moments of an in-memory float64 (n, d) array (complex allowed when ``higher=False``)."""
    mu, E = _centre(X)
    S = E.mH @ E
    if not higher:
        return Side(X.shape[0], mu, S)
    q = (E * E).sum(1)
    return Side(X.shape[0], mu, S, float(q @ q))
