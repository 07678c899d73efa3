"""The all-pairs engine: one pass of the data through both models, every layer pair.

Activations come only from :func:`cnnlens.capture.stream` (the one module that
touches hooks); layers are chosen with :meth:`cnnlens.probe.LayerTree.select`.
"""
from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator

import torch

from . import distributed
from .budget import give_back, resolve_memory
from .linalg import RTOL, check_keep
from .matrix import METRICS, MatrixResult
from .plan import Collector, resolve_reduce

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


def progress_text(info) -> str:
    """One line for a progress report: done/total, rate and ETA during the forward pass."""
    stage, done, total = info["stage"], info["done"], info["total"]
    unit = "images" if stage == "forward" else "cells"
    text = f"{stage}: {done}{f'/{total}' if total > 0 else ''} {unit}"
    if info.get("rate"):
        text += f", {info['rate']:.1f} images/s"
    if info.get("eta") is not None:
        text += f", ETA {_clock(info['eta'])}"
    return text


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def _text_progress():
    state = {"stage": None}

    def report(info):
        stage, done, total = info["stage"], info["done"], info["total"]
        if stage != state["stage"] and state["stage"] is not None:
            sys.stderr.write("\n")
        state["stage"] = stage
        sys.stderr.write(f"\r[cnnlens.similarity] {progress_text(info)}   ")
        if total > 0 and done >= total and stage == "pairs":
            sys.stderr.write("\n")
        sys.stderr.flush()
    return report


def _pass(model_a, model_b, la, lb, batches, device, col, on_device=False):
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
        gens = [stream(model_a, batches, union, device=device[0], check_finite=False,
                       consume=to_sides, on_device=on_device)]
    else:
        readers = itertools.tee(batches, 2)
        gens = [stream(model, readers[k], layers, device=device[k], check_finite=False,
                       consume=lambda name, t, s=s: col.take(s, name, t), on_device=on_device)
                for k, (model, layers, s) in enumerate(((model_a, la, "a"), (model_b, lb, "b")))]
    try:
        while True:
            shapes = [next(g, _END) for g in gens]
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


def _planning_batch(layers, which: str) -> dict:
    """One zero image per layer, shaped as in the dry run: the collector plans from shapes."""
    import torch

    for x in layers:
        if x.shape is None:
            raise ValueError(f"layer {x.name!r} of model_{which} returned no tensor in the dry "
                             "run; select layers whose output is a tensor")
    return {x.name: torch.zeros(1, *x.shape) for x in layers}


def _devices(device):
    """``device`` -> (device of model a, device of model b); a pair puts them apart."""
    if isinstance(device, (tuple, list)):
        if len(device) != 2:
            raise ValueError(f"device=(device_a, device_b) takes two devices; got {device!r}")
        return tuple(device)
    return device, device


def _on_gpu(model) -> bool:
    p = next(iter(model.parameters()), None)
    return p is not None and p.device.type == "cuda"


def _wanted(metrics, collect: str) -> set:
    """Metrics to collect: the requested ones, and with collect="all" every other one
    that fits (minibatch_cka only when asked for: it depends on the batching)."""
    if collect == "requested":
        return set(metrics)
    return {m for m in METRICS if m != "minibatch_cka"} | set(metrics)


def similarity_matrix(model_a, model_b, data, layers_a=None, layers_b=None,
                      metrics=("svcca", "pwcca", "linear_cka"), reduce=None, batch_size=64,
                      device=None, progress=None, cancel=None, *, keep=0.99, side="x",
                      sigma=0.8, rtol=RTOL, collect="all", memory="auto",
                      dry_run=False, reference=None, layers_c=None, maps=False) -> MatrixResult:
    """Compare every layer of ``model_a`` with every layer of ``model_b`` in one pass.

    Parameters
    ----------
    model_a, model_b : nn.Module
        May be the same object (one forward per batch then).
    data : images or batches, or a dict of them
        Anything :func:`cnnlens.inputs.iter_batches` accepts (tensor (N, C, H, W),
        list of images/paths, Dataset), a DataLoader, or an iterator of batches
        (then the number of images is unknown and only streamed forms are planned).
        A dict ``{"real": ..., "synthetic": ...}``: one pass per dataset, returned as a
        :class:`~cnnlens.similarity.datasets.DatasetResults` (reads as the selected one's).
        Under an initialised ``torch.distributed`` process group, this rank's shard.
    layers_a, layers_b : selector, optional
        Names, modules, a list or a predicate (see ``LayerTree.select``);
        default: the probe's default selection (leaf conv and linear layers).
    metrics : tuple of str
        Filled during the pass, cell by cell (with progress). They must fit the
        memory budget (else :class:`~cnnlens.similarity.budget.BudgetError` before
        any forward). With ``collect="all"`` every other metric of ``METRICS`` is
        collected too when it fits, so switching metric needs no new pass
        (``"minibatch_cka"`` only when requested: it depends on the batching).
    reduce : None, str or {"cca": str, "cka": str}
        Conv reduction: "mean", "flatten", "positions" or "resize". Default:
        "mean" for cca/svcca/pwcca (any two layers pair up), "flatten" for the
        CKA family (Kornblith et al.).
    batch_size, device
        Forward-pass batch size; device of both models, or ``(device_a, device_b)``.
        On a GPU, reductions and statistic updates stay on the device; only the final
        statistics come to the host.
    progress : callable, "text" or None
        Called with ``dict(stage="forward"|"pairs", done, total, result, rate, eta)``
        after every batch (done/total in images, total -1 if unknown; ``rate`` in
        images/s, ``eta`` in seconds or None) and every cell; ``"text"`` prints a line
        on stderr.
    cancel : threading.Event, optional
        When set, the pass stops at the next batch or cell with :class:`Cancelled`.
    keep, side, sigma, rtol
        SVCCA ``keep``, PWCCA ``side`` ("x" = model a), RBF ``sigma``, rank cut.
    collect : {"all", "requested"}
        See ``metrics``.
    memory : "auto" or int
        Bytes the statistics may hold; ``"auto"``: ``budget.AUTO_FRACTION`` (half) of
        the memory available now (host RAM; the GPU's free memory on CUDA).
    dry_run : bool
        Return the :class:`~cnnlens.similarity.budget.Plan` without running the data.
    maps : bool
        Also accumulate, for every pair, the position-level moments and each layer's
        per-image means that canonical maps need (``res.canonical_maps(i, j, ...)``, no
        further pass; see :mod:`cnnlens.similarity.positions`). Optional in the plan:
        dropped, with the reason in ``res.plan`` and ``res.warnings``, when it does not
        fit what the metrics leave of the budget.
    reference, layers_c : nn.Module and selector, optional
        A third model C (e.g. ``model_a``'s recipe with another seed) compared with A in
        the same pass: the result reads as A~B, with A~C at ``.reference``,
        ``.difference(metric)`` and ``.gap_table(metric)`` (see
        :mod:`cnnlens.similarity.reference`). ``layers_c`` defaults to B's layer names.

    Returns
    -------
    MatrixResult
        ``.matrix(metric)`` (La, Lb) with NaN where undefined, ``.se(metric)``,
        ``.reason``, ``.spectrum``, ``.baseline``, ``.convention``, ``.plan``,
        ``.save(path)``.

    Notes
    -----
    Forms (see :mod:`cnnlens.similarity.plan`): per group of pairable layers,
    streamed moments (exact CCA family and linear/debiased CKA, memory
    independent of the number of images), kept activations with n x n Grams
    (exact, every metric) or, for the CKA family when no exact form fits, the
    minibatch estimator (unbiased HSIC, Nguyen et al. 2021) with a jackknife
    standard error per cell. NaN/Inf activations raise
    :class:`cnnlens.capture.NonFiniteError` naming the layer.

    Under ``torch.distributed`` every rank plans with the total number of images
    and the smallest budget, streams its shard, and the statistics are merged with
    collectives (:mod:`cnnlens.similarity.distributed`): every rank returns the
    result of the concatenated data.

    Examples
    --------
    >>> res = similarity_matrix(model_a, model_b, images,              # doctest: +SKIP
    ...                         layers_a=lambda l: l.depth == 1, layers_b=lambda l: l.depth == 1,
    ...                         metrics=("svcca", "linear_cka"), progress="text")
    >>> res.matrix("linear_cka"), res.spectrum("layer1", "layer1")    # doctest: +SKIP
    >>> print(similarity_matrix(model_a, model_b, images, memory=1 << 30, dry_run=True))  # doctest: +SKIP
    """
    from cnnlens.probe import layer_tree

    if isinstance(data, dict):  # one pass per dataset, read as the selected one's result
        from .datasets import per_dataset
        return per_dataset(
            similarity_matrix, model_a, model_b, data, progress, dry_run, layers_a=layers_a,
            layers_b=layers_b, metrics=metrics, reduce=reduce, batch_size=batch_size,
            device=device, cancel=cancel, keep=keep, side=side, sigma=sigma, rtol=rtol,
            collect=collect, memory=memory, reference=reference, layers_c=layers_c, maps=maps)
    if reference is not None:  # B and C as halves of one module: A's statistics serve both
        from .reference import with_reference
        return with_reference(
            similarity_matrix, model_a, model_b, data, reference, layers_a, layers_b, layers_c,
            progress, dry_run, metrics=metrics, reduce=reduce, batch_size=batch_size,
            device=device, cancel=cancel, keep=keep, side=side, sigma=sigma, rtol=rtol,
            collect=collect, memory=memory, maps=maps)
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
    devices = _devices(device)
    budget = resolve_memory(memory, devices[0])
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
    multi = distributed.active()
    local_images = n_images
    if multi:  # every rank must plan the same forms: total images, smallest budget
        known = distributed.min_int(0 if n_images is None else 1)
        total_images = distributed.sum_int(n_images or 0)
        n_images = total_images if known else None
        budget = distributed.min_int(budget)
    col = Collector([x.name for x in la], [x.name for x in lb], red, _wanted(metrics, collect),
                    metrics, n_images, budget, batch_size=batch_size, sigma=sigma, maps=maps,
                    local_images=local_images)
    res = MatrixResult(col.names["a"], col.names["b"], metrics, col, red, keep, side, sigma,
                       rtol, batch_size=batch_size)
    plan = col.start({"a": _planning_batch(la, "a"), "b": _planning_batch(lb, "b")})
    if dry_run:
        return plan
    total = -1 if local_images is None else local_images  # this rank's progress
    on_device = any(torch.device(d).type == "cuda" if d is not None else _on_gpu(m)
                    for d, m in zip(devices, (model_a, model_b), strict=True))
    t0 = time.monotonic()
    for _ in _pass(model_a, model_b, la, lb, itertools.chain([first], batches), devices, col,
                   on_device):
        if cancel is not None and cancel.is_set():
            raise Cancelled("similarity pass cancelled during the forward passes")
        if report:
            rate = col.n / max(time.monotonic() - t0, 1e-9)
            eta = (total - col.n) / rate if total > 0 and rate > 0 else None
            report({"stage": "forward", "done": col.n, "total": total, "result": res,
                    "rate": rate, "eta": eta})
    if multi:
        col.merge_ranks()
    col.to_host()
    res.complete = True
    # pair by pair, every metric of a pair in turn: per-pair work (a kept pair's
    # cross-scatter) is done once; ``done`` counts pairs, row-major
    pairs = [(i, j) for i in range(len(la)) for j in range(len(lb))]
    last = 0.0
    for k, (i, j) in enumerate(pairs, 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("similarity pass cancelled while filling the matrix")
        for m in metrics:
            res.result(m, i, j)
        if j == len(lb) - 1:
            res.release("a", i)  # its row is done: keep per-layer work of b's layers only
            give_back()
        now = time.monotonic()
        if report and (now - last > 0.05 or k == len(pairs)):
            last = now
            report({"stage": "pairs", "done": k, "total": len(pairs), "result": res})
    return res
