"""What a model's layers are, without running it: layers, the tree, selectors.

>>> from torch import nn
>>> from cnnlens.layers import tree_of
>>> tree = tree_of(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
>>> [(x.name, x.kind) for x in tree]
[('0', 'conv'), ('1', 'activation')]

The tree lists every submodule of ``model.named_modules()`` (the root itself is
not a layer). A module that runs more than once in one forward pass gets one
entry per call: ``"name"``, ``"name:1"``, ``"name:2"`` ... placed right after the
first; only a dry run knows those calls and the output shapes, so users build
the tree with :func:`cnnlens.probe.layer_tree`, which runs the model once through
:mod:`cnnlens.capture` (the only module that touches hooks) and hands the calls
to :func:`tree_of`. This module sits below both: :mod:`cnnlens.capture` resolves
its layer selectors here.
"""
from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Union

from torch import nn

__all__ = ["Layer", "LayerNotFound", "LayerTree", "Selector", "kind_of", "resolve", "split_name", "tree_of"]

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
    """The layers of a model in ``named_modules()`` order; build it with :func:`cnnlens.probe.layer_tree`.

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


def tree_of(model: nn.Module, calls: Iterable[tuple[str, tuple | None]] = ()) -> LayerTree:
    """Build the layer tree of ``model`` from the calls of a dry run, if any.

    Parameters
    ----------
    model : nn.Module
        Any module; it is not run.
    calls : iterable of (module name, per-sample shape or None)
        What :func:`cnnlens.capture.trace` recorded, in call order. Empty (the
        default): shapes stay ``None`` and repeated calls (``"name:1"``) are not
        listed. :func:`cnnlens.probe.layer_tree` does the dry run and calls this.

    Returns
    -------
    LayerTree
    """
    shapes_of: dict[str, list[tuple | None]] = {}
    for module_name, shape in calls:
        shapes_of.setdefault(module_name, []).append(shape)
    layers = []
    for module_name, module in model.named_modules():
        if module is model:
            continue
        common = {
            "module_name": module_name, "type": type(module).__name__, "kind": kind_of(module),
            "params": sum(p.numel() for p in module.parameters()),
            "depth": module_name.count(".") + 1, "module": module,
        }
        shapes = shapes_of.get(module_name) or [None]
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
    tree = tree_of(model_or_tree)
    extra = []
    for item in items if isinstance(items, (list, tuple)) else ():
        base, k = split_name(item) if isinstance(item, str) else ("", 0)
        if k and item not in tree and base in tree:  # "base:k" that only a dry run can know
            extra.append(dataclasses.replace(tree[base], name=item))
    if extra:
        tree = LayerTree([*tree, *extra], tree.model)
    return tree.select(selector)
