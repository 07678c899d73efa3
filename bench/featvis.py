"""Feature visualisation timings (issue 14, item 3): a table, not a timed test.

    .venv/bin/python bench/featvis.py [--threads 2] [--steps 256] [--repeats 1]

Cases: a demo ``DigitNet`` (``real``) ``conv3`` channel at its 16x16 input (target < 2 s)
and a randomly initialised torchvision ResNet-18 (no weight download) ``layer3`` channel at
128x128 (target < 30 s), each for ``--steps`` Adam steps with the default recipe
(:func:`cnnlens.featvis.visualize`, cache off). A warm-up run of a few steps comes first so
that one-off costs (thread pools, FFT plans) are not charged to the first case.
"""
from __future__ import annotations

import argparse
import time

import torch
import torchvision

import cnnlens as cl
from cnnlens.featvis import visualize

CASES = [  # name, model factory, layer, channel, size, target seconds
    ("DigitNet real conv3", lambda: cl.demo.model("real", progress=False), "conv3", 5, None, 2.0),
    ("ResNet-18 (random) layer3", lambda: torchvision.models.resnet18(weights=None), "layer3",
     7, 128, 30.0),
]


def main(threads: int, steps: int, repeats: int) -> None:
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {steps} steps, "
          f"best of {repeats}")
    head = f"{'case':<28} {'size':>9} {'seconds':>8} {'ms/step':>8} {'activation':>11} {'target':>7}"
    print(head)
    print("-" * len(head))
    for name, make, layer, channel, size, target in CASES:
        torch.manual_seed(0)
        net = make().eval()
        visualize(net, layer, channel, size=size, steps=3, cache=False)  # warm-up
        best, vis = float("inf"), None
        for _ in range(repeats):
            t0 = time.perf_counter()
            vis = visualize(net, layer, channel, size=size, steps=steps, cache=False)
            best = min(best, time.perf_counter() - t0)
        h, w = vis.settings["size"]
        ok = "ok" if best < target else "MISSED"
        print(f"{name:<28} {f'{h}x{w}':>9} {best:8.2f} {1000 * best / steps:8.1f} "
              f"{vis.activation:11.3f} {f'<{target:g}s':>5} {ok}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=256)
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()
    main(a.threads, a.steps, a.repeats)
