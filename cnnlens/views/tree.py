"""The layer tree as a view sees it: rows, the filters behind a layer, selectable neurons."""

from __future__ import annotations

import math

__all__ = ["channel_count", "filter_weights", "keeps_neuron", "tree_nodes", "weight_layer"]


def tree_nodes(tree) -> list[dict]:
    """Rows for the view from a ``cnnlens.layers.LayerTree``: name, type, kind, shape, params, depth, parent.

    ``parent`` is the row index of the enclosing module (-1 at the top); a repeated call
    ``"name:k"`` sits next to ``"name"`` under the same parent.
    """
    rows, index = [], {}
    for layer in tree:
        module_name = getattr(layer, "module_name", layer.name.split(":")[0])
        parent = -1
        prefix = module_name
        while "." in prefix:
            prefix = prefix.rsplit(".", 1)[0]
            if prefix in index:
                parent = index[prefix]
                break
        if module_name not in index:
            index[module_name] = len(rows)
        shape = getattr(layer, "shape", None)
        rows.append(
            {
                "name": layer.name,
                "type": layer.type,
                "kind": layer.kind,
                "shape": list(shape) if shape is not None else None,
                "params": int(layer.params),
                "depth": int(layer.depth),
                "parent": parent,
            }
        )
    return rows


def weight_layer(inspector, layer: str) -> str | None:
    """The conv/linear module whose filters produce the channels of ``layer``.

    ``layer`` itself if it has weights; for a block, its last weighted descendant; else the
    nearest weighted layer before it (a BatchNorm/ReLU after a conv). The candidate must
    have as many output filters as ``layer`` has channels, or there is no answer (None).
    Weights are read through the Inspector (:meth:`~cnnlens.inspector.Inspector.weight_param`),
    which finds a replaced module by name.
    """
    tree = inspector.layers
    names = tree.names
    target = tree[layer]
    channels = target.shape[0] if target.shape else None
    pos = names.index(layer)
    inside = [
        x for x in names[pos + 1 :] if tree[x].module_name.startswith(target.module_name + ".")
    ]
    for name in [layer, *reversed(inside), *reversed(names[:pos])]:
        if tree[name].kind not in ("conv", "linear"):
            continue
        w = inspector.weight_param(name)  # the parameter itself: no copy just to read a shape
        if w is not None:
            return name if channels is None or w.shape[0] == channels else None
    return None


def filter_weights(inspector, wl: str, n: int):
    """Filter ``n`` of layer ``wl`` as (1, in, ...) float32 CPU: a copy of that slice only.

    None when ``wl`` has no weights or no filter ``n``.
    """
    w = inspector.weight_param(wl)
    if w is None or not 0 <= n < w.shape[0]:
        return None
    return inspector.weights(wl, filters=n)


def channel_count(tree, layer: str) -> int:
    """Selectable neurons of ``layer``: channels of a map, units of a vector (0 if unknown)."""
    try:
        shape = tree[layer].shape
    except KeyError:
        return 0
    if not shape:
        return 0
    vector = len(shape) == 1 or all(s == 1 for s in shape[1:])
    return math.prod(shape) if vector else int(shape[0])


def keeps_neuron(tree, old: str, new: str, neuron: int) -> bool:
    """Whether a neuron selected on layer ``old`` stays selected on layer ``new``.

    Kept while both layers are maps (a conv's channel k is the channel k of the ReLU or
    pool after it) or both vectors, and it exists on ``new``; a switch between a map and a
    vector clears it: channel 11 of a conv and unit 11 of a linear layer have nothing in
    common (issue 11 showed "fc1 · neuron 11" carried over from conv2).
    Mirror of ``keepsNeuron`` in js/activation_grid.js.

    >>> from types import SimpleNamespace as NS
    >>> tree = {"conv": NS(shape=(16, 8, 8)), "relu": NS(shape=(16, 8, 8)), "fc": NS(shape=(64,))}
    >>> keeps_neuron(tree, "conv", "relu", 11), keeps_neuron(tree, "conv", "fc", 11)
    (True, False)
    """
    if neuron < 0:
        return True
    n = channel_count(tree, new)

    def vector(name):
        try:
            shape = tree[name].shape
        except KeyError:
            return None
        return bool(shape) and (len(shape) == 1 or all(s == 1 for s in shape[1:]))

    return neuron < n and vector(old) == vector(new)
