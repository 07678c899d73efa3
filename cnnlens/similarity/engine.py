"""The all-pairs engine: one pass of the data through both models, every layer pair.

Activations come only from :func:`cnnlens.capture.stream` (the one module that
touches hooks); layers are chosen with :meth:`cnnlens.probe.LayerTree.select`.
"""
from __future__ import annotations

import collections
import itertools
import sys
import threading
import time
from collections.abc import Iterator

from .linalg import RTOL, check_keep
from .matrix import METRICS, MatrixResult
from .plan import FAMILY, Collector, resolve_reduce
from .threads import both

__all__ = ["Cancelled", "similarity_matrix"]


class Cancelled(RuntimeError):
    """The similarity pass was stopped through its ``cancel`` event."""


def _batches(data, batch_size: int):
    """(iterator of input batches, number of images or None if unknown)."""
    from torch.utils.data import DataLoader

    from cnnlens.inputs import iter_batches, num_images

    if isinstance(data, DataLoader):
        ds = getattr(data, "dataset", None)
        n = len(ds) if hasattr(ds, "__len__") and not data.drop_last else None
        return (b[0] if isinstance(b, (tuple, list)) else b for b in data), n
    if isinstance(data, Iterator):  # a generator of batches: length unknown, streamed
        return (b[0] if isinstance(b, (tuple, list)) else b for b in data), None
    return iter_batches(data, batch_size), num_images(data)


def _text_progress():
    state = {"stage": None}

    def report(info):
        stage, done, total = info["stage"], info["done"], info["total"]
        if stage != state["stage"] and state["stage"] is not None:
            sys.stderr.write("\n")
        state["stage"] = stage
        unit = "images" if stage == "forward" else "cells"
        of = f"/{total}" if total > 0 else ""
        sys.stderr.write(f"\r[cnnlens.similarity] {stage}: {done}{of} {unit}")
        if total > 0 and done >= total and stage == "pairs":
            sys.stderr.write("\n")
        sys.stderr.flush()
    return report


def _pass(model_a, model_b, la, lb, batches, device, col):
    """Run each batch through both models, feeding ``col`` inside the hooks; yield batch sizes.

    The collector reduces every output while its hook runs (before a later in-place
    module can rewrite it), so no activation is copied whole; it checks NaN/Inf too.
    """
    from cnnlens.capture import stream

    if model_a is model_b:  # one forward, one set of hooks
        sides: dict[str, list[str]] = {}
        for s, layers in (("a", la), ("b", lb)):
            for x in layers:
                sides.setdefault(x.name, []).append(s)

        def to_sides(name, t):
            for s in sides[name]:
                col.take(s, name, t)
        union = list({x.name: x for x in [*la, *lb]}.values())
        gens = [stream(model_a, batches, union, device=device, check_finite=False,
                       consume=to_sides)]
    else:
        fan = _Fanout(batches)
        gens = [stream(model, fan.reader(k), layers, device=device, check_finite=False,
                       consume=lambda name, t, s=s: col.take(s, name, t))
                for k, (model, layers, s) in enumerate(((model_a, la, "a"), (model_b, lb, "b")))]
    try:
        while True:
            # two models: side by side on one core each (a few per cent faster than in turn on
            # two, as pooling and normalisation barely gain from a second thread);
            # each generator stays on its own thread, which owns its hooks
            shapes = [next(gens[0], _END)] if len(gens) == 1 else both(
                lambda g: next(g, _END), *gens)
            if any(s is _END for s in shapes):
                if not all(s is _END for s in shapes):
                    raise RuntimeError("the two models' passes went out of step")
                return
            b = next(iter(shapes[0].values()))[0]
            col.flush(b)
            yield b
    finally:
        for g in gens:
            g.close()


_END = object()


class _Fanout:
    """One iterator of batches read by two consumers on two threads (``itertools.tee``
    is not thread-safe); each batch is pulled once and kept until both have read it."""

    def __init__(self, it):
        self._it, self._lock = iter(it), threading.Lock()
        self._queues = (collections.deque(), collections.deque())

    def reader(self, k: int):
        queue = self._queues[k]
        while True:
            with self._lock:
                if not queue:
                    item = next(self._it, _END)
                    for q in self._queues:
                        q.append(item)
                item = queue.popleft()
            if item is _END:
                return
            yield item


def _planning_batch(layers, which: str) -> dict:
    """One zero image per layer, shaped as in the dry run: the collector plans from shapes."""
    import torch

    for x in layers:
        if x.shape is None:
            raise ValueError(f"layer {x.name!r} of model_{which} returned no tensor in the dry "
                             "run; select layers whose output is a tensor")
    return {x.name: torch.zeros(1, *x.shape) for x in layers}


def similarity_matrix(model_a, model_b, data, layers_a=None, layers_b=None,
                      metrics=("svcca", "pwcca", "linear_cka"), reduce=None, batch_size=64,
                      device=None, progress=None, cancel=None, *, keep=0.99, side="x",
                      sigma=0.8, rtol=RTOL, collect="all") -> MatrixResult:
    """Compare every layer of ``model_a`` with every layer of ``model_b`` in one pass.

    Parameters
    ----------
    model_a, model_b : nn.Module
        May be the same object (one forward per batch then).
    data : images or batches
        Anything :func:`cnnlens.inputs.iter_batches` accepts (tensor (N, C, H, W),
        list of images/paths, Dataset), a DataLoader, or an iterator of batches
        (then the number of images is unknown and the streamed form is used).
    layers_a, layers_b : selector, optional
        Names, modules, a list or a predicate (see ``LayerTree.select``);
        default: the probe's default selection (leaf conv and linear layers).
    metrics : tuple of str
        Filled during the pass, cell by cell (with progress); the other metrics
        of ``METRICS`` can be read afterwards from the same statistics (except
        ``"minibatch_cka"``, which is accumulated per batch only when requested,
        and a family whose statistics would need > 256 MiB of kept activations).
    reduce : None, str or {"cca": str, "cka": str}
        Conv reduction: "mean", "flatten", "positions" or "resize". Default:
        "mean" for cca/svcca/pwcca (any two layers pair up), "flatten" for the
        CKA family (Kornblith et al.; the Gram form is used when d > n).
    batch_size, device
        Forward-pass batch size and device.
    progress : callable, "text" or None
        Called with ``dict(stage="forward"|"pairs", done, total, result)`` after
        every batch (done/total in images; total -1 if unknown) and every cell;
        ``"text"`` prints a progress line on stderr.
    cancel : threading.Event, optional
        When set, the pass stops at the next batch or cell with :class:`Cancelled`.
    keep, side, sigma, rtol
        SVCCA ``keep``, PWCCA ``side`` ("x" = model a), RBF ``sigma``, rank cut.
    collect : {"all", "requested"}
        "all" (default, for widgets): also accumulate the statistics of the family not
        in ``metrics`` so that switching metric needs no new pass. "requested": only
        what ``metrics`` needs (faster for scripts); other metrics then read NaN with
        a reason.

    Returns
    -------
    MatrixResult
        ``.matrix(metric)`` (La, Lb) with NaN where undefined, ``.reason``,
        ``.spectrum``, ``.baseline``, ``.convention``.

    Notes
    -----
    Forms: per group of pairable layers (same reduction and rows per image) the
    statistics are either streamed moments -- each layer's own moments once,
    all cross-moments from one GEMM per batch, memory independent of the number
    of images -- or the kept activations with one n x n Gram per layer (when a
    layer has d > n, RBF is requested, or there are at most 1024 datapoints);
    see :mod:`cnnlens.similarity.plan`. ``"minibatch_cka"`` (Nguyen et al.) is
    the CKA that streams flattened conv layers over unbounded data; it depends
    on ``batch_size``. NaN/Inf activations raise
    :class:`cnnlens.capture.NonFiniteError` naming the layer.

    Examples
    --------
    >>> res = similarity_matrix(model_a, model_b, images,              # doctest: +SKIP
    ...                         layers_a=lambda l: l.depth == 1, layers_b=lambda l: l.depth == 1,
    ...                         metrics=("svcca", "linear_cka"), progress="text")
    >>> res.matrix("linear_cka"), res.spectrum("layer1", "layer1")    # doctest: +SKIP
    """
    from cnnlens.probe import layer_tree

    metrics = tuple(metrics)
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"unknown metric {m!r}; choose from {', '.join(METRICS)}")
    if collect not in ("all", "requested"):
        raise ValueError(f"collect must be 'all' or 'requested'; got {collect!r}")
    red = resolve_reduce(reduce)
    check_keep(keep)
    if side not in ("x", "y"):
        raise ValueError(f"side must be 'x' (model a's neurons) or 'y'; got {side!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0; got {sigma}")
    report = _text_progress() if progress in ("text", True) else progress
    batches, n_images = _batches(data, batch_size)
    try:
        first = next(batches)
    except StopIteration:
        raise ValueError("no data: the image source yielded no batch") from None
    example = first[:1]
    la = layer_tree(model_a, example).select(layers_a)
    lb = la if model_b is model_a and layers_b == layers_a else \
        layer_tree(model_b, example).select(layers_b)
    for layers, which in ((la, "a"), (lb, "b")):
        if not layers:
            raise ValueError(f"no layers selected in model_{which}: pass layers_{which}=...")
    requested = {FAMILY[m] for m in metrics if m != "minibatch_cka"}
    col = Collector([x.name for x in la], [x.name for x in lb], red, requested, n_images,
                    want_rbf="rbf_cka" in metrics, minibatch="minibatch_cka" in metrics, collect=collect)
    res = MatrixResult(col.names["a"], col.names["b"], metrics, col, red, keep, side, sigma,
                       rtol)
    col.start({"a": _planning_batch(la, "a"), "b": _planning_batch(lb, "b")})
    for fam in requested & set(col.skipped):
        raise ValueError(col.skipped[fam])
    total = -1 if n_images is None else n_images
    for _ in _pass(model_a, model_b, la, lb, itertools.chain([first], batches), device, col):
        if cancel is not None and cancel.is_set():
            raise Cancelled("similarity pass cancelled during the forward passes")
        if report:
            report({"stage": "forward", "done": col.n, "total": total, "result": res})
    res.complete = True
    cells = [(m, i, j) for m in metrics for i in range(len(la)) for j in range(len(lb))]
    last = 0.0
    for k, (m, i, j) in enumerate(cells, 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("similarity pass cancelled while filling the matrix")
        res.result(m, i, j)
        now = time.monotonic()
        if report and (now - last > 0.05 or k == len(cells)):
            last = now
            report({"stage": "pairs", "done": k, "total": len(cells), "result": res})
    return res

