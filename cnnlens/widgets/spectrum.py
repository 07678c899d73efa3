"""Canonical-correlation spectrum of one layer pair, with a random-data baseline.

No JS twin of its own (two bqplot ``Lines``); ``js/compare_link.js`` redraws it
from precomputed spectra when a heatmap cell is clicked, also without a kernel, with
``lineState``, ``indexTicks`` and ``spectrumTitle``: js/tests/twins.test.js runs them and
:func:`_draw`, :func:`index_ticks`, :func:`spectrum_title` on the same inputs.
Its legend is HTML beside the plot (:func:`spectrum_legend`), never over the data; before
a click the axes are hidden and the title says what to do.

>>> import numpy as np
>>> from cnnlens.widgets.spectrum import Spectrum
>>> sp = Spectrum()
>>> sp.show([0.99, 0.8, 0.3], baseline=[0.4, 0.2, 0.1], pair=(0, 2), title="conv1 x fc")
>>> sp.curve.y.tolist()
[0.99, 0.8, 0.3]
"""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
from bqplot import Axis, Figure, LinearScale, Lines
from traitlets import List

__all__ = ["EMPTY_TITLE", "Spectrum", "spectrum_legend", "spectrum_title"]

EMPTY_TITLE = "click a heatmap cell to see its spectrum"
CURVE_COLOR, BASELINE_COLOR = "#1f77b4", "#e6550d"  # data colours: blue pair, orange baseline


def _cut(name: str, n: int = 16) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def spectrum_title(names, layer_a: str, layer_b: str) -> str:
    """Which pair the spectrum shows (the y axis says what); ``spectrumTitle`` in
    compare_link.js without a kernel. Layer names are cut at 16 characters: a longer title ran off the figure.

    >>> spectrum_title(("real", "synthetic"), "conv1", "layer4.1.downsample.0")
    'real conv1 × synthetic layer4.1.downsa…'
    """
    return f"{names[0]} {_cut(layer_a)} × {names[1]} {_cut(layer_b)}"


def spectrum_legend() -> W.HTML:
    """The legend, beside the plot instead of inside it (where the baseline ran through it).

    The ``.cnnlens-spectrum-note`` line is filled by compare_link.js: it says when the
    heatmap's metric is not the one whose spectrum is drawn.
    """
    def swatch(color, dash):
        dashes = ' stroke-dasharray="5,3"' if dash else ""
        return (f'<svg width="26" height="10" aria-hidden="true"><line x1="1" y1="5" x2="25" y2="5" '
                f'stroke="{color}" stroke-width="2.5"{dashes}/></svg>')
    rows = [(swatch(CURVE_COLOR, False), "this pair's canonical correlations, largest first"),
            (swatch(BASELINE_COLOR, True), "the same layers on random inputs (baseline)")]
    body = "".join(f'<div class="cnnlens-legend-row">{s} {html.escape(t)}</div>' for s, t in rows)
    legend = W.HTML(f'<div class="cnnlens-view cnnlens-spectrum-legend">{body}'
                    '<div class="cnnlens-note cnnlens-spectrum-note"></div></div>')
    legend.add_class("cnnlens-spectrum-legend-box")
    return legend


def _vector(values) -> np.ndarray:
    arr = np.asarray([] if values is None else values, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


def _draw(mark: Lines, y: np.ndarray) -> None:
    """Each line gets its own x = 1..len(y); an empty one is hidden behind a valid point,
    because bqplot's JS draws NaN-only data with broken SVG attributes (console errors)."""
    with mark.hold_sync():
        if len(y):
            mark.x, mark.y, mark.visible = np.arange(1.0, len(y) + 1), y, True
        else:
            mark.x, mark.y, mark.visible = np.ones(1), np.zeros(1), False


def index_ticks(n: int, most: int = 8) -> np.ndarray:
    """At most ``most`` round integer ticks in 1..n (the axis counts correlations).

    The step is the smallest of 1, 2, 5, 10, 20, 50, ... that fits: 1, 3, 5, ... for steps
    up to 2, else 1 and the multiples of the step (1, 10, 20, ...). ``indexTicks`` in
    js/compare_link.js without a kernel.

    >>> index_ticks(11).tolist(), index_ticks(64).tolist()
    ([1.0, 3.0, 5.0, 7.0, 9.0, 11.0], [1.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    """
    n, k = max(int(n), 1), 0
    while True:
        step = (1, 2, 5)[k % 3] * 10 ** (k // 3)
        ticks = np.arange(1, n + 1, step) if step <= 2 else np.r_[1, np.arange(step, n + 1, step)]
        if len(ticks) <= max(most, 2):
            return ticks.astype(np.float64)
        k += 1


class Spectrum(Figure):
    """Sorted canonical correlations (solid) and a random-data baseline (dashed).

    The figure carries the CSS class ``cnnlens-spectrum``; ``pair`` says which
    heatmap cell it shows (the browser mirrors it as ``data-pair``).

    Examples
    --------
    >>> sp = Spectrum()
    >>> sp.show([0.9, 0.5], baseline=[0.3, 0.1], pair=(1, 1))
    >>> sp.pair
    [1, 1]
    """

    pair = List([]).tag(sync=True)
    """[i, j] of the heatmap cell drawn, [] when none. Default []."""

    def __init__(self, **kwargs):
        x = LinearScale()
        y = LinearScale(min=0.0, max=1.05)
        self.curve = Lines(x=[1.0], y=[0.0], visible=False, scales={"x": x, "y": y}, colors=[CURVE_COLOR],
                           stroke_width=2, labels=["pair"], marker="circle", marker_size=12)
        # drawn after the curve, in a contrasting colour, dashed and thicker: where the pair
        # sits at 1.0 the baseline is still seen running over it (spectrum_legend explains both)
        self.baseline = Lines(x=[1.0], y=[0.0], visible=False, scales={"x": x, "y": y},
                              colors=[BASELINE_COLOR], line_style="dashed", stroke_width=2.5,
                              labels=["random baseline"])
        # integer tick_values (set on show); never num_ticks: with bqplot 0.13 it makes the
        # axis format ".undefinedg" (a throw) once a one-point domain grows
        # "d": d3's default format writes the tick 10 as "1e+1"
        # hidden until a pair is shown: an empty axis with one tick said nothing
        axes = [Axis(scale=x, label="canonical direction (sorted)", tick_values=index_ticks(1),
                     tick_format="d", visible=False),
                Axis(scale=y, side="left", label="SVCCA canonical correlation", tick_format=".1f",
                     visible=False)]
        kwargs.setdefault("layout", {"width": "380px", "height": "300px"})
        kwargs.setdefault("fig_margin", {"top": 40, "bottom": 45, "left": 55, "right": 15})
        kwargs.setdefault("title", EMPTY_TITLE)
        kwargs.setdefault("display_toolbar", False)
        super().__init__(marks=[self.curve, self.baseline], axes=axes, **kwargs)
        self.add_class("cnnlens-spectrum")

    def show(self, rho, baseline=None, *, pair=None, title=None) -> None:
        """Draw one pair's spectrum (``rho``, descending) and its baseline in one update."""
        rho, base = _vector(rho), _vector(baseline)
        with self.hold_sync():
            _draw(self.curve, rho)
            _draw(self.baseline, base)
            self.axes[0].tick_values = index_ticks(max(len(rho), len(base)))
            self.pair = [] if pair is None else [int(pair[0]), int(pair[1])]
            for axis in self.axes:
                axis.visible = pair is not None
            if title is not None:
                self.title = title

    def clear(self, title=EMPTY_TITLE) -> None:
        """Show nothing (no pair selected, or the pair is undefined)."""
        self.show([], [], pair=None, title=title)

    @property
    def rho(self) -> np.ndarray:
        """The canonical correlations drawn now (without padding)."""
        if not self.curve.visible:
            return np.zeros(0)
        return np.asarray(self.curve.y, dtype=np.float64)
