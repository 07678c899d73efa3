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
import os
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["DEFAULT_TRANSFORM", "IMAGENET_MEAN", "IMAGENET_STD", "to_batch", "iter_batches",
           "imagenet_transform", "expected_size", "num_images"]

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
            img = img.resize(_hw(size)[::-1], _bilinear())
        return (_pil_to_tensor(img) - mean) / std

    return transform


def expected_size(model) -> tuple[int, int] | None:
    """The input (H, W) a model declares, if it declares one (timm configs, ``input_size``)."""
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(model, attr, None)
        if isinstance(cfg, dict) and len(cfg.get("input_size", ())) == 3:
            return tuple(cfg["input_size"][1:])
    size = getattr(model, "input_size", None)
    if isinstance(size, int):
        return (size, size)
    if isinstance(size, (tuple, list)) and len(size) in (2, 3):
        return tuple(int(s) for s in size[-2:])
    return None


def _hw(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _bilinear():
    from PIL import Image

    return Image.Resampling.BILINEAR


def _is_image_like(x) -> bool:
    from PIL import Image

    return isinstance(x, (Image.Image, str, os.PathLike, bytes, bytearray, memoryview))


def _open(x, channels: int | None):
    """Path, bytes or PIL image -> PIL image in the mode the model wants."""
    from PIL import Image

    if isinstance(x, (str, os.PathLike)):
        with Image.open(x) as img:
            img.load()  # read now: the file handle closes with this block
            x = img
    elif isinstance(x, (bytes, bytearray, memoryview)):
        x = Image.open(io.BytesIO(bytes(x)))
    return x.convert("L" if channels == 1 else "RGB")


def _load(item, transform, size, channels) -> torch.Tensor:
    """One item (tensor, array, PIL, path, bytes, (item, label), dict) -> float32 (C,H,W)."""
    if isinstance(item, dict):  # e.g. Hugging Face style {"image": ..., "label": ...}
        for key in ("image", "pixel_values", "img", "input"):
            if key in item:
                return _load(item[key], transform, size, channels)
        raise ValueError(f"dataset item is a dict without an image key: keys {list(item)}")
    if isinstance(item, (tuple, list)) and item and not _is_image_like(item):
        return _load(item[0], transform, size, channels)  # (image, label) pairs
    if _is_image_like(item):
        img = _open(item, channels)
        if transform is not None:
            out = transform(img)
            return _as_tensor(out, size if not isinstance(out, torch.Tensor) else None)[0]
        if size is not None and img.size != _hw(size)[::-1]:
            img = img.resize(_hw(size)[::-1], _bilinear())
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
        raise ValueError(
            f"images must be a tensor of shape (N, C, H, W) or (C, H, W); got shape "
            f"{tuple(t.shape)}"
        )
    if t.dtype == torch.uint8:  # the usual encoding of image files: 0..255
        t = t.float() / 255.0
    t = t.to("cpu", torch.float32)
    if size is not None and tuple(t.shape[-2:]) != _hw(size):
        t = F.interpolate(t, size=_hw(size), mode="bilinear", align_corners=False,
                          antialias=True)
    return t


def _is_dataset(x) -> bool:
    from torch.utils.data import Dataset

    return isinstance(x, Dataset) or (
        hasattr(x, "__getitem__") and hasattr(x, "__len__")
        and not isinstance(x, (list, tuple, str, bytes, np.ndarray, torch.Tensor))
    )


def num_images(images) -> int:
    """How many images ``images`` holds, without loading them."""
    if isinstance(images, (torch.Tensor, np.ndarray)):
        return 1 if images.ndim in (2, 3) else int(images.shape[0])
    if _is_image_like(images):
        return 1
    return len(images)


def _items(images) -> Sequence:
    """A lazily indexable view of single items."""
    if _is_image_like(images):
        return [images]
    if _is_dataset(images) or isinstance(images, (list, tuple)):
        return images
    raise TypeError(
        "images must be a tensor (N,C,H,W)/(C,H,W), a PIL image, a path, bytes, a list of "
        f"those, or a torch Dataset; got {type(images).__name__}"
    )


def iter_batches(images, batch_size: int = 64, transform: Callable | None = None, *,
                 size=None, channels: int | None = None) -> Iterator[torch.Tensor]:
    """Yield float32 CPU batches (n, C, H, W) of at most ``batch_size`` images.

    Items of lists and Datasets are loaded one batch at a time, so a large
    Dataset never sits in memory at once. Parameters are those of :func:`to_batch`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if isinstance(images, (torch.Tensor, np.ndarray)):
        t = _as_tensor(images, size)
        for i in range(0, len(t), batch_size):
            yield t[i:i + batch_size]
        return
    items = _items(images)
    n = len(items)
    if n == 0:
        raise ValueError("no images given (empty list or Dataset)")
    for i in range(0, n, batch_size):
        batch = []
        for j in range(i, min(n, i + batch_size)):
            t = _load(items[j], transform, size, channels)
            if size is None:
                # Without a declared size, the first image sets it so that a list
                # of differently sized photos still stacks into one batch.
                size = tuple(t.shape[-2:])
            batch.append(t)
        shapes = {tuple(t.shape) for t in batch}
        if len(shapes) > 1:
            raise ValueError(f"images have different shapes after the transform: "
                             f"{sorted(shapes)}; make the transform resize them")
        yield torch.stack(batch)


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
    batches = list(iter_batches(images, batch_size=1 << 30, transform=transform, size=size,
                                channels=channels))
    return batches[0] if len(batches) == 1 else torch.cat(batches)
