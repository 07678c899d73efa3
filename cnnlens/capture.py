"""Record layer outputs: the only module in cnnlens that touches forward hooks.

>>> import torch
>>> from torch import nn
>>> from cnnlens.capture import capture
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Flatten())
>>> acts = capture(net, torch.rand(5, 3, 8, 8), ["0", "1"])
>>> acts["0"].shape, bool((acts["0"] < 0).any())   # pre-ReLU values, not mutated later
(torch.Size([5, 4, 6, 6]), True)

Hooks exist only inside a context manager and are removed on every exit path;
the model runs in eval mode under ``torch.no_grad()`` on its own device and each
module's train/eval flag is restored, also when forward raises; outputs are
detached, copied (in-place modules later on cannot change them) and moved to
CPU float32 inside the hook -- or, with ``stream(..., consume=f)``, handed to
``f`` inside the hook and never copied (``f`` reduces them before any later
in-place module can change them).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from cnnlens.inputs import (
    as_batch,
    check_input,
    eval_mode,
    iter_batches,
    model_device,
    model_dtype,
)
from cnnlens.layers import Layer, resolve

__all__ = ["ForwardError", "NonFiniteError", "Recording", "capture", "pick_tensor", "recording",
           "stream", "tap", "trace"]


class ForwardError(RuntimeError):
    """The model's own forward raised; the original exception is chained (``__cause__``)."""


class NonFiniteError(ValueError):
    """A captured activation holds NaN or Inf; the message names the layer."""


def pick_tensor(output, pick=None):
    """Choose the tensor to record from a module output.

    ``pick`` is None (the first tensor found, depth first through tuples, lists
    and dict values), an int (tuple/list index), a str (dict key or attribute)
    or a callable ``f(output) -> Tensor``. Returns None when nothing matches.
    """
    if callable(pick):
        return pick(output)
    if isinstance(output, torch.Tensor):  # a global pick only concerns tuple/dict outputs
        return output
    if pick is not None:
        if isinstance(output, dict):
            return output.get(pick)
        if isinstance(pick, int) and isinstance(output, (tuple, list)):
            return output[pick] if -len(output) <= pick < len(output) else None
        return getattr(output, pick, None) if isinstance(pick, str) else None  # namedtuples
    items = output.values() if isinstance(output, dict) else (
        output if isinstance(output, (tuple, list)) else ())
    return next((t for t in map(pick_tensor, items) if t is not None), None)


@contextmanager
def _hooked(model: nn.Module, module_names: set[str] | None, on_output: Callable):
    """Hook ``module_names`` (None: all) and call ``on_output(name, k, output)`` per call.

    ``k`` counts calls of that module within one forward of ``model``; a pre-hook
    on the root resets the counts. Calls from other threads are ignored, so
    concurrent users of one model do not see each other's activations.
    """
    owner = threading.get_ident()
    counts: dict[str, int] = {}
    handles = []

    def reset(_module, _args):
        if threading.get_ident() == owner:
            counts.clear()

    def make_hook(name):  # a factory: each hook must bind its own name
        def hook(_module, _args, output):
            if threading.get_ident() == owner:  # returns None: never replaces the output
                k = counts.get(name, 0)
                counts[name] = k + 1
                on_output(name, k, output)

        return hook

    try:
        handles.append(model.register_forward_pre_hook(reset))
        for name, m in model.named_modules():
            if m is not model and (module_names is None or name in module_names):
                handles.append(m.register_forward_hook(make_hook(name)))
        yield counts
    finally:
        for h in handles:  # RemovableHandle.remove() is idempotent
            h.remove()


class Recording:
    """Outputs recorded by :func:`recording` for ``.layers``, per name, in call order."""

    def __init__(self, layers: list[Layer], pick=None, consume=None, check_finite=False):
        self.layers = layers
        self._wanted = {layer.name for layer in layers}
        self._pick, self._consume, self._check = pick, consume, check_finite
        self._chunks: dict[str, list] = {}  # tensors, or their shapes when consumed
        self.start = 0  # index of the batch's first image (error messages)
        self.error: Exception | None = None  # raised by take(), after the forward
        # stream() switches this on only around its own forward, so that two
        # streams over one model (zip(stream(m, a), stream(m, b))) stay apart.
        self.active = True
        self.on_device = False  # stream(..., on_device=True): consume() gets device tensors

    def _on_output(self, module_name: str, k: int, output) -> None:
        name = module_name if k == 0 else f"{module_name}:{k}"
        if not self.active or name not in self._wanted or self.error is not None:
            return
        pick = self._pick.get(name) if isinstance(self._pick, dict) else self._pick
        try:
            t = pick_tensor(output, pick)
        # A user's pick callable can raise anything; raising inside the hook would
        # surface as a ForwardError blaming the model, so keep it for take().
        except Exception as exc:  # noqa: BLE001
            t = exc
        if not isinstance(t, torch.Tensor):
            self.error = t if isinstance(t, Exception) else TypeError(
                f"layer {name!r} returned {type(output).__name__} with no tensor for "
                f"pick={pick!r}; pass pick=<index|key|callable>")
            return
        if self._consume is None:
            # Copy always: an in-place module later in the net (ReLU(inplace=True))
            # would otherwise rewrite this tensor after the hook returned.
            t = t.detach().to(device="cpu", dtype=torch.float32, copy=True)
            self._chunks.setdefault(name, []).append(t)
            return
        # no copy if already there; a consumer that keeps statistics on the model's device
        # (a GPU pass) gets the tensor where it is
        t = t.detach().to(device=None if self.on_device else "cpu", dtype=torch.float32)
        self._chunks.setdefault(name, []).append(t.shape)
        try:  # now, before a later in-place module can change t
            if self._check:
                _check_finite(name, t, self.start)
            self._consume(name, t)
        # Kept for take() (after the forward): raised here it would become a
        # ForwardError blaming the model; later hooks of this forward are skipped.
        except Exception as exc:  # noqa: BLE001
            self.error = exc

    def take(self) -> dict[str, torch.Tensor]:
        """Everything recorded since the last ``take``, concatenated on dim 0, and clear."""
        err, self.error = self.error, None
        out = None if err is not None else {k: _cat(v) if self._consume is None else torch.Size(
            (sum(s[0] for s in v), *v[0][1:])) for k, v in self._chunks.items()}
        self._chunks.clear()
        if err is not None:
            raise err
        return out


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts)  # no copy of a lone part


@contextmanager
def _recording(model, layers, pick=None, consume=None, check_finite=False):
    rec = Recording(resolve(model, layers), pick, consume, check_finite)
    with eval_mode(model), _hooked(model, {x.module_name for x in rec.layers}, rec._on_output):
        yield rec


@contextmanager
def recording(model: nn.Module, layers, pick=None) -> Iterator[Recording]:
    """Context manager: record the outputs of ``layers`` for forwards run inside it.

    Parameters
    ----------
    model : nn.Module
    layers : selector
        Anything :meth:`cnnlens.layers.LayerTree.select` takes (``"name:1"``: 2nd call).
    pick : int, str, callable or dict, optional
        How to choose a tensor from tuple/dict outputs (see :func:`pick_tensor`);
        a dict maps layer names to picks.

    Examples
    --------
    >>> with recording(model, ["features.0"]) as rec:   # doctest: +SKIP
    ...     model(x)
    ...     acts = rec.take()["features.0"]
    """
    with _recording(model, layers, pick) as rec, torch.no_grad():
        yield rec


def _forward(model: nn.Module, batch: torch.Tensor, device) -> None:
    batch = batch.to(device=device, dtype=model_dtype(model) if batch.is_floating_point()
                     else None)
    try:
        with torch.no_grad():  # here, not around a generator: grad mode is thread state
            model(batch)
    except Exception as exc:
        msg = str(exc)
        # Shape mismatches deep inside a model usually mean the images have a size
        # the model was not built for (e.g. a Linear after Flatten).
        hint = "; check the input size (H, W) the model was built for" if any(
            w in msg for w in ("shape", "size")) else ""
        raise ForwardError(f"forward of {type(model).__name__} raised {type(exc).__name__} on a "
                           f"batch of shape {tuple(batch.shape)}: {msg}{hint}") from exc


def _check_finite(name: str, t: torch.Tensor, start: int) -> None:
    # One sum is ~8x cheaper than a mask; NaN/Inf always make it non-finite (it may
    # also overflow on finite values, so the mask decides).
    if not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
        nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
        raise NonFiniteError(
            f"activations of layer {name!r} contain {nan} NaN and {inf} Inf values (images "
            f"{start}..{start + len(t) - 1}), the first recorded layer with non-finite "
            "values: check the input scaling and the weights at or before it")


_END = object()


def stream(model: nn.Module, batches: Iterable, layers, pick=None, device=None,
           check_finite: bool = True, consume: Callable | None = None,
           on_device: bool = False) -> Iterator[dict]:
    """Yield ``{layer name: float32 CPU tensor}`` for each input batch.

    Parameters
    ----------
    batches : iterable of Tensor
        Batches (n, C, H, W); ``(x, label)`` items use ``x``. A single Tensor is one batch.
    layers, pick
        See :func:`recording`.
    device : torch.device or str, optional
        Where inputs go; default: the model's own device.
    check_finite : bool
        Raise :class:`NonFiniteError` on NaN/Inf activations (default True).
    consume : callable, optional
        ``consume(name, tensor)`` is called inside the hook with each output
        (detached, CPU float32, **not copied**: valid only during the call, since a
        later in-place module may rewrite it); nothing is kept and the yielded dicts
        hold ``torch.Size`` of each layer's batch output instead of tensors. An
        exception it raises skips the rest of that batch's hooks and is re-raised
        as is after the forward, with the hooks removed.
    on_device : bool
        With ``consume``: hand it the outputs on the model's device (float32) instead
        of CPU copies, so statistics can be accumulated where the model runs.

    Hooks stay attached while the generator is suspended between batches, but are
    removed before the last batch is yielded; ``close()`` it to stop early.

    Raises
    ------
    ValueError
        A batch of the wrong shape or channel count, or a layer that never ran.
    ForwardError
        The model raised (hooks are gone and flags restored by then).
    """
    device = model_device(model) if device is None else torch.device(device)
    it = iter([batches] if isinstance(batches, torch.Tensor) else batches)
    nxt, start, out = next(it, _END), 0, None
    with _recording(model, layers, pick, consume, check_finite) as rec:
        rec.active, rec.on_device = False, on_device
        while nxt is not _END:
            batch = as_batch(nxt)
            check_input(model, batch)
            rec.active, rec.start = True, start
            try:
                _forward(model, batch, device)
            finally:
                rec.active = False
            out = rec.take()
            missing = [x.name for x in rec.layers if x.name not in out]
            if missing:
                raise ValueError(f"layer(s) {missing} did not run in the forward pass of "
                                 f"{type(model).__name__} (never called, or fewer times)")
            if check_finite and consume is None:  # (consumed ones: checked in the hook)
                for name, t in out.items():  # call order: the first offender is the earliest
                    _check_finite(name, t, start)
            out, start = {x.name: out[x.name] for x in rec.layers}, start + len(batch)
            # Look ahead so that the last result is yielded after the hooks are gone:
            # a consumer that stops after it (zip, islice) leaves nothing attached.
            nxt = next(it, _END)
            if nxt is not _END:
                yield out
    if out is not None:
        yield out


def capture(model: nn.Module, images, layers, batch_size: int = 64, pick=None, device=None,
            transform=None, check_finite: bool = True) -> dict[str, torch.Tensor]:
    """Run ``images`` through ``model`` in batches; return each layer's outputs.

    ``images`` is anything :func:`cnnlens.inputs.to_batch` accepts. Returns a dict
    ``{layer name: float32 CPU tensor (N, ...)}`` in the order of ``layers``.
    See :func:`stream` for the other parameters and errors.
    """
    outs = list(stream(model, iter_batches(images, batch_size, transform), layers, pick=pick,
                       device=device, check_finite=check_finite))
    if not outs:
        raise ValueError("no images given")
    return {name: _cat([o[name] for o in outs]) for name in outs[0]}


def trace(model: nn.Module, example: torch.Tensor, pick=None) -> list[tuple[str, tuple | None]]:
    """One dry run: ``(module name, per-sample output shape or None)`` for every call.

    Used by :func:`cnnlens.probe.layer_tree`; records shapes only, no tensors.
    """
    example = as_batch(example)
    check_input(model, example)
    calls: list[tuple[str, tuple | None]] = []

    def on_output(name, _k, output):
        t = pick_tensor(output, pick)
        calls.append((name, tuple(t.shape[1:]) if isinstance(t, torch.Tensor) else None))

    with eval_mode(model), _hooked(model, None, on_output):
        _forward(model, example, model_device(model))
    return calls


class _Reached(Exception):
    """Raised in :func:`tap`'s hook to end the forward at the tapped layer."""


@contextmanager
def tap(model: nn.Module, layer, pick=None) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """Context manager: ``run(x)`` returns one layer's output **with its autograd graph**.

    For optimising an input through the model (:mod:`cnnlens.featvis`): the output
    is neither detached nor copied, and the forward stops right after the layer (an
    exception from the hook), so later layers never run -- in-place modules after it
    cannot change it, and a conv layer accepts any input size. Eval mode as in
    :func:`recording`; grad mode is the caller's.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True), nn.Flatten())
    >>> x = torch.rand(1, 1, 5, 5, requires_grad=True)
    >>> with tap(net, "0") as run:
    ...     run(x).sum().backward()
    >>> x.grad.shape
    torch.Size([1, 1, 5, 5])
    """
    (target,) = resolve(model, [layer] if isinstance(layer, (str, Layer)) else layer)
    got: list[torch.Tensor] = []

    def on_output(_name, k, output):
        if k == target.call:
            t = pick_tensor(output, pick)
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"layer {target.name!r} returned {type(output).__name__} with no "
                                f"tensor for pick={pick!r}; pass pick=<index|key|callable>")
            got.append(t)
            raise _Reached

    def run(x: torch.Tensor) -> torch.Tensor:
        got.clear()
        try:
            model(x)
        except _Reached:
            return got[0]
        raise ValueError(f"layer {target.name!r} did not run in the forward pass of "
                         f"{type(model).__name__} (never called, or fewer times)")

    with eval_mode(model), _hooked(model, {target.module_name}, on_output):
        yield run
