"""Canonical maps from the engine's own pass: position-level moments of every layer pair.

With ``similarity_matrix(..., maps=True)`` the collector also accumulates what
:func:`~cnnlens.similarity.canonical.maps_from_pair` needs for every pair it
compares, with the datapoint rules of :func:`cnnlens.similarity.canonical_maps`:
two conv layers of one spatial size pair over their positions (``"positions"``),
of two sizes over the smaller grid with the larger map area-resized (``"resize"``),
and a pair with a fully connected side over images (``"mean"``). Pairs sharing a
datapoint definition share one :class:`~cnnlens.similarity.joint.Joint` (a layer's
own scatter is held once per grid, not once per pair). Each layer's per-image mean
channel vector (n x C) is kept for :meth:`CanonicalMaps.top_images`.

The group is optional: the plan prices it after the metrics' groups and drops it,
saying why, when it does not fit what they leave of the budget; Compare then falls
back to one extra pass per pair (:mod:`cnnlens.widgets.maps_job`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .budget import PlanRow, mib
from .canonical import CanonicalMaps, _mode, maps_from_pair
from .conv import reduce_conv
from .joint import Joint
from .result import layer_index
from .stats import Pair

__all__ = ["MAX_FLOPS_PER_IMAGE", "PositionStats", "has_maps", "maps_result", "maps_source",
           "plan_positions"]

#: the group is dropped above this many float64 flops per image (its GEMMs: ~2 x rows x
#: (sum d^2 + D_a D_b) per grid), whatever the budget: the demo's 5 x 5 layers cost ~2e6, a
#: ResNet-50's 53 x 53 conv layers ~1e11 (hours on a CPU for a few thousand images)
MAX_FLOPS_PER_IMAGE = 1e9


@dataclass(eq=False)
class _Grid:
    """Pairs with one datapoint definition: ``how`` "positions" at ``size``, or "mean"."""

    how: str
    size: tuple | None
    a: list = field(default_factory=list)   # layer indices of model a, in slot order
    b: list = field(default_factory=list)
    dims: dict = field(default_factory=dict)  # (side, index) -> channels
    joint: Joint | None = None
    pending: dict = field(default_factory=dict)  # (side, index) -> this batch's rows

    def slot(self, side: str, index: int) -> int:
        return (self.a if side == "a" else self.b).index(index)


class PositionStats:
    """Position-level moments of every layer pair and each layer's per-image means.

    Built by :func:`plan_positions` from the planning batch's shapes; fed by the
    collector's ``take`` / ``flush`` inside the engine's hooks.
    """

    def __init__(self, names_a, names_b, acts: dict[str, dict], n_images: int | None):
        self.names = {"a": list(names_a), "b": list(names_b)}
        self.n_images = n_images
        self.grids: dict[tuple, _Grid] = {}
        self.pairs: dict[tuple[int, int], tuple] = {}  # (i, j) -> (grid, text) | (None, why)
        self.channels: dict[tuple[str, int], int] = {}
        for i, na in enumerate(self.names["a"]):
            for j, nb in enumerate(self.names["b"]):
                xa, xb = acts["a"][na], acts["b"][nb]
                try:
                    how, text = _mode(xa, xb, None)
                except ValueError as exc:
                    self.pairs[i, j] = (None, str(exc))
                    continue
                size = None if how == "mean" else (min(xa.shape[2], xb.shape[2]),
                                                   min(xa.shape[3], xb.shape[3]))
                g = self.grids.setdefault(("mean" if size is None else "positions", size),
                                          _Grid("mean" if size is None else "positions", size))
                for side, k, t in (("a", i, xa), ("b", j, xb)):
                    if k not in (g.a if side == "a" else g.b):
                        (g.a if side == "a" else g.b).append(k)
                        g.dims[side, k] = int(t.shape[1])
                    self.channels[side, k] = int(t.shape[1])
                self.pairs[i, j] = (g, text)
        # (side, layer name) -> the grids it feeds, and whether its image means are kept
        self.by_layer: dict[tuple[str, str], list] = {}
        for g in self.grids.values():
            for side in "ab":
                for k in (g.a if side == "a" else g.b):
                    self.by_layer.setdefault((side, self.names[side][k]), []).append((g, k))
        self.keep_means = n_images is not None
        self.means: dict[tuple[str, int], list] = {key: [] for key in self.channels} \
            if self.keep_means else {}
        self.n = 0

    # -- price -----------------------------------------------------------------------
    def rows_per_image(self, g: _Grid) -> int:
        return 1 if g.size is None else g.size[0] * g.size[1]

    def nbytes(self, batch_size: int) -> int:
        """float64 moments of every grid, a batch of reduced rows (twice: the joint's
        concatenation) and, with a known number of images, n x C image means per layer."""
        total = 0
        for g in self.grids.values():
            da = sum(g.dims["a", k] for k in g.a)
            db = sum(g.dims["b", k] for k in g.b)
            total += 8 * (sum(d * d for d in g.dims.values()) + da * db + 2 * (da + db))
            total += 16 * batch_size * self.rows_per_image(g) * (da + db)
        if self.keep_means:
            total += 8 * self.n_images * sum(self.channels.values())
        return total

    def flops_per_image(self) -> float:
        """float64 flops of the moments' updates per image (one GEMM per grid and batch)."""
        total = 0.0
        for g in self.grids.values():
            da = sum(g.dims["a", k] for k in g.a)
            db = sum(g.dims["b", k] for k in g.b)
            total += 2.0 * self.rows_per_image(g) * (sum(d * d for d in g.dims.values()) + da * db)
        return total

    # -- accumulation ------------------------------------------------------------------
    def take(self, side: str, layer: str, t: torch.Tensor) -> None:
        """One layer's batch output, reduced now (inside the hook) to every grid it feeds."""
        feeds = self.by_layer.get((side, layer))
        if not feeds:
            return
        for g, k in feeds:
            if g.size is None:
                r = _image_means(t)
            else:
                r = reduce_conv(t, "resize", g.size, dtype=torch.float64)  # a fresh tensor
            g.pending[side, k] = r
        if self.keep_means:
            k = feeds[0][1]
            self.means[side, k].append(_image_means(t))

    def flush(self, b: int) -> None:
        """End a batch once every layer of both models was taken."""
        for g in self.grids.values():
            if g.pending:
                xs = [g.pending.pop(("a", k)) for k in g.a]
                ys = [g.pending.pop(("b", k)) for k in g.b]
                if g.joint is None:
                    g.joint = Joint([x.shape[1] for x in xs], [y.shape[1] for y in ys],
                                    higher=False)
                g.joint.update(xs, ys, owned=(True, True))
        self.n += b

    def to_host(self) -> None:
        for g in self.grids.values():
            if g.joint is not None and g.joint.n:
                g.joint.to("cpu")
        for key, parts in self.means.items():
            if len(parts) > 1 or (parts and parts[0].device.type != "cpu"):
                self.means[key] = [torch.cat(parts).cpu()]

    def merge_ranks(self) -> None:
        """Exact merge across ranks: moments by Chan's rule, image means in rank order."""
        from . import distributed

        for g in self.grids.values():
            if g.joint is not None:
                distributed.merge_joint(g.joint)
        for key, parts in self.means.items():
            local = torch.cat(parts) if parts else torch.zeros(0, self.channels[key],
                                                                dtype=torch.float64)
            self.means[key] = [distributed.gather_rows(local)]

    # -- reading -----------------------------------------------------------------------
    def pair(self, i: int, j: int) -> tuple[Pair, str]:
        """The moments of pair (i, j) over its datapoints, and the text saying what they are."""
        g, text = self.pairs[i, j]
        if g is None:
            raise ValueError(f"no canonical maps for {self.names['a'][i]!r} x "
                             f"{self.names['b'][j]!r}: {text}")
        if g.joint is None or g.joint.n < 2:
            raise ValueError("no position statistics accumulated yet")
        return g.joint.pair(g.slot("a", i), g.slot("b", j)), text

    def image_means(self, side: str, index: int):
        parts = self.means.get((side, index))
        if not parts:
            return None
        if len(parts) > 1:
            self.means[side, index] = parts = [torch.cat(parts)]
        return parts[0].cpu().numpy()


def _image_means(t: torch.Tensor) -> torch.Tensor:
    """Each image's mean channel vector in float64, as :func:`canonical_maps` forms it."""
    return t.mean((2, 3), dtype=torch.float64) if t.ndim == 4 else t.to(torch.float64)


def plan_positions(names_a, names_b, acts: dict[str, dict], n_images, batch_size: int,
                   left: int, budget: int) -> tuple[PositionStats | None, PlanRow]:
    """The optional maps group: its statistics if they fit in ``left`` bytes, and its plan row.

    ``left``: what the metrics' groups leave of ``budget``; when the group does not fit,
    None and a row (form "none", 0 bytes) saying why.
    """
    stats = PositionStats(names_a, names_b, acts, n_images)
    need = stats.nbytes(batch_size)
    layers = len({key for key in stats.channels})
    means = ("" if stats.keep_means else
             "; no per-image means (unknown number of images): no top images")
    flops = stats.flops_per_image()
    why = ""
    if need > left:
        why = (f"canonical maps dropped: their position statistics need {mib(need)}, the "
               f"metrics leave {mib(max(left, 0))} of the {mib(budget)} budget; maps take "
               "one extra pass per pair instead (raise memory=, or select fewer layers)")
    elif flops > MAX_FLOPS_PER_IMAGE:
        why = (f"canonical maps dropped: their position statistics would cost {flops:.2g} "
               f"flops per image (more than MAX_FLOPS_PER_IMAGE={MAX_FLOPS_PER_IMAGE:.0e}); "
               "maps take one extra pass per pair instead (or select fewer layers)")
    if why:
        return None, PlanRow("positions", 0, layers, "none", ("maps",), 0, False, why)
    grids = ", ".join(f"{g.size[0]}x{g.size[1]}" if g.size else "per image"
                      for g in stats.grids.values())
    why = f"canonical maps: positions as datapoints (grids {grids or 'none'}){means}"
    return stats, PlanRow("positions", 0, layers, "moments", ("maps",), need, True, why)


def maps_result(res, i, j, acts_a=None, acts_b=None, k: int = 4, metric: str = "svcca",
                image: int | None = None) -> CanonicalMaps:
    """:class:`CanonicalMaps` of cell (i, j) of ``res`` from its in-pass statistics.

    ``acts_a``, ``acts_b``: one image's activations (C, H, W) or (C,); None: the maps are
    those of the dataset mean (zeros, (k, 1, 1)) and :meth:`CanonicalMaps.for_image`
    gives an image's. Raises ValueError when the pass did not collect them.
    """
    collector = getattr(res, "collector", None)
    stats = getattr(collector, "positions", None)
    if stats is None:
        why = getattr(collector, "maps_why", "") or "the pass ran without maps=True"
        raise ValueError(f"no position statistics in this result: {why}")
    if not res.complete:
        raise ValueError("the pass is still running")
    i, j = layer_index(res.layers_a, i), layer_index(res.layers_b, j)
    with res.lock:  # the joint completes its scatters on first read
        p, text = stats.pair(i, j)
        means = (stats.image_means("a", i), stats.image_means("b", j))
    return maps_from_pair(p, p.x.mean if acts_a is None else acts_a,
                          p.y.mean if acts_b is None else acts_b, k=k, metric=metric,
                          keep=res.keep, rtol=res.rtol, reduction=text, image=image,
                          layer_a=res.layers_a[i], layer_b=res.layers_b[j], image_means=means)


def has_maps(res) -> bool:
    """Whether ``res`` (a finished result) holds in-pass canonical-map statistics."""
    c = getattr(res, "_c", None)
    return c is not None and getattr(c, "positions", None) is not None and \
        bool(getattr(res, "complete", False))


def maps_source(res):
    """The result whose in-pass statistics serve maps of the first dataset's images, or None.

    Several datasets (``DatasetResults``): the first one's (the images Compare's panes
    show); a saved, unfinished or reference result, or one without them: None.
    """
    if res is not None and hasattr(res, "results") and hasattr(res, "names"):
        res = res.results[res.names[0]] if res.names else None
    return res if has_maps(res) else None

