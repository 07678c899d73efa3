"""ActivationGrid: every channel of one layer for one image (twin: js/activation_grid.js).

The grid is also the *selection model* of a Lens pane: ``layer``, ``neuron`` and
``image_index`` live here, and the other views of the pane hold a reference to
this widget and follow it in JavaScript, so their links survive a static export. Its
payload and frames come from :mod:`cnnlens.views.grid`.
"""

from __future__ import annotations

import anywidget
import traitlets as t

from ..encode import SORTS
from .esm import bundle  # also imported from here by trust_link.py

# mirror of js/activation_grid.js; "auto": diverging (rdbu) centred on zero for a signed
# layer, viridis otherwise (js/lib/colorbar.js resolveColormap)
COLORMAPS = ("auto", "viridis", "magma", "gray", "rdbu")
NORMALIZE = ("channel", "layer")


class ActivationGrid(anywidget.AnyWidget):
    """Canvas tiles of every channel of ``layer`` for image ``image_index``.

    Examples
    --------
    >>> import torch
    >>> from cnnlens.encode import encode_maps
    >>> g = ActivationGrid(layer="conv1", payload=encode_maps(torch.rand(8, 16, 16), layer="conv1"))
    >>> g.neuron
    -1
    """

    _esm = bundle("activation_grid")

    layer = t.Unicode("").tag(sync=True)
    """str: selected layer (dotted name, ``"name:k"`` for the k-th extra call). Default ``""``."""
    neuron = t.Int(-1).tag(sync=True)
    """int: selected channel (or linear unit) of ``layer``; -1 = none. Default -1."""
    image_index = t.Int(0).tag(sync=True)
    """int: selected image of the pane's image set. Default 0."""
    payload = t.Dict().tag(sync=True)
    """dict: the live activation payload (``cnnlens.encode.encode_maps``); bytes go as buffers."""
    frames = t.Dict().tag(sync=True)
    """dict: ``"layer|image_index" -> payload`` precomputed for kernel-less pages; used first."""
    layers = t.List(t.Unicode()).tag(sync=True)
    """list[str]: layers offered by the header's picker. Default ``[]``."""
    normalize = t.Enum(NORMALIZE, "channel").tag(sync=True)
    """str: ``"channel"`` (each tile to its own range) or ``"layer"`` (one shared range)."""
    sort = t.Enum(SORTS, "index").tag(sync=True)
    """str: tile order: ``"index"``, ``"mean"`` or ``"max"`` activation (descending)."""
    colormap = t.Enum(COLORMAPS, "auto").tag(sync=True)
    """str: colour map of the tiles; ``"auto"`` is a diverging map centred on zero for a signed
    layer and viridis otherwise. Default ``"auto"``."""
    page = t.Int(0).tag(sync=True)
    """int: page of channels when a layer has too many to show at once. Default 0."""
    error = t.Unicode("").tag(sync=True)
    """str: error shown in place (``.cnnlens-error``); ``""`` when all is well."""

    @t.validate("neuron")
    def _valid_neuron(self, proposal):
        if proposal["value"] < -1:
            raise t.TraitError(f"neuron must be >= -1 (-1 = none), got {proposal['value']}")
        return proposal["value"]

    @t.validate("image_index", "page")
    def _non_negative(self, proposal):
        if proposal["value"] < 0:
            raise t.TraitError(f"{proposal['trait'].name} must be >= 0, got {proposal['value']}")
        return proposal["value"]
