"""The neuron detail's payloads: one channel over its input, its filter, its top-k images."""

from __future__ import annotations

import torch

from ..encode import encode_ids, encode_images, encode_maps, encode_vector, encode_weights
from .errors import describe
from .tree import weight_layer

__all__ = ["detail_state", "top_frames", "top_state"]


def detail_state(
    inspector,
    layer: str,
    neuron: int,
    image_index: int,
    *,
    k: int = 8,
    by: str = "mean",
    with_image: bool = True,
    with_top: bool = True,
) -> dict:
    """Trait values of a NeuronDetail for one selection; errors land in ``error``, not raised.

    ``with_image=False`` leaves the input image out (the view already has it: 150 kB saved
    on every layer click). ``with_top=False`` leaves the top images to :func:`top_state`
    (a pass over every image the first time: the Lens runs it on a worker thread) and
    says ``top_status="pending"``.
    """
    state = {
        "layer": layer,
        "neuron": neuron,
        "image_index": image_index,
        "channel": {},
        "kernels": {},
        "top": {},
        "top_status": "none",
        "error": "",
    }
    try:
        if with_image:
            state["image"] = encode_images(inspector.images[image_index], size=224)
        if neuron >= 0:
            act = inspector.activations(layer, images=image_index)[0]
            maps = act.reshape(-1) if act.dim() == 1 or act[0].numel() == 1 else act
            state["channel"] = encode_maps(
                maps[neuron : neuron + 1], layer=layer, image_index=image_index, max_side=256
            )
            wl = weight_layer(inspector, layer)
            if wl is not None:
                w = inspector.weights(wl, filters=neuron)  # copies that one filter only
                state["kernels"] = {} if w is None else encode_weights(w, layer=wl)
            state.update(
                top_state(inspector, layer, neuron, k=k, by=by)
                if with_top
                else {"top_status": "pending"}
            )
    except Exception as exc:  # noqa: BLE001 - shown in place; the rest of the pane keeps working
        state["error"] = describe(exc)
        state["top_status"] = "error" if neuron >= 0 else "none"
    return state


def top_state(inspector, layer: str, neuron: int, *, k: int = 8, by: str = "mean") -> dict:
    """``top`` and ``top_status="ready"`` for a neuron; raises what the ranking raises.

    Thread-safe (the Inspector locks its caches): the Lens calls it from its worker.
    """
    idx, scores = inspector.top_images(layer, neuron, k=k, by=by)
    images = inspector.images  # one snapshot: an upload may replace the tensor meanwhile
    top = {
        "images": encode_images(images[idx], size=48),
        "indices": encode_ids(idx),
        "scores": encode_vector(scores),
        "by": by,
        # every image's score: the distribution a linear unit's value is read against
        "values": encode_vector(inspector.channel_scores(layer, by)[:, neuron]),
    }
    return {"top": top, "top_status": "ready"}


def top_frames(inspector, layers, *, k: int = 8, by: str = "mean") -> tuple[dict, dict]:
    """Top-k images of every channel of each of ``layers``, for a page with no kernel.

    Ranked as :meth:`Inspector.top_images` ranks (``torch.topk`` of ``channel_scores``).
    Returns ``(frames, images)``: ``frames[layer]`` = ``{"indices": int32 (C, k) bytes,
    "scores": float32 (C, k) bytes, "k", "channels", "by", "error"}``; ``images`` the 48 px
    thumbnails of every image that ranks anywhere (``ids`` int32 bytes + ``images``).
    """
    frames, used = {}, set()
    for layer in layers:
        try:
            scores = inspector.channel_scores(layer, by)  # (N, C), cached per layer
            kk = min(int(k), len(scores))
            values, idx = torch.topk(scores.T, kk, dim=1)
        except Exception as exc:  # noqa: BLE001 - shown in place in the page
            frames[layer] = {"error": describe(exc), "k": 0, "channels": 0, "by": by}
            continue
        used.update(idx.unique().tolist())
        frames[layer] = {
            "indices": encode_ids(idx),
            "scores": encode_vector(values),
            "k": kk, "channels": int(idx.shape[0]), "by": by, "error": "",
        }  # fmt: skip
    ids = sorted(used)
    images = {} if not ids else {
        "ids": encode_ids(ids),
        "images": encode_images(inspector.images[ids], size=48),
    }  # fmt: skip
    return frames, images
