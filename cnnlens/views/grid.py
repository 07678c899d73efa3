"""The activation grid's payloads: the live one and the frames of a kernel-less page.

One builder, :func:`image_frames`: the live :meth:`Lens.precompute
<cnnlens.widgets.lens.Lens.precompute>` (:func:`grid_frames`) and the exported page
(:func:`cnnlens.export.lens_frames`) both call it, with the grid's ``sort``.
"""

from __future__ import annotations

from ..encode import encode_maps, payload_nbytes
from .errors import describe

__all__ = ["grid_frames", "grid_state", "image_frames"]


def grid_state(inspector, layer: str, image_index: int, *, page: int = 0,
               sort: str = "index") -> tuple[dict, str]:
    """``(payload, error)`` of the grid for one selection; errors in the text, not raised.

    A failing forward, a NaN layer or a bad index gives a payload with only ``layer`` and
    ``image_index`` (the view stays usable) and the error; non-finite values are drawn at
    the channel minimum and named in the error.
    """
    try:
        act = inspector.activations(layer, images=image_index)[0]
        p = encode_maps(act, layer=layer, image_index=image_index, page=page, sort=sort)
    except Exception as exc:  # noqa: BLE001 - shown in place
        return {"layer": layer, "image_index": image_index}, describe(exc)
    err = ""
    if p["nonfinite"]:
        err = f"layer {layer!r}: {p['nonfinite']} non-finite values, drawn at the channel minimum"
    return p, err


def image_frames(inspector, layers, image: int, *, sort: str = "index") -> dict:
    """``{"layer|image": payload}`` of every layer for one image (one forward for all)."""
    names = list(layers)
    acts = inspector.activations(names, images=image)
    return {f"{name}|{image}": encode_maps(acts[name][0], layer=name, image_index=image, sort=sort)
            for name in names}


def grid_frames(inspector, layers, images, *, sort: str = "index",
                max_bytes: int | None = None) -> dict:
    """``"layer|image" -> payload`` for every pair (:func:`image_frames` per image).

    Raises ValueError past ``max_bytes``: every frame is embedded in an exported page.
    """
    frames, total = {}, 0
    for i in images:
        for key, p in image_frames(inspector, layers, i, sort=sort).items():
            total += payload_nbytes(p)
            if max_bytes is not None and total > max_bytes:
                raise ValueError(
                    f"frames exceed max_bytes={max_bytes}: ask for fewer layers or images"
                )
            frames[key] = p
    return frames
