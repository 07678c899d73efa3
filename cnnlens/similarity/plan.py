"""What the all-pairs engine accumulates per layer, and in which form.

Each (side, layer, reduction) is an *entry*: its activations reduced to (rows,
d) per batch. Entries with the same reduction and the same rows per image form
a *group*; only entries of one group can be paired (same datapoints). A group
is accumulated in one of two forms, chosen once from the first batch:

- ``"stream"`` (feature form): a :class:`~cnnlens.similarity.moments.Joint`
  holding every layer's own centred moments once and all cross-moments of the
  group from one GEMM per batch. Memory is independent of the number of images.
- ``"memory"`` (sample form): the reduced float32 activations are kept and each
  layer's n x n Gram matrix is computed once at the end. Chosen when a layer has
  more features than there are datapoints (d > n), when RBF CKA is requested,
  or when the data are small (n <= ``AUTO_MEMORY_ROWS``) so that every metric,
  RBF included, stays available without another forward pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .conv import reduce_conv
from .gram import colsum64
from .joint import Joint
from .minibatch import MinibatchCKA

__all__ = ["DEFAULT_REDUCE", "FAMILY", "Collector", "Entry", "Group", "resolve_reduce"]

FAMILY = {"cca": "cca", "svcca": "cca", "pwcca": "cca", "linear_cka": "cka",
          "debiased_cka": "cka", "rbf_cka": "cka", "minibatch_cka": "cka"}
#: conv reductions used when ``reduce=None``: channels averaged for the CCA family
#: (layers of any spatial size pair up, n > d), every unit a neuron for CKA (Kornblith)
DEFAULT_REDUCE = {"cca": "mean", "cka": "flatten"}
AUTO_MEMORY_ROWS = 1024   # up to this many datapoints, keep activations (all metrics available)
MAX_GRAM_ROWS = 16384     # an n x n float64 Gram of 2 GiB is the most we build
MAX_FEATURE_D = 8192      # a d x d float64 scatter of 512 MiB per layer
MAX_CROSS = 2 ** 27       # sum(d_a) x sum(d_b) cross-moments: 1 GiB
OPTIONAL_BYTES = 2 ** 28  # keep at most 256 MiB of activations for metrics nobody asked for


def resolve_reduce(reduce) -> dict[str, str]:
    """``None`` | str | {"cca": str, "cka": str} -> reduction per metric family."""
    out = dict(DEFAULT_REDUCE)
    if isinstance(reduce, str):
        out = {"cca": reduce, "cka": reduce}
    elif isinstance(reduce, dict):
        unknown = set(reduce) - set(out)
        if unknown:
            raise ValueError(f"reduce dict keys are metric families 'cca' and 'cka'; got "
                             f"{sorted(unknown)}")
        out.update(reduce)
    elif reduce is not None:
        raise TypeError(f"reduce must be None, a str or a dict; got {type(reduce).__name__}")
    for how in out.values():
        if how not in ("positions", "mean", "flatten", "resize"):
            raise ValueError(f"the engine supports reduce in 'positions', 'mean', 'flatten', "
                             f"'resize'; got {how!r} (for 'dft' call cnnlens.similarity.cca "
                             "on one pair)")
    return out


def reduce_batch(t: torch.Tensor, how: str, size=None) -> torch.Tensor:
    """One layer's batch (b, ...) -> (rows, d); non-conv outputs are flattened per image."""
    if t.ndim == 4:
        if how == "resize":
            if tuple(t.shape[2:]) != tuple(size):
                t = F.adaptive_avg_pool2d(t.to(torch.float64), tuple(size))
            how = "positions"
        return reduce_conv(t, how)
    return t if t.ndim == 2 else t.reshape(len(t), -1)


@dataclass(eq=False)
class Entry:
    """One (side, layer, reduction); in memory mode it keeps its batches (``parts``)."""

    side: str
    index: int
    layer: str
    how: str
    rows: int
    d: int
    slot: int = 0
    parts: list = field(default_factory=list)
    shift: torch.Tensor | None = None   # first batch's column means (Gram centring)

    @property
    def data(self) -> torch.Tensor:
        """All rows as one tensor (concatenated once, on first use)."""
        if len(self.parts) > 1:
            self.parts = [torch.cat(self.parts)]
        return self.parts[0]


@dataclass(eq=False)
class Group:
    how: str
    rows: int
    mode: str = "stream"
    a: list = field(default_factory=list)
    b: list = field(default_factory=list)
    joint: Joint | None = None
    pending: dict = field(default_factory=dict)  # entry -> this batch's float64 rows


class Collector:
    """Accumulates every entry of the pass; knows which pairs are comparable.

    ``requested`` families are collected or the pass fails with the reason; with
    ``collect="all"`` the other family is collected too (so switching metric never
    re-runs the models) unless that would keep more than ``OPTIONAL_BYTES`` of
    activations; with ``collect="requested"`` it is not (a script's faster pass).
    """

    def __init__(self, names_a, names_b, reduce: dict[str, str], requested, n_images,
                 want_rbf: bool = False, minibatch: bool = False, collect: str = "all"):
        if collect not in ("all", "requested"):
            raise ValueError(f"collect must be 'all' or 'requested'; got {collect!r}")
        self.collect = collect
        self.names = {"a": list(names_a), "b": list(names_b)}
        self.reduce, self.requested = reduce, set(requested)
        self.n_images, self.want_rbf = n_images, want_rbf
        self.entries: dict[tuple[str, int, str], Entry] = {}
        self.groups: dict[tuple[str, int], Group] = {}
        self.skipped: dict[str, str] = {}   # family -> why it was not collected
        self.sizes: dict[str, tuple[int, int]] = {}
        self.minibatch = MinibatchCKA(len(names_a), len(names_b)) if minibatch else None
        self.mb_rows: dict[tuple[str, int], int] = {}
        self.mb_pending: dict[tuple[str, int], torch.Tensor] = {}
        self.by_layer: dict[tuple[str, str], list] = {}  # (side, layer) -> [(entry, group)]
        self.n = 0

    def start(self, acts: dict[str, dict]) -> None:
        """Plan entries and forms from a batch of both models (only shapes are used)."""
        maps = [t.shape[2:] for s in "ab" for t in acts[s].values() if t.ndim == 4]
        self.sizes["resize"] = (min(h for h, _ in maps), min(w for _, w in maps)) if maps \
            else (1, 1)
        for how in sorted(set(self.reduce.values())):
            fams = [f for f in ("cca", "cka") if self.reduce[f] == how]
            if self.collect == "requested" and not any(f in self.requested for f in fams):
                for f in fams:
                    self.skipped[f] = ("not requested and the pass ran with collect='requested';"
                                       " ask for it in metrics= or use collect='all'")
                continue
            why = self._plan(how, acts, any(f in self.requested for f in fams))
            if why:
                for f in fams:
                    self.skipped[f] = why
        if self.minibatch is not None:
            how = self.reduce["cka"]
            for s in "ab":
                for i, name in enumerate(self.names[s]):
                    t = acts[s][name]
                    self.mb_rows[s, i] = reduce_batch(t, how, self.sizes.get(how)).shape[0] // len(t)
        for g in self.groups.values():
            for e in g.a + g.b:
                self.by_layer.setdefault((e.side, e.layer), []).append((e, g))

    def _plan(self, how, acts, requested: bool) -> str | None:
        entries = []
        for s in "ab":
            for i, name in enumerate(self.names[s]):
                t = acts[s][name]
                r = reduce_batch(t, how, self.sizes.get(how))
                entries.append(Entry(s, i, name, how, r.shape[0] // max(1, t.shape[0]),
                                     r.shape[1]))
        groups: dict[int, Group] = {}
        for e in entries:
            g = groups.setdefault(e.rows, Group(how, e.rows))
            (g.a if e.side == "a" else g.b).append(e)
        for g in groups.values():
            why = self._choose(g, requested)
            if why:
                return why
        for g in groups.values():
            for k, e in enumerate(g.a):
                e.slot = k
            for k, e in enumerate(g.b):
                e.slot = k
            if g.mode == "stream" and g.a and g.b:
                g.joint = Joint([e.d for e in g.a], [e.d for e in g.b], higher=True)
            self.groups[how, g.rows] = g
            for e in g.a + g.b:
                self.entries[e.side, e.index, how] = e
        return None

    def _choose(self, g: Group, requested: bool) -> str | None:
        """Pick the form of a group; a message if neither form fits."""
        rows = None if self.n_images is None else self.n_images * g.rows
        dmax = max(e.d for e in g.a + g.b)
        if rows is not None and rows <= MAX_GRAM_ROWS and (
                dmax > rows or rows <= AUTO_MEMORY_ROWS or self.want_rbf):
            kept = 4 * rows * sum(e.d for e in g.a + g.b)
            if requested or kept <= OPTIONAL_BYTES:
                g.mode = "memory"
                return None
            return (f"not requested, and it would keep {kept / 2 ** 20:.0f} MiB of activations "
                    f"(reduce={g.how!r}); ask for one of its metrics in metrics=")
        cross = sum(e.d for e in g.a) * sum(e.d for e in g.b)
        if dmax <= MAX_FEATURE_D and cross <= MAX_CROSS:
            g.mode = "stream"
            return None
        big = max(g.a + g.b, key=lambda e: e.d)
        return (f"layer {big.layer!r} has {big.d} features with reduce={g.how!r}: too many for "
                f"streamed d x d moments, and the Gram form needs a known number of images "
                f"(<= {MAX_GRAM_ROWS} datapoints, have "
                f"{'unknown' if rows is None else rows}); use reduce='mean' or fewer images")

    def add(self, acts: dict[str, dict]) -> None:
        """Feed one batch of both models' activations (kept unchanged: views may be kept)."""
        for s in "ab":
            for name, t in acts[s].items():
                self.take(s, name, t, owned=True)
        self.flush(len(next(iter(acts["a"].values()))))

    def take(self, side: str, layer: str, t: torch.Tensor, owned: bool = False) -> None:
        """One layer's batch output, reduced now: the engine calls this inside the hook.

        Whatever is kept is a copy unless ``owned`` (then ``t`` never changes), so a
        later in-place module of the model cannot alter it; :meth:`flush` ends the batch.
        """
        entries = self.by_layer.get((side, layer), ())
        mb = self.minibatch is not None and layer in self.names[side]
        i = self.names[side].index(layer) if mb else -1
        if entries or not mb or self.mb_rows[side, i] != 1:
            check_activation(t, layer, side)  # else the minibatch Gram's trace checks it
        for e, g in entries:
            r = reduce_batch(t, e.how, self.sizes.get(e.how))
            if g.mode == "memory":
                r = r if owned else _own(r, t)
                if e.shift is None:
                    e.shift = colsum64(r) / max(1, r.shape[0])
                e.parts.append(r)  # float32 as captured
            elif g.joint is not None:
                g.pending[e] = _own(r.to(torch.float64), t)  # centred in place by Joint
        if mb:
            how = self.reduce["cka"]
            if self.mb_rows[side, i] != 1:  # placeholder: the cell reports why it is NaN
                self.mb_pending[side, i] = self.minibatch.gram(torch.zeros(len(t), 1))
                return
            K = self.minibatch.gram(reduce_batch(t, how, self.sizes.get(how)), (side, i))
            if K is None:  # every value of t enters the Gram's trace
                check_activation(t, layer, side)
            self.mb_pending[side, i] = K

    def flush(self, b: int) -> None:
        """End a batch of ``b`` images once :meth:`take` has seen every layer of both models."""
        for g in self.groups.values():
            if g.pending:
                g.joint.update([g.pending.pop(e) for e in g.a], [g.pending.pop(e) for e in g.b],
                               owned=(True, True))
        if self.minibatch is not None:
            ks = {s: [self.mb_pending.pop((s, i)) for i in range(len(self.names[s]))] for s in "ab"}
            self.minibatch.update_grams(ks["a"], ks["b"])
        self.n += b


def _own(r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``r``, copied if it shares memory with ``t`` (a view such as a flatten)."""
    return r.clone() if r.untyped_storage().data_ptr() == t.untyped_storage().data_ptr() else r


def check_activation(t: torch.Tensor, layer: str, side: str) -> None:
    """NaN/Inf check at the cost of one float32 sum (capture's mask check costs ~8x more)."""
    if not bool(torch.isfinite(t.sum())):
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            from cnnlens.capture import NonFiniteError
            raise NonFiniteError(
                f"activations of layer {layer!r} of model_{side} contain {int(bad.sum())} NaN/Inf "
                "values: check input scaling and weights at or before it")
