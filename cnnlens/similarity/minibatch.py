"""Minibatch CKA for the all-pairs engine: every layer pair from per-batch kernels.

Nguyen et al. (2021): CKA = sum_b HSIC_1(K_b, L_b) / sqrt(sum_b HSIC_1(K_b, K_b)
sum_b HSIC_1(L_b, L_b)) with the unbiased HSIC_1 of each batch's kernel: the
linear Gram, or an RBF kernel whose bandwidth is ``sigma`` times the batch's
median distance (Kornblith's ``gram_rbf`` applied per batch). Memory is
O(layers^2 + layers * batch^2) whatever the number of images and features, so
it is the CKA that streams flattened conv layers over unbounded data. It
depends on how the data are batched (the engine's ``batch_size`` and order).

Standard error: batch k is dealt into group k mod G; the delete-one-group
jackknife of the ratio over the G group sums gives each cell's standard error
in constant memory (G x layers^2 sums).
"""
from __future__ import annotations

import math

import torch

__all__ = ["MinibatchCKA"]

#: trace K / trace HKH above which a batch's rows are centred before the product: the
#: float32 rounding of raw products, relative to the centred Gram, grows with it
MAX_OFFSET_RATIO = 4.0


def batch_rbf(K: torch.Tensor, sigma: float) -> torch.Tensor:
    """exp(-D2 / (2 sigma^2 median(D2))) with a zero diagonal, from a centred Gram K.

    The median runs over all b^2 entries, the zero diagonal included (Kornblith's
    ``gram_rbf``); a batch whose points mostly coincide gets a zero kernel (it adds
    nothing to any sum) rather than a division by zero.
    """
    d = K.diagonal()
    D2 = (d[:, None] + d[None, :] - 2 * K).clamp_(min=0)
    D2.fill_diagonal_(0)
    med = float(D2.flatten().median()) if D2.numel() % 2 else float(
        D2.flatten().sort().values[D2.numel() // 2 - 1: D2.numel() // 2 + 1].mean())
    R = torch.zeros_like(D2) if not med > 0 else D2.mul_(-1.0 / (2 * sigma ** 2 * med)).exp_()
    R.fill_diagonal_(0)
    return R


def _centre(K: torch.Tensor) -> torch.Tensor:
    """H K H for a symmetric K (H = I - 11^T / b)."""
    r = K.mean(0)
    return K - r[None, :] - r[:, None] + r.mean()


class MinibatchCKA:
    """Accumulates HSIC_1 sums for all (a, b) layer pairs, one batch at a time."""

    def __init__(self, n_a: int, n_b: int, kinds=("linear",), sigma: float = 0.8,
                 groups: int = 16):
        if not set(kinds) <= {"linear", "rbf"} or not kinds:
            raise ValueError(f"kinds must be a subset of ('linear', 'rbf'); got {kinds!r}")
        self.kinds, self.sigma, self.G = tuple(kinds), float(sigma), int(groups)
        self.shape = (n_a, n_b)
        # per kind: (G, n_a, n_b), (G, n_a), (G, n_b) sums, allocated on the first batch's device
        self.sums: dict[str, tuple[torch.Tensor, ...]] = {}
        self.per_group = torch.zeros(self.G, dtype=torch.float64)  # batches in each group
        self.batches = self.skipped = 0
        self._scratch: torch.Tensor | None = None  # reused: a fresh 16 MB tensor per layer
        # costs page faults
        self._offset: dict = {}  # layer -> its rows were centred before the product

    def gram(self, x: torch.Tensor, layer=None) -> torch.Tensor | None:
        """Gram of the batch centred at its mean, summed up in float64.

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
        K, ratio = (None, math.inf) if self._offset.get(layer) else self._raw(x)
        if ratio > MAX_OFFSET_RATIO:
            K, ratio = self._centred_product(x)
        if K is None:  # a non-finite trace: NaN/Inf, or squares that overflow float32
            if not bool(torch.isfinite(x).all()):
                return None
            K, ratio = self._centred_product(x.to(torch.float64))
        self._offset[layer] = ratio > MAX_OFFSET_RATIO
        return K

    def kernels(self, x: torch.Tensor, layer=None) -> dict | None:
        """This batch's zero-diagonal kernels, one per kind, or None on NaN/Inf."""
        K = self.gram(x, layer)
        if K is None:
            return None
        out = {}
        if "rbf" in self.kinds:
            out["rbf"] = batch_rbf(K, self.sigma)
        K.fill_diagonal_(0)
        out["linear"] = K
        return out

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
        mean = torch.full((1, x.shape[0]), 1.0 / x.shape[0], dtype=x.dtype, device=x.device) @ x
        if x.dtype != torch.float32 or x.device.type != "cpu":
            e = x - mean
        else:
            scratch = self._scratch
            if scratch is None or scratch.numel() < x.numel():
                scratch = self._scratch = torch.empty(x.numel(), dtype=torch.float32)
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

    def update(self, kxs, kys, images: int | None = None) -> None:
        """One batch: each layer's :meth:`kernels` (None: a layer with no per-image row).

        A batch of fewer than 4 images has no unbiased HSIC and is skipped (counted).
        """
        first = next((k for k in [*kxs, *kys] if k is not None), None)
        b = images if first is None else first["linear" if "linear" in first else "rbf"].shape[0]
        if first is None or b < 4:
            self.skipped += 1
            return
        g = self.batches % self.G
        c1, c2, f = 1.0 / ((b - 1) * (b - 2)), 2.0 / (b - 2), 1.0 / (b * (b - 3))
        for kind in self.kinds:
            zero = torch.zeros(b, b, dtype=torch.float64, device=first[kind].device)
            kx = torch.stack([zero if k is None else k[kind] for k in kxs])
            ky = torch.stack([zero if k is None else k[kind] for k in kys])
            if kind not in self.sums:
                self.sums[kind] = tuple(torch.zeros(self.G, *s, dtype=torch.float64,
                                                    device=kx.device)
                                        for s in (self.shape, self.shape[:1], self.shape[1:]))
            hxy, hxx, hyy = self.sums[kind]
            vx, rx, sx = self._terms(kx)
            vy, ry, sy = self._terms(ky)
            hxy[g] += f * (vx @ vy.mT + c1 * torch.outer(sx, sy) - c2 * (rx @ ry.mT))
            hxx[g] += f * ((vx * vx).sum(1) + c1 * sx * sx - c2 * (rx * rx).sum(1))
            hyy[g] += f * ((vy * vy).sum(1) + c1 * sy * sy - c2 * (ry * ry).sum(1))
        self.per_group[g] += 1
        self.batches += 1

    def matrices(self, kind: str = "linear"):
        """(values, standard errors), each (n_a, n_b); NaN where undefined."""
        if kind not in self.sums:
            nan = torch.full(self.shape, float("nan"), dtype=torch.float64)
            return nan, nan.clone()
        hxy, hxx, hyy = (s.cpu() for s in self.sums[kind])
        value = _ratio(hxy.sum(0), hxx.sum(0), hyy.sum(0))
        used = self.per_group > 0
        m = int(used.sum())
        if m < 2:
            return value, torch.full(self.shape, float("nan"), dtype=torch.float64)
        # delete-one-group estimates, (m, n_a, n_b)
        loo = _ratio(hxy.sum(0) - hxy[used], hxx.sum(0) - hxx[used], hyy.sum(0) - hyy[used])
        se = ((m - 1) / m * (loo - loo.mean(0)).square().sum(0)).sqrt()
        return value, se

    def value(self, i: int, j: int, kind: str = "linear") -> float:
        return float(self.matrices(kind)[0][i, j])


def _ratio(hxy: torch.Tensor, hxx: torch.Tensor, hyy: torch.Tensor) -> torch.Tensor:
    """hxy / sqrt(hxx hyy) with NaN where a denominator is not positive (broadcast on the
    last two axes: hxx over rows, hyy over columns)."""
    den = hxx[..., :, None] * hyy[..., None, :]
    out = hxy / den.clamp(min=1e-300).sqrt()
    return out.masked_fill(~(den > 0), float("nan"))
