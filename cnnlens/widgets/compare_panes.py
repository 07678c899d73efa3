"""The two Lens panes of ``cl.Compare``: their names, their layers, and an error in place.

A model that cannot run on the data gets an error box instead of its pane, and every
heatmap cell says why, so the other pane and the page stay usable.
"""
from __future__ import annotations

import html

import ipywidgets as W

from ..views.errors import describe
from .lens import Lens

__all__ = ["layer_names", "make_pane", "model_names", "placeholder_reasons"]


def model_names(model_a, model_b, names=None) -> tuple[str, str]:
    """What the two models are called on axes, panes and tooltips.

    The given ``names``, else the class names, else (the same class twice, as in a
    real-vs-synthetic study) the class name with A and B.

    >>> import torch
    >>> model_names(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1))
    ('Linear A', 'Linear B')
    >>> model_names(None, None, names=("real", "synthetic"))
    ('real', 'synthetic')
    """
    if names is not None:
        names = tuple(str(n) for n in names)
        if len(names) != 2 or not all(names):
            raise ValueError(f"names must be two non-empty names, got {names!r}")
        return names
    a, b = type(model_a).__name__, type(model_b).__name__
    return (a, b) if a != b else (f"{a} A", f"{a} B")


def make_pane(side: str, model, data, opts: dict, name: str):
    """(Lens or None, pane, error): a Lens pane, or an error box when the model cannot run."""
    kind = type(model).__name__
    where = "rows" if side == "A" else "columns"
    title = W.HTML(f"<b>{html.escape(name)}</b>"
                   + ("" if kind in name else f" · {html.escape(kind)}")
                   + f" · model {side}, the heatmap's {where}")
    # Compact (the selected layer's grid and the neuron detail; the full Lens one click
    # away, compare_link.js): both panes side by side from about 1150 px, so one laptop
    # screen holds heatmap, spectrum and both grids; stacked when narrower.
    layout = W.Layout(flex="1 1 540px", min_width="0", overflow="auto")
    try:
        lens = Lens(model, data, **opts)
        pane = W.VBox([title, lens], layout=layout)
        pane.add_class("cnnlens-compare-pane")
        pane.add_class("cnnlens-compact")
        return lens, pane, ""
    except TypeError as exc:  # bad lens_options: the caller's mistake, not the model's
        if "unknown keyword" in str(exc):
            raise
        err = f"model {side}: {describe(exc)}"
    except Exception as exc:  # noqa: BLE001 - failing forward, NaN layer, bad input: show it
        err = f"model {side}: {describe(exc)}"
    box = W.HTML(f"<pre>{html.escape(err)}</pre>")
    box.add_class("cnnlens-error")
    return None, W.VBox([title, box], layout=layout), err


def layer_names(lens, layers, side: str) -> list[str]:
    """The heatmap's rows (side "A") or columns ("B"): the selected layers with an output."""
    if lens is None:
        return [f"({side} failed)"]
    names = [x.name for x in lens.inspector.layers.select(layers) if x.shape is not None]
    if not names:
        raise ValueError(f"layers_{side.lower()}={layers!r} selects no layer with an output")
    return names


def placeholder_reasons(names, errors) -> dict:
    """Every cell's reason when a pane failed (the matrix cannot be computed)."""
    err = "; ".join(e for e in errors if e)
    if not err:
        return {}
    return {(i, j): err for i in range(len(names[0])) for j in range(len(names[1]))}
