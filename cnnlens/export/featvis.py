"""Feature visualisations in an offline page: which channels, within which budgets.

A page carries the visualisations of the exported layers' channels in the neuron pane's
``vis_frames`` (:func:`cnnlens.views.featvis.vis_frames`); the footer and the
:class:`~cnnlens.export.page.ExportReport` say what was left out and why.
"""
from __future__ import annotations

__all__ = ["FEATVIS_MODES", "featvis_for_page"]

FEATVIS_MODES = ("cached", True, False)


def featvis_for_page(lens, names, featvis="cached", seconds=60.0,
                     max_bytes=None) -> tuple[dict, str, list[str]]:
    """``(vis_frames, footer text, left-out lines)`` for one Lens pane of a page.

    Parameters
    ----------
    lens : cnnlens.Lens
    names : list of str
        The exported layers; their conv and linear layers (and the selected layer, first)
        are visualised, with the pane's own settings (steps, seed).
    featvis : "cached", True or False
        ``"cached"``: only what was visualised already (free); True: also compute the rest,
        in layer order, for up to ``seconds`` (None: no limit); False: none.
    max_bytes : int, optional
        Raw image bytes the page can still take.
    """
    from ..views.featvis import vis_frames  # lazy: torch

    if featvis not in FEATVIS_MODES:
        raise ValueError(f"featvis must be 'cached', True or False, got {featvis!r}")
    if featvis is False:
        return {}, "", []
    tree = lens.inspector.layers
    layers = [n for n in dict.fromkeys([lens.layer, *names])
              if tree[n].shape is not None and (n == lens.layer or tree[n].kind in ("conv", "linear"))]
    frames, left = vis_frames(lens.inspector, layers, **lens.featvis_settings,
                              seconds=0 if featvis == "cached" else seconds, max_bytes=max_bytes)
    total = sum(tree[n].shape[0] for n in layers)
    done = sum(len(f["channels"]) // 4 for f in frames.values())
    text = f"feature visualisations: {done} of {total} channels"
    if left and featvis == "cached":
        text += " (those computed so far; to_html(featvis=True) computes the rest)"
    elif left:
        text += f" (left out: {'; '.join(left)})"
    return frames, text, left
