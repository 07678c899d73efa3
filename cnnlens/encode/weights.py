"""Learned filters: conv/linear weights -> an rgb/grey/kernels tile payload, or one norm per filter."""

from __future__ import annotations

import numpy as np
import torch

from .maps import MAX_PIXELS
from .quant import FORMAT, finite_range, quantise, scale_bytes


def encode_weights(w, *, layer: str = "", max_values: int = MAX_PIXELS) -> dict:
    """Weights of a conv (out, in, kh, kw) or linear (out, in) layer for the filter view.

    ``mode``: "rgb" (in == 3) or "grey" (in == 1) first-layer filters; "kernels" (every output
    filter as a grid of its input kernels) while out*in*kh*kw <= ``max_values``; else "norms"
    (one L2 norm per output filter, float32 bytes). Each filter is quantised to its own
    min..max (``offset``/``scale`` per filter).
    """
    w = torch.as_tensor(w).detach().to("cpu", torch.float32)
    if w.dim() == 2:
        w = w[:, :, None, None]
    if w.dim() != 4:
        raise ValueError(
            f"weights must be (out, in, kh, kw) or (out, in), got shape {tuple(w.shape)}"
        )
    out, cin, kh, kw = w.shape
    base = {"format": FORMAT, "kind": "weights", "layer": layer, "source_shape": [out, cin, kh, kw]}
    if w.numel() > max_values or kh * kw == 1 and cin > 64:
        norms = w.reshape(out, -1).norm(dim=1)
        return {
            **base,
            "mode": "norms",
            "shape": [out],
            "norms": norms.numpy().astype(np.float32).tobytes(),
        }
    mode = "rgb" if cin == 3 else "grey" if cin == 1 else "kernels"
    lo, hi, _ = finite_range(w.reshape(out, -1))
    offset, scale, sdt, lo, hi = scale_bytes(lo, hi, cin * kh * kw)
    return {
        **base,
        "mode": mode,
        "shape": [out, cin, kh, kw],
        "data": quantise(w, lo, hi),
        "offset": offset,
        "scale": scale,
        "scale_dtype": sdt,
    }
