"""One layer of each of two models, streamed in step over the same batches.

The forwards go through :func:`cnnlens.capture.stream` (the only module that
touches hooks); a stream stopped early is closed, so no hook outlives it.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator

__all__ = ["batches_of", "one_layer", "stream_pair"]


def one_layer(model, selector, which: str):
    """The one :class:`~cnnlens.probe.Layer` of ``model`` that ``selector`` picks (no forward).

    ``which`` ("a" or "b") names the side in errors; an unknown name raises
    :class:`~cnnlens.probe.LayerNotFound` listing close names.
    """
    from cnnlens.probe import resolve

    layers = resolve(model, selector)  # unknown names raise LayerNotFound with close matches
    if len(layers) != 1:
        raise ValueError(f"layer_{which} must select exactly one layer of model_{which}; "
                         f"{selector!r} selects {len(layers)}: {[x.name for x in layers][:8]}")
    return layers[0]


def batches_of(data, batch_size: int) -> tuple[Iterator, int | None]:
    """(input batches, number of images or None): a DataLoader or an iterator of batches
    is streamed as given; anything else is batched by :func:`cnnlens.inputs.iter_batches`."""
    from torch.utils.data import DataLoader

    from cnnlens.inputs import iter_batches, num_images

    if isinstance(data, (DataLoader, Iterator)):
        return (b[0] if isinstance(b, (tuple, list)) else b for b in data), None
    return iter_batches(data, batch_size), num_images(data)


def stream_pair(model_a, model_b, la, lb, batches, device) -> Iterator[tuple]:
    """Yield (A's output, B's output), float32 CPU tensors, for each input batch.

    One forward per batch when ``model_a is model_b``; otherwise both models read
    the same batches in turn on this thread. Close the generator to stop early.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    >>> la, lb = one_layer(net, "0", "a"), one_layer(net, "1", "b")
    >>> [(tuple(a.shape), tuple(b.shape))
    ...  for a, b in stream_pair(net, net, la, lb, torch.rand(5, 1, 6, 6).split(3), None)]
    [((3, 2, 4, 4), (3, 2, 4, 4)), ((2, 2, 4, 4), (2, 2, 4, 4))]
    """
    from cnnlens.capture import stream

    if model_a is model_b:
        gens = [stream(model_a, batches, [la, lb], device=device)]
        pairs = ((o[la.name], o[lb.name]) for o in gens[0])
    else:
        ia, ib = itertools.tee(batches)  # one thread, read in step: holds at most two batches
        gens = [stream(model_a, ia, [la], device=device), stream(model_b, ib, [lb], device=device)]
        pairs = ((oa[la.name], ob[lb.name]) for oa, ob in zip(*gens, strict=True))
    try:
        yield from pairs
    finally:  # a stream stopped early keeps its hooks until closed
        for g in gens:
            g.close()
