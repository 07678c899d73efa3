"""Training recipes of the three demo models, and the training loop itself.

All three use the same architecture, optimiser and number of steps; they differ
only in their data and their initialisation seed:

=============  ===========================  ====
name           training data                seed
=============  ===========================  ====
``real``       real digits (train split)    0
``real_seed1`` real digits (train split)    1
``synthetic``  synthetic digits only        2
=============  ===========================  ====

``synthetic`` gets a seed of its own on purpose: ``real`` vs ``real_seed1``
differs only in the seed, ``real`` vs ``synthetic`` in the seed *and* the data,
so the gap between the two comparisons is the effect of the data alone (with a
shared seed, early layers could look alike merely because they started alike).

Examples
--------
>>> from cnnlens.demo.train import CONFIGS, train
>>> cfg = CONFIGS["real"].replace(steps=5)
>>> model, info = train(cfg)
>>> sorted(info)[:3]
['config', 'seconds', 'test_accuracy']
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .digits import SIZE, Digits, real_digits
from .net import DigitNet
from .synth import font_names, synthetic_digits

Progress = Callable[[str, int, int], None]
"""progress(name, done, total): called as training steps complete."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a demo model's weights (hashed into the cache key).

    Attributes
    ----------
    name : str
        Model name, e.g. ``"real"``.
    data : str
        ``"real"`` (real train split) or ``"synthetic"`` (generated digits only).
    seed : int
        Seed of the initialisation and of the batch order.
    steps : int
        Optimiser steps (the same budget for every model).
    batch_size, lr, weight_decay
        Adam with a one-cycle learning-rate schedule.
    n_synthetic : int
        Number of generated training images (``data="synthetic"`` only).
    realism : float
        Realism knob of the generator, see :mod:`cnnlens.demo.synth`.
    synth_seed : int
        Seed of the generated set.
    size : int
        Image side in pixels.
    threads : int
        torch CPU threads used while training (restored afterwards). One by
        default: these layers are too small to gain much from a second thread,
        and on a busy machine two OpenMP threads that wait on each other were
        measured up to 10x slower (99.6 s vs 11.4 s for ``real``) than one.
    """

    name: str
    data: str
    seed: int
    steps: int = 500
    batch_size: int = 64
    lr: float = 4e-3
    weight_decay: float = 1e-4
    n_synthetic: int = 6000
    realism: float = 1.0
    synth_seed: int = 0
    size: int = SIZE
    threads: int = 1

    def __post_init__(self):
        if self.data not in ("real", "synthetic"):
            raise ValueError(f"data must be 'real' or 'synthetic', got {self.data!r}")

    def replace(self, **changes) -> TrainConfig:
        """A copy with some fields changed (e.g. a tiny ``steps`` for a smoke test)."""
        return dataclasses.replace(self, **changes)

    def key_fields(self) -> dict:
        """The fields that decide the weights, plus what the generator draws from."""
        d = dataclasses.asdict(self)
        if self.data == "synthetic":
            d["fonts"] = list(font_names())  # a machine without DejaVu makes other images
        else:
            for k in ("n_synthetic", "realism", "synth_seed"):
                d.pop(k)
        return d


CONFIGS = {
    "real": TrainConfig("real", "real", seed=0),
    "real_seed1": TrainConfig("real_seed1", "real", seed=1),
    "synthetic": TrainConfig("synthetic", "synthetic", seed=2),
}
"""The three demo models by name."""


def training_data(cfg: TrainConfig) -> Digits:
    """The training set a config asks for."""
    if cfg.data == "real":
        return real_digits(cfg.size)[0]
    return synthetic_digits(cfg.n_synthetic, seed=cfg.synth_seed, realism=cfg.realism,
                            size=cfg.size)


@torch.no_grad()
def accuracy(model: torch.nn.Module, data: Digits, batch_size: int = 512) -> float:
    """Share of ``data`` that ``model`` labels correctly (model put in eval mode)."""
    model.eval()
    hits = 0
    for i in range(0, len(data), batch_size):
        logits = model(data.images[i:i + batch_size])
        hits += int((logits.argmax(1) == data.labels[i:i + batch_size]).sum())
    return hits / len(data)


def train(cfg: TrainConfig, progress: Progress | None = None) -> tuple[DigitNet, dict]:
    """Train one demo model from scratch.

    Parameters
    ----------
    cfg : TrainConfig
        The recipe (see :data:`CONFIGS`).
    progress : callable, optional
        ``progress(name, done, total)`` at the start (``done=0``) and every few steps.

    Returns
    -------
    (DigitNet, dict)
        The model in eval mode, and ``info`` with ``config``, ``seconds``
        (data + training), ``train_accuracy`` and ``test_accuracy`` (real test split).
    """
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.threads))
    try:
        if progress:  # before the data: drawing synthetic digits takes seconds too
            progress(cfg.name, 0, cfg.steps)
        data = training_data(cfg)
        # fork_rng: seeding must not reset the caller's global torch RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = DigitNet(cfg.size)
            _fit(model, data, cfg, progress)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - t0
    test = real_digits(cfg.size)[1]
    info = {
        "config": cfg.key_fields(),
        "seconds": round(seconds, 3),
        "train_accuracy": accuracy(model, data),
        "test_accuracy": accuracy(model, test),
    }
    return model.eval(), info


def _fit(model, data: Digits, cfg: TrainConfig, progress: Progress | None) -> None:
    g = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(cfg.steps, 1))
    model.train()
    order = torch.empty(0, dtype=torch.long)
    every = max(1, cfg.steps // 50)
    for step in range(cfg.steps):
        if len(order) < cfg.batch_size:  # reshuffle once an epoch is used up
            order = torch.cat([order, torch.randperm(len(data), generator=g)])
        idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
        loss = F.cross_entropy(model(data.images[idx]), data.labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress and ((step + 1) % every == 0 or step + 1 == cfg.steps):
            progress(cfg.name, step + 1, cfg.steps)
    model.eval()
