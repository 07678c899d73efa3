"""LayerTreeView: the model's module hierarchy, click/keyboard selects a layer (twin: js/layer_tree.js).

Selection is written straight into the pane's ActivationGrid model in JavaScript; the rows
come from :func:`cnnlens.views.tree.tree_nodes`.
"""

from __future__ import annotations

import anywidget
import ipywidgets as W
import traitlets as t

from .activation_grid import ActivationGrid
from .esm import bundle


class LayerTreeView(anywidget.AnyWidget):
    """Collapsible layer tree; selecting a row sets ``grid.layer``.

    Examples
    --------
    >>> grid = ActivationGrid()
    >>> view = LayerTreeView(grid=grid, nodes=[{"name": "conv1", "type": "Conv2d", "kind": "conv",
    ...     "shape": [8, 16, 16], "params": 224, "depth": 1, "parent": -1}])
    >>> view.nodes[0]["name"]
    'conv1'
    """

    _esm = bundle("layer_tree")

    nodes = t.List(t.Dict()).tag(sync=True)
    """list[dict]: rows (see :func:`cnnlens.views.tree.tree_nodes`). Default ``[]``."""
    grid = t.Instance(ActivationGrid, allow_none=True).tag(sync=True, **W.widget_serialization)
    """ActivationGrid: the selection model this tree writes ``layer`` into. Default None."""
