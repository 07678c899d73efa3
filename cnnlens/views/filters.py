"""The filter view's payloads: weights, their histogram, one selected filter's kernels.

Encoded weights are cached per Inspector (weakly: the cache goes with it) and keyed by
the weight tensor's identity and ``_version``, so training in place re-encodes them
while consecutive layers that share their filters (conv -> bn -> relu) do not.
"""

from __future__ import annotations

import weakref

import torch

from ..encode import encode_vector, encode_weights
from .errors import describe
from .tree import filter_weights, weight_layer

__all__ = ["filter_frames", "filter_state", "selected_filter", "weight_counts"]

BINS = 40
_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Inspector -> {key: encoded}


def weight_counts(w: torch.Tensor, bins: int = BINS) -> tuple[torch.Tensor, torch.Tensor]:
    """Histogram of every weight: ``(counts, bin centres)`` (one bin when all are equal)."""
    lo, hi = float(w.min()), float(w.max())
    counts = torch.histc(w, bins=bins, min=lo, max=hi) if hi > lo else torch.tensor([w.numel()])
    edges = torch.linspace(lo, hi, len(counts) + 1)
    return counts, (edges[:-1] + edges[1:]) / 2


def _encoded(inspector, wl: str):
    """(payload, histogram, shape) of ``wl``'s weights, cached while the weights are unchanged."""
    cache = _CACHES.setdefault(inspector, {})
    param = inspector.weight_param(wl)
    key = (wl, param.data_ptr(), param._version)  # in-place updates (training) bump _version
    if key not in cache:
        w = inspector.weights(wl)
        if len(cache) >= 16:  # bounded: drop the oldest (dicts keep insertion order)
            cache.pop(next(iter(cache)))
        cache[key] = (encode_weights(w, layer=wl), weight_counts(w), w.shape)
    return cache[key]


def filter_state(inspector, layer: str) -> dict:
    """Trait values of a FilterGrid for ``layer`` (+ ``histogram``: counts and bin centres).

    Errors land in ``error``, not raised. An unchanged payload is the same dict as last
    time, so a widget does not send it again.
    """
    try:
        wl = weight_layer(inspector, layer)
        if wl is None:
            kind = inspector.layers[layer].type
            note = f"{layer} ({kind}): no weights, and no conv/linear layer produces its channels"
            return {"layer": layer, "payload": {}, "weights_layer": "", "selected": {},
                    "error": "", "note": note, "histogram": None}  # fmt: skip
        payload, hist, shape = _encoded(inspector, wl)
        note = "" if wl == layer else f"filters of {wl}, which produces the channels of {layer}"
        if payload["mode"] == "norms":
            note = (note + "; " if note else "") + (
                f"{shape[0]} filters of shape {tuple(shape[1:])} are too many to draw: "
                "one L2 norm per filter; click one to see its kernels"
            )
        return {"layer": layer, "payload": payload, "weights_layer": wl, "note": note,
                "error": "", "histogram": hist}  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - shown in place
        return {"layer": layer, "payload": {}, "weights_layer": "", "note": "",
                "error": describe(exc), "histogram": None}  # fmt: skip


def filter_frames(inspector, layers) -> tuple[dict, dict]:
    """What the filter view shows for each of ``layers``, for a page with no kernel.

    Built with :func:`filter_state` (the live view's code path). Returns ``(frames,
    weights)``: ``frames[layer]`` holds ``weights_layer``, ``note``, ``error`` and
    ``histogram`` (``{"counts", "centres"}`` float32 bytes, or None); ``weights[wl]`` the
    ``encode_weights`` payload, stored once for the layers that share it (conv, bn, relu).
    """
    frames, weights = {}, {}
    for layer in layers:
        state = filter_state(inspector, layer)
        hist = state["histogram"]
        if state["weights_layer"]:
            weights[state["weights_layer"]] = state["payload"]
        frames[layer] = {
            "weights_layer": state["weights_layer"],
            "note": state["note"],
            "error": state["error"],
            "histogram": None if hist is None
            else {"counts": encode_vector(hist[0]), "centres": encode_vector(hist[1])},
        }
    return frames, weights


def selected_filter(inspector, weights_layer: str, mode: str | None, neuron: int) -> dict:
    """Kernels of filter ``neuron`` of ``weights_layer`` when the view only shows norms
    (``mode == "norms"``); else ``{}``."""
    if mode != "norms" or neuron < 0 or not weights_layer:
        return {}
    w = filter_weights(inspector, weights_layer, neuron)
    return {} if w is None else encode_weights(w, layer=weights_layer)
