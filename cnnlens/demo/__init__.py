"""The embedded default: real and synthetic digits, three small CNNs, offline.

Nothing is downloaded. The real digits ship with scikit-learn, the synthetic
ones are drawn on the fly, and the three models train on the CPU in seconds the
first time, then load from an on-disk cache (see :mod:`cnnlens.demo.cache`).

=============  =====================================================
``real``       trained on the real train split, seed 0
``real_seed1`` the same recipe with seed 1 (the same-data baseline)
``synthetic``  trained on synthetic digits only, seed 2
=============  =====================================================

Examples
--------
>>> import cnnlens as cl
>>> nets = cl.demo.models()                 # doctest: +SKIP
>>> digits = cl.demo.data()
>>> digits.test.images.shape
torch.Size([599, 1, 16, 16])
>>> cl.demo.accuracy(nets["real"], digits.test)   # doctest: +SKIP
0.97...

Run ``python -m cnnlens.demo`` to train (or load) all three and print their
accuracy on the real test split.
"""
from __future__ import annotations

import functools
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

from . import cache
from .digits import SIZE, Digits, real_digits
from .net import DigitNet
from .synth import synthetic_digits
from .train import CONFIGS, Progress, TrainConfig, accuracy, training_data
from .train import train as _train  # keep `cnnlens.demo.train` the module

NAMES = tuple(CONFIGS)
"""The demo model names: ``("real", "real_seed1", "synthetic")``."""

__all__ = [
    "CONFIGS", "NAMES", "DemoData", "DigitNet", "Digits", "TrainConfig", "accuracy", "data",
    "info", "model", "models", "synthetic_digits", "text_progress",
]

_INFO: dict[str, dict] = {}


@dataclass(frozen=True)
class DemoData:
    """The demo's datasets.

    Attributes
    ----------
    train, test : Digits
        Real digits, fixed stratified split (1,198 / 599).
    """

    train: Digits
    test: Digits

    @functools.cached_property
    def synthetic(self) -> Digits:
        """The synthetic training set of the ``synthetic`` model (drawn on first access)."""
        return training_data(CONFIGS["synthetic"])


def data() -> DemoData:
    """The real train/test digits (and, lazily, the synthetic training set)."""
    train_set, test_set = real_digits(SIZE)
    return DemoData(train_set, test_set)


def text_progress(stream=None) -> Progress:
    """A ``progress(name, done, total)`` callback drawing a one-line text bar."""
    stream = stream or sys.stderr
    start = {}

    def show(name: str, done: int, total: int) -> None:
        t0 = start.setdefault(name, time.perf_counter())
        width = 30
        fill = int(width * done / max(total, 1))
        bar = "#" * fill + "." * (width - fill)
        secs = time.perf_counter() - t0
        end = "\n" if done >= total else ""
        stream.write(f"\rtraining {name:<11} [{bar}] {done:>4}/{total} {secs:5.1f}s{end}")
        stream.flush()

    return show


def model(name: str, *, progress: Progress | bool | None = None,
          retrain: bool = False) -> DigitNet:
    """One demo model, from the cache or freshly trained (then cached).

    Parameters
    ----------
    name : str
        One of :data:`NAMES`.
    progress : callable, bool or None
        ``None``/``True``: a text bar on stderr while training; ``False``: silent;
        a callable: ``progress(name, done, total)``.
    retrain : bool
        Ignore the cache and train again.

    Returns
    -------
    DigitNet
        In eval mode, on the CPU.
    """
    if name not in CONFIGS:
        raise KeyError(f"unknown demo model {name!r}; choose one of {list(NAMES)}")
    cfg = CONFIGS[name]
    key = cache.cache_key(cfg.key_fields())
    t0 = time.perf_counter()
    hit = None if retrain else cache.load(name, key, cfg.size)
    if hit is not None:
        net, meta = hit
        meta.update(cached=True, load_seconds=round(time.perf_counter() - t0, 4))
    else:
        bar = text_progress() if progress in (None, True) else (progress or None)
        net, meta = _train(cfg, bar)
        path = cache.save(name, key, net, meta)
        meta = dict(meta, cached=False, path=str(path) if path else None)
    meta.setdefault("path", str(cache.entry_path(name, key)))
    _INFO[name] = meta
    # Declared for cnnlens.inputs.expected_size (feature visualisation's default size);
    # set here, not in net.py, whose source is part of the weights' cache key.
    net.input_size = cfg.size
    return net


def models(names: Iterable[str] | None = None, *, progress: Progress | bool | None = None,
           retrain: bool = False) -> dict[str, DigitNet]:
    """The demo models by name (all three by default); see :func:`model`."""
    return {n: model(n, progress=progress, retrain=retrain) for n in (names or NAMES)}


def info(name: str) -> dict:
    """What is known about a model loaded in this process: accuracies, seconds, cache path.

    Keys: ``config``, ``seconds`` (data + training, measured when it was trained),
    ``train_accuracy``, ``test_accuracy`` (real test split), ``cached``,
    ``path``, and ``load_seconds`` for a cache hit.
    """
    if name not in _INFO:
        raise KeyError(f"model {name!r} was not loaded in this process; call demo.model({name!r})")
    return dict(_INFO[name])
