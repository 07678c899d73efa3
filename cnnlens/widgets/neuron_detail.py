"""NeuronDetail: one channel enlarged over its input, its filter, its top-k images (twin: js/neuron_detail.js)."""

from __future__ import annotations

import anywidget
import ipywidgets as W
import torch
import traitlets as t

from ..encode import encode_images, encode_maps, encode_vector, encode_weights
from .activation_grid import ActivationGrid, bundle, describe
from .filter_grid import FilterGrid
from .layer_tree import weight_layer

TOP_STATUS = ("none", "pending", "ready", "error")


class NeuronDetail(anywidget.AnyWidget):
    """Detail of ``grid.neuron`` in ``grid.layer`` for ``grid.image_index``.

    Examples
    --------
    >>> detail = NeuronDetail(by="max", k=4)
    >>> detail.opacity
    0.6
    """

    _esm = bundle("neuron_detail")

    layer = t.Unicode("").tag(sync=True)
    """str: layer of the payloads below. Default ``""``."""
    neuron = t.Int(-1).tag(sync=True)
    """int: channel of the payloads below; -1 = none. Default -1."""
    image_index = t.Int(0).tag(sync=True)
    """int: image of the payloads below. Default 0."""
    channel = t.Dict().tag(sync=True)
    """dict: ``encode_maps`` payload of the one channel at full resolution. Default ``{}``."""
    image = t.Dict().tag(sync=True)
    """dict: ``encode_images`` payload of the input image. Default ``{}``."""
    kernels = t.Dict().tag(sync=True)
    """dict: ``encode_weights`` payload of this channel's filter ({} if none). Default ``{}``."""
    top = t.Dict().tag(sync=True)
    """dict: top-k images: ``images`` (encode_images), ``indices`` int32 bytes, ``scores`` float32
    bytes, ``values`` float32 bytes (every image's score, for the unit's distribution)."""
    top_status = t.Enum(TOP_STATUS, "none").tag(sync=True)
    """str: state of ``top`` for this layer/neuron: ``"none"`` (no neuron), ``"pending"`` (being
    ranked off the kernel thread), ``"ready"`` or ``"error"`` (see ``error``). Default ``"none"``."""
    by = t.Enum(("mean", "max"), "mean").tag(sync=True)
    """str: rank the top-k images by the channel's ``"mean"`` or ``"max"`` activation."""
    k = t.Int(8).tag(sync=True)
    """int: number of top images. Default 8."""
    opacity = t.Float(0.6).tag(sync=True)
    """float: opacity of the activation overlay on the input image, 0..1. Default 0.6."""
    grid = t.Instance(ActivationGrid, allow_none=True).tag(sync=True, **W.widget_serialization)
    """ActivationGrid: selection model followed in JS; top-k clicks set its image_index."""
    error = t.Unicode("").tag(sync=True)
    """str: error shown in place. Default ``""``."""
    filters = t.Instance(FilterGrid, allow_none=True).tag(sync=True, **W.widget_serialization)
    """FilterGrid: the pane's filter view; with no kernel, the filter is cut from its frames."""
    frames = t.Dict().tag(sync=True)
    """dict: ``layer -> top-k table`` for kernel-less pages (see :func:`top_frames`); used
    when ``top`` is not for the grid's selection. Default ``{}``."""
    frame_images = t.Dict().tag(sync=True)
    """dict: thumbnails of every image in ``frames``: ``ids`` int32 bytes, ``images``
    (encode_images). Default ``{}``."""
    vis = t.Dict().tag(sync=True)
    """dict: the latest feature visualisation (``featvis_job.vis_payload``): ``image``
    (encode_images, values in [0, 1]), ``layer``, ``neuron``, ``activation``, ``steps``,
    ``seed``, ``size``. Shown when its layer/neuron are selected. Default ``{}``."""
    vis_key = t.Unicode("").tag(sync=True)
    """str: ``"layer|neuron"`` that ``vis_status``/``vis_progress``/``vis_error`` describe."""
    vis_status = t.Enum(("none", "running", "ready", "error"), "none").tag(sync=True)
    """str: the visualisation of ``vis_key``: ``"none"``, ``"running"`` (off the kernel
    thread, see ``vis_progress``), ``"ready"`` (in ``vis``) or ``"error"``. Default ``"none"``."""
    vis_progress = t.Float(0.0).tag(sync=True)
    """float: share of the optimisation steps done, 0..1. Default 0."""
    vis_error = t.Unicode("").tag(sync=True)
    """str: why the visualisation failed, shown in place. Default ``""``."""
    vis_frames = t.Dict().tag(sync=True)
    """dict: ``layer -> visualisations`` for kernel-less pages (``featvis_job.vis_frames``).
    Default ``{}``."""

    @t.validate("k")
    def _valid_k(self, proposal):
        if not 1 <= proposal["value"] <= 64:
            raise t.TraitError(f"k must be in 1..64, got {proposal['value']}")
        return proposal["value"]

    @t.validate("opacity")
    def _valid_opacity(self, proposal):
        return min(1.0, max(0.0, float(proposal["value"])))


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
        "indices": idx.to(torch.int32).numpy().tobytes(),
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
            "indices": idx.to(torch.int32).contiguous().numpy().tobytes(),
            "scores": encode_vector(values),
            "k": kk, "channels": int(idx.shape[0]), "by": by, "error": "",
        }  # fmt: skip
    ids = sorted(used)
    images = {} if not ids else {
        "ids": torch.tensor(ids, dtype=torch.int32).numpy().tobytes(),
        "images": encode_images(inspector.images[ids], size=48),
    }  # fmt: skip
    return frames, images
