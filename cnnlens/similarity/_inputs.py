"""Input checks and conversion: numpy or torch, any float dtype -> float64 torch.

Every public function of :mod:`cnnlens.similarity` goes through here, so the
error messages (which input, which row, what to do instead) are the same
everywhere.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["as_matrix", "as_tensor", "check_finite", "check_pair"]


def as_tensor(a, name: str) -> torch.Tensor:
    """A detached CPU tensor view of ``a`` (numpy array, torch tensor or nested list).

    Integer and bool inputs become float64; float dtypes are kept (the caller
    converts, so float32 data are not copied twice).
    """
    if isinstance(a, torch.Tensor):
        t = a.detach()
        if t.device.type != "cpu":
            t = t.cpu()
    else:
        arr = np.asarray(a)
        if arr.dtype == object:
            raise TypeError(f"{name} must be a numeric array or tensor; got an object array "
                            f"(ragged nested lists?) from {type(a).__name__}")
        if not arr.flags.writeable or not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr).copy()  # torch refuses read-only memory
        t = torch.from_numpy(arr)
    if t.is_complex():
        raise TypeError(f"{name} is complex ({t.dtype}); pass real activations "
                        "(the 'dft' reduction does its own Fourier transform)")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    return t


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise ValueError naming ``name`` and the first offending index if ``t`` has NaN/Inf."""
    if t.is_floating_point() or t.is_complex():
        # Fast path: NaN and Inf propagate into a sum (one pass, no mask; in the input's own
        # dtype, as float32 -> float64 reductions are slow on CPU). Only a non-finite sum,
        # which may also be an overflow, pays for locating the culprit.
        if t.numel() == 0 or bool(torch.isfinite(t.sum())):
            return
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            first = tuple(int(i) for i in bad.nonzero()[0])
            nan = int(torch.isnan(t).sum())
            raise ValueError(
                f"{name} contains {int(bad.sum())} non-finite values ({nan} NaN, "
                f"{int(bad.sum()) - nan} Inf); first at index {first} of shape "
                f"{tuple(t.shape)}. Drop or fix those datapoints before comparing.")


def as_matrix(t: torch.Tensor, name: str, convert: bool = True) -> torch.Tensor:
    """Check that ``t`` is a non-empty 2-D (n, d) tensor; return it as float64.

    ``convert=False`` keeps a float dtype as it is, for consumers that convert
    chunk by chunk themselves.
    """
    if t.ndim != 2:
        hint = ""
        if t.ndim == 1:
            hint = " (one neuron? use x[:, None]; one datapoint? use x[None, :])"
        elif t.ndim == 4:
            hint = " (conv activations (N, C, H, W) need a reduce= argument)"
        elif t.ndim == 3:
            hint = " (reshape to (n, d) first, e.g. x.reshape(len(x), -1))"
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape "
                         f"{tuple(t.shape)}{hint}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(t.shape)} (need at least one "
                         "datapoint and one neuron)")
    return t if t.dtype == torch.float64 or not convert else t.to(torch.float64)


def check_pair(x: torch.Tensor, y: torch.Tensor, min_n: int = 2) -> None:
    """Rows of x and y must be the same datapoints, and enough of them."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x has {x.shape[0]} datapoints (rows) but y has {y.shape[0]}: rows must be the "
            "same inputs seen by both representations, in the same order")
    if x.shape[0] < min_n:
        raise ValueError(f"need at least {min_n} datapoints; got {x.shape[0]}")
