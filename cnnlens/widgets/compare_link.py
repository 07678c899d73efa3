"""CompareLink: the links of ``cl.Compare`` that must work without a kernel (twin: js/compare_link.js).

The widget holds references to the heatmap, both Lens grids, the spectrum marks
and the metric picker, and wires them in the browser: a heatmap click sets both
grids' ``layer`` and redraws the spectrum from spectra precomputed here; a grid's
layer highlights its heatmap row/column; the picker switches the matrix from
precomputed matrices when no kernel is there. It also shows the job's status and
errors in place. Links that need computation live in ``compare.py``.

>>> from cnnlens.widgets.compare_link import CompareLink
>>> link = CompareLink()
>>> link.spectra_shape
[]

The spectra and matrices travel packed by :func:`cnnlens.encode.pack_spectra` and
:func:`cnnlens.encode.pack_matrices`.
"""
from __future__ import annotations

import anywidget
import traitlets as t
from ipywidgets import Widget, widget_serialization

from .esm import bundle

__all__ = ["CompareLink"]

STATUSES = ("idle", "running", "done", "cancelled", "error")


def _ref():
    return t.Instance(Widget, allow_none=True).tag(sync=True, **widget_serialization)


class CompareLink(anywidget.AnyWidget):
    """Browser-side wiring and status line of a Compare widget.

    DOM (for tests and export): the element has class ``cnnlens-compare-link`` and
    ``data-pair="i,j"``, ``data-metric`` (the heatmap's), ``data-progress="done/total"``,
    ``data-status``, ``data-highlight-row``/``data-highlight-col`` and
    ``data-rendered="1"`` once the matrix is complete and the overlay below has every
    cell (bqplot draws its own cells on its own time, after the figure is attached).
    The heatmap figure gets an overlay of cnnlens's own (``svg.cnnlens-heatmap-overlay``,
    js/lib/heatmap_view.js; bqplot's cells are left alone): one ``rect.cnnlens-cell`` per
    cell with ``data-row``, ``data-col``, its tooltip text as ``aria-label`` and
    ``data-state`` ("pending", or "undefined": hatched), the printed values
    (``text.cnnlens-cell-value``) and the hover tip. The ``.cnnlens-spectrum`` figure
    gets ``data-pair``.

    Examples
    --------
    >>> link = CompareLink(status="running", progress_done=3, progress_total=10)
    >>> link.status
    'running'
    """

    _esm = bundle("compare_link")

    heatmap = _ref()
    """SimilarityHeatmap or None: the cells being clicked. Default None."""
    grid_a = _ref()
    """ActivationGrid or None: selection model of the Lens pane of model A. Default None."""
    grid_b = _ref()
    """ActivationGrid or None: selection model of the Lens pane of model B. Default None."""
    curve = _ref()
    """bqplot Lines or None: the spectrum curve of the selected pair. Default None."""
    baseline = _ref()
    """bqplot Lines or None: the random-data baseline of the selected pair. Default None."""
    spectrum = _ref()
    """Spectrum figure or None (its title and ``pair`` follow the selection). Default None."""
    heatmap_figure = _ref()
    """bqplot Figure or None: the heatmap's figure (its title names the metric). Default None."""
    picker = _ref()
    """ipywidgets Dropdown or None: the metric picker. Default None."""

    metrics = t.List(t.Unicode()).tag(sync=True)
    """list[str]: metric key of each picker option, in order (the Dropdown syncs an index;
    without a kernel the browser switches the heatmap to ``metrics[index]``). The metric
    shown lives in one place, the heatmap's ``metric``. Default []."""
    spectra = t.Bytes(b"").tag(sync=True)
    """bytes: float32 (La, Lb, K) canonical correlations per pair, NaN-padded. Default b""."""
    baselines = t.Bytes(b"").tag(sync=True)
    """bytes: float32 (La, Lb, K) random-data baseline per pair, same layout. Default b""."""
    spectra_shape = t.List(t.Int()).tag(sync=True)
    """list[int]: [La, Lb, K] of ``spectra``; [] when nothing is precomputed. Default []."""
    matrices = t.Bytes(b"").tag(sync=True)
    """bytes: float32 (M, La, Lb) matrices of ``matrix_metrics`` for kernel-less switching."""
    matrix_metrics = t.List(t.Unicode()).tag(sync=True)
    """list[str]: metric of each slab of ``matrices``. Default []."""
    matrix_reasons = t.Dict().tag(sync=True)
    """dict: metric -> {"i,j": reason} of undefined cells, for kernel-less switching."""
    progress_done = t.Int(0).tag(sync=True)
    """int: units of work done (batches, then pairs). Default 0."""
    progress_total = t.Int(0).tag(sync=True)
    """int: units of work in the current stage. Default 0."""
    stage = t.Unicode("").tag(sync=True)
    """str: "forward", "pairs", "spectra" or "" when idle. Default ""."""
    status = t.Enum(STATUSES, "idle").tag(sync=True)
    """str: one of idle, running, done, cancelled, error. Default "idle"."""
    complete = t.Bool(False).tag(sync=True)
    """bool: every cell of the matrix has its final value. Default False."""
    error = t.Unicode("").tag(sync=True)
    """str: error shown in place (``.cnnlens-error``); "" when all is well. Default ""."""
