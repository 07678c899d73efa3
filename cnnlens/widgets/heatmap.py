"""Similarity heatmap: a bqplot ``GridHeatMap`` whose click selection reaches Python.

No JS twin of its own (bqplot draws it). What makes it readable is drawn over it by
cnnlens (``js/lib/heatmap_view.js``, wired by ``js/compare_link.js``): values printed in
small matrices, undefined cells hatched, the hover tip, the highlighted row/column, arrow
keys. That layer reads only public traits: ``color``, ``reasons``, ``notes``, ``metric``,
``selected`` here, ``fig_margin`` on the figure.

>>> import numpy as np
>>> from cnnlens.widgets.heatmap import SimilarityHeatmap
>>> hm = SimilarityHeatmap(["conv1", "fc"], ["conv1", "conv2", "fc"], np.eye(2, 3))
>>> hm.set_state({"selected": [[1, 2]]})     # what a click in the browser sends
>>> hm.pair
(1, 2)
>>> hm.tooltip_text(1, 2)
'A: fc\\nB: fc\\nsvcca = 0.000'
"""
from __future__ import annotations

import math

import numpy as np
from bqplot import Axis as BqAxis
from bqplot import ColorAxis, ColorScale, Figure, GridHeatMap, OrdinalScale
from bqplot.traits import array_dimension_bounds, array_from_json, array_serialization
from traitlets import Dict, List, Unicode
from traittypes import Array

__all__ = ["SimilarityHeatmap", "cell_text", "pairs_from_json", "pairs_to_json", "short_labels"]

#: tick labels longer than this are cut with "…" (the hover tip has the full name)
LABEL_CHARS = 18

#: fill of a cell that has no value yet (the job is still running; bqplot's ``null_color``);
#: undefined cells (a reason is known) get a hatch over it from js/lib/heatmap_view.js.
PENDING_FILL = "#e8e8e8"


def _as_pairs(value) -> np.ndarray | None:
    """Coerce a selection to an int32 array of shape (k, 2), or None for no selection."""
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.dtype == object:  # a ragged or JSON-ish nested list: rebuild row by row
        arr = np.array([list(map(int, row)) for row in value], dtype=np.int64)
    if arr.size == 0:
        return None
    if arr.ndim == 1 and arr.size == 2:  # a single (i, j)
        arr = arr.reshape(1, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"heatmap selection must be pairs [[row, column], ...], got shape {arr.shape}")
    return arr.astype(np.int32)


def pairs_from_json(value, obj=None) -> np.ndarray | None:
    """Deserialize ``selected`` as sent by the browser.

    bqplot's own ``array_from_json`` turns the nested JSON list ``[[i, j]]`` that
    a click produces into an object array, and ``array_to_json`` then raises
    ``Unsupported dtype object``, so no Python observer ever fires with
    ipywidgets 8 (https://github.com/bqplot/bqplot/issues/1632).
    """
    if isinstance(value, dict):  # binary form, e.g. echoed back from Python's own array
        value = array_from_json(value, obj)
    return _as_pairs(value)


def pairs_to_json(value, obj=None):
    """Serialize ``selected`` as int32 binary (bqplot's JS has no int64 decoder)."""
    pairs = _as_pairs(value)
    return None if pairs is None else array_serialization["to_json"](pairs, obj)


def cell_text(row: str, column: str, metric: str, value: float, reason: str | None,
              names=("A", "B"), note: str | None = None) -> str:
    """Tooltip of one cell; the browser's ``cellTitle`` (js/lib/heatmap_view.js) is run on
    the same inputs as this in js/tests/twins.test.js.

    ``metric`` is the name shown (``SimilarityHeatmap.metric_name``), ``names`` the models';
    ``note``: more lines under a defined value (its error, chance level, the reference's).
    """
    head = f"{names[0]}: {row}\n{names[1]}: {column}\n"
    if value is not None and math.isfinite(value):
        return head + f"{metric} = {value:.3f}" + (f"\n{note}" if note else "")
    if reason:
        return head + f"{metric} undefined: {reason}"
    return head + f"{metric}: pending"


def short_labels(names, n: int = LABEL_CHARS) -> dict:
    """Tick labels of the names longer than ``n`` characters, cut with "…" (an Axis's
    ``tick_labels``; the others keep their name).

    >>> short_labels(["conv1", "layer4.1.downsample.0"], 10)
    {'layer4.1.downsample.0': 'layer4.1.…'}
    """
    return {str(x): str(x)[: n - 1] + "…" for x in names if len(str(x)) > n}


class SimilarityHeatmap(GridHeatMap):
    """Layer-by-layer similarity of two models, rows = layers of A, columns = layers of B.

    Parameters
    ----------
    layers_a, layers_b : list of str
        Layer names (row and column labels; also used by the tooltips).
    matrix : array (len(layers_a), len(layers_b)), optional
        Values in [0, 1]; NaN marks a cell that is pending or undefined.
    metric : str
        Name shown in tooltips and as the figure's title.
    reasons : dict, optional
        ``{(i, j): reason}`` for undefined cells.
    scheme : str
        bqplot colour scheme of the 0..1 scale.

    Examples
    --------
    >>> hm = SimilarityHeatmap(["a"], ["b", "c"], [[0.2, float("nan")]],
    ...                        reasons={(0, 1): "layer c is constant"})
    >>> print(hm.tooltip_text(0, 1))
    A: a
    B: c
    svcca undefined: layer c is constant
    """

    selected = Array(None, allow_none=True).tag(
        sync=True, from_json=pairs_from_json, to_json=pairs_to_json
    ).valid(lambda trait, value: _as_pairs(value))
    """(k, 2) int32 array or None: selected cells as [row, column]. Default None."""

    # bqplot squeezes ``color``, which turns a 1 x n matrix into a vector that its
    # JS then cannot draw; keep the matrix 2-D.
    color = Array(None, allow_none=True).tag(
        sync=True, scaled=True, rtype="Color", atype="bqplot.ColorAxis", **array_serialization
    ).valid(array_dimension_bounds(2, 2))
    """(La, Lb) float array: similarity values, NaN where pending/undefined."""

    reasons = Dict().tag(sync=True)
    """dict "i,j" -> str: why an undefined (NaN) cell has no value. Default {}."""

    notes = Dict().tag(sync=True)
    """dict "i,j" -> str: lines the tooltip adds under a defined cell's value (its error,
    chance level, the reference's score; see ``compare_trust.py``). Default {}."""

    metric = Unicode("svcca").tag(sync=True)
    """str: key of the metric the matrix shows. Default "svcca"."""

    metric_labels = Dict().tag(sync=True)
    """dict key -> str: how each metric is named to people ("linear_cka" -> "linear CKA");
    a key without an entry is shown as is. Default {}."""

    names = List(Unicode(), default_value=["A", "B"]).tag(sync=True)
    """[str, str]: the two models' names (axis labels, tooltips). Default ["A", "B"]."""

    def __init__(self, layers_a, layers_b, matrix=None, *, metric="svcca", reasons=None,
                 scheme="viridis", names=("A", "B"), metric_labels=None, **kwargs):
        layers_a, layers_b = [str(n) for n in layers_a], [str(n) for n in layers_b]
        if matrix is None:
            matrix = np.full((len(layers_a), len(layers_b)), np.nan)
        matrix = np.asarray(matrix, dtype=np.float64)
        self._check_shape(matrix, layers_a, layers_b)
        scales = {
            "row": OrdinalScale(reverse=True),
            "column": OrdinalScale(),
            "color": ColorScale(min=0.0, max=1.0, scheme=scheme),
        }
        kwargs.setdefault("interactions", {"click": "select"})
        kwargs.setdefault("selected_style", {"stroke": "red", "stroke-width": "3px"})
        kwargs.setdefault("stroke", "white")
        kwargs.setdefault("null_color", PENDING_FILL)
        super().__init__(color=matrix, row=np.array(layers_a), column=np.array(layers_b),
                         scales=scales, metric=metric, reasons=self._pack(reasons),
                         names=[str(n) for n in names], metric_labels=dict(metric_labels or {}),
                         **kwargs)

    @staticmethod
    def _check_shape(matrix, layers_a, layers_b):
        if matrix.shape != (len(layers_a), len(layers_b)):
            raise ValueError(f"matrix shape {matrix.shape} does not match "
                             f"{len(layers_a)} layers of A x {len(layers_b)} layers of B")

    @staticmethod
    def _pack(reasons) -> dict:
        return {f"{i},{j}": str(r) for (i, j), r in (reasons or {}).items() if r}

    @property
    def layers_a(self) -> list[str]:
        """Row labels (layers of model A)."""
        return [str(n) for n in self.row]

    @property
    def layers_b(self) -> list[str]:
        """Column labels (layers of model B)."""
        return [str(n) for n in self.column]

    @property
    def pair(self) -> tuple[int, int] | None:
        """The most recently selected cell as (row, column), or None."""
        if self.selected is None or len(self.selected) == 0:
            return None
        i, j = self.selected[-1]
        return int(i), int(j)

    def set_matrix(self, matrix, reasons=None, metric=None) -> None:
        """Replace the values (and reasons / metric) in one message to the front end."""
        matrix = np.asarray(matrix, dtype=np.float64)
        self._check_shape(matrix, self.layers_a, self.layers_b)
        with self.hold_sync():
            if metric is not None:
                self.metric = metric
            self.reasons = self._pack(reasons)
            self.color = matrix

    def reason(self, i: int, j: int) -> str | None:
        """Why cell (i, j) is undefined, or None."""
        return self.reasons.get(f"{i},{j}")

    @property
    def metric_name(self) -> str:
        """The metric as people read it ("linear CKA", not "linear_cka")."""
        return self.metric_labels.get(self.metric, self.metric)

    def title(self) -> str:
        """The figure's title: the metric as people name it (the axes name the models; a
        longer title ran past the figure's edge)."""
        return self.metric_name

    def tooltip_text(self, i: int, j: int) -> str:
        """The tooltip the browser shows for cell (i, j) (same text as the JS)."""
        value = float(self.color[i, j])
        return cell_text(self.layers_a[i], self.layers_b[j], self.metric_name, value,
                         self.reason(i, j), self.names, self.notes.get(f"{i},{j}"))

    def figure(self, **kwargs) -> Figure:
        """A bqplot Figure with layer axes and a labelled 0..1 colour bar (class ``cnnlens-heatmap``).

        Margins fit the longest layer names (cut at ``LABEL_CHARS`` through the axes'
        ``tick_labels``, whole in the hover tip); no bqplot toolbar (it covered the title and
        the top-right cells).
        """
        cut = LABEL_CHARS + 1
        rows = min(max((len(n) for n in self.layers_a), default=4), cut)
        cols = min(max((len(n) for n in self.layers_b), default=4), cut)
        left = 34 + 6 * rows  # 10 px font: ~6 px a character
        bottom = 44 + int(4.3 * cols)  # rotated 45 degrees: ~0.7 of the length, downwards
        axes = [
            BqAxis(scale=self.scales["row"], side="left", label=self.names[0],
                   tick_labels=short_labels(self.layers_a),
                   tick_style={"font-size": "10px"}, label_offset=f"{left - 14}px"),
            BqAxis(scale=self.scales["column"], side="bottom", label=self.names[1],
                   tick_labels=short_labels(self.layers_b),
                   tick_rotate=-45, tick_style={"font-size": "10px"}, label_offset=f"{bottom - 12}px"),
            # five ticks: eleven crowd the short bar; the label runs along the bar, outside it
            ColorAxis(scale=self.scales["color"], side="right", tick_values=np.linspace(0, 1, 5),
                      tick_format=".2~f", tick_style={"font-size": "10px"},
                      label=self.metric_name, label_location="middle", label_offset="44px"),
        ]
        # bqplot's vertical colour bar ignores label_offset: it centres its label on x = the
        # plot's right edge + right / 2 - 10 px, so `right` keeps "debiased CKA" (~82 px)
        # clear of the last column; its ticks end ~right - 30 px
        kwargs.setdefault("fig_margin", {"top": 50, "bottom": bottom, "right": 120, "left": left})  # title clear of the top row
        kwargs.setdefault("layout", {"width": "460px", "height": "420px"})
        kwargs.setdefault("title", self.title())
        kwargs.setdefault("display_toolbar", False)
        fig = Figure(marks=[self], axes=axes, padding_x=0.0, padding_y=0.0, **kwargs)
        fig.add_class("cnnlens-heatmap")

        def follow(_):  # the title and the colour bar name the metric; they follow a switch
            fig.title = self.title()
            axes[2].label = self.metric_name

        self.observe(follow, names=["metric", "names", "metric_labels"])
        return fig
