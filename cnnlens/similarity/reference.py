"""A reference model next to B: A~B and A~C from one pass (``similarity_matrix(..., reference=C)``).

B and C run as the two halves of one module next to A (:class:`.gap._Both`), so A's
statistics are computed once and serve both comparisons, and every cell of both
comes from the same images (their jackknife groups match: the gap has its own error).
The result reads as the A~B matrix (every ``MatrixResult`` accessor, columns = layers
of B), with the A~C one at ``.reference``, ``difference(metric)`` where B and C have
the same layers, and ``gap_table(metric)``: one row per layer of A.

>>> import torch
>>> from torch import nn
>>> from cnnlens.similarity import similarity_matrix
>>> def net(seed):
...     torch.manual_seed(seed)
...     return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 5))
>>> res = similarity_matrix(net(0), net(1), torch.rand(40, 1, 8, 8), reference=net(0),
...                         metrics=("linear_cka",))
>>> res.layers_b, res.reference.layers_b, res.reference.matrix("linear_cka").diagonal()
(['0', '3'], ['0', '3'], array([1., 1.]))
>>> bool((res.difference("linear_cka").diagonal() < 0).all())   # B is less like A than C is
True
"""
from __future__ import annotations

import re

import numpy as np

from .gap import GapTable, _Both, _example, gap_rows

__all__ = ["ReferenceResult", "with_reference"]


class _Columns:
    """A~X as a ``MatrixResult``: the columns ``offset .. offset + len(names)`` of the pass."""

    def __init__(self, whole, offset: int, names: list[str]):
        self.whole, self.offset = whole, offset
        self.layers_a, self.layers_b = list(whole.layers_a), list(names)

    # what a MatrixResult holds, read through
    metrics = property(lambda self: self.whole.metrics)
    n = property(lambda self: self.whole.n)
    plan = property(lambda self: self.whole.plan)
    keep = property(lambda self: self.whole.keep)
    side = property(lambda self: self.whole.side)
    sigma = property(lambda self: self.whole.sigma)

    @property
    def complete(self) -> bool:
        return self.whole.complete

    def _j(self, j) -> int:
        return self.offset + self.whole._index(self.layers_b, j)

    def _i(self, i) -> int:
        return self.whole._index(self.layers_a, i)

    def _cols(self, array: np.ndarray) -> np.ndarray:
        return array[:, self.offset:self.offset + len(self.layers_b)]

    def matrix(self, metric: str) -> np.ndarray:
        """(La, Lb) values of ``metric``; NaN where undefined (see :meth:`reason`)."""
        return self._cols(self.whole.matrix(metric))

    def se(self, metric: str) -> np.ndarray:
        """(La, Lb) standard errors; NaN where the form gives none."""
        return self._cols(self.whole.se(metric))

    def result(self, metric: str, i, j):
        return self.whole.result(metric, self._i(i), self._j(j))

    def reason(self, metric: str, i, j):
        return self.whole.reason(metric, self._i(i), self._j(j))

    def spectrum(self, i, j) -> np.ndarray:
        return self.whole.spectrum(self._i(i), self._j(j))

    def baseline(self, i, j) -> np.ndarray:
        return self.whole.baseline(self._i(i), self._j(j))

    def chance(self, metric: str, i=None, j=None):
        """Chance level of cell (i, j), or the (La, Lb) array (see ``MatrixResult.chance``)."""
        if i is None and j is None:
            return np.array([[self.chance(metric, a, b) for b in range(len(self.layers_b))]
                             for a in range(len(self.layers_a))])
        return self.whole.chance(metric, self._i(i), self._j(j))

    def convention(self, metric: str, estimated=None) -> str:
        return self.whole.convention(metric, estimated)

    @property
    def warnings(self) -> list[str]:
        """The pass's warnings, layer names as the user wrote them."""
        return [_plain(w) for w in self.whole.warnings]

    def __repr__(self):
        return (f"{type(self).__name__}({len(self.layers_a)}x{len(self.layers_b)} layers, "
                f"n={self.n}, metrics={self.metrics}, complete={self.complete})")


def _plain(text: str) -> str:
    # the pass names B's and C's layers "b.<name>" and "c.<name>" (halves of one module)
    text = re.sub(r"'b\.([^']*)'", r"'\1'", text)
    text = re.sub(r"'c\.([^']*)'", r"'\1' (reference)", text)
    return text.replace("model_b", "model_b or the reference")


class ReferenceResult(_Columns):
    """Similarity of A to B (this object, as a ``MatrixResult``) and to a reference C.

    Attributes
    ----------
    reference : the A~C result, same accessors (``matrix``, ``se``, ``chance``, ...)
    same_layers : bool
        B and C have the same layers (then :meth:`difference` is defined).
    whole : MatrixResult
        The pass itself: A's layers against ``b.*`` and ``c.*``.
    """

    def __init__(self, whole, layers_b: list[str], layers_c: list[str], rows=None):
        super().__init__(whole, 0, layers_b)
        self.reference = _Columns(whole, len(layers_b), layers_c)
        self.same_layers = list(layers_b) == list(layers_c)
        self._rows = rows  # (names of A, B's matchable names, C's) for the gap table

    def difference(self, metric: str) -> np.ndarray:
        """(La, Lb) A~B minus A~C, cell by cell (B and C must have the same layers)."""
        if not self.same_layers:
            raise ValueError("difference() needs B and the reference to have the same layers; "
                             f"B has {self.layers_b}, the reference {self.reference.layers_b}")
        return self.matrix(metric) - self.reference.matrix(metric)

    def gap_table(self, metric: str) -> GapTable:
        """One row per layer of A: its score with B and with C, the gap and its interval."""
        names, named_b, named_c = self._rows
        return gap_rows(self.whole, metric, names, self.layers_b, named_b,
                        self.reference.layers_b, named_c)

    def save(self, path) -> None:
        """Write the whole pass (columns ``b.*`` and ``c.*``); see ``MatrixResult.save``."""
        self.whole.save(path)

    def __repr__(self):
        return (f"ReferenceResult({len(self.layers_a)}x{len(self.layers_b)} layers of B, "
                f"{len(self.reference.layers_b)} of the reference, n={self.n}, "
                f"metrics={self.metrics}, complete={self.complete})")


def _progress(report, la: int, lb: list, lc: list, rows):
    """The engine's progress, read as A~B's: its ``result`` the view, ``done`` its cells."""
    if report is None or isinstance(report, str) or report is True:
        return report
    view = [None]

    def inner(info):
        whole = info.get("result")
        if whole is not None and (view[0] is None or view[0].whole is not whole):
            view[0] = ReferenceResult(whole, lb, lc, rows)
        info = dict(info, result=view[0])
        lb_, lc_ = len(lb), len(lc)
        if info["stage"] == "pairs":  # the pass fills row-major over B's and C's columns
            full, rest = divmod(info["done"], lb_ + lc_)
            info["done"], info["total"] = full * lb_ + min(rest, lb_), la * lb_
        report(info)
    return inner


def with_reference(engine, model_a, model_b, data, reference, layers_a=None, layers_b=None,
                   layers_c=None, progress=None, dry_run=False, **options):
    """``engine(model_a, B and C as one module, ...)`` read as A~B with A~C at ``.reference``.

    ``layers_c``: layers of the reference (default: the names of ``layers_b`` it has,
    else its default selection). The gap table's rows are A's layers, matched by name.
    """
    from cnnlens.probe import layer_tree

    if reference is model_b:
        raise ValueError("reference must be another model than model_b (e.g. model_a's "
                         "recipe with another seed)")
    if not hasattr(reference, "forward"):
        raise TypeError(f"reference must be a torch.nn.Module, got {type(reference).__name__}")
    example, data = _example(data)
    names_a = [x.name for x in layer_tree(model_a, example).select(layers_a)]
    lb = [x.name for x in layer_tree(model_b, example).select(layers_b) if x.shape is not None]
    tree_c = layer_tree(reference, example)
    if layers_c is None:
        lc = [n for n in lb if n in tree_c and tree_c[n].shape is not None]
        if len(lc) < len(lb):
            lc = [x.name for x in tree_c.select(None)]
    else:
        lc = [x.name for x in tree_c.select(layers_c)]
    # the gap table matches A's layers by name where B and C have them
    rows = (names_a, {n for n in names_a if n in lb}, {n for n in names_a if n in lc})
    whole = engine(model_a, _Both(model_b, reference), data, layers_a=names_a,
                   layers_b=[f"b.{n}" for n in lb] + [f"c.{n}" for n in lc],
                   progress=_progress(progress, len(names_a), lb, lc, rows),
                   dry_run=dry_run, **options)
    return whole if dry_run else ReferenceResult(whole, lb, lc, rows)
