"""Minibatch CKA for the all-pairs engine: every layer pair from per-batch Gram matrices.

Nguyen et al. (2021): CKA = sum_b HSIC_1(K_b, L_b) / sqrt(sum_b HSIC_1(K_b, K_b)
sum_b HSIC_1(L_b, L_b)) with the unbiased HSIC_1 of each batch's linear Gram.
Memory is O(layers * batch^2) whatever the number of images and features, so
it is the one CKA that streams flattened conv layers over unbounded data. It
depends on how the data are batched (the engine's ``batch_size`` and order).
"""
from __future__ import annotations

import torch

from .linalg import small_threads

__all__ = ["MinibatchCKA"]


class MinibatchCKA:
    """Accumulates HSIC_1 sums for all (a, b) layer pairs, one batch at a time."""

    def __init__(self, n_a: int, n_b: int):
        self.hxy = torch.zeros(n_a, n_b, dtype=torch.float64)
        self.hxx = torch.zeros(n_a, dtype=torch.float64)
        self.hyy = torch.zeros(n_b, dtype=torch.float64)
        self.batches = self.skipped = 0

    @staticmethod
    def column_mean(x: torch.Tensor) -> torch.Tensor:
        """Column means of a (b, d) batch as one GEMV (torch's ``mean(0)`` over the rows of
        a wide float32 batch is ~5x slower); float32 accuracy suffices for a centring shift."""
        ones = torch.full((1, x.shape[0]), 1.0 / x.shape[0], dtype=x.dtype)
        with small_threads(flops=2.0 * x.numel()):
            return (ones @ x)[0]

    @staticmethod
    def gram(x: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
        """Zero-diagonal Gram of the batch, centred first (by ``mean`` when given).

        HSIC_1 is exactly invariant to the shift, so any centre works; centring keeps
        offsets out of the products. The b x b Gram of float32 activations is formed in
        float32 (relative error ~1e-6 of CKA, far below the estimator's dependence on
        the batching) and summed in float64: converting every batch of a 65536-feature
        layer to float64 would cost more than its forward pass.
        """
        e = x - (MinibatchCKA.column_mean(x) if mean is None else mean)
        with small_threads(flops=2.0 * e.shape[0] ** 2 * e.shape[1]):
            K = (e @ e.mT).to(torch.float64)
        K.fill_diagonal_(0)
        return K

    @staticmethod
    def _terms(K: torch.Tensor):
        return K.reshape(K.shape[0], -1), K.sum(2), K.sum((1, 2))

    def update(self, xs, ys) -> None:
        """One batch: lists of (b, d) tensors for the layers of each model."""
        if xs[0].shape[0] < 4:  # the unbiased estimator needs 4 datapoints
            self.skipped += 1
            return
        self.update_grams([self.gram(x) for x in xs], [self.gram(y) for y in ys])

    def update_grams(self, kxs, kys) -> None:
        """One batch given as each layer's :meth:`gram` (computed at hook time by the engine)."""
        b = kxs[0].shape[0]
        if b < 4:
            self.skipped += 1
            return
        # tiny products (layers x b^2): one thread (a second one waits on a busy machine)
        with small_threads(flops=2.0 * len(kxs) * len(kys) * b * b):
            vx, rx, sx = self._terms(torch.stack(kxs))
            vy, ry, sy = self._terms(torch.stack(kys))
            c1, c2, f = 1.0 / ((b - 1) * (b - 2)), 2.0 / (b - 2), 1.0 / (b * (b - 3))
            self.hxy += f * (vx @ vy.mT + c1 * torch.outer(sx, sy) - c2 * (rx @ ry.mT))
            self.hxx += f * ((vx * vx).sum(1) + c1 * sx * sx - c2 * (rx * rx).sum(1))
            self.hyy += f * ((vy * vy).sum(1) + c1 * sy * sy - c2 * (ry * ry).sum(1))
        self.batches += 1

    def value(self, i: int, j: int) -> float:
        den = float(self.hxx[i] * self.hyy[j])
        return float(self.hxy[i, j]) / den ** 0.5 if den > 0 else float("nan")
