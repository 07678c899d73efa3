"""Turn what a user has (tensors, PIL images, file paths, bytes, a Dataset) into batches.

>>> import torch
>>> from cnnlens.inputs import to_batch
>>> to_batch(torch.rand(3, 8, 8)).shape
torch.Size([1, 3, 8, 8])

Default transform (:data:`DEFAULT_TRANSFORM`) for PIL images, paths and bytes:
convert to RGB (or to grey ``"L"`` when ``channels=1``), resize to ``size``
when one is known (the model's expected size, or the size of images already
loaded) else keep the first image's size for all, and scale to float32 in
``[0, 1]``. **No normalisation by default**: cnnlens shows the model exactly
what it is given. Pass ``transform=imagenet_transform()`` for models trained on
ImageNet-normalised inputs (e.g. torchvision weights).
"""
from __future__ import annotations

import io
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["DEFAULT_TRANSFORM", "IMAGENET_MEAN", "IMAGENET_STD", "as_batch", "check_input",
           "eval_mode", "expected_size", "first_conv", "imagenet_transform", "iter_batches",
           "model_device", "model_dtype", "num_images", "to_batch"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _pil_to_tensor(img) -> torch.Tensor:
    """PIL image -> float32 (C, H, W) in [0, 1] (the default transform, minus resizing)."""
    arr = np.asarray(img, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


DEFAULT_TRANSFORM: Callable = _pil_to_tensor
"""PIL image -> float32 tensor (C, H, W) in [0, 1]; no normalisation."""


def imagenet_transform(size: int | tuple[int, int] | None = None) -> Callable:
    """A transform for ImageNet-trained models: RGB, optional resize, ImageNet normalisation."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def transform(img):
        img = img.convert("RGB")
        if size is not None:
            img = img.resize(_hw(size)[::-1], Image.Resampling.BILINEAR)
        return (_pil_to_tensor(img) - mean) / std

    return transform


def expected_size(model) -> tuple[int, int] | None:
    """The input (H, W) a model declares, if it declares one (timm configs, ``input_size``)."""
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(model, attr, None)
        if isinstance(cfg, dict) and len(cfg.get("input_size", ())) == 3:
            return tuple(cfg["input_size"][1:])
    size = getattr(model, "input_size", None)
    if isinstance(size, int) or (isinstance(size, (tuple, list)) and len(size) in (2, 3)):
        return _hw(size if isinstance(size, int) else size[-2:])
    return None


def _hw(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _is_image_like(x) -> bool:
    return isinstance(x, (Image.Image, str, os.PathLike, bytes, bytearray, memoryview))


def _open(x, channels: int | None):
    """Path, bytes or PIL image -> PIL image in the mode the model wants."""
    if isinstance(x, (str, os.PathLike)):
        with Image.open(x) as img:
            img.load()  # read now: the file handle closes with this block
            x = img
    elif isinstance(x, (bytes, bytearray, memoryview)):
        x = Image.open(io.BytesIO(bytes(x)))
    return x.convert("L" if channels == 1 else "RGB")


def _load(item, transform, size, channels) -> torch.Tensor:
    """One item (tensor, array, PIL, path, bytes, (item, label), dict) -> float32 (C,H,W)."""
    if isinstance(item, dict):  # {"image": x, "label": y}; ipywidgets FileUpload {"content": b}
        for key in ("image", "pixel_values", "img", "input", "content"):
            if key in item:
                return _load(item[key], transform, size, channels)
        raise ValueError(f"dataset item is a dict without an image key: keys {list(item)}")
    if isinstance(item, (tuple, list)) and item and not _is_image_like(item):
        return _load(item[0], transform, size, channels)  # (image, label) pairs
    if _is_image_like(item):
        img = _open(item, channels)
        if transform is not None:
            return _as_tensor(transform(img), size)[0]
        if size is not None and img.size != _hw(size)[::-1]:
            img = img.resize(_hw(size)[::-1], Image.Resampling.BILINEAR)
        return _pil_to_tensor(img)
    t = _as_tensor(item, size)
    if t.shape[0] != 1:
        raise ValueError(f"expected one image per dataset item, got a tensor of shape "
                         f"{tuple(t.shape)}")
    return t[0]


def _as_tensor(x, size=None) -> torch.Tensor:
    """Tensor/array (N,C,H,W), (C,H,W) or (H,W) -> float32 (N,C,H,W); uint8 scaled to [0,1]."""
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x.detach()
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[None]
    elif t.ndim != 4:
        raise ValueError("images must be a tensor of shape (N, C, H, W) or (C, H, W); got "
                         f"shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:  # the usual encoding of image files: 0..255
        t = t.float() / 255.0
    t = t.to("cpu", torch.float32)
    if size is not None and tuple(t.shape[-2:]) != _hw(size):
        t = F.interpolate(t, size=_hw(size), mode="bilinear", align_corners=False,
                          antialias=True)
    return t


def num_images(images) -> int:
    """How many images ``images`` holds, without loading them."""
    if isinstance(images, (torch.Tensor, np.ndarray)):
        return 1 if images.ndim in (2, 3) else int(images.shape[0])
    return 1 if _is_image_like(images) else len(images)


def _items(images) -> Iterator:
    """Single items, loaded lazily: by index for map-style Datasets, else by iteration."""
    if _is_image_like(images) or isinstance(images, dict):
        return iter([images])
    if not hasattr(images, "__iter__") and not hasattr(images, "__getitem__"):
        raise TypeError(
            "images must be a tensor (N,C,H,W)/(C,H,W), a PIL image, a path, bytes, a list of "
            f"those, or a torch Dataset; got {type(images).__name__}")
    if hasattr(images, "__len__") and hasattr(images, "__getitem__"):
        return (images[i] for i in range(len(images)))  # map-style Datasets need not iterate
    return iter(images)  # IterableDataset, generators


def iter_batches(images, batch_size: int = 64, transform: Callable | None = None, *,
                 size=None, channels: int | None = None) -> Iterator[torch.Tensor]:
    """Yield float32 CPU batches (n, C, H, W) of at most ``batch_size`` images.

    Items of lists and Datasets are loaded one batch at a time, so a large
    Dataset never sits in memory at once. Parameters are those of :func:`to_batch`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if isinstance(images, (torch.Tensor, np.ndarray)):
        yield from _as_tensor(images, size).split(batch_size)
        return
    items, empty = _items(images), True
    while chunk := list(itertools.islice(items, batch_size)):
        batch, empty = [], False
        for item in chunk:
            batch.append(_load(item, transform, size, channels))
            # Without a declared size, the first image sets it so that a list of
            # differently sized photos still stacks into one batch.
            size = size or tuple(batch[0].shape[-2:])
        if len({t.shape for t in batch}) > 1:
            raise ValueError(f"images have different shapes after the transform: "
                             f"{sorted({tuple(t.shape) for t in batch})}; make it resize them")
        yield torch.stack(batch)
    if empty:
        raise ValueError("no images given (empty list or Dataset)")


def to_batch(images, transform: Callable | None = None, *, size=None,
             channels: int | None = None) -> torch.Tensor:
    """Load ``images`` into one float32 CPU tensor (N, C, H, W).

    Parameters
    ----------
    images : Tensor, ndarray, PIL image, path, bytes, list of those, or Dataset
        Tensors/arrays are (N,C,H,W), (C,H,W) or (H,W); uint8 is scaled to [0, 1],
        other dtypes are taken as they are. Dataset items may be images, tensors,
        ``(image, label)`` pairs or dicts with an ``"image"`` key.
    transform : callable, optional
        Applied to each PIL image (from lists, paths, bytes, Datasets) instead of
        :data:`DEFAULT_TRANSFORM`; must return a (C,H,W) tensor or array.
    size : int or (H, W), optional
        Resize to this size (PIL images without ``transform``, and tensors).
        Default: keep the size (lists: the first image's size).
    channels : int, optional
        1 converts PIL images to grey, anything else to RGB (default RGB).

    Returns
    -------
    Tensor
        float32, CPU, (N, C, H, W).
    """
    if isinstance(images, (torch.Tensor, np.ndarray)):
        return _as_tensor(images, size)
    (batch,) = iter_batches(images, 1 << 62, transform, size=size, channels=channels)
    return batch


def as_batch(x) -> torch.Tensor:
    """A batch for the model from a loader item: ``(x, label)`` -> x, (C,H,W) -> (1,C,H,W)."""
    x = x[0] if isinstance(x, (tuple, list)) else x
    return x if isinstance(x, torch.Tensor) and x.ndim != 3 else _as_tensor(x)


# -- the model side: device, dtype, channels, eval mode -----------------------
def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a stateless model."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The floating dtype of the model's parameters (float32 if it has none)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def first_conv(model: torch.nn.Module) -> tuple[str, torch.nn.Module] | None:
    """``(name, module)`` of the first convolution in ``named_modules()`` order, or None."""
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.modules.conv._ConvNd) and not isinstance(
                m, torch.nn.modules.conv._ConvTransposeNd):
            return name, m
    return None


def check_input(model: torch.nn.Module, batch: torch.Tensor) -> None:
    """Raise ValueError naming expected vs. got for a batch the model cannot take."""
    conv = first_conv(model)
    want_ndim = conv[1].weight.ndim if conv and conv[1].in_channels else 4
    if batch.ndim != want_ndim:
        raise ValueError(
            f"expected a batch with {want_ndim} dimensions (N, C, H, W), got shape "
            f"{tuple(batch.shape)}"
        )
    if conv and conv[1].in_channels and batch.shape[1] != conv[1].in_channels:
        name, m = conv
        hint = " (grey images? repeat them: x.repeat(1, 3, 1, 1))" if batch.shape[1] == 1 else ""
        raise ValueError(
            f"the model expects {m.in_channels} input channel(s) (first conv {name!r} has "
            f"in_channels={m.in_channels}), got {batch.shape[1]} channel(s) in a batch of shape "
            f"{tuple(batch.shape)}{hint}"
        )
    # one sum is ~8x cheaper than a mask; it may also overflow on finite values
    if batch.is_floating_point() and not torch.isfinite(batch.sum()) and not torch.isfinite(
            batch).all():
        raise ValueError(f"the input images contain {int((~torch.isfinite(batch)).sum())} "
                         "NaN/Inf values")


# Train/eval flags are shared state: two recordings of one model in two threads
# (a Lens and a background Compare job) must not restore the flags while the
# other still runs, so the first one in saves them and the last one out restores.
_MODE_LOCK = threading.Lock()
_MODE: dict[int, list] = {}


@contextmanager
def eval_mode(model: torch.nn.Module):
    """Put every module in eval mode; restore each module's own flag on exit."""
    with _MODE_LOCK:
        entry = _MODE.setdefault(id(model), [0, [(m, m.training) for m in model.modules()]])
        entry[0] += 1
        model.eval()
    try:
        yield model
    finally:
        with _MODE_LOCK:
            entry[0] -= 1
            if entry[0] == 0:
                del _MODE[id(model)]
                for m, flag in entry[1]:  # per module: a frozen BN in a training model stays
                    m.training = flag
