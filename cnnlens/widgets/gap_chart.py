"""Per-layer gap chart: similarity to A by depth, B against the reference, with 95% bands.

No JS twin of its own (bqplot ``Lines`` and ``Scatter``); ``js/trust_link.js`` links a
click on a point to the heatmap's ``selected`` (so both panes follow) and redraws the
chart from precomputed series when no kernel is there. The data come from
:func:`cnnlens.similarity.readout.gap_series`.

>>> from cnnlens.widgets.gap_chart import GapChart
>>> chart = GapChart(("real", "synthetic", "real_seed1"))
>>> chart.show({"layers": ["conv1", "fc1"], "score_b": [0.99, 0.79], "score_c": [0.99, 0.92],
...             "low_b": [0.98, 0.77], "high_b": [1.0, 0.81], "low_c": [0.98, 0.9],
...             "high_c": [1.0, 0.94], "significant": [False, True], "row": [0, 1],
...             "column": [0, 1], "tips": ["", ""], "method": "jackknife", "skipped": []},
...            metric_label="linear CKA")
>>> chart.points_b.y.tolist(), chart.title, chart.axes[1].label
([0.99, 0.79], 'similarity to real by depth: synthetic vs real_seed1', 'linear CKA')
"""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
from bqplot import Axis, Figure, LinearScale, Lines, OrdinalScale, Scatter

__all__ = ["B_COLOR", "C_COLOR", "EMPTY_TITLE", "GapChart", "gap_legend", "gap_title"]

B_COLOR, C_COLOR = "#d62728", "#2ca02c"  # data colours: B red, the reference green
EMPTY_TITLE = "similarity to A by depth: B vs reference (pass reference=... to Compare)"


def gap_title(names) -> str:
    """The chart's title (the y axis names the metric); ``gapTitle`` in js/lib/trust.js
    gives the same on the same names (js/tests/twins.test.js). Names are cut at 14 characters: a longer title ran off the figure."""
    a, b, c = (n if len(n) <= 14 else n[:13] + "…" for n in names)
    return f"similarity to {a} by depth: {b} vs {c}"


def gap_legend(names) -> W.HTML:
    """The chart's legend, under it (a bqplot legend sits on the data)."""
    def swatch(color, dash):
        dashes = ' stroke-dasharray="5,3"' if dash else ""
        return (f'<svg width="26" height="10" aria-hidden="true"><line x1="1" y1="5" x2="25" '
                f'y2="5" stroke="{color}" stroke-width="2.5"{dashes}/></svg>')
    ref = names[2] if names[2] == "reference" else f"{names[2]} (reference)"
    rows = [(swatch(B_COLOR, False), f"{names[1]} (B) against {names[0]}"),
            (swatch(C_COLOR, True), f"{ref} against {names[0]}"),
            ("", ("bands: 95% interval of each score; a solid red point: the gap to the "
                  "reference is significant (95%); click a point to select its heatmap cell"))]
    body = "".join(f'<div class="cnnlens-legend-row">{s} {html.escape(t)}</div>' for s, t in rows)
    legend = W.HTML(f'<div class="cnnlens-view cnnlens-gap-legend">{body}</div>',
                    layout=W.Layout(max_width="440px"))  # the chart's width: no row of its own
    legend.add_class("cnnlens-gap-legend-box")
    return legend


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


class GapChart(Figure):
    """Similarity of each layer of A to B (red) and to the reference C (green), by depth.

    Each line has a band: score +- t x its cell's standard error (95%). An opaque point
    on B marks a layer whose gap to the reference is significant. Clicking a point
    selects that layer's heatmap cell (``js/trust_link.js``). CSS class
    ``cnnlens-gap-chart``; ``data-layers`` on it once drawn.

    Parameters
    ----------
    names : (str, str, str)
        Names of A, B and the reference (title and legend).
    """

    def __init__(self, names=("A", "B", "reference"), **kwargs):
        self.names = tuple(names)
        x = OrdinalScale()
        y = LinearScale()
        sc = {"x": x, "y": y}
        one = np.array(["-"])

        def band(color):  # a line pair filled between, no stroke
            return Lines(x=one, y=np.zeros((2, 1)), fill="between", colors=[color, color],
                         fill_colors=[color], fill_opacities=[0.18], stroke_width=0,
                         scales=sc, visible=False)

        self.band_b, self.band_c = band(B_COLOR), band(C_COLOR)
        self.line_b = Lines(x=one, y=np.zeros(1), colors=[B_COLOR], stroke_width=2, scales=sc,
                            visible=False, labels=[names[1]])
        self.line_c = Lines(x=one, y=np.zeros(1), colors=[C_COLOR], stroke_width=2,
                            line_style="dashed", scales=sc, visible=False, labels=[names[2]])

        def points(color):  # clickable: a click selects the layer's heatmap cell (JS)
            return Scatter(x=one, y=np.zeros(1), colors=[color], default_size=48, stroke="white",
                           scales=sc, visible=False, interactions={"click": "select"},
                           selected_style={"stroke": "black", "stroke-width": "2.5"},
                           unselected_style={"opacity": "0.9"})

        self.points_b, self.points_c = points(B_COLOR), points(C_COLOR)
        axes = [Axis(scale=x, label=f"layer of {names[0]} (depth)", tick_rotate=-30,
                     tick_style={"font-size": "10px"}),
                Axis(scale=y, side="left", label="similarity", tick_format=".2f",
                     label_offset="42px")]
        kwargs.setdefault("layout", {"width": "440px", "height": "260px"})
        kwargs.setdefault("fig_margin", {"top": 36, "bottom": 56, "left": 55, "right": 15})
        kwargs.setdefault("title", EMPTY_TITLE)
        kwargs.setdefault("display_toolbar", False)
        kwargs.setdefault("title_style", {"font-size": "13px"})
        super().__init__(marks=[self.band_b, self.band_c, self.line_b, self.line_c,
                                self.points_b, self.points_c], axes=axes, **kwargs)
        self.add_class("cnnlens-gap-chart")

    def show(self, series: dict | None, metric_label: str = "similarity", why: str = "") -> None:
        """Draw one metric's series (from ``gap_series``), or clear with ``None``; ``why``:
        what the title says when the series is empty."""
        marks = (self.band_b, self.band_c, self.line_b, self.line_c, self.points_b,
                 self.points_c)
        with self.hold_sync():
            if not series or not series["layers"]:
                for m in marks:
                    m.visible = False
                self.title = EMPTY_TITLE if series is None else \
                    f"{gap_title(self.names)}: {why or 'no layer with both scores'}"
                return
            x = np.array(series["layers"])
            for band, side in ((self.band_b, "b"), (self.band_c, "c")):
                band.x, band.y = x, np.vstack([_arr(series[f"low_{side}"]),
                                               _arr(series[f"high_{side}"])])
            for mark, side in ((self.line_b, "b"), (self.line_c, "c"), (self.points_b, "b"),
                               (self.points_c, "c")):
                mark.x, mark.y = x, _arr(series[f"score_{side}"])
            # B's point is solid where its gap to the reference is significant, faint elsewhere
            self.points_b.opacities = np.where(series["significant"], 1.0, 0.4).tolist()
            for m in marks:
                m.visible = True
            self.title = gap_title(self.names)
            self.axes[1].label = metric_label  # the y axis names the metric
