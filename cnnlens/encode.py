"""The wire format: tensors -> one uint8 buffer + per-channel scale (mirror: js/lib/decode.js).

This is the only module that knows how activations, images and weights travel
to the browser. A payload is a plain dict of JSON scalars plus ``bytes`` values;
ipywidgets lifts every ``bytes`` value out into a binary buffer, so nothing
numeric ever travels as a JSON list or a PNG.

A quantised value ``q`` (uint8) of tile ``i`` stands for
``offset[i] + scale[i] * q``; ``offset``/``scale`` are float32, or float16 when
the tiles are so small that float32 metadata would cost more than ~5 % of the
payload (``scale_dtype`` says which; float16 offsets round down and scales up, so the
range still covers the data). ``decode`` inverts ``encode_*`` within half a step.

>>> import torch
>>> p = encode_maps(torch.rand(64, 56, 56), layer="conv1")
>>> p["shape"], len(p["data"])
([64, 56, 56], 200704)
>>> bool(abs(decode(p) - decode(p)).max() == 0)
True
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

FORMAT = 1
MAX_SIDE = 64  # tiles larger than this are average-pooled by an integer factor
MAX_PIXELS = 1 << 18  # pixels per page (256 KiB of uint8)
MAX_TILES = 2048  # tiles per page: more than this is unreadable and slow to lay out
SORTS = ("index", "mean", "max")


def _scales(lo: torch.Tensor, hi: torch.Tensor, tile_pixels: int):
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
        const_ok = (lo16.astype(np.float32) == lo32) | (
            hi32 > lo32
        )  # constant tiles decode exactly
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


def _quantise(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> bytes:
    """x (n, ...) -> uint8 with per-row lo/hi (round half up); constant rows quantise to 0."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    k = 255.0 / (hi - lo).clamp_min(torch.finfo(torch.float32).tiny)
    # one temporary, updated in place: this runs on every click, on up to 800k values
    q = x.sub(lo.view(shape)).mul_(k.view(shape)).add_(0.5).clamp_(0, 255)
    return q.to(torch.uint8).numpy().tobytes()


def _finite_range(x: torch.Tensor):
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


def _fill_nonfinite(x: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """NaN/Inf -> the row's finite minimum, so they draw as the darkest colour."""
    fill = lo.view((-1,) + (1,) * (x.dim() - 1)).expand_as(x)
    return torch.where(torch.isfinite(x), x, fill)


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
        lo, hi, bad = _finite_range(v.reshape(1, -1))
        v = _fill_nonfinite(v.reshape(1, -1), lo) if bad else v
        offset, scale, sdt, lo, hi = _scales(lo, hi, v.numel())
        return {
            **base,
            "kind": "vector",
            "shape": [v.numel()],
            "data": _quantise(v.reshape(1, -1), lo, hi),
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
    lo, hi, bad = _finite_range(x.reshape(c, -1))
    x = _fill_nonfinite(x, lo) if bad else x
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
    offset, scale, sdt, lo_q, hi_q = _scales(lo[chosen], hi[chosen], th * tw)
    return {
        **base,
        "kind": "maps",
        "shape": [len(lo_q), th, tw],
        "data": _quantise(x[chosen], lo_q, hi_q),
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


def encode_images(images, *, size: int = 48) -> dict:
    """Images (N, C, H, W) -> uint8 (N, h, w, C) for thumbnails/overlays, C in {1, 3}.

    Each image is stretched to its own min..max, since inputs are often normalised with
    dataset statistics and have no fixed [0, 1] range. ``size`` bounds the longer side.
    """
    x = torch.as_tensor(images).detach().to("cpu", torch.float32)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.shape[1] not in (1, 3):
        x = x[:, :3] if x.shape[1] > 3 else x[:, :1]
    n, ch, h, w = x.shape
    if max(h, w) > size:
        s = size / max(h, w)
        x = F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
    x = torch.nan_to_num(x)
    flat = x.reshape(n, -1)
    lo, hi = flat.amin(1), flat.amax(1)
    data = _quantise(x.permute(0, 2, 3, 1).contiguous(), lo, hi)
    return {"format": FORMAT, "kind": "images", "shape": [n, *x.shape[2:], ch], "data": data}


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
    lo, hi, _ = _finite_range(w.reshape(out, -1))
    offset, scale, sdt, lo, hi = _scales(lo, hi, cin * kh * kw)
    return {
        **base,
        "mode": mode,
        "shape": [out, cin, kh, kw],
        "data": _quantise(w, lo, hi),
        "offset": offset,
        "scale": scale,
        "scale_dtype": sdt,
    }


def encode_vector(values) -> bytes:
    """Small float32 side tables (top-k scores, norms) as bytes, never JSON lists."""
    return np.asarray(values, dtype=np.float32).tobytes()


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


def channel_indices(p: dict) -> np.ndarray:
    """The channel index of each tile of a maps payload."""
    if p.get("channels") is not None:
        return np.frombuffer(p["channels"], np.int32)
    n = p["shape"][0]  # tiles of a maps payload, cells of a vector
    return np.arange(p["first"], p["first"] + n)


def payload_nbytes(state) -> int:
    """Bytes on the wire for a widget state/payload: binary buffers + the JSON remainder."""
    import json

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
