"""Quantised tensors on the wire: uint8 values + per-tile offset/scale, the inverse, the size.

A quantised value ``q`` (uint8) of tile ``i`` stands for ``offset[i] + scale[i] * q``;
``offset``/``scale`` are float32, or float16 when the tiles are so small that float32
metadata would cost more than ~5 % of the payload (``scale_dtype`` says which).
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch

FORMAT = 1


def scale_bytes(lo: torch.Tensor, hi: torch.Tensor, tile_pixels: int):
    """Per-tile offset/scale as bytes, plus the lo/hi the data must be quantised against.

    float16 when float32 metadata would cost more than 5 % of the payload: the offset is
    rounded down and the scale up, so [offset, offset + 255 * scale] still covers the
    tile and every value decodes within half a step of that (slightly wider) scale.
    Returns (offset bytes, scale bytes, dtype name, lo used, hi used).
    """
    if 8.0 / max(tile_pixels, 1) > 0.05:
        lo32, hi32 = lo.numpy(), hi.numpy()
        with np.errstate(over="ignore", invalid="ignore"):
            lo16 = lo32.astype(np.float16)
            down = lo16.astype(np.float32) > lo32
            lo16[down] = np.nextafter(lo16[down], np.float16(-np.inf))
            sc16 = ((hi32 - lo16.astype(np.float32)) / 255).astype(np.float16)
            for _ in range(2):  # float16 rounding may still fall short of hi by one ulp
                short = lo16.astype(np.float32) + 255 * sc16.astype(np.float32) < hi32
                sc16[short] = np.nextafter(sc16[short], np.float16(np.inf))
        # constant tiles must decode exactly, which float16 cannot promise for any offset
        const_ok = (lo16.astype(np.float32) == lo32) | (hi32 > lo32)
        if np.isfinite(lo16).all() and np.isfinite(sc16).all() and const_ok.all():
            lo_f = torch.from_numpy(lo16.astype(np.float32))
            hi_f = lo_f + 255 * torch.from_numpy(sc16.astype(np.float32))
            return lo16.tobytes(), sc16.tobytes(), "float16", lo_f, hi_f
    scale = (hi - lo) / 255.0
    return (
        lo.numpy().astype(np.float32).tobytes(),
        scale.numpy().astype(np.float32).tobytes(),
        "float32",
        lo,
        hi,
    )


def quantise(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> bytes:
    """x (n, ...) -> uint8 with per-row lo/hi (round half up); constant rows quantise to 0."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    k = 255.0 / (hi - lo).clamp_min(torch.finfo(torch.float32).tiny)
    # one temporary, updated in place: this runs on every click, on up to 800k values
    q = x.sub(lo.view(shape)).mul_(k.view(shape)).add_(0.5).clamp_(0, 255)
    return q.to(torch.uint8).numpy().tobytes()


def finite_range(x: torch.Tensor):
    """Per-row min/max over finite values (rows of x: (n, k)); rows with none -> 0, 0.

    Returns (lo, hi, number of non-finite values). One pass when all is finite (the
    usual case); NaN/Inf propagate into aminmax, which sends us to the masked path.
    """
    lo, hi = torch.aminmax(x, dim=1)
    if bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        return lo, hi, 0
    finite = torch.isfinite(x)
    lo = torch.where(finite, x, torch.full_like(x, math.inf)).amin(1)
    hi = torch.where(finite, x, torch.full_like(x, -math.inf)).amax(1)
    none = ~finite.any(1)
    lo[none], hi[none] = 0.0, 0.0
    return lo, hi, int((~finite).sum())


def fill_nonfinite(x: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """NaN/Inf -> the row's finite minimum, so they draw as the darkest colour."""
    fill = lo.view((-1,) + (1,) * (x.dim() - 1)).expand_as(x)
    return torch.where(torch.isfinite(x), x, fill)


def encode_vector(values) -> bytes:
    """Small float32 side tables (top-k scores, norms) as bytes, never JSON lists."""
    return np.asarray(values, dtype=np.float32).tobytes()


def encode_ids(values) -> bytes:
    """Indices (top-k images, channels, image ids) as C-order int32 bytes, never JSON lists."""
    return np.ascontiguousarray(values, dtype=np.int32).tobytes()


def _scale_arrays(p: dict):
    dt = np.float16 if p.get("scale_dtype") == "float16" else np.float32
    return (
        np.frombuffer(p["offset"], dt).astype(np.float32),
        np.frombuffer(p["scale"], dt).astype(np.float32),
    )


def decode(p: dict) -> np.ndarray:
    """Invert ``encode_maps``/``encode_weights``/``encode_images`` (dequantised float32)."""
    q = np.frombuffer(p["data"], np.uint8).astype(np.float32).reshape(p["shape"])
    if p["kind"] == "images":
        return q
    offset, scale = _scale_arrays(p)
    lead = (-1,) + (1,) * (q.ndim - 1)
    if p["kind"] == "vector":
        return offset[0] + scale[0] * q
    return offset.reshape(lead) + scale.reshape(lead) * q


def payload_nbytes(state) -> int:
    """Bytes on the wire for a widget state/payload: binary buffers + the JSON remainder."""
    buffers = 0

    def strip(v):
        nonlocal buffers
        if isinstance(v, (bytes, bytearray, memoryview)):
            buffers += len(v) if not isinstance(v, memoryview) else v.nbytes
            return None
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [strip(x) for x in v]
        return v

    rest = strip(state)
    return buffers + len(json.dumps(rest, separators=(",", ":")))
