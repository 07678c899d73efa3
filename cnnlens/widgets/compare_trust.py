"""The trust views of ``cl.Compare``: warnings, chance hatching, the difference mode, the gap chart.

Composition, not a mixin: :class:`TrustViews` gets the heatmap and its figure in its
constructor (the metric shown is the heatmap's ``metric``), owns the :class:`~.trust_link.TrustLink` and (with a
reference model) the :class:`~.gap_chart.GapChart`, and fills them from a finished
result with :mod:`cnnlens.similarity.readout` (the views compute nothing). ``compare.py``
calls :meth:`show` when the pass ends and :meth:`switch` when the metric changes.
"""
from __future__ import annotations

import numpy as np

from ..encode import pack_matrices
from ..similarity.datasets import DatasetResults
from ..similarity.plan import FAMILY
from ..similarity.readout import (
    below_chance,
    cell_notes,
    chance_levels,
    difference_or_reason,
    gap_series,
)
from ..views.errors import describe
from .gap_chart import GapChart
from .trust_link import TrustLink

__all__ = ["TrustViews"]

#: below this many cells every metric's notes, hatching and gap series are precomputed at
#: the end of the pass (the exported page switches metric without a kernel); above, the
#: current metric's only, the others on a switch
ALL_METRICS_UP_TO = 400
#: the CCA family's chance level is the mean of 20 shuffled CCAs per cell
#: (``trust.PERMUTATIONS``): computed for every cell only up to this many cells (the
#: heatmap's, or the gap chart's two per row), and for other metrics than the one shown
#: only then; the CKA family's is a closed form, always computed
CCA_CHANCE_UP_TO = 64


def _pack(cells: dict) -> dict:
    return {f"{i},{j}": str(v) for (i, j), v in cells.items()}


class TrustViews:
    """Warnings, chance hatching, difference mode and gap chart of one Compare.

    Parameters
    ----------
    heatmap, heatmap_figure
        The Compare's heatmap (its ``metric`` is the one shown) and its figure.
    labels : dict
        Metric key -> name people read, in the picker's order.
    names : (str, str, str)
        Names of A, B and the reference.
    reference : bool
        Whether a reference model is compared (then the gap chart exists).
    datasets : list of str, optional
        Names of the datasets of ``data={...}`` (then the views switch among them).
    """

    def __init__(self, heatmap, heatmap_figure, labels: dict, names, reference: bool,
                 datasets=()):
        self.heatmap, self.labels = heatmap, dict(labels)
        self.names = tuple(names)
        self.chart = GapChart(self.names) if reference else None
        self.link = TrustLink(heatmap=heatmap, heatmap_figure=heatmap_figure,
                              chart=self.chart, metrics=list(labels), labels=self.labels,
                              names=list(self.names), datasets=list(datasets),
                              dataset=datasets[0] if datasets else "",
                              difference_reason="" if reference else
                              "no reference model: pass reference=... to Compare")
        self._result = None

    @property
    def mode(self) -> str:
        return self.link.mode

    def _key(self, metric: str, dataset: str | None = None) -> str:
        """Key of one metric's data: ``"dataset|metric"`` with several datasets."""
        dataset = self.link.dataset if dataset is None else dataset
        return f"{dataset}|{metric}" if self.link.datasets else metric

    def clear(self) -> None:
        """Forget the last result (a new pass starts)."""
        self._result = None
        with self.link.hold_sync():
            self.link.per_metric, self.link.warnings = {}, []
            self.link.scores = self.link.differences = b""
            self.link.matrix_metrics, self.link.shape = [], []
        self.heatmap.notes = {}
        if self.chart is not None:
            self.chart.show(None)

    def show(self, result, metric: str, all_metrics: bool | None = None) -> None:
        """Fill every view from a finished ``result`` (every metric when the matrix is small)."""
        self._result = result
        cells = len(result.layers_a) * len(result.layers_b)
        if all_metrics is None:
            all_metrics = cells <= ALL_METRICS_UP_TO
        cheap = [m for m in self.labels if m == metric or self._cheap(result, m)]
        metrics = cheap if all_metrics else [metric]
        several = isinstance(result, DatasetResults)
        subs = {n: result[n] for n in result.names} if several else {None: result}
        per, warnings, scores, diffs, reason = {}, [], {}, {}, ""
        for dataset, sub in subs.items():
            said = f"on {dataset}: " if several else ""
            warnings += [said + w for w in getattr(sub, "warnings", [])]
            for m in metrics:
                key = self._key(m, dataset)
                try:
                    per[key] = self._one(sub, m)
                except Exception as exc:  # noqa: BLE001 - one metric's trouble must not hide the rest
                    warnings.append(f"{said}{self.labels.get(m, m)}: no error, chance or gap "
                                    f"here ({describe(exc)})")
                    continue
                diff, reason = (difference_or_reason(sub, m) if self.chart is not None
                                else (None, ""))
                if several or diff is not None:  # the browser switches among these
                    scores[key] = sub.matrix(m)
                if diff is not None:
                    diffs[key] = diff
        if diffs and len(diffs) != len(scores):
            scores = {k: v for k, v in scores.items() if k in diffs}  # one order for both
        s_buf, order = pack_matrices(scores)
        d_buf, _ = pack_matrices(diffs)
        with self.link.hold_sync():
            self.link.shape = [len(result.layers_a), len(result.layers_b)]
            self.link.scores, self.link.differences, self.link.matrix_metrics = s_buf, d_buf, order
            if self.chart is not None:
                self.link.difference_reason = reason
            self.link.warnings = warnings
            self.link.per_metric = per
        self._current(metric)

    def switch(self, metric: str) -> None:
        """The picker moved: show that metric's notes and gap (computed now if missing)."""
        if self._result is None:
            return
        if self._key(metric) not in self.link.per_metric:
            self.show(self._result, metric, all_metrics=False) if not self.link.per_metric else \
                self._add(metric)
            return
        self._current(metric)

    def _add(self, metric):
        per, key = dict(self.link.per_metric), self._key(metric)
        res = self._result
        per[key] = self._one(res, metric)
        if getattr(res, "reference", None) is not None:
            diff, _ = difference_or_reason(res, metric)
            if diff is not None:
                order = [*self.link.matrix_metrics, key]
                scores = {m: s for m, s in zip(self.link.matrix_metrics,
                                               self._unpack(self.link.scores), strict=True)}
                diffs = {m: s for m, s in zip(self.link.matrix_metrics,
                                              self._unpack(self.link.differences), strict=True)}
                scores[key], diffs[key] = res.matrix(metric), diff
                with self.link.hold_sync():
                    self.link.scores, order = pack_matrices({m: scores[m] for m in order})
                    self.link.differences, _ = pack_matrices({m: diffs[m] for m in order})
                    self.link.matrix_metrics = order
        self.link.per_metric = per
        self._current(metric)

    def _unpack(self, buf):
        la, lb = self.link.shape
        return np.frombuffer(buf, dtype=np.float32).reshape(-1, la, lb)

    @staticmethod
    def _cheap(result, metric) -> bool:
        """Whether every cell's chance level of ``metric`` is cheap here (see CCA_CHANCE_UP_TO)."""
        return FAMILY[metric] == "cka" or \
            len(result.layers_a) * len(result.layers_b) <= CCA_CHANCE_UP_TO

    def _one(self, result, metric) -> dict:
        chance = self._cheap(result, metric)
        levels = chance_levels(result, metric) if chance else {}
        below = below_chance(result, metric, levels) if chance else {}
        notes = cell_notes(result, metric, below, names=self.names[1:], chance=chance,
                           levels=levels)
        out = {"notes": _pack(notes), "faint": _pack(below), "gap": None}
        if self.chart is not None and (chance or 2 * len(result.layers_a) <= CCA_CHANCE_UP_TO):
            out["gap"] = gap_series(result.gap_table(metric), list(result.layers_b))
        return out

    def select(self, dataset: str, metric: str) -> None:
        """Show one dataset's notes and gap (the result's ``selected`` is switched by Compare)."""
        self.link.dataset = dataset
        self._current(metric)

    def _current(self, metric):
        data = self.link.per_metric.get(self._key(metric)) or {}
        self.heatmap.notes = data.get("notes", {})
        if self.chart is not None:
            label = self.labels.get(metric, metric)
            if data and data.get("gap") is None:  # left out: 20 CCAs per cell for its chance
                self.chart.show({"layers": []}, label,
                                why=f"not drawn for {label} here, see cl.gap_table")
            else:
                self.chart.show(data.get("gap"), label)
