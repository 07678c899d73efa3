"""The minibatch CKA estimator against exact CKA, where both fit: bias, error bars, coverage.

Run: ``.venv/bin/python bench/estimator.py`` (about a minute). The demo's ``real`` and
``synthetic`` DigitNets over all 1797 real digits (train + test), every layer pair, once
with a budget that keeps the activations (exact linear and debiased CKA) and once with
one that forces the streamed estimator (unbiased HSIC per batch of 64, Nguyen et al.).
Prints, per metric and n, the mean |estimate - exact|, the mean reported standard error,
and the share of cells within 2 standard errors of the exact value.

Note that the estimator and exact *linear* CKA estimate different things at finite n
(exact linear CKA uses the biased HSIC): the comparable pair is debiased CKA. The
images are shuffled once (seeded): the estimator assumes exchangeable batches, and the
digits in split order (train, then test) bias it by about its own standard error
(``--ordered`` shows it).
"""
from __future__ import annotations

import sys

import numpy as np
import torch

import cnnlens as cl
from cnnlens import similarity as sim


def main():
    nets = cl.demo.models(progress=False)
    digits = cl.demo.data()
    images = torch.cat([digits.train.images, digits.test.images])
    if "--ordered" not in sys.argv:
        images = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))]
    print("| metric | n | cells | mean abs(estimate - exact) | mean SE | within 2 SE |")
    print("|---|---|---|---|---|---|")
    for n in (256, 768, len(images)):
        x = images[:n]
        for metric in ("debiased_cka", "linear_cka"):
            exact = sim.similarity_matrix(nets["real"], nets["synthetic"], x, metrics=(metric,),
                                          memory=4 << 30, collect="requested")
            est = sim.similarity_matrix(nets["real"], nets["synthetic"], x, metrics=(metric,),
                                        memory=4 << 20, batch_size=64, collect="requested")
            assert exact.plan.form(metric) == "exact" and est.plan.form(metric) == "minibatch"
            d = np.abs(est.matrix(metric) - exact.matrix(metric))
            se = est.se(metric)
            print(f"| {metric} | {n} | {d.size} | {d.mean():.4f} | {np.nanmean(se):.4f} | "
                  f"{np.mean(d <= 2 * se):.0%} |", flush=True)


if __name__ == "__main__":
    main()
