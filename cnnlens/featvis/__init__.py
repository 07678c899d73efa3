"""Feature visualisation: optimise an input image to excite one channel of one layer.

>>> import torch, cnnlens as cl
>>> from cnnlens.featvis import visualize
>>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
>>> vis = visualize(net, "0", channel=5, size=32, steps=16)
>>> vis.image.shape, float(vis.image.min()) >= 0.0, float(vis.image.max()) <= 1.0
((32, 32, 3), True, True)
>>> visualize(net, "0", channel=5, size=32, steps=16).cached    # same model state: no work
True

The recipe is the one of Lucid/Lucent (Olah et al., "Feature Visualization", Distill
2017): the image is parametrised by its Fourier coefficients, scaled by 1/frequency so
that every spatial frequency starts with about the same energy (steps go to low
frequencies first: no high-frequency adversarial noise); three colour channels are
mixed by the square root of ImageNet's colour correlation, then squashed into [0, 1] by
a sigmoid; every step sees a randomly shifted, scaled and rotated copy, so the image must
excite the channel robustly; Adam maximises the channel's spatial mean. We write our
own (about 150 lines) rather than depend on ``torch-lucent`` (greentfrapp/lucent): its
``render_vis`` hooks every module and never removes the hooks (our rule: hooks live only
inside a context manager), runs the whole model and upsamples anything under 224 px to
224 (our demo CNN's Linear layer takes 16x16 only), normalises for ImageNet by default,
has no progress/cancel callbacks for a worker thread, and its install_requires pulls
test tooling (pytest, coverage, coveralls) plus kornia, ipython and scikit-learn into
users' environments; it is marked Pre-Alpha.

Differences from Lucent, and why: one affine warp per step (``grid_sample``, reflected
borders) replaces pad + jitter + scale + rotate + jitter, so the model sees exactly
``size`` (Linear layers work; 1 interpolation instead of 3) with shifts of 5 % of the
side instead of Lucent's fixed pixels; the forward stops at the layer
(:func:`cnnlens.capture.tap`), and parameters stop requiring grad for the run (no weight
gradients are computed); results are cached per model state.
"""
from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from cnnlens.inputs import IMAGENET_MEAN, IMAGENET_STD, expected_size, first_conv
from cnnlens.probe import Layer, resolve

from .recipe import Cancelled, optimise

__all__ = ["Cancelled", "Visualization", "cached", "clear_cache", "normalization", "visualize"]

DEFAULT_SIZE = 224
"""Side used when neither ``size`` nor the model (:func:`expected_size`) gives one."""

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> OrderedDict
_CACHE_LOCK = threading.Lock()
CACHE_ENTRIES = 64
"""Visualisations kept per model (least recently used dropped first)."""


@dataclass(frozen=True)
class Visualization:
    """What :func:`visualize` returns.

    Attributes
    ----------
    image : ndarray
        float32 (H, W, C) in [0, 1], C the model's input channels (1 or 3 usually).
    activation : float
        The channel's mean activation on ``image`` itself (no jitter, after normalisation).
    layer : str
    channel : int
    settings : dict
        Everything that shaped the image (size, steps, seed, lr, ...): the cache key.
    seconds : float
        Time the optimisation took (of the original run, for a cached result).
    trace : ndarray
        float32 (steps,): the objective at every step (on the jittered copy).
    cached : bool
        True when this came from the cache.
    """

    image: np.ndarray = field(repr=False)
    activation: float
    layer: str
    channel: int
    settings: dict
    seconds: float
    trace: np.ndarray = field(repr=False)
    cached: bool = False


def _fingerprint(model: nn.Module) -> int:
    # As Inspector._state_stamp: optimizer steps and load_state_dict bump _version,
    # replaced modules bring new tensors.
    return hash(tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers())))


def clear_cache(model: nn.Module | None = None) -> None:
    """Forget cached visualisations of ``model`` (default: of every model)."""
    with _CACHE_LOCK:
        if model is None:
            _CACHE.clear()
        else:
            _CACHE.pop(model, None)


def _normalizer(normalize) -> Callable[[torch.Tensor], torch.Tensor]:
    """[0, 1] image -> what the model takes: None, "imagenet", (mean, std) or a callable."""
    if normalize is None:
        return lambda x: x
    if callable(normalize):
        return normalize
    if isinstance(normalize, str):
        if normalize != "imagenet":
            raise ValueError(f"normalize must be None, 'imagenet', (mean, std) or a callable; "
                             f"got {normalize!r}")
        normalize = (IMAGENET_MEAN, IMAGENET_STD)
    mean, std = (torch.as_tensor(v, dtype=torch.float32).reshape(-1, 1, 1) for v in normalize)
    return lambda x: (x - mean.to(x.device)) / std.to(x.device)


def _hw(size) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 2 or w < 2:
        raise ValueError(f"size must be at least 2x2 pixels, got {size!r}")
    return h, w


def visualize(model: nn.Module, layer, channel: int, size=None, steps: int = 256,
              seed: int = 0, *, lr: float = 0.05, normalize=None, channels: int | None = None,
              decorrelate: bool = True, jitter: bool = True, pick=None,
              progress: Callable[[int, int, float], None] | None = None,
              cancel: Callable[[], bool] | None = None, cache: bool = True) -> Visualization:
    """Optimise an input to maximise the mean activation of ``channel`` in ``layer``.

    Parameters
    ----------
    model : nn.Module
        Run in eval mode; its train/eval flags and ``requires_grad`` are restored after.
    layer : str, nn.Module or Layer
        One layer (``"name:1"``: its second call). The forward stops right after it.
    channel : int
        Channel (conv) or unit (linear) of that layer.
    size : int or (H, W), optional
        Default: the model's declared input size (:func:`cnnlens.inputs.expected_size`),
        else :data:`DEFAULT_SIZE`.
    steps : int
        Adam steps (each one forward and one backward up to ``layer``).
    seed : int
        Seeds the initial spectrum and the jitter: same seed, same image.
    lr : float
        Adam's learning rate (Lucent's 0.05).
    normalize : None, "imagenet", (mean, std) or callable
        How a [0, 1] image becomes the model's input; None: as is (cnnlens's default,
        see :mod:`cnnlens.inputs`).
    channels : int, optional
        Input channels; default: the first convolution's ``in_channels``, else 3.
    decorrelate : bool
        Mix three colour channels by ImageNet's colour correlation (ignored otherwise).
    jitter : bool
        A random shift (5 % of the side), scale (+-5 %) and rotation (+-10 deg) per step.
    pick : int, str or callable, optional
        Tensor choice for tuple/dict outputs (:func:`cnnlens.capture.pick_tensor`).
    progress : callable, optional
        ``progress(done, steps, objective)`` after every step.
    cancel : callable, optional
        Polled every step; returning True raises :class:`Cancelled`.
    cache : bool
        Reuse a result for the same model state, layer, channel and settings.

    Returns
    -------
    Visualization

    Raises
    ------
    cnnlens.probe.LayerNotFound
        Unknown layer (the closest names listed).
    IndexError
        ``channel`` out of range (raised after one forward, before any step).

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    >>> v = visualize(net, "0", 2, size=(12, 20), steps=8, seed=1)
    >>> v.image.shape, v.settings["steps"], v.activation > float(v.trace[0])
    ((12, 20, 1), 8, True)
    """
    target, settings, norm, key = _prepare(model, layer, channel, size, steps, seed, lr,
                                           normalize, channels, decorrelate, jitter, pick)
    if cache:
        with _CACHE_LOCK:
            hit = _CACHE.get(model, {}).get(key)
            if hit is not None:
                _CACHE[model].move_to_end(key)
                return replace(hit, cached=True)
    t0 = time.perf_counter()
    image, activation, trace = optimise(model, target, int(channel), settings, norm, pick,
                                        progress, cancel)
    image.setflags(write=False)  # shared by every cache hit: an edit must not change them
    trace.setflags(write=False)
    vis = Visualization(image, activation, target.name, int(channel), dict(settings),
                        time.perf_counter() - t0, trace)
    if cache:
        with _CACHE_LOCK:
            entries = _CACHE.setdefault(model, OrderedDict())
            entries[key] = vis
            while len(entries) > CACHE_ENTRIES:
                entries.popitem(last=False)
    return vis


def _prepare(model, layer, channel, size, steps, seed, lr=0.05, normalize=None, channels=None,
             decorrelate=True, jitter=True, pick=None):
    """Resolve the layer and settings; return ``(layer, settings, normaliser, cache key)``."""
    (target,) = resolve(model, [layer] if isinstance(layer, (str, Layer)) else layer)
    conv = first_conv(model)
    channels = int(channels or (conv[1].in_channels if conv else 3))
    h, w = _hw(size if size is not None else expected_size(model) or DEFAULT_SIZE)
    if int(steps) < 0 or float(lr) <= 0:
        raise ValueError(f"steps must be >= 0 and lr > 0, got steps={steps}, lr={lr}")
    settings = {"size": (h, w), "steps": int(steps), "seed": int(seed), "lr": float(lr),
                "channels": channels, "decorrelate": bool(decorrelate), "jitter": bool(jitter),
                "normalize": normalize if normalize is None or isinstance(normalize, str)
                or callable(normalize) else repr(normalize)}
    norm = _normalizer(normalize)  # bad values raise now, not after a cache hit
    key = (_fingerprint(model), target.name, int(channel), repr(pick),
           tuple((k, v if isinstance(v, (int, float, str, tuple, bool, type(None))) else id(v))
                 for k, v in settings.items()))
    return target, settings, norm, key


def cached(model: nn.Module, layer, channel: int, size=None, steps: int = 256, seed: int = 0,
           **kwargs) -> Visualization | None:
    """The cached result :func:`visualize` would return for these arguments, else None.

    Never optimises: for a view that shows a visualisation as soon as it is selected.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
    >>> cached(net, "0", 1, size=8, steps=4) is None
    True
    """
    kwargs = {k: v for k, v in kwargs.items() if k not in ("progress", "cancel", "cache")}
    *_, key = _prepare(model, layer, channel, size, steps, seed, **kwargs)
    with _CACHE_LOCK:
        hit = _CACHE.get(model, {}).get(key)
    return None if hit is None else replace(hit, cached=True)


def normalization(images: torch.Tensor):
    """``normalize`` for :func:`visualize` that matches an image set: None when every value
    lies in [0, 1] (cnnlens's default inputs), else the (mean, std) per channel that maps
    [0, 1] onto each channel's min..max (for ImageNet-normalised images that is ImageNet's
    mean and std, up to the darkest and brightest pixels present).

    >>> normalization(torch.rand(4, 3, 8, 8)) is None
    True
    """
    x = torch.as_tensor(images, dtype=torch.float32)
    lo = x.amin(dim=(0, *range(2, x.dim()))) if x.dim() > 1 else x.min()[None]
    hi = x.amax(dim=(0, *range(2, x.dim()))) if x.dim() > 1 else x.max()[None]
    if bool((lo >= 0).all() and (hi <= 1).all()):
        return None
    span = (hi - lo).clamp_min(1e-6)
    # x_model = lo + x * span = (x - mean) / std  with  std = 1 / span, mean = -lo / span
    return (tuple((-lo / span).tolist()), tuple((1 / span).tolist()))
