"""Detector scale: every picker metric from one pass, against the plain forwards, within a budget.

Run: ``.venv/bin/python bench/scale.py`` (tens of minutes on 2 cores; ``--n 1024`` for one
size, ``--device cuda`` on a GPU). Each measurement runs in a fresh process and reports
its wall time and peak RSS:

- ``floor``: the two models' plain forward passes (``inference_mode``, no hooks) over
  the same ``DataLoader``: no similarity tool can be faster;
- ``cnnlens``: ``similarity_matrix`` with every picker metric requested at once
  (SVCCA, PWCCA, linear, debiased and RBF CKA), ``memory=3 << 30``; split into its
  forwards stage (forwards + statistics) and its pairs stage (every cell's score);
  ``--profile`` prints the pairs stage's costliest calls.

Cases: two torchvision ``resnet50`` (random init, seeds 0 and 1), every conv layer
(53 x 53 cells), images at 112 x 112 from a ``Dataset`` behind a ``DataLoader``
(batch 64); the same at 64 x 64, where the statistics' arithmetic is as large as
the forwards (its ratio is also given against forwards + the arithmetic bound at
this machine's GEMM peak); and a torchvision ``retinanet_resnet50_fpn`` (random
init, 128 px input, list/dict outputs) with all its conv layers. Targets: end to end
within 1.35x the floor; peak RSS below 3 GiB + the floor's RSS + 10 %.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

BUDGET = 3 << 30
PICKER = ("svcca", "pwcca", "linear_cka", "debiased_cka", "rbf_cka")


class Noise(torch.utils.data.Dataset):
    """Seeded images, one generator per index: the same data in every process."""

    def __init__(self, n: int, size: int):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return torch.rand(3, self.size, self.size, generator=g)


def models(kind: str):
    import torchvision

    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        if kind == "resnet50":
            m = torchvision.models.resnet50()
        else:
            m = torchvision.models.detection.retinanet_resnet50_fpn(
                weights=None, weights_backbone=None, min_size=128, max_size=128)
        out.append(m.eval())
    return out


def peak_rss() -> int:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(args) -> dict:
    """One measurement in this (fresh) process."""
    a, b = models(args.model)
    device = args.device
    if device != "cpu":
        a, b = a.to(device), b.to(device)
    loader = torch.utils.data.DataLoader(Noise(args.n[0], args.size), batch_size=64)
    base = peak_rss()
    t = time.perf_counter()
    info = {}
    if args.child == "floor":
        with torch.inference_mode():
            for x in loader:
                x = x.to(device)
                a(x)
                b(x)
    else:
        import cProfile
        import pstats

        from cnnlens import similarity as sim
        conv = lambda layer: layer.kind == "conv"
        profile, stages = cProfile.Profile(), {}

        def stage(info):  # when the pairs stage starts (the forwards are done)
            if info["stage"] not in stages:
                stages[info["stage"]] = time.perf_counter()
                if info["stage"] == "pairs" and args.profile:
                    profile.enable()
        res = sim.similarity_matrix(a, b, loader, layers_a=conv, layers_b=conv, metrics=PICKER,
                                    memory=BUDGET, device=None if device == "cpu" else device,
                                    progress=stage)
        profile.disable()
        if args.profile:
            pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(12)
        info["forward_s"] = stages["pairs"] - t
        info["pairs_s"] = time.perf_counter() - stages["pairs"]
        for m in PICKER:
            info[f"defined_{m}"] = float(torch.isfinite(torch.from_numpy(res.matrix(m))).float().mean())
        info["cells"] = len(res.layers_a) * len(res.layers_b)
        info["plan"] = ", ".join(f"{r.form}/{r.reduce}" for r in res.plan.rows)
        info["plan_bytes"] = res.plan.total
        info["stats_gflop_per_image"] = stats_flops(res) / 1e9
    torch.cuda.synchronize() if device != "cpu" else None
    info |= {"seconds": time.perf_counter() - t, "rss": peak_rss(), "rss_before": base}
    return info


def stats_flops(res) -> float:
    """Per-image flops of the statistics: a CCA group's cross-moments and scatters
    (2 rows (Da Db + sum d^2)), a kept CKA group's Grams (2 n D per image) and the
    minibatch estimator's batch Grams (2 b D_flat per image and kernel)."""
    flops, c = 0.0, res._c
    for g in c.groups.values():
        dims = [e.d for e in g.entries]
        if g.exact & {"cca", "svcca", "pwcca"}:
            da, db = sum(e.d for e in g.a), sum(e.d for e in g.b)
            flops += 2.0 * g.rows * (da * db + sum(d * d for d in dims))
        elif g.mode == "memory":
            flops += 2.0 * g.rows * c.n * g.rows * sum(dims)
        if c.minibatch is not None and g.estimated and g.rows == 1:
            flops += 2.0 * res.batch_size * sum(dims) * len(c.minibatch.kinds)
    return flops


def gemm_peak(dtype) -> float:
    n = 2048
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t))
    return best


def run_child(args, what: str, n: int, size: int, model: str) -> dict:
    cmd = [sys.executable, __file__, "--child", what, "--n", str(n), "--size", str(size),
           "--model", model, "--device", args.device] + (["--profile"] if args.profile else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                         env=os.environ | {"PYTHONWARNINGS": "ignore"})
    if out.returncode:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"child {what} n={n} failed")
    if args.profile and what == "cnnlens":
        sys.stderr.write(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="*", default=[1024, 4096])
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--child", choices=["floor", "cnnlens"])
    ap.add_argument("--skip", default="", help="comma list of: small,detector")
    ap.add_argument("--profile", action="store_true",
                    help="print the pairs stage's costliest calls (cProfile) on stderr")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    p32, p64 = gemm_peak(torch.float32), gemm_peak(torch.float64)
    print(f"# bench/scale.py on {os.cpu_count()} cores, torch {torch.__version__}, "
          f"device {args.device}; GEMM peak {p32 / 1e9:.0f} GFLOP/s float32, "
          f"{p64 / 1e9:.0f} GFLOP/s float64; memory={BUDGET >> 30} GiB\n")
    cases = [(n, args.size, args.model) for n in args.n]
    skip = set(args.skip.split(","))
    if "small" not in skip:
        cases.append((args.n[0], 64, args.model))
    if "detector" not in skip:
        cases.append((256, 128, "retinanet"))
    print("| model | px | n | cells | floor s | cnnlens s | forwards stage s | pairs stage s | "
          "ratio | vs floor+arith | floor RSS | cnnlens RSS | RSS limit | plan | "
          "every cell defined |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, size, model in cases:
        floor = run_child(args, "floor", n, size, model)
        ours = run_child(args, "cnnlens", n, size, model)
        arith = ours["stats_gflop_per_image"] * 1e9 * n / p64
        limit = BUDGET + 1.1 * floor["rss"]
        defined = all(ours[f"defined_{m}"] == 1.0 for m in PICKER)
        print(f"| {model} | {size} | {n} | {ours['cells']} | {floor['seconds']:.0f} | "
              f"{ours['seconds']:.0f} | {ours['forward_s']:.0f} | {ours['pairs_s']:.0f} | "
              f"{ours['seconds'] / floor['seconds']:.2f}x | "
              f"{ours['seconds'] / (floor['seconds'] + arith):.2f}x | "
              f"{floor['rss'] / 2**30:.2f} GiB | {ours['rss'] / 2**30:.2f} GiB | "
              f"{limit / 2**30:.2f} GiB {'ok' if ours['rss'] <= limit else 'OVER'} | "
              f"{ours['plan']} | {'yes' if defined else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
