"""What a reader needs next to each score: its error, its chance level, the reference's score.

Computed from a finished result (``MatrixResult`` or the ``ReferenceResult`` of
``similarity_matrix(..., reference=C)``), without any widget, so that the Compare
widget, its exported page and scripts show the same numbers and sentences:

- :func:`below_chance`: cells whose score is not above their permutation chance
  level (by more than 1.96 standard errors where the cell has one), with the reason;
- :func:`cell_notes`: the tooltip lines of every cell (error, chance, reference);
- :func:`gap_series`: the per-layer gap chart's data (from :meth:`ReferenceResult.gap_table`).

>>> import torch
>>> from torch import nn
>>> from cnnlens.similarity import similarity_matrix
>>> from cnnlens.similarity.readout import below_chance, gap_series
>>> _ = torch.manual_seed(0)
>>> a = nn.Sequential(nn.Flatten(), nn.Linear(64, 8))
>>> res = similarity_matrix(a, nn.Sequential(nn.Flatten(), nn.Linear(64, 8)),
...                         torch.rand(30, 1, 8, 8), reference=a, metrics=("linear_cka",))
>>> below_chance(res, "linear_cka")[0, 0][:40]    # two random maps of noise: near chance
'not above chance: 0.216 against 0.186 wi'
>>> s = gap_series(res.gap_table("linear_cka"), res.layers_b)
>>> s["layers"], s["column"], s["score_c"]
(['1'], [0], [1.0])
"""
from __future__ import annotations

import math

import numpy as np

from .gap import t975
from .jackknife import JACKKNIFE_GROUPS

__all__ = ["below_chance", "cell_notes", "chance_levels", "difference_or_reason", "gap_series"]

#: a score within this many standard errors of its chance level is "not above chance"
CHANCE_SE = 1.96


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def chance_levels(res, metric: str) -> dict[tuple[int, int], float]:
    """``{(i, j): chance level}`` of the defined cells, computed once for :func:`below_chance`
    and :func:`cell_notes` (the CCA family's costs 20 CCAs a cell)."""
    return {(i, j): res.chance(metric, i, j)
            for i in range(len(res.layers_a)) for j in range(len(res.layers_b))
            if res.result(metric, i, j).defined}


def below_chance(res, metric: str, levels: dict | None = None) -> dict[tuple[int, int], str]:
    """``{(i, j): reason}`` for the defined cells not above their chance level.

    A cell is above chance when its score exceeds the permutation chance level (the
    mean score with the images shuffled, see ``MatrixResult.chance``) by more than
    ``CHANCE_SE`` standard errors (by anything, where the cell has no error). Cells
    whose chance level is unknown (the minibatch estimator) are left out. ``levels``:
    from :func:`chance_levels`, when already computed.
    """
    levels = chance_levels(res, metric) if levels is None else levels
    out = {}
    for i in range(len(res.layers_a)):
        for j in range(len(res.layers_b)):
            r = res.result(metric, i, j)
            if not r.defined:
                continue
            c = levels.get((i, j))
            if not _finite(c):
                continue
            margin = CHANCE_SE * r.se if _finite(r.se) else 0.0
            if r.score - c <= margin:
                how = f" (within {CHANCE_SE} x its error {r.se:.3f})" if margin else ""
                out[i, j] = (f"not above chance: {r.score:.3f} against {c:.3f} with the images "
                             f"shuffled{how}")
    return out


def difference_or_reason(res, metric: str) -> tuple[np.ndarray | None, str]:
    """(A~B minus A~C, "") when ``res`` has a reference with B's layers, else (None, why)."""
    ref = getattr(res, "reference", None)
    if ref is None:
        return None, "no reference model: pass reference=... to compare B with it"
    if not res.same_layers:
        return None, ("B and the reference have different layers: the gap chart matches them "
                      "per layer of A instead")
    return res.difference(metric), ""


def cell_notes(res, metric: str, below: dict | None = None, names=("B", "reference"),
               chance: bool = True, levels: dict | None = None) -> dict:
    """``{(i, j): text}``: the lines a cell's tooltip adds under its score.

    Its standard error, its chance level (unless ``chance=False``: for the CCA family it
    costs 20 CCAs per cell), and with a reference (same layers as B) the reference's score
    of the same layers and the difference.
    """
    if chance and levels is None:
        levels = chance_levels(res, metric)
    below = (below_chance(res, metric, levels) if chance else {}) if below is None else below
    ref = getattr(res, "reference", None)
    same = ref is not None and res.same_layers
    out = {}
    for i in range(len(res.layers_a)):
        for j in range(len(res.layers_b)):
            r = res.result(metric, i, j)
            if not r.defined:
                continue
            lines = []
            if same:
                c = ref.result(metric, i, j)
                lines.append(f"{names[0]} {_pm(r.score, r.se)} · {names[1]} {_pm(c.score, c.se)}")
                if c.defined:
                    lines.append(f"{names[0]} − {names[1]} = {r.score - c.score:+.3f}")
            elif _finite(r.se):
                lines.append(f"± {r.se:.3f} (standard error)")
            level = levels.get((i, j), float("nan")) if chance else float("nan")
            if _finite(level):
                lines.append(f"chance (images shuffled) {level:.3f}")
            if (i, j) in below:
                lines.append(below[i, j])
            if lines:
                out[i, j] = "\n".join(lines)
    return out


def _pm(score: float, se: float) -> str:
    if not _finite(score):
        return "undefined"
    return f"{score:.3f}" + (f" ± {se:.3f}" if _finite(se) else "")


def gap_series(table, columns: list[str]) -> dict:
    """The gap chart's data: per layer of A (depth order), both scores with 95% bands.

    Parameters
    ----------
    table : GapTable
        From ``ReferenceResult.gap_table(metric)``.
    columns : list of str
        The heatmap's layers of B: ``column[k]`` is the cell a click on layer k selects.

    Returns
    -------
    dict of lists
        ``layers``, ``score_b``, ``score_c``, ``low_b``/``high_b`` and ``low_c``/``high_c``
        (score +- t(0.975, G - 1) x the cell's error; the score itself where it has none),
        ``gap``, ``low``, ``high``, ``significant``, ``row`` and ``column`` (the heatmap cell
        of each point), ``tips``; ``method`` (str)
        and ``skipped`` (layers left out: a score undefined).
    """
    t = t975(JACKKNIFE_GROUPS - 1)
    res = table.result
    keys = ("layers", "score_b", "score_c", "low_b", "high_b", "low_c", "high_c", "gap", "low",
            "high", "significant", "row", "column", "tips")
    out = {k: [] for k in keys}
    out["skipped"] = [r.layer for r in table.rows
                      if not (_finite(r.score_b) and _finite(r.score_c))]
    for row in table.rows:
        if row.layer in out["skipped"]:  # undefined scores: no point to draw
            continue
        ses = []
        for side, match in (("b", row.match_b), ("c", row.match_c)):
            se = res.result(table.metric, row.layer, f"{side}.{match}").se
            ses.append(se if _finite(se) else 0.0)
        for side, score, se in (("b", row.score_b, ses[0]), ("c", row.score_c, ses[1])):
            out[f"score_{side}"].append(_num(score))
            out[f"low_{side}"].append(_num(score - t * se))
            out[f"high_{side}"].append(_num(score + t * se))
        out["layers"].append(row.layer)
        for k in ("gap", "low", "high"):
            out[k].append(_num(getattr(row, k)))
        out["significant"].append(bool(row.significant))
        out["row"].append(res.layers_a.index(row.layer))
        out["column"].append(columns.index(row.match_b) if row.match_b in columns else -1)
        out["tips"].append(
            f"{row.layer}: B {_pm(row.score_b, ses[0] or float('nan'))}"
            f" · reference {_pm(row.score_c, ses[1] or float('nan'))}\n"
            f"gap (reference − B) {row.gap:+.3f}, 95% [{row.low:+.3f}, {row.high:+.3f}]"
            + (" significant" if row.significant else " not significant")
            + ("" if row.match_b == row.layer else f"\nB's layer: {row.match_b} (best match)"))
    out["method"] = table.method
    return out


def _num(x) -> float | None:
    return float(x) if _finite(x) else None
