"""The public widget classes: `Lens` (one model) and `Compare` (two models).

Each composite links its own views (`lens.py`, `compare.py`); this module is the
single import point that `cnnlens.Lens` / `cnnlens.Compare` resolve to.
"""
from .compare import Compare
from .lens import Lens

__all__ = ["Compare", "Lens"]
