"""TrustLink: how far the heatmap's cells can be trusted, in the browser (twin: js/trust_link.js).

Shows the result's warnings above the heatmap (``MatrixResult.warnings``, e.g. too few
images for the layers' width), hatches the cells not above their chance level (the reason
is in the cell's tooltip), and, with a reference model, offers the difference mode
(the heatmap shows A~B minus A~C) and links the per-layer gap chart to the heatmap: a
click on a point selects that layer's cell, so both panes follow. Everything it shows
is precomputed per metric in :mod:`cnnlens.similarity.readout` (by ``compare_trust.py``),
so it works the same in an exported page without a kernel.

>>> link = TrustLink(warnings=["64 images for layers up to 512 wide: scores near 1"])
>>> link.mode
'scores'
"""
from __future__ import annotations

import anywidget
import traitlets as t
from ipywidgets import Widget, widget_serialization

from .activation_grid import bundle

__all__ = ["MODES", "TrustLink"]

MODES = ("scores", "difference")


def _ref():
    return t.Instance(Widget, allow_none=True).tag(sync=True, **widget_serialization)


class TrustLink(anywidget.AnyWidget):
    """Warnings, chance hatching, difference mode and the gap chart's link of a Compare.

    DOM (for tests and export): class ``cnnlens-trust``, ``data-mode``, ``data-metric``,
    ``data-faint`` (number of hatched cells), ``data-ready="1"`` once the current
    metric's data are there; warnings in ``.cnnlens-warnings li``; the mode buttons
    ``button[data-mode]``, the dataset buttons ``button[data-dataset]`` (``data-dataset``).
    The heatmap's overlay (js/lib/heatmap_view.js) hatches the cells not above chance: their
    ``rect.cnnlens-cell`` gets ``data-chance="below"``.

    Examples
    --------
    >>> TrustLink(mode="difference").mode
    'difference'
    """

    _esm = bundle("trust_link")

    heatmap = _ref()
    """SimilarityHeatmap or None: the cells to hatch and recolour; its ``metric`` says which
    metric's data to show. Default None."""
    heatmap_figure = _ref()
    """bqplot Figure or None: the heatmap's (its title names the mode). Default None."""
    chart = _ref()
    """GapChart or None: the per-layer gap chart. Default None."""

    metrics = t.List(t.Unicode()).tag(sync=True)
    """list[str]: metric key of each picker option, in order. Default []."""
    labels = t.Dict().tag(sync=True)
    """dict: metric key -> name people read ("linear CKA"). Default {}."""
    names = t.List(t.Unicode(), default_value=["A", "B", "reference"]).tag(sync=True)
    """[str, str, str]: names of A, B and the reference. Default ["A", "B", "reference"]."""
    warnings = t.List(t.Unicode()).tag(sync=True)
    """list[str]: plain sentences shown above the heatmap. Default []."""
    per_metric = t.Dict().tag(sync=True)
    """dict: metric -> {"notes": {"i,j": str}, "faint": {"i,j": reason}, "gap": series or
    None}; the metrics computed so far (all of them for small matrices). Default {}."""
    shape = t.List(t.Int()).tag(sync=True)
    """list[int]: [La, Lb] of the matrices. Default []."""
    scores = t.Bytes(b"").tag(sync=True)
    """bytes: float32 (M, La, Lb) A~B of ``matrix_metrics`` (restored after a difference, and
    switched among datasets without a kernel)."""
    differences = t.Bytes(b"").tag(sync=True)
    """bytes: float32 (M, La, Lb) A~B minus A~C of ``matrix_metrics``. Default b""."""
    matrix_metrics = t.List(t.Unicode()).tag(sync=True)
    """list[str]: metric of each slab of ``scores`` and ``differences``. Default []."""
    difference_reason = t.Unicode("no reference model: pass reference=... to Compare").tag(
        sync=True)
    """str: why the difference mode is off ("" when it is available)."""
    datasets = t.List(t.Unicode()).tag(sync=True)
    """list[str]: names of the datasets of ``data={...}`` ([] for one dataset); with several,
    the keys of ``per_metric`` and ``matrix_metrics`` are "dataset|metric". Default []."""
    dataset = t.Unicode("").tag(sync=True)
    """str: the dataset shown (one of ``datasets``; "" for one dataset). Default ""."""
    spectra_dataset = t.Unicode("").tag(sync=True)
    """str: the dataset whose spectra the page holds (the panes show the first one's images);
    said next to the dataset buttons. Default ""."""
    mode = t.Enum(MODES, "scores").tag(sync=True)
    """str: "scores" (A~B) or "difference" (A~B minus A~C). Default "scores"."""
