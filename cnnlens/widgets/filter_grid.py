"""FilterGrid: learned filters of the selected layer (twin: js/filter_grid.js).

First-layer filters show as RGB/grey tiles, deeper conv layers as per-output-channel
grids of input kernels, too-large layers as one L2 norm per filter. Clicking a filter
selects that neuron in the grid model (JavaScript link). The payloads come from
:mod:`cnnlens.views.filters`; this module holds the widget and its bqplot histogram.
"""

from __future__ import annotations

import anywidget
import bqplot as bq
import ipywidgets as W
import numpy as np
import traitlets as t

from .activation_grid import ActivationGrid
from .esm import bundle


class FilterGrid(anywidget.AnyWidget):
    """Weight tiles of the module that produced the selected layer's channels.

    Examples
    --------
    >>> import torch
    >>> from cnnlens.encode import encode_weights
    >>> fg = FilterGrid(layer="conv1", weights_layer="conv1", payload=encode_weights(torch.randn(8, 3, 3, 3)))
    >>> fg.payload["mode"]
    'rgb'
    """

    _esm = bundle("filter_grid")

    payload = t.Dict().tag(sync=True)
    """dict: ``encode_weights`` payload ({} when the layer has no weights). Default ``{}``."""
    layer = t.Unicode("").tag(sync=True)
    """str: the selected layer these filters serve. Default ``""``."""
    weights_layer = t.Unicode("").tag(sync=True)
    """str: the module whose weights are shown (a conv before a ReLU, say). Default ``""``."""
    selected = t.Dict().tag(sync=True)
    """dict: kernels of the selected filter (``encode_weights`` of one filter), for norm summaries."""
    note = t.Unicode("").tag(sync=True)
    """str: what is shown and why (e.g. "no weights: ReLU"). Default ``""``."""
    grid = t.Instance(ActivationGrid, allow_none=True).tag(sync=True, **W.widget_serialization)
    """ActivationGrid: selection model; clicks set its ``neuron``. Default None."""
    error = t.Unicode("").tag(sync=True)
    """str: error shown in place. Default ``""``."""
    frames = t.Dict().tag(sync=True)
    """dict: ``layer -> {weights_layer, note, error, histogram}`` for kernel-less pages (see
    :func:`cnnlens.views.filters.filter_frames`); used when the grid's layer is not the live ``layer``. Default ``{}``."""
    frame_weights = t.Dict().tag(sync=True)
    """dict: ``weights_layer -> encode_weights payload`` the ``frames`` share. Default ``{}``."""


def nice_ticks(lo: float, hi: float, most: int = 5) -> np.ndarray:
    """At most ``most`` round tick values (1, 2 or 5 x 10^k apart) within [lo, hi].

    bqplot's ``num_ticks`` splits the domain evenly (ticks like -9.68e-6 and 13, 27, 41);
    round values read at a glance.

    >>> nice_ticks(-0.12, 0.12).tolist()
    [-0.1, -0.05, 0.0, 0.05, 0.1]
    """
    span = float(hi) - float(lo)
    if not np.isfinite(span) or span <= 0:
        return np.array([float(lo)])
    power = 10.0 ** np.floor(np.log10(span / max(most, 1)))
    for step in (m * power for m in (1, 2, 2.5, 5, 10, 20, 25, 50)):  # the finest that fits
        ticks = np.arange(np.ceil(lo / step - 1e-9), np.floor(hi / step + 1e-9) + 1) * step
        if len(ticks) <= most:
            break
    return np.round(ticks, 12) + 0.0  # + 0.0: no "-0"


def weight_histogram() -> bq.Figure:
    """An empty bqplot weight histogram (bars of precomputed counts: 40 numbers, not every weight)."""
    xs, ys = bq.LinearScale(), bq.LinearScale(min=0)
    bars = bq.Bars(
        x=np.zeros(1), y=np.zeros(1), scales={"x": xs, "y": ys}, padding=0.05, colors=["#31688e"]
    )
    # round tick values are set with the data (set_histogram); the formats keep them short
    axes = [
        bq.Axis(scale=xs, label="weight", tick_values=np.zeros(1), tick_format=".2~g"),
        bq.Axis(scale=ys, side="left", label="count", tick_values=np.zeros(1), tick_format="~s"),
    ]
    return bq.Figure(
        marks=[bars],
        axes=axes,
        title="weights",
        fig_margin={"top": 30, "bottom": 40, "left": 55, "right": 25},
        layout=W.Layout(height="200px", width="100%"),
    )


def set_histogram(fig: bq.Figure, hist, name: str) -> None:
    """Show weight counts ``hist = (counts, bin centres)``, or None for "no weights"."""
    counts, centres = (np.zeros(1), np.zeros(1)) if hist is None else (h.numpy() for h in hist)
    bars = fig.marks[0]
    width = float(centres[1] - centres[0]) if len(centres) > 1 else 0.0
    with fig.hold_sync(), bars.hold_sync():
        bars.x, bars.y = centres.astype(np.float64), counts.astype(np.float64)
        fig.axes[0].tick_values = nice_ticks(centres.min() - width / 2, centres.max() + width / 2)
        fig.axes[1].tick_values = nice_ticks(0, max(float(counts.max()), 1.0), most=4)
    fig.title = f"weights of {name}" if name else "no weights"
