"""What the all-pairs engine accumulates per layer, in which form, within a memory budget.

Each (side, layer, reduction) is an *entry*: its activations reduced to (rows,
d) per batch. Entries with the same reduction and the same rows per image form
a *group*; only entries of one group can be paired (same datapoints). Before
the first forward pass every group is priced in each form it can take, and the
most exact set of forms that fits the budget is chosen (:mod:`.budget`):

- ``"moments"`` (feature form): a :class:`~cnnlens.similarity.joint.Joint`
  holding every layer's own centred moments once and all cross-moments of the
  group from one GEMM per batch. Exact for the CCA family and linear/debiased
  CKA; its memory is independent of the number of images.
- ``"kept"`` (sample form): the reduced float32 activations are kept and each
  layer's n x n Gram matrix is formed at the end. Exact for every metric, RBF CKA
  included; preferred when a layer has more features than datapoints or the data
  are small (n <= ``AUTO_MEMORY_ROWS``).
- ``"minibatch"``: per-batch kernels and unbiased HSIC sums (Nguyen et al. 2021)
  for the CKA family when no exact form fits: memory O(layers^2 + layers * b^2)
  whatever the number of images and features, with a standard error per cell
  from a delete-one-group jackknife over the batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .budget import BudgetError, Plan, PlanRow, mib
from .conv import DEFAULT_REDUCE, ENGINE_REDUCTIONS, reduce_conv
from .gram import colsum64
from .joint import Joint
from .minibatch import MinibatchCKA

__all__ = ["FAMILY", "Collector", "Entry", "Group", "resolve_reduce"]

FAMILY = {"cca": "cca", "svcca": "cca", "pwcca": "cca", "linear_cka": "cka",
          "debiased_cka": "cka", "rbf_cka": "cka", "minibatch_cka": "cka"}
#: every metric of the all-pairs engine, in the order the docs introduce them
METRICS = tuple(FAMILY)
#: the kernel each CKA metric's minibatch estimator uses
KERNEL = {"linear_cka": "linear", "debiased_cka": "linear", "rbf_cka": "rbf",
          "minibatch_cka": "linear"}
AUTO_MEMORY_ROWS = 1024   # up to this many datapoints, keep activations (all metrics exact)
JACKKNIFE_GROUPS = 16     # minibatch standard errors: batches dealt into this many groups


def resolve_reduce(reduce) -> dict[str, str]:
    """``None`` | str | {"cca": str, "cka": str} -> reduction per metric family."""
    out = dict(DEFAULT_REDUCE["engine"])
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
        if how not in ENGINE_REDUCTIONS:
            raise ValueError(f"the engine supports reduce in {', '.join(map(repr, ENGINE_REDUCTIONS))}; "
                             f"got {how!r} (for 'dft' call cnnlens.similarity.cca on one pair)")
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
    """One (side, layer, reduction); in the kept form it keeps its batches (``parts``)."""

    side: str
    index: int
    layer: str
    how: str
    rows: int
    d: int
    slot: int = 0
    parts: list = field(default_factory=list)
    shift: torch.Tensor | None = None   # first batch's column means (Gram centring)
    capacity: int | None = None          # rows this process keeps, when known beforehand
    filled: int = 0

    def keep(self, r: torch.Tensor) -> None:
        """Keep a batch's rows. With a known capacity they go into one buffer allocated at
        the first batch: thousands of small per-batch tensors left on the heap between the
        activations' keep glibc from returning freed pages (the peak RSS grew well past the
        plan at n=4096), and the concatenation at the end would copy them all once more."""
        if self.capacity is not None and self.filled + len(r) > self.capacity:
            self.parts, self.capacity = [self.data], None   # more rows than announced
        if self.capacity is None:
            self.parts.append(r)
            return
        if not self.parts:
            self.parts = [torch.empty(self.capacity, r.shape[1], dtype=r.dtype, device=r.device)]
        self.parts[0][self.filled:self.filled + len(r)].copy_(r)
        self.filled += len(r)

    @property
    def data(self) -> torch.Tensor:
        """All rows as one tensor (concatenated once, on first use)."""
        if self.capacity is not None:
            if self.parts and self.filled < len(self.parts[0]):
                self.parts, self.capacity = [self.parts[0][:self.filled]], self.filled
            return self.parts[0]
        if len(self.parts) > 1:
            self.parts = [torch.cat(self.parts)]
        return self.parts[0]


@dataclass(eq=False)
class Group:
    """Pairable entries, the form they are kept in and what it serves.

    ``mode`` is ``"stream"`` (moments), ``"memory"`` (kept activations) or None (only
    the minibatch estimator, or nothing); ``exact`` / ``estimated`` are the metrics
    served exactly / by the minibatch estimator; ``why`` says why any other is not.
    """

    how: str
    rows: int
    mode: str | None = "stream"
    a: list = field(default_factory=list)
    b: list = field(default_factory=list)
    joint: Joint | None = None
    pending: dict = field(default_factory=dict)  # entry -> this batch's float64 rows
    metrics: frozenset = frozenset()
    exact: frozenset = frozenset()
    estimated: frozenset = frozenset()
    why: str = ""

    @property
    def entries(self) -> list:
        return self.a + self.b


@dataclass(frozen=True)
class _Option:
    form: str            # "kept", "moments", "kept+minibatch", "moments+minibatch", "minibatch", "none"
    bytes: int
    exact: frozenset
    estimated: frozenset

    def missing(self, metrics) -> frozenset:
        return frozenset(metrics) - self.exact - self.estimated


class Collector:
    """Accumulates every entry of the pass, in the forms planned within ``budget`` bytes.

    ``wanted`` metrics are collected when they fit (the most exact form first);
    ``required`` ones (a subset) raise :class:`~cnnlens.similarity.budget.BudgetError`
    before any forward pass when even their leanest form does not fit.
    """

    def __init__(self, names_a, names_b, reduce: dict[str, str], wanted, required, n_images,
                 budget: int, batch_size: int = 64, sigma: float = 0.8, maps: bool = False,
                 local_images: int | None = None):
        self.names = {"a": list(names_a), "b": list(names_b)}
        # images this process sees (its shard under torch.distributed): kept rows' buffers
        self.local_images = n_images if local_images is None else local_images
        # canonical maps' position statistics (:mod:`.positions`): optional, priced last
        self.maps, self.positions, self.maps_why = maps, None, ""
        self.reduce = reduce
        self.wanted, self.required = set(wanted), set(required) & set(wanted)
        self.n_images, self.budget, self.batch_size, self.sigma = n_images, budget, batch_size, sigma
        self.entries: dict[tuple[str, int, str], Entry] = {}
        self.groups: dict[tuple[str, int], Group] = {}
        self.skipped: dict[str, str] = {}   # metric -> why it was not collected at all
        self.sizes: dict[str, tuple[int, int]] = {}
        self.minibatch: MinibatchCKA | None = None
        self.mb_rows: dict[tuple[str, int], int] = {}
        self.mb_pending: dict[tuple[str, int], dict | None] = {}
        self.by_layer: dict[tuple[str, str], list] = {}  # (side, layer) -> [(entry, group)]
        self.plan: Plan | None = None
        self.n = 0

    # -- planning ----------------------------------------------------------------------
    def start(self, acts: dict[str, dict]) -> Plan:
        """Plan entries and forms from a batch of both models (only shapes are used)."""
        maps = [t.shape[2:] for s in "ab" for t in acts[s].values() if t.ndim == 4]
        self.sizes["resize"] = (min(h for h, _ in maps), min(w for _, w in maps)) if maps \
            else (1, 1)
        exact_metrics = [m for m in self.wanted if m != "minibatch_cka"]
        groups = []
        for how in sorted({self.reduce[FAMILY[m]] for m in exact_metrics}):
            metrics = frozenset(m for m in exact_metrics if self.reduce[FAMILY[m]] == how)
            groups += self._group(how, metrics, acts)
        how = self.reduce["cka"]
        for s in "ab":
            for i, name in enumerate(self.names[s]):
                t = acts[s][name]
                self.mb_rows[s, i] = reduce_batch(t, how, self.sizes.get(how)).shape[0] // len(t)
        chosen = self._fit(groups)
        rows = []
        for g in groups:
            opt = chosen[g]
            g.mode = {"kept": "memory", "moments": "stream"}.get(opt.form.split("+")[0])
            g.exact, g.estimated = opt.exact, opt.estimated
            g.why = self._missing_why(g, opt)
            if g.mode == "stream" and g.a and g.b:
                g.joint = Joint([e.d for e in g.a], [e.d for e in g.b],
                                higher="debiased_cka" in g.exact)
            for k, e in enumerate(g.a):
                e.slot = k
            for k, e in enumerate(g.b):
                e.slot = k
            self.groups[g.how, g.rows] = g
            for e in g.entries:
                self.entries[e.side, e.index, g.how] = e
                if g.mode == "memory" and self.local_images:
                    e.capacity = self.local_images * e.rows
                if g.mode is not None:
                    self.by_layer.setdefault((e.side, e.layer), []).append((e, g))
            if g.exact:
                rows.append(PlanRow(g.how, g.rows, len(g.entries), opt.form.split("+")[0],
                                    tuple(sorted(g.exact)), opt.bytes, True))
        kinds = self._kinds(chosen.values())
        if kinds:
            self.minibatch = MinibatchCKA(len(self.names["a"]), len(self.names["b"]), kinds,
                                          sigma=self.sigma, groups=JACKKNIFE_GROUPS)
            est = sorted({m for o in chosen.values() for m in o.estimated}
                         | ({"minibatch_cka"} & self.wanted))
            rows.append(PlanRow(self.reduce["cka"], 1, len(self.mb_rows), "minibatch",
                                tuple(est), self._mb_bytes(kinds), False,
                                f"{self.batch_size} x {self.batch_size} batch kernels"))
        for m in set(self._all_metrics()) - self.wanted:
            self.skipped[m] = ("not requested and the pass ran with collect='requested'; ask "
                               "for it in metrics= or use collect='all'")
        if self.maps:
            from .positions import plan_positions
            self.positions, row = plan_positions(
                self.names["a"], self.names["b"], acts, self.n_images, self.batch_size,
                self.budget - sum(r.bytes for r in rows), self.budget)
            self.maps_why = "" if self.positions is not None else row.why
            rows.append(row)
        self.plan = Plan(self.budget, self.n_images, rows)
        return self.plan

    @staticmethod
    def _all_metrics():
        return tuple(FAMILY)

    def _group(self, how: str, metrics: frozenset, acts) -> list[Group]:
        groups: dict[int, Group] = {}
        for s in "ab":
            for i, name in enumerate(self.names[s]):
                t = acts[s][name]
                r = reduce_batch(t, how, self.sizes.get(how))
                rows = r.shape[0] // max(1, t.shape[0])
                g = groups.setdefault(rows, Group(how, rows, metrics=metrics))
                (g.a if s == "a" else g.b).append(Entry(s, i, name, how, rows, r.shape[1]))
        return list(groups.values())

    def _options(self, g: Group) -> list[_Option]:
        """Every form ``g`` can take, best first (fewest missing, then estimated, then bytes)."""
        R = None if self.n_images is None else self.n_images * g.rows
        da, db = sum(e.d for e in g.a), sum(e.d for e in g.b)
        dmax = max(e.d for e in g.entries)
        cca = g.metrics & {"cca", "svcca", "pwcca"}
        cka = g.metrics - cca
        linear = cka - {"rbf_cka"}
        per_batch = g.rows == 1  # the minibatch estimator needs one datapoint per image
        opts = []
        if R is not None:
            # kept float32 rows; for CCA each layer's d x d scatter, basis and whitener,
            # and one pair's cross-scatter and converted row blocks at a time
            # (layers wider than n: an n x n Gram and its eigenvectors instead)
            kept = 4 * R * (da + db) + (self._layer_work(g, R) + 16 * 1024 * dmax if cca else 0)
            # Grams: model b's layers and one of a's at a time (the engine releases rows)
            grams = 8 * R * R * (1 + len(cka)) * (len(g.b) + 1) if cka else 0
            opts.append(_Option("kept", kept + grams, g.metrics, frozenset()))
            if cka and cca and per_batch:
                opts.append(_Option("kept+minibatch", kept, cca, cka))
        if cca or linear:
            extras = 8 * (len(g.a) * db + da * len(g.b) + 2 * (da + db)) \
                if "debiased_cka" in g.metrics else 0
            moments = (8 * (sum(e.d ** 2 for e in g.entries) + da * db) + extras
                       + 8 * self.batch_size * g.rows * (da + db)
                       + (self._layer_work(g) if cca else 0))
            rbf = cka - linear if per_batch else frozenset()
            opts.append(_Option("moments+minibatch" if rbf else "moments", moments, cca | linear,
                                rbf))
        if cka and per_batch:
            opts.append(_Option("minibatch", 0, frozenset(), cka))
        opts.append(_Option("none", 0, frozenset(), frozenset()))
        prefer_kept = R is not None and (dmax > R or R <= AUTO_MEMORY_ROWS)
        required = self.required & g.metrics

        def rank(o: _Option):
            pref = 0 if o.form.startswith("kept") == prefer_kept else 1
            return (len(o.missing(required)), len(o.missing(g.metrics)), len(o.estimated),
                    pref, o.bytes)
        return sorted(opts, key=rank)

    @staticmethod
    def _layer_work(g: Group, R: int | None = None) -> int:
        """Per-layer CCA work held while the matrix fills: a float64 scatter, basis,
        whitener (with its coordinates and polar factor) and transients, d x d each (n x n
        for a layer wider than the R datapoints), for model b's layers and one of a's."""
        def d2(e):
            return min(e.d, R) ** 2 if R is not None else e.d ** 2
        return 64 * (sum(d2(e) for e in g.b) + max((d2(e) for e in g.a), default=0))

    def _kinds(self, options) -> tuple:
        est = {m for o in options for m in o.estimated} | ({"minibatch_cka"} & self.wanted)
        return tuple(k for k in ("linear", "rbf") if any(KERNEL[m] == k for m in est))

    def _mb_bytes(self, kinds) -> int:
        la, lb, b = len(self.names["a"]), len(self.names["b"]), self.batch_size
        return 8 * len(kinds) * (JACKKNIFE_GROUPS * (la * lb + la + lb) + 3 * (la + lb) * b * b)

    def _fit(self, groups: list[Group]) -> dict:
        """The best option per group whose total fits the budget (greedy downgrades)."""
        ranked = {g: self._options(g) for g in groups}
        for g in groups:  # what no budget could give: a structural limit, said plainly
            lost = ranked[g][0].missing(self.required & g.metrics)
            if lost:
                raise ValueError(self._missing_why(g, ranked[g][0], sorted(lost)))
        cur = dict.fromkeys(groups, 0)

        def total():
            opts = [ranked[g][cur[g]] for g in groups]
            kinds = self._kinds(opts)
            return sum(o.bytes for o in opts) + (self._mb_bytes(kinds) if kinds else 0)
        while (now := total()) > self.budget:
            moves = []  # (change in missing required metrics, change in bytes, tie, g, k)
            for g in groups:
                req, was = self.required & g.metrics, cur[g]
                for k in range(was + 1, len(ranked[g])):
                    cur[g] = k
                    saved = total() - now
                    cur[g] = was
                    if saved < 0:  # the first later option that saves (the estimator counts)
                        moves.append((len(ranked[g][k].missing(req))
                                      - len(ranked[g][was].missing(req)), saved, id(g), g, k))
                        break
            if not moves or min(moves, key=lambda m: m[:3])[0] > 0:
                raise BudgetError(self._too_big(groups, ranked, cur))
            *_, g, k = min(moves, key=lambda m: m[:3])
            cur[g] = k
        return {g: ranked[g][cur[g]] for g in groups}

    def _too_big(self, groups, ranked, cur) -> str:
        """The message of :class:`BudgetError`: the heaviest layer and the bytes."""
        opts = [ranked[g][cur[g]] for g in groups]
        kinds = self._kinds(opts)
        mb = self._mb_bytes(kinds) if kinds else 0
        g = max(groups, key=lambda g: ranked[g][cur[g]].bytes)
        o = ranked[g][cur[g]]
        big = max(g.entries, key=lambda e: e.d)
        need = "; ".join(f"{p.form}: {mib(p.bytes)}" for p in ranked[g] if p.bytes)
        return (f"the similarity statistics do not fit the memory budget of {mib(self.budget)}: "
                f"they need {mib(sum(p.bytes for p in opts) + mb)} at the least"
                + (f" (the minibatch kernels of {len(self.mb_rows)} layers at batch size "
                   f"{self.batch_size}: {mib(mb)})" if mb else "")
                + f". Heaviest: layer {big.layer!r} of model_{big.side}, {big.d} features with "
                f"reduce={g.how!r} ({len(g.entries)} layers in its group, {o.form} form: "
                f"{mib(o.bytes)}; its forms: {need or 'none'}). Raise memory=, use "
                "reduce='mean', a smaller batch_size, fewer layers or fewer images. "
                "Nothing was run.")

    def _missing_why(self, g: Group, opt: _Option, metrics=None) -> str:
        lost = sorted(metrics if metrics is not None else opt.missing(g.metrics))
        if not lost:
            return ""
        big = max(g.entries, key=lambda e: e.d)
        if g.rows != 1 and any(FAMILY[m] == "cka" for m in lost) and self.n_images is None:
            return (f"{', '.join(lost)} with reduce={g.how!r} ({g.rows} datapoints per image) "
                    "needs kept activations and a known number of images; use reduce='flatten' "
                    "or 'mean', or pass a sized dataset")
        if self.n_images is None and "rbf_cka" in lost:
            return ("rbf_cka needs n x n kernels or per-image rows: pass a sized dataset or "
                    "reduce='flatten'")
        return (f"not collected: within the memory budget of {mib(self.budget)} it does not "
                f"fit next to the requested metrics (layer {big.layer!r}: {big.d} features with "
                f"reduce={g.how!r}); ask for it in metrics= or raise memory=")

    # -- accumulation ------------------------------------------------------------------
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
                e.keep(r)  # float32 as captured
            elif g.joint is not None:
                g.pending[e] = _own(r.to(torch.float64), t)  # centred in place by Joint
        if self.positions is not None:
            self.positions.take(side, layer, t)
        if mb:
            how = self.reduce["cka"]
            if self.mb_rows[side, i] != 1:  # placeholder: the cell reports why it is NaN
                self.mb_pending[side, i] = None
                return
            ks = self.minibatch.kernels(reduce_batch(t, how, self.sizes.get(how)), (side, i))
            if ks is None:  # every value of t enters the Gram's trace
                check_activation(t, layer, side)
            self.mb_pending[side, i] = ks

    def flush(self, b: int) -> None:
        """End a batch of ``b`` images once :meth:`take` has seen every layer of both models."""
        if self.positions is not None:
            self.positions.flush(b)
        for g in self.groups.values():
            if g.pending:
                g.joint.update([g.pending.pop(e) for e in g.a], [g.pending.pop(e) for e in g.b],
                               owned=(True, True))
        if self.minibatch is not None:
            ks = {s: [self.mb_pending.pop((s, i)) for i in range(len(self.names[s]))] for s in "ab"}
            self.minibatch.update(ks["a"], ks["b"], b)
        self.n += b

    def to_host(self) -> None:
        """Bring the final statistics to the CPU (a GPU pass keeps them on the device until now)."""
        for g in self.groups.values():
            if g.joint is not None and g.joint.n:
                g.joint.to("cpu")
            for e in g.entries:
                e.parts = [e.data.cpu()] if e.parts else []
                e.shift = None if e.shift is None else e.shift.cpu()
        if self.positions is not None:
            self.positions.to_host()
        if self.minibatch is not None:
            self.minibatch.sums = {k: tuple(t.cpu() for t in v)
                                   for k, v in self.minibatch.sums.items()}

    def merge_ranks(self) -> None:
        """Merge every statistic across the ranks of the default process group (exactly)."""
        from . import distributed

        for g in self.groups.values():
            if g.joint is not None:
                distributed.merge_joint(g.joint)
            elif g.mode == "memory":
                for e in g.entries:
                    e.parts, e.capacity = [distributed.gather_rows(e.data)], None
                    e.shift = colsum64(e.parts[0].cpu()).to(e.parts[0].device) / max(
                        1, e.parts[0].shape[0])
        if self.minibatch is not None:
            distributed.merge_minibatch(self.minibatch)
        if self.positions is not None:
            self.positions.merge_ranks()
        self.n = distributed.sum_int(self.n)


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
