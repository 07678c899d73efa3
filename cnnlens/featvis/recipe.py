"""The optimisation behind :func:`cnnlens.featvis.visualize`: parametrisation, jitter, loop.

Kept apart from the public API and its cache; see the package docstring for the recipe
and how it differs from Lucid/Lucent.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlens.capture import tap
from cnnlens.inputs import model_device, model_dtype
from cnnlens.probe import Layer

__all__ = ["Cancelled", "optimise"]


class Cancelled(RuntimeError):
    """:func:`visualize` stopped early because ``cancel()`` returned True."""


# Square root of ImageNet's colour covariance (from Lucid), columns scaled to norm <= 1:
# optimising in this basis decorrelates the three channels' gradients.
_COLOR = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR = _COLOR / _COLOR.norm(dim=0).max()


class _Image(nn.Module):
    """The spectral, colour-decorrelated parametrisation: ``forward()`` -> (1, C, H, W) in [0, 1]."""

    def __init__(self, channels: int, h: int, w: int, decorrelate: bool, gen, device):
        super().__init__()
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        # 1/f scaling (floor at the lowest frequency): equal energy per frequency band
        scale = 1.0 / torch.sqrt(fx ** 2 + fy ** 2).clamp(min=1.0 / max(h, w))
        self.register_buffer("scale", scale[None, None].to(device))
        spectrum = torch.randn(1, channels, h, w // 2 + 1, 2, generator=gen) * 0.01
        self.spectrum = nn.Parameter(spectrum.to(device))
        self.size, self.color = (h, w), _COLOR.to(device) if decorrelate and channels == 3 else None

    def forward(self) -> torch.Tensor:
        x = torch.fft.irfftn(self.scale * torch.view_as_complex(self.spectrum), s=self.size,
                             norm="ortho") / 4.0  # Lucid's "magic" 4: less saturation at start
        if self.color is not None:
            x = torch.einsum("ij,bjhw->bihw", self.color, x)
        return torch.sigmoid(x)


def _warp(x: torch.Tensor, gen, shift: float, scale: float, angle: float) -> torch.Tensor:
    """One random shift/scale/rotation of ``x`` at its own size, borders reflected."""
    r = torch.rand(4, generator=gen).tolist()
    s = 1.0 + scale * (2 * r[0] - 1)
    a = math.radians(angle * (2 * r[1] - 1))
    tx, ty = (shift * 2 * (2 * v - 1) for v in r[2:])  # grid units: the side spans 2
    theta = torch.tensor([[s * math.cos(a), -s * math.sin(a), tx],
                          [s * math.sin(a), s * math.cos(a), ty]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta[None], list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class _Threads:
    """Intra-op threads per step, chosen by timing: steps 1, 2 of every 32 try one and all.

    Measured on this project's shared 2-core box: a DigitNet step takes ~1.5 ms on one
    thread and up to 50 ms on two (OpenMP waits for a descheduled thread); a ResNet-18
    step at 128 px took 100-150 ms on one thread and 850-900 ms on two next to busy
    processes, but 34 ms on two when the box was quiet. So small work (a step under
    5 ms on one thread) stays on one thread and large work re-measures as load changes.
    torch keeps the count per thread (OpenMP): the caller's other threads are unaffected.
    """

    EVERY, SMALL = 32, 0.005

    def __init__(self):
        self.most = self.prev = torch.get_num_threads()
        self.best, self.one = 1, None

    def before(self, i: int) -> None:
        if self.most > 1:
            phase = i % self.EVERY
            small = self.one is not None and self.one < self.SMALL
            n = self.most if phase == 2 and not small else 1 if phase == 1 else self.best
            if n != torch.get_num_threads():  # setting it is not free: only on a change
                torch.set_num_threads(n)

    def after(self, i: int, seconds: float) -> None:
        phase = i % self.EVERY
        if phase == 1:
            self.one = seconds
        elif phase == 2 and self.one is not None and torch.get_num_threads() > 1:
            self.best = self.most if seconds < self.one else 1

    def restore(self) -> None:
        torch.set_num_threads(self.prev)


def _objective(out: torch.Tensor, layer: str, channel: int) -> torch.Tensor:
    """The channel's mean over everything but the batch (conv: spatial mean; linear: the unit)."""
    n = out.shape[1] if out.dim() > 1 else 1
    if not -n <= channel < n:
        raise IndexError(f"channel {channel} out of range: layer {layer!r} has {n} channels "
                         f"(output shape {tuple(out.shape[1:])})")
    return (out[:, channel] if out.dim() > 1 else out).float().mean()


def optimise(model, target: Layer, channel: int, settings: dict, norm, pick, progress,
             cancel) -> tuple[np.ndarray, float, np.ndarray]:
    """Run the optimisation; return ``(image (H, W, C) in [0, 1], activation, trace)``.

    Model flags and ``requires_grad`` are restored, the hook removed, on every exit path.
    """
    device, dtype = model_device(model), model_dtype(model)
    gen = torch.Generator().manual_seed(settings["seed"])
    image = _Image(settings["channels"], *settings["size"], settings["decorrelate"], gen, device)
    steps = settings["steps"]
    trace = np.zeros(steps, dtype=np.float32)
    opt = torch.optim.Adam(image.parameters(), lr=settings["lr"])
    # No weight gradients: the input is all we optimise. Measured on a ResNet-18 layer3
    # step at 128 px, one thread, busy 2-core box: 58-81 ms frozen vs 99-141 ms not.
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    threads = _Threads()
    try:
        for p, _ in frozen:
            p.requires_grad_(False)
        with tap(model, target, pick) as run, torch.enable_grad():
            for i in range(steps):
                if cancel is not None and cancel():
                    raise Cancelled(f"visualisation of {target.name!r}[{channel}] cancelled "
                                    f"after {i} of {steps} steps")
                threads.before(i)
                t = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                x = image()
                if settings["jitter"]:
                    x = _warp(x, gen, shift=0.05, scale=0.05, angle=10.0)
                value = _objective(run(norm(x).to(dtype)), target.name, channel)
                (-value).backward()
                opt.step()
                trace[i] = value.item()
                threads.after(i, time.perf_counter() - t)
                if progress is not None:
                    progress(i + 1, steps, float(trace[i]))
            with torch.no_grad():
                final = image()
                out = run(norm(final).to(dtype))
                activation = float(_objective(out, target.name, channel))  # also when steps=0
    finally:
        threads.restore()
        for p, flag in frozen:
            p.requires_grad_(flag)
    picture = final[0].permute(1, 2, 0).to("cpu", torch.float32).numpy().copy()
    return picture, activation, trace
