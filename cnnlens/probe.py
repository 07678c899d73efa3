"""What can be selected in a model: the layer tree with shapes from one dry run.

>>> import torch, torchvision
>>> from cnnlens.probe import layer_tree
>>> tree = layer_tree(torchvision.models.resnet18(), torch.rand(1, 3, 64, 64))
>>> tree["layer1.0.conv1"].shape
(64, 16, 16)
>>> [layer.name for layer in tree.select(lambda l: l.kind == "pool")]
['maxpool', 'avgpool']

The layers, the tree and the selectors live in :mod:`cnnlens.layers` (no forward
pass, no hooks); the dry run is :func:`cnnlens.capture.trace`, the only module
allowed to register hooks. This module joins the two, so the arrows go one way:
``probe -> capture -> layers``.
"""
from __future__ import annotations

import torch
from torch import nn

from cnnlens.capture import trace
from cnnlens.layers import Layer, LayerNotFound, LayerTree, kind_of, resolve, split_name, tree_of

__all__ = ["Layer", "LayerNotFound", "LayerTree", "kind_of", "layer_tree", "resolve", "split_name",
           "tree_of"]


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
    return tree_of(model, trace(model, example, pick=pick) if example is not None else ())
