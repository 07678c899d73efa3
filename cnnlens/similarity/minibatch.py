"""Minibatch CKA for the all-pairs engine: every layer pair from per-batch Gram matrices.

Nguyen et al. (2021): CKA = sum_b HSIC_1(K_b, L_b) / sqrt(sum_b HSIC_1(K_b, K_b)
sum_b HSIC_1(L_b, L_b)) with the unbiased HSIC_1 of each batch's linear Gram.
Memory is O(layers * batch^2) whatever the number of images and features, so
it is the one CKA that streams flattened conv layers over unbounded data. It
depends on how the data are batched (the engine's ``batch_size`` and order).
"""
from __future__ import annotations

import math
import threading

import torch

from .threads import small_threads

__all__ = ["MinibatchCKA"]

#: trace K / trace HKH above which a batch's rows are centred before the product: the
#: float32 rounding of raw products, relative to the centred Gram, grows with it
MAX_OFFSET_RATIO = 4.0


def _centre(K: torch.Tensor) -> torch.Tensor:
    """H K H for a symmetric K (H = I - 11^T / b)."""
    r = K.mean(0)
    return K - r[None, :] - r[:, None] + r.mean()


class MinibatchCKA:
    """Accumulates HSIC_1 sums for all (a, b) layer pairs, one batch at a time."""

    def __init__(self, n_a: int, n_b: int):
        self.hxy = torch.zeros(n_a, n_b, dtype=torch.float64)
        self.hxx = torch.zeros(n_a, dtype=torch.float64)
        self.hyy = torch.zeros(n_b, dtype=torch.float64)
        self.batches = self.skipped = 0
        self._local = threading.local()  # a scratch buffer per thread (the engine's two
        # models run side by side, each feeding its layers from its own thread)
        self._offset: dict = {}  # layer -> its rows were centred before the product

    def gram(self, x: torch.Tensor, layer=None) -> torch.Tensor | None:
        """Zero-diagonal Gram of the batch centred at its mean, summed up in float64.

        HSIC_1 is exactly invariant to a shift of the data; centring only keeps offsets
        out of the float32 products. The fast way is the raw b x b product of the
        activations, centred in float64 afterwards (``H K H``): no pass over the
        activations besides the product. Its rounding grows with ``trace K / trace
        HKH`` (offset over spread energy: ~1.5 after a ReLU, where the error stays
        ~1e-6 of the Gram); above ``MAX_OFFSET_RATIO`` the rows are centred first
        (raw products lose 3e-4 on ``float32_offset_scale``), into one reused scratch
        buffer (a fresh 16 MB tensor per layer costs page faults, ~1 ms each). The
        float32 mean's own rounding is then removed exactly by ``H K H``. The ratio
        is remembered per ``layer``, so later batches of an offset layer skip the raw
        product. Returns None when the batch holds NaN/Inf.
        """
        with small_threads(flops=2.0 * x.shape[0] ** 2 * x.shape[1]):
            K, ratio = (None, math.inf) if self._offset.get(layer) else self._raw(x)
            if ratio > MAX_OFFSET_RATIO:
                K, ratio = self._centred_product(x)
            if K is None:  # a non-finite trace: NaN/Inf, or squares that overflow float32
                if not bool(torch.isfinite(x).all()):
                    return None
                K, ratio = self._centred_product(x.to(torch.float64))
        self._offset[layer] = ratio > MAX_OFFSET_RATIO
        K.fill_diagonal_(0)
        return K

    @staticmethod
    def _raw(x: torch.Tensor):
        """(H x x^T H, trace ratio), or (None, inf) if the trace is not finite."""
        K = (x @ x.mT).to(torch.float64)
        total = float(K.diagonal().sum())
        if not math.isfinite(total):
            return None, math.inf
        K = _centre(K)
        return K, total / max(float(K.diagonal().sum()), 1e-300)

    def _centred_product(self, x: torch.Tensor):
        """(H e e^T H with e = x - mean, trace ratio), or (None, inf) if not finite."""
        mean = torch.full((1, x.shape[0]), 1.0 / x.shape[0], dtype=x.dtype) @ x
        if x.dtype != torch.float32:
            e = x - mean
        else:
            scratch = getattr(self._local, "scratch", None)
            if scratch is None or scratch.numel() < x.numel():
                scratch = self._local.scratch = torch.empty(x.numel(), dtype=torch.float32)
            e = torch.sub(x, mean, out=scratch[:x.numel()].view(x.shape))
        K = _centre((e @ e.mT).to(torch.float64))
        spread = float(K.diagonal().sum())
        if not math.isfinite(spread):
            return None, math.inf
        offset = x.shape[0] * float(mean.double().square().sum())   # trace K = spread + b |mean|^2
        return K, (spread + offset) / max(spread, 1e-300)

    @staticmethod
    def _terms(K: torch.Tensor):
        return K.reshape(K.shape[0], -1), K.sum(2), K.sum((1, 2))

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
