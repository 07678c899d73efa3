"""CanonicalView: where two layers agree, as paired maps over the image (twin: js/canonical_view.js).

Beside Compare's spectrum: the top k canonical directions of the selected pair, each a
map of layer A over the same direction's map of layer B on the selected image (rho_i on
each pair), optionally over the input image; the selected direction's top dataset
images on each side. The payloads come from :mod:`cnnlens.encode.canonical` (computed by
``maps_job.py``); this module holds traits and the spectrum's clickable points only.

Links that must survive an exported page run in the browser: a heatmap click or a
pane's image picker picks the payload out of ``frames``; a click on a spectrum point
(``dots``, a bqplot ``Scatter``) selects that direction.

>>> view = CanonicalView()
>>> view.status, view.direction, view.overlay
('empty', 0, True)
"""

from __future__ import annotations

import anywidget
import numpy as np
import traitlets as t
from bqplot import Scatter
from ipywidgets import Widget, widget_serialization

from .esm import bundle

__all__ = ["STATUSES", "CanonicalView", "direction_dots"]

STATUSES = ("empty", "running", "ready", "error")
DOT_COLOR = "#ff9900"  # the selection accent of the heatmap's row/column outline


def _ref():
    return t.Instance(Widget, allow_none=True).tag(sync=True, **widget_serialization)


def direction_dots(curve) -> Scatter:
    """Clickable points over the spectrum ``curve``: clicking one selects that direction.

    Invisible until selected (the curve draws its own markers); the selected one is drawn
    in the accent colour. bqplot's ``Scatter`` click-select syncs ``selected`` as a 1-D
    index list, which ipywidgets 8 deserialises fine (unlike GridHeatMap's, bqplot #1632).
    """
    dots = Scatter(x=np.asarray(curve.x, dtype=np.float64), y=np.asarray(curve.y, dtype=np.float64),
                   scales=curve.scales, colors=[DOT_COLOR], default_size=160,
                   opacities=[0.0], interactions={"click": "select"},
                   selected_style={"opacity": 1.0, "stroke": "black", "stroke-width": 1.5},
                   unselected_style={"opacity": 0.0}, visible=bool(curve.visible),
                   tooltip=None, labels=["canonical direction"])
    return dots


class CanonicalView(anywidget.AnyWidget):
    """Paired canonical maps of the selected pair and image, beside Compare's spectrum.

    DOM (for tests and export): class ``cnnlens-canonical``; ``data-status``,
    ``data-pair="i,j"``, ``data-image``, ``data-direction``, ``data-overlay`` and
    ``data-rendered="1"`` once the maps of the current payload are painted.

    Examples
    --------
    >>> view = CanonicalView(k=4)
    >>> view.status = "running"; view.progress = 0.5
    >>> view.get_state()["progress"]
    0.5
    """

    _esm = bundle("canonical_view")

    pair_data = t.Dict().tag(sync=True)
    """dict: :func:`cnnlens.encode.encode_canonical_pair` of the shown pair ({} none). Default {}."""
    image_data = t.Dict().tag(sync=True)
    """dict: :func:`cnnlens.encode.encode_canonical_image` of the shown image. Default {}."""
    frames = t.Dict().tag(sync=True)
    """dict: for a page with no kernel, ``{"i,j": {**pair payload, "images": {"n": image
    payload}}}``; ``frames_left_out`` says what is missing. Default {}."""
    frames_left_out = t.Unicode("").tag(sync=True)
    """str: what an exported page left out of ``frames`` and why ("" when all). Default ""."""
    status = t.Enum(STATUSES, "empty").tag(sync=True)
    """str: empty (no cell selected), running, ready or error. Default "empty"."""
    progress = t.Float(0.0).tag(sync=True)
    """float: fraction of the pair's pass done while ``status == "running"``. Default 0.0."""
    error = t.Unicode("").tag(sync=True)
    """str: error shown in place; "" when none. Default ""."""
    note = t.Unicode("").tag(sync=True)
    """str: said above the maps (under a CKA metric: they come from CCA). Default ""."""
    cost = t.Unicode("").tag(sync=True)
    """str: where the directions come from and what they cost. Default ""."""
    pair = t.List([]).tag(sync=True)
    """list: [i, j] of the heatmap cell requested ([] none). Default []."""
    direction = t.Int(0).tag(sync=True)
    """int: selected direction (0-based; a spectrum click or a click on a map). Default 0."""
    overlay = t.Bool(True).tag(sync=True)
    """bool: draw the maps over the input image (a toggle in the view). Default True."""
    k = t.Int(4).tag(sync=True)
    """int: directions shown. Default 4."""
    heatmap = _ref()
    """SimilarityHeatmap or None: its selection picks the pair in a page with no kernel."""
    grid_a = _ref()
    """ActivationGrid or None: pane A's selection model (its image picker). Default None."""
    grid_b = _ref()
    """ActivationGrid or None: pane B's selection model (its image picker). Default None."""
    dots = _ref()
    """bqplot Scatter or None: :func:`direction_dots` on the spectrum. Default None."""
    curve = _ref()
    """bqplot Lines or None: the spectrum curve the dots follow. Default None."""
