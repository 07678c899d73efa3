"""Input images -> uint8 (N, h, w, C) thumbnails and overlay backgrounds; [0, 1] images as they are."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .quant import FORMAT, quantise


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
    data = quantise(x.permute(0, 2, 3, 1).contiguous(), lo, hi)
    return {"format": FORMAT, "kind": "images", "shape": [n, *x.shape[2:], ch], "data": data}


def encode_unit_images(images, *, size: int = 128) -> dict:
    """Images (N, C, H, W) with values in [0, 1] -> ``encode_images``'s layout, values kept.

    For feature visualisations: :func:`encode_images` stretches each image to its own
    min..max, which would turn a nearly flat visualisation (a dead channel) into noise.
    ``size`` bounds the longer side.
    """
    x = torch.as_tensor(images).detach().to("cpu", torch.float32)
    x = x[:, :3] if x.shape[1] >= 3 else x[:, :1]
    if max(x.shape[-2:]) > size:
        s = size / max(x.shape[-2:])
        x = F.interpolate(x, size=(max(1, round(x.shape[-2] * s)), max(1, round(x.shape[-1] * s))),
                          mode="area")
    data = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    return {"format": FORMAT, "kind": "images", "shape": list(data.shape),
            "data": data.numpy().tobytes()}
