"""The demo CNN: three conv blocks and two linear layers, about 40k parameters.

Layer names are chosen for reading in the Lens tree and the Compare heatmap:
``conv1``, ``conv2``, ``conv3`` (each followed by ``reluN`` and ``poolN``),
``fc1``, ``fc2``. ReLUs are not in-place, so a captured ``conv`` output is the
pre-activation and stays so.

Examples
--------
>>> import torch
>>> from cnnlens.demo.net import DigitNet
>>> DigitNet()(torch.zeros(2, 1, 16, 16)).shape
torch.Size([2, 10])
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .digits import SIZE


class DigitNet(nn.Sequential):
    """Small CNN for 1-channel digit images of side ``size`` (a multiple of 8).

    Parameters
    ----------
    size : int
        Input side in pixels; three 2x poolings bring it to ``size // 8``.
    widths : tuple of int
        Channels of conv1..conv3.
    hidden : int
        Width of fc1.
    classes : int
        Outputs of fc2 (logits).
    """

    def __init__(self, size: int = SIZE, widths=(16, 32, 64), hidden: int = 64,
                 classes: int = 10):
        if size % 8:
            raise ValueError(f"size must be a multiple of 8 (three 2x poolings), got {size}")
        c1, c2, c3 = widths
        side = size // 8
        super().__init__(OrderedDict([
            ("conv1", nn.Conv2d(1, c1, 3, padding=1)), ("relu1", nn.ReLU()),
            ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(c1, c2, 3, padding=1)), ("relu2", nn.ReLU()),
            ("pool2", nn.MaxPool2d(2)),
            ("conv3", nn.Conv2d(c2, c3, 3, padding=1)), ("relu3", nn.ReLU()),
            ("pool3", nn.MaxPool2d(2)),
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(c3 * side * side, hidden)), ("relu4", nn.ReLU()),
            ("fc2", nn.Linear(hidden, classes)),
        ]))
