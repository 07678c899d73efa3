"""NeuronDetail: one channel enlarged over its input, its filter, its top-k images (twin: js/neuron_detail.js).

Its payloads come from :mod:`cnnlens.views.detail`.
"""

from __future__ import annotations

import anywidget
import ipywidgets as W
import traitlets as t

from .activation_grid import ActivationGrid
from .esm import bundle
from .filter_grid import FilterGrid

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
    """dict: ``layer -> top-k table`` for kernel-less pages (see :func:`cnnlens.views.detail.top_frames`); used
    when ``top`` is not for the grid's selection. Default ``{}``."""
    frame_images = t.Dict().tag(sync=True)
    """dict: thumbnails of every image in ``frames``: ``ids`` int32 bytes, ``images``
    (encode_images). Default ``{}``."""
    vis = t.Dict().tag(sync=True)
    """dict: the latest feature visualisation (:func:`cnnlens.views.featvis.vis_payload`): ``image``
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
    """dict: ``layer -> visualisations`` for kernel-less pages (:func:`cnnlens.views.featvis.vis_frames`).
    Default ``{}``."""

    @t.validate("k")
    def _valid_k(self, proposal):
        if not 1 <= proposal["value"] <= 64:
            raise t.TraitError(f"k must be in 1..64, got {proposal['value']}")
        return proposal["value"]

    @t.validate("opacity")
    def _valid_opacity(self, proposal):
        return min(1.0, max(0.0, float(proposal["value"])))
