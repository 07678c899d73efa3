"""Canonical maps -> the payloads of Compare's maps view (mirror: js/lib/canonical.js).

Two payloads, so that switching the image re-sends only what changes:

* :func:`encode_canonical_pair`: what belongs to the pair's directions (rho, the
  convention, the top dataset images of each direction on each side, their thumbnails);
* :func:`encode_canonical_image`: one image's paired maps (``encode_maps`` layout, one
  tile per direction, signed values) and the image itself for the overlay.

They take a :class:`cnnlens.similarity.CanonicalMaps` (read by attribute only: the
encoder does no math on it beyond cutting and scaling).

>>> import numpy as np, torch
>>> from types import SimpleNamespace
>>> cm = SimpleNamespace(rho=np.array([0.9, 0.5]), maps_a=np.random.randn(2, 6, 6),
...                      maps_b=np.random.randn(2, 3, 3), corr=np.array([0.8, 0.1]),
...                      image=1)
>>> p = encode_canonical_image(cm, torch.rand(1, 12, 12))
>>> p["maps_a"]["shape"], p["maps_b"]["shape"], p["image"], p["input"]["shape"]
([2, 6, 6], [2, 3, 3], 1, [1, 12, 12, 1])
"""

from __future__ import annotations

import numpy as np
import torch

from .images import encode_images
from .maps import encode_maps
from .quant import encode_vector

__all__ = ["INPUT_SIDE", "THUMB_SIDE", "TOP_N", "encode_canonical_image", "encode_canonical_pair"]

INPUT_SIDE = 96  # longest side of the overlay background (the maps are stretched over it)
THUMB_SIDE = 40  # longest side of a top-image thumbnail
TOP_N = 4        # top dataset images per direction and side


def _ints(values) -> bytes:
    return np.ascontiguousarray(np.asarray(values, dtype=np.int32)).tobytes()


def encode_canonical_pair(cm, images, *, n: int = TOP_N, pair=None, labels=("A", "B"),
                          note: str = "") -> dict:
    """Pair-level payload: rho, convention and the top ``n`` images per direction and side.

    Parameters
    ----------
    cm : CanonicalMaps
        With per-image statistics (``top_images`` works).
    images : Tensor (N, C, H, W)
        The image set the indices refer to (thumbnails are cut from it).
    n : int
        Top images per direction and side.
    pair : (int, int), optional
        The heatmap cell, echoed for the view.
    labels : (str, str)
        What the models are called.
    note : str
        Said before the convention (say, how these rho relate to a spectrum shown beside).

    Returns
    -------
    dict
        ``rho`` float32 (k,), ``k``, ``metric``, ``convention``, ``layer_a``/``layer_b``,
        ``names``, ``pair``, ``top_a``/``top_b`` int32 (k, n) indices into ``thumb_index``
        order (-1: none), ``thumb_index`` int32 (m,) dataset indices and ``thumbs``
        (``encode_images``, m thumbnails), ``n``.
    """
    k = int(np.asarray(cm.rho).shape[0])
    n_images = 0 if images is None else len(images)
    n = max(0, min(int(n), n_images))
    rank = {}  # dataset index -> slot in thumbs: an image top on several lists is sent once
    tops = {"a": np.full((k, n), -1, np.int32), "b": np.full((k, n), -1, np.int32)}
    for side in ("a", "b"):
        for d in range(k):
            try:
                idx = cm.top_images(d, side, n=n)
            except ValueError:  # built without per-image statistics: no top images
                continue
            for t, i in enumerate(int(i) for i in idx if int(i) < n_images):
                tops[side][d, t] = rank.setdefault(i, len(rank))
    order = list(rank)
    thumbs = (encode_images(images[order], size=THUMB_SIDE) if order else None)
    return {
        "rho": encode_vector(torch.as_tensor(np.asarray(cm.rho, dtype=np.float32))),
        "k": k, "n": n, "metric": str(cm.metric), "convention": f"{note} {cm.convention}".strip(),
        "layer_a": str(cm.layer_a), "layer_b": str(cm.layer_b), "names": list(labels),
        "pair": [] if pair is None else [int(pair[0]), int(pair[1])],
        "top_a": _ints(tops["a"]), "top_b": _ints(tops["b"]),
        "thumb_index": _ints(order), "thumbs": thumbs,
    }  # fmt: skip


def encode_canonical_image(cm, image) -> dict:
    """Image-level payload: the paired maps of ``cm.image`` and the image for the overlay.

    ``image``: that image, (C, H, W) or (1, C, H, W). The maps travel as ``encode_maps``
    tiles (one per direction, each scaled to its own range; the view centres zero).
    """
    maps = {}
    for side in ("a", "b"):
        m = torch.as_tensor(np.asarray(getattr(cm, f"maps_{side}"), dtype=np.float32))
        # (k, 1, 1) from a fully connected side becomes a "vector" payload: one value per
        # direction, which the view shows as such (one swatch, no map)
        maps[side] = encode_maps(m, max_tiles=1 << 12, max_pixels=1 << 22)
    img = torch.as_tensor(image).detach().float()
    return {
        "image": None if cm.image is None else int(cm.image),
        "maps_a": maps["a"], "maps_b": maps["b"],
        "corr": encode_vector(torch.as_tensor(np.asarray(cm.corr, np.float32))),
        "input": encode_images(img if img.dim() == 4 else img[None], size=INPUT_SIDE),
    }  # fmt: skip
