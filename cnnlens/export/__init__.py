"""Teaching export: a page that renders cnnlens views from saved state, offline, with no kernel.

>>> from cnnlens.export import export_lens
>>> report = export_lens(lens, "lesson.html", layers=["conv1", "layer1"], images=[0, 1, 2])
>>> print(report)                                            # doctest: +SKIP
wrote lesson.html (1.3 MB) + lesson_files/ (5.2 MB of shared assets)

What is written, for a page ``lesson.html``:

``lesson.html``
    The page, with the widget state embedded as JSON (binary tiles base64). Every activation
    grid frame of the exported layers x images is precomputed as uint8 tiles (the grid's
    ``frames``), so switching among them needs no kernel; links between views live in
    JavaScript and keep working. Its footer states the size of the embedded state.
``lesson_files/``
    One sibling folder of assets (see :mod:`cnnlens.export.page`): the widget manager and
    ``require.js`` (vendored at build time) and the AMD bundles of anywidget/bqplot/bqscales
    from the installed wheels. Nothing is fetched from the network. Copy both to a course
    site (Jupyter Book / MyST: put them under ``_static/`` and link or ``<iframe>`` the page).

A notebook saved with widget state renders offline with the same loader::

    python -m cnnlens.export notebook.ipynb notebook.html             # state saved by Lab
    python -m cnnlens.export notebook.ipynb notebook.html --execute   # run it first
"""
from __future__ import annotations

import warnings

from .featvis import featvis_for_page
from .maps import maps_for_page
from .page import DEFAULT_MAX_BYTES, ExportBudgetError, ExportReport, budget_error, export_widgets

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ExportBudgetError",
    "ExportReport",
    "export_compare",
    "export_lens",
    "export_notebook",
    "export_widgets",
    "lens_frames",
    "lens_view_frames",
]


def export_notebook(notebook, path, **kwargs) -> ExportReport:
    """See :func:`cnnlens.export.notebook.export_notebook`."""
    from .notebook import export_notebook as _export

    return _export(notebook, path, **kwargs)


def _layer_names(lens, layers) -> list[str]:
    offered = list(lens.grid.layers)
    if layers is None:
        return offered
    names = [layers] if isinstance(layers, str) else list(layers)
    unknown = [n for n in names if n not in offered]
    if unknown:
        raise KeyError(f"cannot export layer(s) {unknown}: not shown by this Lens; "
                       f"its layers are {offered}")
    return names


def _image_indices(lens, images) -> list[int]:
    n = len(lens.images)
    idx = [lens.image_index] if images is None else (
        [images] if isinstance(images, int) else list(images))
    bad = [i for i in idx if not (isinstance(i, int) and 0 <= i < n)]
    if bad:
        raise IndexError(f"cannot export image(s) {bad}: the Lens has {n} images (0..{n - 1})")
    return list(dict.fromkeys(idx))


def lens_frames(lens, layers=None, images=None, *, max_bytes=None, base_bytes=0) -> dict:
    """``{"layer|image": payload}`` for one Lens pane, encoded as its live grid encodes them.

    With ``max_bytes``, the page size is estimated after the first image (frames of one
    image x all layers) and :class:`ExportBudgetError` is raised before computing the rest.
    """
    from ..views.grid import image_frames  # lazy, as every heavy import here: torch

    names, idx = _layer_names(lens, layers), _image_indices(lens, images)
    frames = {}
    for n, i in enumerate(idx):  # the live grid's builder, one forward per image
        frames.update(image_frames(lens.inspector, names, i, sort=lens.grid.sort))
        if n == 0 and max_bytes is not None:
            first = sum(len(v) for p in frames.values() for v in p.values()
                        if isinstance(v, bytes))
            estimate = base_bytes + first * len(idx) * 4 // 3
            if estimate > max_bytes:
                raise budget_error(estimate, max_bytes, {lens.grid: frames},
                                   per=f"per image, x{len(idx)} images")
    return frames


def raw_bytes(obj) -> int:
    """Binary bytes in a (nested) payload; base64 in the page makes them 4/3 as many."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return len(obj)
    if isinstance(obj, dict):
        return sum(raw_bytes(v) for v in obj.values())
    return 0


def lens_view_frames(lens, layers=None) -> dict:
    """Filter view and neuron detail tables of one Lens pane for a page with no kernel.

    Per exported layer (and the selected one, whose histogram the page draws too): the
    filter payload and weight histogram (:func:`~cnnlens.views.filters.filter_frames`)
    and the top-k images of every channel (:func:`~cnnlens.views.detail.top_frames`).
    Returns ``{widget: {trait: value}}`` for :func:`export_widgets`.
    """
    from ..views.detail import top_frames
    from ..views.filters import filter_frames

    names = list(dict.fromkeys([*_layer_names(lens, layers), lens.layer]))
    filters, weights = filter_frames(lens.inspector, names)
    tops, thumbs = top_frames(lens.inspector, names, k=lens.detail.k, by=lens.detail.by)
    return {lens.filters: {"frames": filters, "frame_weights": weights},
            lens.detail: {"frames": tops, "frame_images": thumbs}}


def export_lens(lens, path, layers=None, images=None, *, max_bytes=DEFAULT_MAX_BYTES,
                title="cnnlens Lens", featvis="cached", featvis_seconds=60.0) -> ExportReport:
    """Write a Lens as an offline page (``lens.to_html``).

    Parameters
    ----------
    lens : cnnlens.Lens
    path : str or Path
        The page; assets go to ``<stem>_files/`` beside it.
    layers : list of str, optional
        Layers a student can switch among (default: every layer the Lens offers).
    images : int or list of int, optional
        Images a student can switch among (default: the selected one).
    max_bytes : int or None
        Budget of the page's embedded state (default 25 MB); :class:`ExportBudgetError`
        names the overrun and the largest layers when the selection would exceed it.
    featvis : "cached", True or False
        Feature visualisations of the exported conv/linear layers' channels in the neuron
        pane: ``"cached"`` (default) those computed already, True also the rest for up to
        ``featvis_seconds`` (None: no limit), within what ``max_bytes`` leaves; the footer
        and ``report.left_out`` say what was left out (see :mod:`cnnlens.export.featvis`).
    """
    lens.wait()  # a ranking still running would be saved as pending: no top images offline
    views = lens_view_frames(lens, layers)
    frames = {lens.grid: lens_frames(lens, layers, images, max_bytes=max_bytes,
                                     base_bytes=raw_bytes(views) * 4 // 3)}
    n_layers, n_images = len(_layer_names(lens, layers)), len(_image_indices(lens, images))
    left_bytes = None if max_bytes is None else max(0, max_bytes * 3 // 4 - raw_bytes(
        views) - raw_bytes(frames[lens.grid]))  # raw bytes: base64 makes them 4/3
    vis, vis_note, left = featvis_for_page(lens, _layer_names(lens, layers), featvis,
                                           featvis_seconds, left_bytes)
    views[lens.detail]["vis_frames"] = vis
    report = export_widgets([lens], path, title=title, max_bytes=max_bytes, frames=frames,
                            traits=views, drop=[lens.histogram],
                            note=f"{n_layers} layers x {n_images} images"
                            + (f"; {vis_note}" if vis_note else ""))
    report.left_out = left
    return report


def _wait_complete(cmp, timeout):
    """The similarity job runs in a thread; the page must hold the finished matrix."""
    if not cmp.wait(timeout):  # re-raises a failed job's error
        link = cmp.link
        raise RuntimeError(f"cannot export an unfinished comparison ({link.status}: "
                           f"{link.progress_done}/{link.progress_total} {link.stage}); "
                           "run it to the end (cmp.run(); cmp.wait()) first")
    if not cmp.link.spectra_shape:
        warnings.warn("this Compare has no precomputed spectra (precompute=False, or more than "
                      "400 cells with precompute='auto'): in the page, clicking a cell switches "
                      "the panes but cannot redraw the spectrum; use Compare(..., "
                      "precompute=True)", stacklevel=3)


def export_compare(cmp, path, layers=None, images=None, *, max_bytes=DEFAULT_MAX_BYTES,
                   title="cnnlens Compare", timeout=600, featvis="cached",
                   featvis_seconds=60.0, maps=True, maps_seconds=60.0) -> ExportReport:
    """Write a Compare (heatmap, spectrum, both Lens panes) as an offline page (``cmp.to_html``).

    Parameters
    ----------
    cmp : cnnlens.Compare
    path : str or Path
    layers : (list, list), optional
        Layers of A and of B to precompute frames for (default: the heatmap's rows and
        columns, so every cell a student clicks shows both panes).
    images : int or list of int, optional
        Images to switch among (default: the selected one of each pane).
    max_bytes : int or None
        Budget of the embedded state (default 25 MB), see :func:`export_lens`.
    timeout : float
        Seconds to wait for a running similarity job to finish.
    featvis, featvis_seconds
        Feature visualisations in each pane's neuron detail, see :func:`export_lens`
        (``featvis_seconds`` per pane).
    maps, maps_seconds
        Canonical maps of the exported pairs on the exported images, shown when a cell
        is clicked (see :mod:`cnnlens.export.maps`): True (default) computes pairs not
        computed yet, one pass over the data each, for up to ``maps_seconds`` (None: no
        limit) and within what ``max_bytes`` leaves; "cached" only those computed; False
        none. The footer and ``report.left_out`` name the pairs left out.
    """
    _wait_complete(cmp, timeout)
    for lens in (cmp.lens_a, cmp.lens_b):
        if lens is not None:
            lens.wait()
    layers_a, layers_b = layers if layers is not None else (cmp.heatmap.layers_a,
                                                            cmp.heatmap.layers_b)
    shown_a = [n for n in layers_a if n in cmp.lens_a.grid.layers]
    shown_b = [n for n in layers_b if n in cmp.lens_b.grid.layers]
    views = {**lens_view_frames(cmp.lens_a, shown_a), **lens_view_frames(cmp.lens_b, shown_b)}
    used = raw_bytes(views) * 4 // 3
    frames = {cmp.lens_a.grid: lens_frames(cmp.lens_a, shown_a, images, max_bytes=max_bytes,
                                           base_bytes=used)}
    used += raw_bytes(frames[cmp.lens_a.grid]) * 4 // 3
    frames[cmp.lens_b.grid] = lens_frames(cmp.lens_b, shown_b, images, max_bytes=max_bytes,
                                          base_bytes=used)
    used += raw_bytes(frames[cmp.lens_b.grid]) * 4 // 3
    n_images = len(_image_indices(cmp.lens_a, images))
    notes, left = [f"{len(layers_a)} x {len(layers_b)} layers, {n_images} images"], []
    for side, lens, shown in (("A", cmp.lens_a, shown_a), ("B", cmp.lens_b, shown_b)):
        budget = None if max_bytes is None else max(0, (max_bytes - used) * 3 // 4)
        vis, text, out = featvis_for_page(lens, shown, featvis, featvis_seconds, budget)
        views[lens.detail]["vis_frames"] = vis
        used += raw_bytes(vis) * 4 // 3
        notes += [f"{side}: {text}"] if text else []
        left += [f"{side} {line}" for line in out]
    budget = None if max_bytes is None else max(0, (max_bytes - used) * 3 // 4)
    shown = list(dict.fromkeys(_image_indices(cmp.lens_a, images)
                               + _image_indices(cmp.lens_b, images)))
    cmaps, text, out = maps_for_page(cmp, shown_a, shown_b, shown, maps, maps_seconds, budget)
    views[cmp.maps] = {"frames": cmaps, "frames_left_out": text if out else ""}
    notes += [text] if text else []
    left += out
    report = export_widgets([cmp], path, title=title, max_bytes=max_bytes, frames=frames,
                            traits=views, drop=[cmp.lens_a.histogram, cmp.lens_b.histogram],
                            note="; ".join(notes))
    report.left_out = left
    return report
