"""Benchmark of cnnlens.similarity: timings as multiples of arithmetic lower bounds.

Run: ``.venv/bin/python bench/similarity.py`` (a few minutes on 2 cores;
``--quick`` for fewer repeats and images). Prints, for each case, the min and
median wall time over >= 5 repeats, the arithmetic lower bound (flops at this
machine's measured GEMM peak, ``torch.matmul``), and the peers measured in the
same process: cka-pytorch's ``CKACalculator`` end to end (timed in repeats
alternating with ours, so both see the same load) and a per-pair
recomputation baseline. All math runs in torch (one BLAS backend per process;
mixing numpy's and torch's thread pools distorts timings 2-4x on 2 cores).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
import torchvision
from torch import nn

from cnnlens import similarity as sim
from cnnlens.capture import stream

THREADS = 2
ROWS = []


def timeit(fn, repeats):
    fn()  # warm-up (allocator, MKL/oneDNN kernels)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out), statistics.median(out)


def timeit_side_by_side(fns, repeats):
    """Like :func:`timeit` for several functions, alternating them repeat by repeat, so
    that a peer and we see the same load (on a shared machine it drifts by +-20 %)."""
    for fn in fns:
        fn()
    out = [[] for _ in fns]
    for _ in range(repeats):
        for fn, times in zip(fns, out, strict=True):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return [(min(t), statistics.median(t)) for t in out]


def gemm_peak(dtype, repeats=9):
    """Best torch.matmul rate over two sizes: on a shared machine the best is the peak."""
    rates = []
    for n in (2048, 3072):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        rates.append(2 * n ** 3 / timeit(lambda: a @ b, repeats)[0])  # noqa: B023
    return max(rates)


def row(case, what, times, bound=None, note=""):
    lo, med = times
    ROWS.append((case, what, lo, med, bound, note))
    ratio = f"{lo / bound:8.1f}x" if bound else " " * 9
    print(f"{case:<26} {what:<34} {lo:8.3f} {med:8.3f} {ratio}  {note}", flush=True)


def fc_case(peak64, repeats):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10000, 500, generator=g)
    y = x @ torch.randn(500, 500, generator=g) / 20 + torch.randn(10000, 500, generator=g)
    n, dx, dy = 10000, 500, 500
    bound = n * (dx + dy) ** 2 / peak64          # Sxx, Syy (symmetric) + Sxy

    def one_pass():  # one accumulation; each side whitened once for CCA and PWCCA
        m = sim.Moments(higher=False).update(x, y)
        m.cca(), m.svcca(), m.pwcca(), m.linear_cka()

    row("FC 10000x500 pair", "CCA+SVCCA+PWCCA+CKA, one pass", timeit(one_pass, repeats), bound,
        "incl. 6 LAPACK calls on 500x500")
    row("FC 10000x500 pair", "per-metric recomputation (4 calls)", timeit(
        lambda: (sim.cca(x, y), sim.svcca(x, y), sim.pwcca(x, y), sim.linear_cka(x, y)),
        repeats), bound)
    # a dead neuron and neurons 1e6 apart in scale: the correlation-matrix whitening
    # (a second eigendecomposition and a polar SVD per side) instead of the shared one
    scale = torch.logspace(-3, 3, 500)
    x, y = x * scale, y.clone()
    y[:, 0] = 1.0

    row("FC 10000x500, ill-conditioned", "CCA+SVCCA+PWCCA+CKA, one pass",
        timeit(one_pass, repeats), bound, "incl. 10 LAPACK calls on 500x500")


def conv_case(peak64, repeats):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1000, 64, 16, 16, generator=g)
    y = torch.relu(x + 0.5 * torch.randn(1000, 64, 16, 16, generator=g))
    n, d = 256000, 64
    bound = n * (2 * d) ** 2 / peak64

    def one_pass():
        m = sim.Moments(reduce="positions", higher=False).update(x, y)
        m.cca(), m.svcca(), m.pwcca(), m.linear_cka()

    row("conv 256000x64 (positions)", "CCA+SVCCA+PWCCA+CKA, one pass", timeit(one_pass, repeats),
        bound, "incl. reduce + float64")
    def streamed():
        m = sim.Moments(reduce="positions", higher=False)
        for i in range(0, 1000, 64):
            m.update(x[i:i + 64], y[i:i + 64])
        m.cca(), m.svcca(), m.pwcca(), m.linear_cka()

    row("conv 256000x64 (positions)", "same, streamed in 16 batches of 64", timeit(
        streamed, repeats), bound, "one accumulator")


def wide_case(peak64, repeats):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2000, 4096, generator=g)
    y = x[:, :2048].repeat(1, 2) + torch.randn(2000, 4096, generator=g)
    bound = 2000 ** 2 * (4096 + 4096) / peak64     # two symmetric Grams
    row("2000x4096 pair (d > n)", "linear CKA (Gram form)", timeit(
        lambda: sim.linear_cka(x, y), repeats), bound)
    row("2000x4096 pair (d > n)", "SVCCA keep=0.99 (Gram + eigh)", timeit(
        lambda: sim.svcca(x, y), repeats), bound, "bound: Grams only")


def resnets():
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        out.append(torchvision.models.resnet18().eval())
    return out


def heatmap_case(peak32, peak64, repeats, n_img):
    from torch.utils.flop_counter import FlopCounterMode

    a, b = resnets()
    imgs = torch.randn(n_img, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    names = [k for k, _ in a.named_children()]
    depth1 = lambda layer: layer.depth == 1
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        a(imgs[:1])
    fwd = 2 * n_img * fc.get_total_flops() / peak32
    acts = {}
    for key, model in (("a", a), ("b", b)):
        parts = list(stream(model, (imgs[i:i + 64] for i in range(0, n_img, 64)), names))
        acts[key] = {k: torch.cat([p[k] for p in parts]) for k in names}
    dims = sum(t[0].numel() for t in acts["a"].values())
    gram = 2 * n_img ** 2 * dims / peak64          # symmetric Gram per layer, both models
    case = f"resnet18 x2, 10x10, {n_img} img"

    def stats_only():  # once activations exist: per-layer Grams + 100 cells
        from cnnlens.similarity.matrix import MatrixResult
        from cnnlens.similarity.plan import Collector
        col = Collector(names, names, {"cca": "mean", "cka": "flatten"}, {"linear_cka"},
                        {"linear_cka"}, n_img, budget=1 << 36)
        col.start(acts)
        col.add(acts)
        res = MatrixResult(names, names, ("linear_cka",), col, col.reduce, 0.99, "x", 0.8,
                           1e-10)
        res.complete = True
        return res.matrix("linear_cka")

    row(case, "flattened linear CKA, stats+cells", timeit(stats_only, repeats), gram,
        "activations given")
    # 10 cells in which every layer of a and of b occurs once: exactly 1/10 of the work
    cells = [(i, (3 * i + 1) % 10) for i in range(10)]
    per_pair = timeit(lambda: [sim.linear_cka(acts["a"][names[i]], acts["b"][names[j]])
                               for i, j in cells], repeats)
    row(case, "per-pair recomputation (x10)", tuple(t * 10 for t in per_pair), gram,
        "10 cells timed, scaled")
    row(case, "forward passes only (capture)", timeit(lambda: [list(stream(
        m, (imgs[i:i + 64] for i in range(0, n_img, 64)), names)) for m in (a, b)], repeats),
        fwd, "copies every output")
    row(case, "forward passes only (consume)", timeit(lambda: [list(stream(
        m, (imgs[i:i + 64] for i in range(0, n_img, 64)), names, consume=lambda n, t: None))
        for m in (a, b)], repeats), fwd, "hook-time callback, no copy")
    kw = {"layers_a": depth1, "layers_b": depth1, "reduce": {"cca": "mean", "cka": "flatten"}}
    row(case, "cnnlens end to end, full CKA", timeit(lambda: sim.similarity_matrix(
        a, b, imgs, metrics=("linear_cka",), **kw), repeats), fwd + gram, "exact, float64")
    # a script's call: only the measured metric is accumulated (widgets use collect="all")
    mb = sim.similarity_matrix(a, b, imgs, metrics=("minibatch_cka",), collect="requested", **kw)

    def ours():
        sim.similarity_matrix(a, b, imgs, metrics=("minibatch_cka",), collect="requested", **kw)

    try:
        from cka_pytorch.cka import CKACalculator
    except ImportError as exc:  # reported, not hidden
        row(case, "cnnlens e2e, minibatch CKA only", timeit(ours, repeats), fwd,
            "batches of 64, collect='requested'")
        print(f"  cka-pytorch unavailable: {exc}")
        return
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
        imgs, torch.zeros(n_img)), batch_size=64)

    def peer(eps=1e-4):
        calc = CKACalculator(a, b, model1_layers=names, model2_layers=names, verbose=False,
                             hook_recursive=False)
        out = calc.calculate_cka_matrix(loader, num_epochs=1, epsilon=eps)
        calc.reset()
        return out

    t_ours, t_peer = timeit_side_by_side([ours, peer], 2 * repeats)
    row(case, "cnnlens e2e, minibatch CKA only", t_ours, fwd,
        "batches of 64, collect='requested'")
    row(case, "cka-pytorch CKACalculator (1 epoch)", t_peer, fwd,
        "minibatch CKA, float32 (default 10 epochs)")
    print(f"{'':<26} repeats alternate between the two; cnnlens / cka-pytorch: min "
          f"{t_ours[0] / t_peer[0]:.2f}, median {t_ours[1] / t_peer[1]:.2f}")
    # accuracy of the same estimator: float64 reference from the captured activations
    ref = torch.tensor([[sim.minibatch_cka(acts["a"][x].double(), acts["b"][y].double(),
                                           batch_size=64).score for y in names] for x in names])
    ours = torch.from_numpy(mb.matrix("minibatch_cka"))
    theirs = peer(0.0).double()
    print(f"{'':<26} minibatch CKA vs float64 reference: cnnlens max |err| "
          f"{(ours - ref).abs().max():.1e}, cka-pytorch {(theirs - ref).abs().max():.1e} "
          "(uncentred float32 Grams)")


def rss_child(n_img):
    torch.set_num_threads(THREADS)

    def net(seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                             nn.Flatten(), nn.Linear(512, 64), nn.ReLU(),
                             nn.Linear(64, 10)).eval()
    g = torch.Generator().manual_seed(1)
    batches = (torch.rand(64, 3, 32, 32, generator=g) for _ in range(0, n_img, 64))
    t = time.perf_counter()
    res = sim.similarity_matrix(net(0), net(1), batches, reduce="mean",
                                metrics=("svcca", "pwcca", "linear_cka", "debiased_cka"))
    dt = time.perf_counter() - t
    # VmHWM: this process image's peak RSS (ru_maxrss would include the parent's, since
    # Linux keeps the high-water mark across fork + exec)
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    print(f"{n_img} {res.n} {hwm / 1024:.1f} {dt:.2f}")


def rss_case(sizes):
    out = {}
    for n in sizes:
        p = subprocess.run([sys.executable, __file__, "--rss", str(n)], capture_output=True,
                           text=True, check=True)
        _, seen, mb, dt = p.stdout.split()
        out[n] = (float(mb), float(dt))
        print(f"{'streaming RSS':<26} {seen + ' images (streamed)':<34} peak RSS {mb} MiB, "
              f"{dt} s", flush=True)
    lo, hi = out[sizes[0]][0], out[sizes[-1]][0]
    print(f"{'streaming RSS':<26} {'ratio ' + str(sizes[-1]) + '/' + str(sizes[0]):<34} "
          f"{hi / lo:.3f} (target <= 1.10)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 repeats, 256 images for resnets")
    ap.add_argument("--rss", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--skip", default="", help="comma list of: fc,conv,wide,heatmap,rss")
    args = ap.parse_args()
    if args.rss:
        return rss_child(args.rss)
    torch.set_num_threads(THREADS)
    repeats, n_img = 5, 256 if args.quick else 512
    skip = set(args.skip.split(","))
    p32, p64 = gemm_peak(torch.float32), gemm_peak(torch.float64)
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {load:.1f}; GEMM peak (torch.matmul, best of "
          f"2048^3/3072^3): float32 {p32 / 1e9:.1f} GFLOP/s, float64 {p64 / 1e9:.1f} GFLOP/s")
    print("lower bound = flops of the unavoidable products (symmetric ones counted once) at "
          "that peak\n")
    print(f"{'case':<26} {'what':<34} {'min s':>8} {'median':>8} {'/bound':>9}  note")
    if "rss" not in skip:  # first, while this process is small and idle
        rss_case([2000, 20000])
    if "fc" not in skip:
        fc_case(p64, repeats)
    if "conv" not in skip:
        conv_case(p64, repeats)
    if "wide" not in skip:
        wide_case(p64, repeats)
    if "heatmap" not in skip:
        heatmap_case(p32, p64, repeats, n_img)
    q32, q64 = gemm_peak(torch.float32), gemm_peak(torch.float64)
    print(f"\nGEMM peak re-measured at the end: float32 {q32 / 1e9:.1f}, float64 {q64 / 1e9:.1f} "
          f"GFLOP/s; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
