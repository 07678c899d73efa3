"""CompareLink: the links of ``cl.Compare`` that must work without a kernel (twin: js/compare_link.js).

The widget holds references to the heatmap, both Lens grids, the spectrum marks
and the metric picker, and wires them in the browser: a heatmap click sets both
grids' ``layer`` and redraws the spectrum from spectra precomputed here; a grid's
layer highlights its heatmap row/column; the picker switches the matrix from
precomputed matrices when no kernel is there. It also shows the job's status and
errors in place. Links that need computation live in ``compare.py``.

>>> import numpy as np
>>> from cnnlens.widgets.compare_link import CompareLink, pack_spectra
>>> link = CompareLink()
>>> link.spectra_shape
[]
>>> buf, shape = pack_spectra({(0, 1): np.array([0.9, 0.5])}, 1, 2, k_max=4)
>>> shape, len(buf)
([1, 2, 2], 16)
"""
from __future__ import annotations

import anywidget
import numpy as np
import traitlets as t
from ipywidgets import Widget, widget_serialization

from .activation_grid import bundle

__all__ = ["CompareLink", "pack_matrices", "pack_spectra"]

STATUSES = ("idle", "running", "done", "cancelled", "error")


def pack_spectra(spectra: dict, la: int, lb: int, k_max: int = 256) -> tuple[bytes, list[int]]:
    """Pack ``{(i, j): vector}`` into one NaN-padded float32 buffer (La, Lb, K).

    K is the longest vector (at most ``k_max``; longer ones keep their first
    ``k_max`` values, the largest correlations). Pairs without a vector are all NaN.
    """
    k = min(max((len(np.ravel(v)) for v in spectra.values()), default=0), k_max)
    out = np.full((la, lb, max(k, 1)), np.nan, dtype=np.float32)
    for (i, j), v in spectra.items():
        v = np.asarray(v, dtype=np.float32).ravel()[:k]
        out[i, j, : len(v)] = v
    return out.tobytes(), [la, lb, max(k, 1)]


def pack_matrices(matrices: dict) -> tuple[bytes, list[str]]:
    """Stack ``{metric: (La, Lb) array}`` into one float32 buffer (M, La, Lb) + the metric order."""
    names = list(matrices)
    if not names:
        return b"", []
    stack = np.stack([np.asarray(matrices[m], dtype=np.float32) for m in names])
    return stack.tobytes(), names


def _ref():
    return t.Instance(Widget, allow_none=True).tag(sync=True, **widget_serialization)


class CompareLink(anywidget.AnyWidget):
    """Browser-side wiring and status line of a Compare widget.

    DOM (for tests and export): the element has class ``cnnlens-compare-link`` and
    ``data-pair="i,j"``, ``data-metric``, ``data-progress="done/total"``,
    ``data-status``, ``data-highlight-row``/``data-highlight-col`` and
    ``data-rendered="1"`` once the matrix is complete and every cell is drawn.
    Heatmap cells get a ``<title>`` tooltip and ``data-state`` ("pending" or
    "undefined", hatched). The ``.cnnlens-spectrum`` figure gets ``data-pair``.

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

    metric = t.Unicode("svcca").tag(sync=True)
    """str: the metric shown (mirrors the picker). Default "svcca"."""
    metrics = t.List(t.Unicode()).tag(sync=True)
    """list[str]: metric key of each picker option, in order (the Dropdown syncs an index)."""
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
