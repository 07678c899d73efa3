"""Activation tiles: one sample's maps (or vector) -> a grid payload, paged and downsampled.

>>> import torch
>>> p = encode_maps(torch.rand(64, 56, 56), layer="conv1")
>>> p["kind"], p["shape"], len(p["data"])
('maps', [64, 56, 56], 200704)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .quant import FORMAT, fill_nonfinite, finite_range, quantise, scale_bytes

MAX_SIDE = 64  # tiles larger than this are average-pooled by an integer factor
MAX_PIXELS = 1 << 18  # pixels per page (256 KiB of uint8)
MAX_TILES = 2048  # tiles per page: more than this is unreadable and slow to lay out
SORTS = ("index", "mean", "max")


def as_maps(act: torch.Tensor) -> torch.Tensor:
    """One sample's activation as (C, H, W) maps, or (D,) for vectors.

    (C, 1, 1) outputs (after global pooling) are vectors; a 2-D output is one map;
    more than three dims fold the leading ones into channels.
    """
    x = torch.as_tensor(act).detach().to("cpu", torch.float32)
    if x.dim() == 0:
        return x.reshape(1)
    if x.dim() == 1 or (x.dim() == 3 and x.shape[1] * x.shape[2] == 1):
        return x.reshape(-1)
    if x.dim() == 2:
        return x.unsqueeze(0)
    return x.reshape(-1, *x.shape[-2:])


def encode_maps(
    act,
    *,
    layer: str = "",
    image_index: int = 0,
    page: int = 0,
    sort: str = "index",
    max_side: int = MAX_SIDE,
    max_pixels: int = MAX_PIXELS,
    max_tiles: int = MAX_TILES,
) -> dict:
    """Encode one sample's activation for the activation grid.

    Parameters
    ----------
    act : Tensor
        (C, H, W), (D,), (C, 1, 1) or (H, W) for one image (no batch dim).
    layer, image_index : str, int
        Echoed back so the view knows what it paints.
    page : int
        Which page of channels when they do not fit ``max_pixels``/``max_tiles``.
    sort : {"index", "mean", "max"}
        Which channels a page holds when paginated (the view sorts within a page).
    max_side : int
        Larger maps are average-pooled by ``ceil(side / max_side)``; reported as ``downsample``.

    Returns
    -------
    dict
        ``kind`` ("maps" | "vector"), ``shape`` [n, h, w] (or [D]), ``data`` (uint8 bytes),
        ``offset``/``scale`` (one per tile; one for a vector), ``channels`` (int32 bytes, or
        None with ``first`` when the page is a contiguous index range), ``total``, ``page``,
        ``pages``, ``downsample``, ``source_shape``, ``nonfinite``.
    """
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")
    x = as_maps(act)
    source = list(x.shape)
    base = {
        "format": FORMAT,
        "layer": layer,
        "image_index": int(image_index),
        "sort": sort,
        "source_shape": source,
    }
    if x.dim() == 1:
        # A vector is one tile of D cells sharing one scale: neurons of a linear layer.
        total = x.numel()
        pages = max(1, math.ceil(total / max_pixels))
        page = min(max(int(page), 0), pages - 1)
        first = page * max_pixels
        v = x[first : first + max_pixels]
        lo, hi, bad = finite_range(v.reshape(1, -1))
        v = fill_nonfinite(v.reshape(1, -1), lo) if bad else v
        offset, scale, sdt, lo, hi = scale_bytes(lo, hi, v.numel())
        return {
            **base,
            "kind": "vector",
            "shape": [v.numel()],
            "data": quantise(v.reshape(1, -1), lo, hi),
            "offset": offset,
            "scale": scale,
            "scale_dtype": sdt,
            "channels": None,
            "first": first,
            "total": total,
            "page": page,
            "pages": pages,
            "downsample": 1,
            "nonfinite": bad,
        }
    c, h, w = x.shape
    lo, hi, bad = finite_range(x.reshape(c, -1))
    x = fill_nonfinite(x, lo) if bad else x
    f = max(1, math.ceil(max(h, w) / max_side))
    if f > 1:
        # adaptive pooling averages each f x f block (clipped at the border); the range stays the
        # full-resolution one so hover reports the true min/max.
        x = F.adaptive_avg_pool2d(x.unsqueeze(0), (math.ceil(h / f), math.ceil(w / f)))[0]
    th, tw = x.shape[1:]
    per_page = max(1, min(c, max_pixels // (th * tw), max_tiles))
    pages = math.ceil(c / per_page)
    page = min(max(int(page), 0), pages - 1)
    if pages > 1 and sort != "index":
        flat = x.reshape(c, -1)
        stat = flat.mean(1) if sort == "mean" else hi
        chosen = torch.argsort(stat, descending=True, stable=True)[
            page * per_page : (page + 1) * per_page
        ]
        channels, first = chosen.to(torch.int32).numpy().tobytes(), None
    else:
        chosen = slice(page * per_page, min(c, (page + 1) * per_page))  # a view, not a copy
        channels, first = None, chosen.start
    offset, scale, sdt, lo_q, hi_q = scale_bytes(lo[chosen], hi[chosen], th * tw)
    return {
        **base,
        "kind": "maps",
        "shape": [len(lo_q), th, tw],
        "data": quantise(x[chosen], lo_q, hi_q),
        "offset": offset,
        "scale": scale,
        "scale_dtype": sdt,
        "channels": channels,
        "first": first,
        "total": c,
        "page": page,
        "pages": pages,
        "downsample": f,
        "nonfinite": bad,
    }


def channel_indices(p: dict) -> np.ndarray:
    """The channel index of each tile of a maps payload."""
    if p.get("channels") is not None:
        return np.frombuffer(p["channels"], np.int32)
    n = p["shape"][0]  # tiles of a maps payload, cells of a vector
    return np.arange(p["first"], p["first"] + n)
