"""What can be selected in a model: the layer tree and layer selectors.

>>> import torch, torchvision
>>> from cnnlens.probe import layer_tree
>>> tree = layer_tree(torchvision.models.resnet18(), torch.rand(1, 3, 64, 64))
>>> tree["layer1.0.conv1"].shape
(64, 16, 16)
>>> [layer.name for layer in tree.select(lambda l: l.kind == "pool")]
['maxpool', 'avgpool']

The tree lists every submodule of ``model.named_modules()`` (the root itself is
not a layer). A module that runs more than once in one forward pass gets one
entry per call: ``"name"``, ``"name:1"``, ``"name:2"`` ... placed right after the
first. Output shapes come from one dry run through :mod:`cnnlens.capture`, the
only module allowed to register hooks.
"""
from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Union

import torch
from torch import nn

__all__ = ["Layer", "LayerNotFound", "LayerTree", "kind_of", "layer_tree", "split_name"]

Selector = Union[str, nn.Module, "Layer", Iterable, Callable[["Layer"], bool], None]

_NORM = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
         *([nn.RMSNorm] if hasattr(nn, "RMSNorm") else []))  # RMSNorm: torch >= 2.4


@dataclass(frozen=True)
class Layer:
    """One selectable call of one module.

    Attributes
    ----------
    name : str
        Dotted name from ``named_modules()``; the k-th extra call is ``"name:k"``.
    module_name : str
        The ``named_modules()`` key (``name`` without ``":k"``).
    type : str
        Class name of the module, e.g. ``"Conv2d"``.
    kind : str
        One of ``"conv"``, ``"linear"``, ``"norm"``, ``"activation"``, ``"pool"``,
        ``"block"`` (has children), ``"other"``.
    params : int
        Number of parameters of the module, children included.
    shape : tuple or None
        Per-sample output shape (no batch dimension) seen in the dry run;
        ``None`` when there was no dry run or the module did not run.
    depth : int
        1 for children of the root, 2 for grandchildren, ...
    module : nn.Module
        The module itself (not compared, not shown in ``repr``).
    """

    name: str
    module_name: str
    type: str
    kind: str
    params: int
    shape: tuple | None
    depth: int
    module: nn.Module = field(compare=False, repr=False)

    @property
    def call(self) -> int:
        """Call index within one forward pass (0 for the first call)."""
        return split_name(self.name)[1]


class LayerNotFound(KeyError):
    """Unknown layer name; the message lists the closest valid names."""

    def __str__(self):  # KeyError would show the message wrapped in quotes
        return str(self.args[0])


def split_name(name: str) -> tuple[str, int]:
    """Split ``"layer1.0:2"`` into ``("layer1.0", 2)``; plain names get call 0."""
    base, sep, k = name.rpartition(":")
    return (base, int(k)) if sep and k.isdigit() else (name, 0)


def kind_of(module: nn.Module) -> str:
    """Classify a module as conv, linear, norm, activation, pool, block or other."""
    has_children = next(module.children(), None) is not None
    # torch keeps pooling and activation classes in one file each; checking the
    # MRO also catches user subclasses of them.
    homes = {c.__module__ for c in type(module).__mro__}
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, (nn.Linear, nn.Bilinear)):
        return "linear"
    if isinstance(module, _NORM):
        return "norm"
    if "torch.nn.modules.pooling" in homes:
        return "pool"
    if "torch.nn.modules.activation" in homes and not has_children:  # not MultiheadAttention
        return "activation"
    if has_children:
        return "block"
    # Leaf modules from other libraries (e.g. torchvision's FrozenBatchNorm2d):
    # the class name is all we know about them.
    lname = type(module).__name__.lower()
    return next((w for w in ("norm", "conv", "pool", "linear") if w in lname), "other")


def _closest(name: str, names: Sequence[str], n: int = 5) -> list[str]:
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.5)
    if not close:  # still say something useful: same prefix, else the first names
        close = [x for x in names if x.startswith(name.split(".")[0])][:n] or list(names[:n])
    return close


class LayerTree(Sequence[Layer]):
    """The layers of a model in ``named_modules()`` order; build it with :func:`layer_tree`.

    Index by name (``tree["layer1.0"]``) or position; ``.names``; ``.select(selector)``.
    """

    def __init__(self, layers: Iterable[Layer], model: nn.Module | None = None):
        self._layers = list(layers)
        self._by_name = {layer.name: layer for layer in self._layers}
        self._by_module: dict[int, Layer] = {}
        for layer in self._layers:  # first call of each module wins
            self._by_module.setdefault(id(layer.module), layer)
        self.model = model

    @property
    def names(self) -> list[str]:
        """All layer names, in tree order."""
        return [layer.name for layer in self._layers]

    def __len__(self):
        return len(self._layers)

    def __iter__(self):
        return iter(self._layers)

    def __contains__(self, item):
        if isinstance(item, nn.Module):
            return id(item) in self._by_module
        return item in self._by_name if isinstance(item, str) else item in self._layers

    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                return self._by_name[key]
            except KeyError:
                raise self._unknown(key) from None
        if isinstance(key, slice):
            return LayerTree(self._layers[key], self.model)
        return self._layers[key]

    def _unknown(self, name: str) -> LayerNotFound:
        base, k = split_name(name)
        if k and base in self._by_name:
            calls = [x for x in self.names if split_name(x)[0] == base]
            return LayerNotFound(
                f"layer {name!r} not found: module {base!r} ran {len(calls)} time(s) in the "
                f"dry run, valid names: {calls}"
            )
        close = ", ".join(repr(x) for x in _closest(name, self.names))
        return LayerNotFound(
            f"unknown layer {name!r}; closest valid names: {close} "
            f"({len(self)} layers, see .names)"
        )

    def __repr__(self):
        return f"LayerTree({len(self)} layers)"

    def select(self, selector: Selector = None) -> list[Layer]:
        """Resolve a selector to a list of layers.

        Parameters
        ----------
        selector : str, nn.Module, Layer, list of those, callable or None
            A dotted name (``"layer1.0.conv1"``, ``"relu:1"`` for a second call), a
            module of the model (its first call), a :class:`Layer`, a list of any
            of these (order kept, duplicates dropped), a predicate
            ``f(Layer) -> bool`` (tree order), or ``None``: every leaf conv and
            linear layer (first calls only).

        Returns
        -------
        list of Layer

        Raises
        ------
        LayerNotFound
            A name or module that is not in the tree (closest names listed).
        TypeError
            A selector of another type.
        """
        if selector is None:
            return [x for x in self._layers if x.kind in ("conv", "linear") and x.call == 0
                    and next(x.module.children(), None) is None]
        if isinstance(selector, (str, nn.Module, Layer)):
            return [self._one(selector)]
        if callable(selector):
            return [x for x in self._layers if selector(x)]
        if isinstance(selector, Iterable):  # a dict by name keeps the first, in order
            return list({x.name: x for x in map(self._one, selector)}.values())
        raise TypeError(
            "a layer selector is a name, a module, a Layer, a list of those, a predicate "
            f"or None; got {type(selector).__name__}"
        )

    def _one(self, item) -> Layer:
        if isinstance(item, Layer):
            return self[item.name]
        if isinstance(item, str):
            return self[item]
        if isinstance(item, nn.Module):
            try:
                return self._by_module[id(item)]
            except KeyError:
                raise LayerNotFound(
                    f"module {type(item).__name__} is not a submodule of this model "
                    "(the root model itself is not a layer)"
                ) from None
        raise TypeError(f"cannot select a layer by {type(item).__name__}: {item!r}")


def layer_tree(model: nn.Module, example: torch.Tensor | None = None, pick=None) -> LayerTree:
    """Build the layer tree of ``model``.

    Parameters
    ----------
    model : nn.Module
        Any module; it is run once (eval mode, no grad) when ``example`` is given.
    example : Tensor or None
        One input batch, e.g. ``images[:1]``. ``None`` skips the dry run: shapes
        stay ``None`` and repeated calls (``"name:1"``) are not listed.
    pick : int, str or callable, optional
        Which tensor of a tuple/dict output gives the shape; see
        :func:`cnnlens.capture.pick_tensor`.

    Returns
    -------
    LayerTree
    """
    calls: dict[str, list[tuple | None]] = {}
    if example is not None:
        from cnnlens.capture import trace  # lazy: capture imports this module

        for module_name, shape in trace(model, example, pick=pick):
            calls.setdefault(module_name, []).append(shape)
    layers = []
    for module_name, module in model.named_modules():
        if module is model:
            continue
        common = {
            "module_name": module_name, "type": type(module).__name__, "kind": kind_of(module),
            "params": sum(p.numel() for p in module.parameters()),
            "depth": module_name.count(".") + 1, "module": module,
        }
        shapes = calls.get(module_name) or [None]
        for k, shape in enumerate(shapes):
            name = module_name if k == 0 else f"{module_name}:{k}"
            layers.append(Layer(name=name, shape=shape, **common))
    return LayerTree(layers, model)


def resolve(model_or_tree, selector: Selector) -> list[Layer]:
    """Select layers from a :class:`LayerTree` or, without a dry run, from a model.

    Layer objects pass through as they are. On a bare model a name like
    ``"relu:1"`` is accepted when ``"relu"`` exists, since repeated calls are
    only known after a forward pass.
    """
    items = [selector] if isinstance(selector, (str, Layer)) else selector
    if isinstance(items, (list, tuple)) and items and all(isinstance(x, Layer) for x in items):
        return list({x.name: x for x in items}.values())
    if isinstance(model_or_tree, LayerTree):
        return model_or_tree.select(selector)
    tree = layer_tree(model_or_tree)
    extra = []
    for item in items if isinstance(items, (list, tuple)) else ():
        base, k = split_name(item) if isinstance(item, str) else ("", 0)
        if k and item not in tree and base in tree:  # "base:k" that only a dry run can know
            extra.append(dataclasses.replace(tree[base], name=item))
    if extra:
        tree = LayerTree([*tree, *extra], tree.model)
    return tree.select(selector)
