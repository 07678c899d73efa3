"""The per-layer gap table: is model B further from A than a reference C is?

The study's question ("which layers of a model trained on synthetic data differ
from one trained on real data, beyond what another real-data seed shows?") as
one row per layer of A: ``score_b`` = sim(A, B), ``score_c`` = sim(A, C), and
``gap = score_c - score_b`` with an interval.

One pass: B and C run as the two halves of one module next to A, so A's
statistics are computed once and serve both comparisons, and both cells of a
row come from the same images. Their jackknife replicates (same groups of
images, see :mod:`.trust`) give the gap its own standard error, the shared
model A included; the interval is ``gap +- t(0.975, G - 1) * se``. Where a
cell has an error but no replicates (the minibatch estimator), the two errors
are combined as if independent; where it has none (streamed moments), the
interval is NaN and ``significant`` False.

The pass itself is :func:`cnnlens.similarity.gap_pass.gap_table` (it runs the engine,
which builds its reference tables from this module: the arrows go one way).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields

import numpy as np
from torch import nn

from . import trust
from .jackknife import jackknife_se
from .plan import JACKKNIFE_GROUPS

__all__ = ["GapRow", "GapTable", "gap_rows"]

# Student t 0.975 quantiles by degrees of freedom (jackknife over G groups: G - 1)
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
         16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042}


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t (normal beyond 30 degrees of freedom)."""
    if df > 30:
        return 1.96
    return _T975.get(df) or _T975[min(k for k in _T975 if k >= df)]


class _Both(nn.Module):
    """B and C as one model (layers ``b.*`` and ``c.*``): one pass next to A."""

    def __init__(self, b: nn.Module, c: nn.Module):
        super().__init__()
        self.b, self.c = b, c

    def forward(self, x):
        return self.b(x), self.c(x)


@dataclass(frozen=True)
class GapRow:
    """One layer of A: its similarity to B and to the reference C, and their gap."""

    layer: str
    score_b: float
    score_c: float
    gap: float
    low: float
    high: float
    significant: bool
    match_b: str
    match_c: str
    se: float
    chance_b: float
    chance_c: float


class GapTable:
    """Per-layer similarity of A to B and to a reference C, with the gap's 95% interval.

    Attributes
    ----------
    rows : list of GapRow
    metric : str
    result : MatrixResult
        The pass behind it: A's layers against ``b.*`` and ``c.*`` (``.chance``, ``.warnings``).
    method : str
        How the interval was obtained.

    Examples
    --------
    >>> import cnnlens as cl
    >>> nets, digits = cl.demo.models(progress=False), cl.demo.data()   # doctest: +SKIP
    >>> t = cl.gap_table(nets["real"], nets["synthetic"], digits.test.images,
    ...                  reference=nets["real_seed1"])                  # doctest: +SKIP
    >>> print(t)                                                        # doctest: +SKIP
    >>> t["fc1"].gap, t["fc1"].significant                              # doctest: +SKIP
    """

    def __init__(self, rows, metric: str, result, method: str):
        self.rows, self.metric, self.result, self.method = list(rows), metric, result, method

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, key) -> GapRow:
        if isinstance(key, str):
            for r in self.rows:
                if r.layer == key:
                    return r
            raise KeyError(f"no row for layer {key!r}; rows are {[r.layer for r in self.rows]}")
        return self.rows[key]

    @property
    def columns(self) -> list[str]:
        return [f.name for f in fields(GapRow)]

    @property
    def warnings(self) -> list[str]:
        """The pass's warnings and any layer matched by best score rather than by name."""
        out = list(self.result.warnings)
        for r in self.rows:
            for side, m in (("B", r.match_b), ("C", r.match_c)):
                if m != r.layer:
                    out.append(f"{r.layer!r} has no layer of that name in model {side}: compared "
                               f"with its most similar layer there, {m!r}.")
        return out

    def to_pandas(self):
        """A ``pandas.DataFrame`` indexed by layer (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("GapTable.to_pandas() needs pandas: pip install pandas") from None
        return pd.DataFrame([asdict(r) for r in self.rows]).set_index("layer")

    def __str__(self) -> str:
        head = ["layer", "score_b", "score_c", "gap", "low", "high", "significant"]
        body = [[r.layer + ("" if r.match_b == r.match_c == r.layer else " *"),
                 *(f"{v:.4f}" for v in (r.score_b, r.score_c, r.gap, r.low, r.high)),
                 "yes" if r.significant else "no"] for r in self.rows]
        width = [max(len(h), *(len(b[k]) for b in body)) for k, h in enumerate(head)]

        def line(cells):
            return "  ".join(c.ljust(w) if k == 0 else c.rjust(w)
                             for k, (c, w) in enumerate(zip(cells, width)))
        text = [f"{self.metric}: B vs reference C, gap = score_c - score_b, n={self.result.n}",
                line(head), *map(line, body), f"interval: {self.method}"]
        if any(r.match_b != r.layer or r.match_c != r.layer for r in self.rows):
            text.append("* matched by best score, not by name (see .warnings)")
        return "\n".join(text)

    __repr__ = __str__


def _example(data):
    """(one image batch for the dry run, data to pass on: an iterator stays whole)."""
    from torch.utils.data import DataLoader

    from cnnlens.inputs import iter_batches

    if isinstance(data, Iterator):
        first = next(data)
        x = first[0] if isinstance(first, (tuple, list)) else first
        return x[:1], itertools.chain([first], data)
    if isinstance(data, DataLoader):
        first = next(iter(data))
        return (first[0] if isinstance(first, (tuple, list)) else first)[:1], data
    return next(iter_batches(data, 1)), data


def gap_rows(res, metric: str, names: list[str], lb: list[str], named_b: set,
             lc: list[str], named_c: set) -> GapTable:
    """The table from a pass of A's layers ``names`` against ``b.<lb>`` then ``c.<lc>``.

    A layer of A in ``named_b`` (``named_c``) is matched by name, others by the highest
    score in that block. Also used by ``similarity_matrix(..., reference=)``.
    """
    scores = res.matrix(metric)
    rows, how = [], set()
    for i, name in enumerate(names):
        cols = []
        for off, side, named in ((0, lb, named_b), (len(lb), lc, named_c)):
            if name in named:
                k = side.index(name)
            else:
                block = scores[i, off:off + len(side)]
                k = int(np.nanargmax(block)) if np.isfinite(block).any() else 0
            cols.append((off + k, side[k]))
        (jb, mb), (jc, mc) = cols
        b, c = res.result(metric, i, jb), res.result(metric, i, jc)
        se, text, df = _gap_error(res, metric, i, jb, jc, b.se, c.se)
        how.add(text)
        gap = c.score - b.score
        half = t975(df) * se if df else float("nan")
        low, high = gap - half, gap + half
        rows.append(GapRow(name, b.score, c.score, gap, low, high, bool(low > 0 or high < 0),
                           mb, mc, se, res.chance(metric, i, jb), res.chance(metric, i, jc)))
    return GapTable(rows, metric, res, " | ".join(sorted(how)))


def _gap_error(res, metric, i, jb, jc, se_b, se_c) -> tuple[float, str, int]:
    """(standard error of the gap, how it was obtained, degrees of freedom)."""
    rb, rc = trust.jackknife(res, metric, i, jb), trust.jackknife(res, metric, i, jc)
    if rb is not None and rc is not None and len(rb) == len(rc):
        g = len(rb)
        text = (f"95%: gap +- t(0.975, {g - 1}) x delete-one-group jackknife error of the gap "
                f"({g} groups of images, the same for B and C)")
        return jackknife_se(rc - rb), text, g - 1
    if math.isfinite(se_b) and math.isfinite(se_c):
        g = JACKKNIFE_GROUPS  # the minibatch estimator's groups
        text = f"95%: gap +- t(0.975, {g - 1}) x the two cells' errors combined as independent"
        return math.hypot(se_b, se_c), text, g - 1
    return float("nan"), "none: this form gives the cells no error (streamed moments)", 0
