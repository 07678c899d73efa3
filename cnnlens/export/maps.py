"""Canonical maps in an offline Compare page: which pairs and images, within which budgets.

The page's maps view (:class:`~cnnlens.widgets.canonical_view.CanonicalView`) shows a
clicked cell's maps from its ``frames``: per exported pair the directions' payload
(:func:`cnnlens.encode.encode_canonical_pair`) and one image payload per exported image.
Each new pair costs one pass over the data (its directions; cached pairs are free), so
pairs are computed selected pair first, then row by row, until ``seconds`` or the page's
byte budget runs out; the footer and ``report.left_out`` say which pairs were left out.
"""
from __future__ import annotations

import time

__all__ = ["MAPS_MODES", "maps_for_page"]

MAPS_MODES = (True, "cached", False)


def _nbytes(obj) -> int:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return len(obj)
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    return 0


def maps_for_page(cmp, layers_a, layers_b, images, maps=True, seconds=60.0,
                  max_bytes=None) -> tuple[dict, str, list[str]]:
    """``(frames, footer text, left-out lines)`` for a Compare's maps view.

    Parameters
    ----------
    cmp : cnnlens.Compare
    layers_a, layers_b : list of str
        The exported rows and columns; their pairs are candidates.
    images : list of int
        The exported images (each pair gets the maps of every one).
    maps : True, "cached" or False
        True: compute pairs not computed yet (one pass each) within ``seconds`` (None: no
        limit); "cached": only pairs whose directions exist; False: none.
    max_bytes : int, optional
        Raw bytes the page can still take.
    """
    from ..views.maps import cca_metric  # lazy: torch

    if maps not in MAPS_MODES:
        raise ValueError(f"maps must be True, 'cached' or False, got {maps!r}")
    if maps is False or cmp.lens_a is None or cmp.lens_b is None:
        return {}, "", []
    job, k, metric = cmp.maps_job, cmp.maps.k, cca_metric(cmp.metric)
    rows, cols = list(cmp.heatmap.layers_a), list(cmp.heatmap.layers_b)
    pairs = [(rows.index(a), cols.index(b)) for a in layers_a for b in layers_b
             if a in rows and b in cols]
    if cmp.pair in pairs:  # what the page opens on, first
        pairs.remove(cmp.pair)
        pairs.insert(0, cmp.pair)
    frames, used, t0, why = {}, 0, time.perf_counter(), {}
    for i, j in pairs:
        la, lb = rows[i], cols[j]
        if not job.cached(la, lb, metric):
            if maps == "cached":
                why[i, j] = "not computed"
                continue
            if seconds is not None and time.perf_counter() - t0 > seconds:
                why[i, j] = "time budget"
                continue
        if max_bytes is not None and used > max_bytes:
            why[i, j] = "page budget"
            continue
        try:
            frame, shown = job.payloads((i, j), la, lb, metric, images, k)
            frame["images"] = {str(n): p for n, p in shown.items()}
        except Exception as exc:  # noqa: BLE001 - one undefined pair must not sink the page
            why[i, j] = f"error: {type(exc).__name__}: {exc}"
            continue
        frames[f"{i},{j}"] = frame
        used += _nbytes(frame)
    text = f"canonical maps: {len(frames)} of {len(pairs)} pairs x {len(images)} images"
    if why:
        reasons = sorted({w.split(":")[0] for w in why.values()})
        text += f" (left out: {len(why)} pairs, {', '.join(reasons)})"
        if maps == "cached":
            text += "; to_html(maps=True) computes the rest"
    left = [f"maps {rows[i]} x {cols[j]}: {w}" for (i, j), w in why.items()]
    return frames, text, left
