"""cnnlens: make a convolutional network inspectable in Jupyter.

>>> import cnnlens as cl
>>> lens = cl.Lens(model, images)          # widget: layer tree, activation grid, filters
>>> cmp = cl.Compare(model_a, model_b, data, metric="svcca")

The core (probe, capture, similarity, encode, demo) imports without any widget
library; the widget classes load on first use.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cnnlens")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

_LAZY = {
    "Lens": "cnnlens.widgets.app",
    "Compare": "cnnlens.widgets.app",
    "Inspector": "cnnlens.inspector",
    "layer_tree": "cnnlens.probe",
    "similarity_matrix": "cnnlens.similarity",
    "gap_table": "cnnlens.similarity",
    "load_result": "cnnlens.similarity",
    "canonical_maps": "cnnlens.similarity",
    "visualize": "cnnlens.featvis",
    "featvis": "cnnlens.featvis",
    "similarity": "cnnlens.similarity",
    "demo": "cnnlens.demo",
}

__all__ = [  # noqa: RUF022 - the public names, in the order the docs introduce them
    "__version__", "Lens", "Compare", "Inspector", "layer_tree", "similarity_matrix",
    "gap_table", "load_result", "canonical_maps", "visualize", "similarity", "featvis", "demo",
]


def __getattr__(name):
    # Lazy so that `import cnnlens` stays light and the core never pulls in widgets.
    if name not in _LAZY:
        raise AttributeError(f"module 'cnnlens' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(_LAZY[name])
    return module if module.__name__.endswith(name) else getattr(module, name)
