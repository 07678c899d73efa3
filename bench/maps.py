"""Canonical maps in Compare: from the matrix pass's statistics, or from one extra pass per pair.

Run: ``.venv/bin/python bench/maps.py`` (seconds). On the demo (real vs synthetic
DigitNets, the 599 real test digits) prints, for ``Compare(maps=True)`` (the default:
the engine keeps the position-level statistics in its pass) and ``maps=False`` (one extra
pass over the data per selected pair): the matrix pass, the first maps of a cell, and
another image's maps of the same cell.
"""
from __future__ import annotations

import time

import cnnlens as cl


def main() -> None:
    nets, data = cl.demo.models(progress=False), cl.demo.data()
    print("| maps | matrix pass s | first maps of conv2 x conv2 s | another image s | rho_1 |")
    print("|---|---|---|---|---|")
    for maps in (True, False):
        t0 = time.perf_counter()
        cmp = cl.Compare(nets["real"], nets["synthetic"], data.test.images, maps=maps)
        cmp.wait()
        t1 = time.perf_counter()
        first = cmp.canonical_maps(1, 1, image=0)
        t2 = time.perf_counter()
        cmp.canonical_maps(1, 1, image=5)
        t3 = time.perf_counter()
        print(f"| {maps} | {t1 - t0:.2f} | {t2 - t1:.3f} | {t3 - t2:.3f} | {first.rho[0]:.4f} |")
        cmp.close()


if __name__ == "__main__":
    main()
