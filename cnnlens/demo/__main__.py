"""``python -m cnnlens.demo``: train (or load) the demo models and report them.

Prints, per model, whether it came from the cache, its accuracy on the real
test split (recomputed here), and the seconds it took to train and to load.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from . import CONFIGS, NAMES, accuracy, cache, data, info, model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnlens.demo", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", default=list(NAMES), help=f"subset of {list(NAMES)}")
    parser.add_argument("--retrain", action="store_true", help="ignore the cache and train again")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(NAMES)}")

    threads = sorted({CONFIGS[n].threads for n in args.names})
    print(f"cache: {cache.cache_dir()}  (torch threads for training: {threads})")
    test = data().test
    rows, t_all = [], time.perf_counter()
    for name in args.names:
        t0 = time.perf_counter()
        net = model(name, retrain=args.retrain)
        wall = time.perf_counter() - t0
        meta = info(name)
        rows.append((name, "cache" if meta["cached"] else "trained", accuracy(net, test),
                     meta["seconds"], wall))
    total = time.perf_counter() - t_all

    print(f"\n{'model':<11} {'source':<8} {'real-test acc':>13} {'train s':>8} {'this run s':>10}")
    for name, source, acc, train_s, wall in rows:
        print(f"{name:<11} {source:<8} {acc:>13.1%} {train_s:>8.1f} {wall:>10.2f}")
    print(f"total {total:.1f} s on {len(test)} real test digits; torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
