"""What the similarity engine cannot go below on this machine: its building blocks alone.

Run: ``.venv/bin/python bench/floors.py`` (about a minute). Prints min and median
over repeats of the decompositions and products the engine's cost rests on, on
one and two intra-op threads: the figures behind the targets that
``bench/similarity.py`` and ``bench/scale.py`` show out of reach (PWCCA needs one
SVD with singular vectors per layer pair, of the two widths). The tridiagonal
reduction goes through scipy's LAPACK on one thread, measured last, after every
torch timing (a second BLAS thread pool in the process distorts torch's).
"""
from __future__ import annotations

import statistics
import time

import torch


def timeit(fn, repeats):
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out), statistics.median(out)


def row(what, times, unit=1e3, label="ms"):
    lo, med = times
    print(f"{what:<58} {lo * unit:9.2f} {med * unit:9.2f} {label}", flush=True)


def on_threads(n, fn):
    def run():
        prev = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            fn()
        finally:
            torch.set_num_threads(prev)
    return run


def spd(n, seed):
    a = torch.randn(n, 2 * n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return a @ a.mT


def eigh_pair(n, repeats):
    a, b = spd(n, 0), spd(n, 1)
    unit, label = (1e3, "ms") if n == 500 else (1.0, "s")

    def pair():
        return torch.linalg.eigh(a), torch.linalg.eigh(b)

    for threads in (1, 2):
        row(f"eigh {n}x{n}, twice in turn, {threads} thread(s)",
            timeit(on_threads(threads, pair), repeats), unit, label)
    row(f"PWCCA's SVD (with vectors) of {n}x{n}, 2 threads",
        timeit(lambda: torch.linalg.svd(a, full_matrices=False), repeats), unit, label)


def main():
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'building block':<58} {'min':>9} {'median':>9}")
    for n, repeats in ((500, 15), (2000, 3)):
        eigh_pair(n, repeats)
    x = torch.relu(torch.randn(64, 65536, generator=torch.Generator().manual_seed(2)))

    def transposed_first():
        xt = x.mT.contiguous()
        return xt.mT @ xt

    for n in (1, 2):
        row(f"minibatch Gram x @ x.T, 64 x 65536 float32, {n} thread(s)",
            timeit(on_threads(n, lambda: x @ x.mT), 30))
    row("  same after a transposed copy, 1 thread", timeit(on_threads(1, transposed_first), 30))

    from scipy.linalg import lapack
    from threadpoolctl import threadpool_limits
    k = spd(2000, 3).numpy()
    lwork = int(lapack.dsytrd_lwork(2000, lower=1)[0])
    with threadpool_limits(1):
        row("tridiagonal reduction (LAPACK dsytrd) 2000x2000, 1 thread", timeit(
            lambda: lapack.dsytrd(k, lower=1, lwork=lwork), 3), 1.0, "s")


if __name__ == "__main__":
    main()
