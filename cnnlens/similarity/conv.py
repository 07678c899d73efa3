"""Conv activations (N, C, H, W) -> (n, d) matrices, and the DFT method for CCA.

Reductions (``reduce=``):

- ``"positions"``: every spatial position is a datapoint, channels are neurons
  -> (N*H*W, C). Needs the same H, W on both sides (SVCCA tutorial 002).
- ``"mean"``: average over positions -> (N, C).
- ``"flatten"``: every unit is a neuron -> (N, C*H*W) (Kornblith et al.; with
  d > n the Gram form is used).
- ``"resize"``: area-downsample the larger map to the smaller H, W (adaptive
  average pooling), then positions.
- ``"dft"``: CCA per 2-D spatial frequency (Raghu et al. 2017, google/svcca
  ``dft_ccas.fourier_ccas``); only for :func:`cnnlens.similarity.cca`.

This module holds the one table of reductions (:data:`REDUCTIONS`, with the
sentence every convention quotes) and of the defaults (:data:`DEFAULT_REDUCE`).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ._inputs import as_matrix, as_tensor, check_finite, check_pair
from .linalg import RTOL, whitened_cross, whitener
from .result import DFTResult

__all__ = ["DEFAULT_REDUCE", "ENGINE_REDUCTIONS", "REDUCTIONS", "fourier_cca", "prepare_pair",
           "reduce_conv", "reduce_pair"]

#: every conv reduction and what it does (results' conventions quote these)
REDUCTIONS = {
    "positions": "every spatial position a datapoint (N*H*W, C); pairs need equal H, W",
    "mean": "conv layers averaged over positions (N, C)",
    "flatten": "conv layers flattened, every unit a neuron (N, C*H*W)",
    "resize": "conv maps area-resized to the smallest H, W, positions as datapoints",
    "dft": "CCA per 2-D spatial frequency (Raghu et al. 2017)",
}
#: what the all-pairs engine can accumulate (the DFT method needs whole maps of one pair)
ENGINE_REDUCTIONS = ("positions", "mean", "flatten", "resize")
#: ``reduce=None`` per metric family. One pair (``cca(x, y)``, ``linear_cka(x, y)``, ...):
#: positions as datapoints for the CCA family (google/svcca's convention for conv layers).
#: All pairs (``similarity_matrix``, ``Compare``): channel means for the CCA family, so
#: that layers of any spatial size pair up and n > d holds with a few hundred images.
#: Both: every unit a neuron for CKA (Kornblith et al.).
DEFAULT_REDUCE = {
    "pair": {"cca": "positions", "cka": "flatten"},
    "engine": {"cca": "mean", "cka": "flatten"},
}
_ALTERNATIVES = "reduce='resize' (area-resize to the smaller map), 'mean', 'flatten' or 'dft' (cca)"


def _check_how(how) -> str:
    if how not in REDUCTIONS:
        raise ValueError(f"unknown reduce={how!r}; choose one of {', '.join(REDUCTIONS)}")
    return how


def reduce_conv(x, how: str, size: tuple[int, int] | None = None,
                dtype: torch.dtype | None = None) -> torch.Tensor:
    """Turn one conv activation (N, C, H, W) into an (n, d) matrix.

    Parameters
    ----------
    x : array or Tensor, shape (N, C, H, W)
    how : {"positions", "mean", "flatten", "resize"}
    size : (h, w), required for ``"resize"``: the target spatial size.
    dtype : torch.dtype, optional
        Result dtype (conversion fused with the reshaping copy); default: the input's,
        float64 for "mean".

    Examples
    --------
    >>> import torch
    >>> reduce_conv(torch.ones(2, 3, 4, 4), "positions").shape
    torch.Size([32, 3])
    """
    t = as_tensor(x, "x") if not isinstance(x, torch.Tensor) else x
    if t.ndim != 4:
        raise ValueError(f"reduce_conv expects (N, C, H, W); got shape {tuple(t.shape)}")
    how = _check_how(how)
    n, c = t.shape[:2]
    if how == "mean":
        return _mean64(t)
    if how == "flatten":
        return t.reshape(n, -1) if dtype is None else t.reshape(n, -1).to(dtype)
    if how == "resize":
        if size is None:
            raise ValueError("reduce='resize' needs size=(h, w)")
        if tuple(t.shape[2:]) != tuple(size):
            t = F.adaptive_avg_pool2d(t.to(torch.float64), tuple(size))
        how = "positions"
    if how == "positions":
        out = torch.empty(t.shape[0], t.shape[2], t.shape[3], c, dtype=dtype or t.dtype)
        return out.copy_(t.permute(0, 2, 3, 1)).view(-1, c)
    raise ValueError("reduce='dft' computes CCA per spatial frequency: call cca(x, y, reduce='dft')")


def _mean64(t: torch.Tensor) -> torch.Tensor:
    """Float64 mean over (H, W). torch's float32 -> float64 reductions run ~25x slower
    than numpy's buffered ones on CPU (no BLAS involved), so numpy does this one."""
    if t.dtype == torch.float32 and t.device.type == "cpu" and t.is_contiguous():
        a = t.numpy().reshape(t.shape[0] * t.shape[1], -1)
        return torch.from_numpy(a.mean(1, dtype=np.float64)).view(t.shape[0], t.shape[1])
    return t.mean((2, 3), dtype=torch.float64)


def reduce_pair(x: torch.Tensor, y: torch.Tensor, how: str, dtype=None):
    """Reduce two activations consistently (positions/resize need both maps)."""
    how = _check_how(how)
    if how in ("positions", "resize", "dft"):
        if x.ndim != 4 or y.ndim != 4:
            raise ValueError(f"reduce={how!r} needs two conv activations (N, C, H, W); got "
                             f"shapes {tuple(x.shape)} and {tuple(y.shape)}: use 'mean' or "
                             "'flatten' to compare a conv layer with a fully connected one")
        hx, hy = tuple(x.shape[2:]), tuple(y.shape[2:])
        if how == "positions" and hx != hy:
            raise ValueError(f"reduce='positions' needs the same spatial size; x is "
                             f"{hx[0]}x{hx[1]}, y is {hy[0]}x{hy[1]}: use {_ALTERNATIVES}")
        if how == "resize":
            size = (min(hx[0], hy[0]), min(hx[1], hy[1]))
            return reduce_conv(x, how, size, dtype), reduce_conv(y, how, size, dtype)
    return (reduce_conv(x, how, dtype=dtype) if x.ndim == 4 else x,
            reduce_conv(y, how, dtype=dtype) if y.ndim == 4 else y)


def prepare_pair(x, y, reduce: str | None, family: str, convert: bool = True):
    """Validate two inputs and bring them to (n, d) matrices with the same rows.

    Conv inputs are reduced with ``reduce``, or the one-pair default of the metric
    ``family`` ("cca" or "cka", see :data:`DEFAULT_REDUCE`).

    float64 unless ``convert=False`` (then float inputs keep their dtype and the
    moment accumulator converts them chunk by chunk).
    """
    tx, ty = as_tensor(x, "x"), as_tensor(y, "y")
    check_finite(tx, "x")
    check_finite(ty, "y")
    if tx.ndim == 4 or ty.ndim == 4:
        tx, ty = reduce_pair(tx, ty, reduce or DEFAULT_REDUCE["pair"][family], torch.float64 if convert else None)
    X, Y = as_matrix(tx, "x", convert), as_matrix(ty, "y", convert)
    check_pair(X, Y)
    return X, Y


def _low_frequencies(size: int, new: int) -> torch.Tensor:
    """google/svcca ``fft_resize``: keep frequencies f with -new/2 <= f < new/2."""
    freqs = np.fft.fftfreq(size, d=1.0 / size)
    return torch.from_numpy(np.flatnonzero((freqs >= -new / 2.0) & (freqs < new / 2.0)))


def fourier_cca(x, y, rtol: float = RTOL) -> DFTResult:
    """CCA at every 2-D spatial frequency of two conv activations (N, C, H, W).

    The FFT over (H, W) is taken in complex128 (the original casts to complex64,
    losing ~1e-6); maps of different size keep the low frequencies they share.
    Exact (equal to CCA with every unit a neuron) when the data are translation
    invariant, and much cheaper: C x C problems instead of C*H*W.
    """
    tx, ty = as_tensor(x, "x"), as_tensor(y, "y")
    for t, name in ((tx, "x"), (ty, "y")):
        check_finite(t, name)
        if t.ndim != 4:
            raise ValueError(f"reduce='dft' needs conv activations (N, C, H, W); {name} has "
                             f"shape {tuple(t.shape)}")
    check_pair(tx, ty)
    n, cx, cy = tx.shape[0], tx.shape[1], ty.shape[1]
    if n <= max(cx, cy):
        raise ValueError(f"CCA per frequency needs more images than channels (n={n}, "
                         f"channels {cx} and {cy}); use svcca or a CKA")
    fx = torch.fft.fft2(tx.to(torch.float64), dim=(-2, -1))
    fy = torch.fft.fft2(ty.to(torch.float64), dim=(-2, -1))
    h, w = min(fx.shape[2], fy.shape[2]), min(fx.shape[3], fy.shape[3])
    fx, fy = (f[:, :, _low_frequencies(f.shape[2], h)][:, :, :, _low_frequencies(f.shape[3], w)]
              for f in (fx, fy))
    ex, ey = fx - fx.mean(0), fy - fy.mean(0)
    sxx = torch.einsum("nchw,ndhw->hwcd", ex.conj(), ex)
    syy = torch.einsum("nchw,ndhw->hwcd", ey.conj(), ey)
    sxy = torch.einsum("nchw,ndhw->hwcd", ex.conj(), ey)
    mx, my = fx.mean(0), fy.mean(0)
    c = min(cx, cy)
    coefs, counts = np.zeros((h, w, c)), np.zeros((h, w), dtype=int)
    for i in range(h):
        for j in range(w):
            wx = whitener(sxx[i, j], mx[:, i, j], n, rtol)
            wy = whitener(syy[i, j], my[:, i, j], n, rtol)
            rho = torch.linalg.svdvals(whitened_cross(wx, wy, sxy[i, j])).clamp(0.0, 1.0).numpy()
            coefs[i, j, : len(rho)], counts[i, j] = rho, len(rho)
    union = np.sort(np.concatenate([coefs[i, j, : counts[i, j]]
                                    for i in range(h) for j in range(w)]))[::-1]
    score = float(union.mean()) if len(union) else float("nan")
    return DFTResult(
        metric="cca", score=score, rho=union, k_x=cx, k_y=cy, n=n, coefs=coefs, counts=counts,
        reason=None if len(union) else "no non-constant channel at any frequency",
        convention=(f"CCA per spatial frequency (DFT over {h}x{w}, complex128; Raghu et al. "
                    "2017 / google dft_ccas); score = mean of all coefficients"))
