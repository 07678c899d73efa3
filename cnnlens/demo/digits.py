"""Real handwritten digits: scikit-learn's bundled ``load_digits``, upsampled.

The 1,797 scans come from the UCI "optdigits" set: 43 writers drew on 32x32
bitmaps, and each 4x4 block was reduced to the count of inked pixels, giving
8x8 images with values 0..16. We scale them to ``[0, 1]`` and upsample
bilinearly to ``SIZE`` x ``SIZE`` so that the demo CNN has a few layers of
spatial structure to show. ``synth.py`` imitates the same acquisition steps,
which is what lets a model trained on synthetic digits read the real ones.

Examples
--------
>>> from cnnlens.demo.digits import real_digits
>>> train, test = real_digits()
>>> train.images.shape[1:], test.images.dtype
(torch.Size([1, 16, 16]), torch.float32)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 16
"""Side of the demo images in pixels (8x8 scans upsampled 2x)."""

TEST_FRACTION = 1 / 3
"""Share of every class held out as the real test split."""

SPLIT_SEED = 0
"""Seed of the fixed stratified train/test split (never changes with a model's seed)."""


@dataclass(frozen=True, eq=False)
class Digits(torch.utils.data.Dataset):
    """A labelled set of single-channel digit images.

    Indexing gives ``(image, label)`` like any torch ``Dataset``; the whole set
    is also available as two tensors, which is what ``cl.Lens``/``cl.Compare``
    and the similarity engine take most cheaply.

    Attributes
    ----------
    images : torch.Tensor
        float32, shape ``(N, 1, SIZE, SIZE)``, ink = 1, background = 0.
    labels : torch.Tensor
        int64, shape ``(N,)``, the digit 0..9.
    name : str
        Where the set comes from, e.g. ``"real/test"`` or ``"synthetic"``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    name: str = ""

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.shape[1] != 1:
            raise ValueError(f"images must be (N, 1, H, W), got {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(
                f"{len(self.images)} images but {len(self.labels)} labels in {self.name!r}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], int(self.labels[index])

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.images.shape[1:])
        return f"Digits({self.name!r}, n={len(self)}, image={shape})"

    def subset(self, n: int, seed: int = 0) -> Digits:
        """Return ``n`` images drawn without replacement, in a fixed order per ``seed``."""
        if not 0 < n <= len(self):
            raise ValueError(f"n must be in 1..{len(self)}, got {n}")
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[:n]
        return Digits(self.images[idx], self.labels[idx], f"{self.name}[{n}]")


def upsample(counts: np.ndarray, size: int = SIZE) -> torch.Tensor:
    """Turn 8x8 ink counts (0..16) into float32 ``(N, 1, size, size)`` in ``[0, 1]``.

    Shared by the real and the synthetic pipeline so that both go through the
    very same resampling.
    """
    x = torch.as_tensor(np.asarray(counts, dtype=np.float32) / 16.0)
    x = x.reshape(-1, 1, 8, 8)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp_(0.0, 1.0).contiguous()


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Indices ``(train, test)``: ``fraction`` of every class goes to test.

    Implemented here, not via scikit-learn, so the split cannot move with a
    library upgrade (the cache key and reported accuracies depend on it).
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = round(len(idx) * fraction)
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def real_digits(size: int = SIZE) -> tuple[Digits, Digits]:
    """The real digits as ``(train, test)`` with the fixed stratified split.

    Parameters
    ----------
    size : int
        Output side in pixels (default ``SIZE`` = 16).

    Returns
    -------
    (Digits, Digits)
        1,198 training and 599 test images.
    """
    images, labels = _load(size)
    tr, te = stratified_split(labels.numpy(), TEST_FRACTION, SPLIT_SEED)
    # Fancy indexing copies, so a caller editing its tensors cannot spoil the memo.
    return (
        Digits(images[tr], labels[tr], "real/train"),
        Digits(images[te], labels[te], "real/test"),
    )


@functools.lru_cache(maxsize=4)
def _load(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    raw = load_digits()
    return upsample(raw.images, size), torch.as_tensor(raw.target.astype(np.int64))
