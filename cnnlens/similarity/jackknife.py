"""Standard errors of kept-form cells: a delete-one-group jackknife over the images.

Image k is dealt into group k mod ``JACKKNIFE_GROUPS`` (as the minibatch
estimator deals its batches, so data sorted by class lose no class with one
group); replicate g is the cell's score without group g's images, and the error
is ``sqrt((G-1)/G sum_g (s_g - mean s)^2)``. Two cells of one result share the
groups, so a difference of cells (a gap) gets its own error from the
differences of replicates. Nothing runs the models again.

- **CKA family**, from the kept n x n kernels: replicate g removes group g's
  rows and columns and centres again (centring, and U-centring, of the
  sub-block of a centred kernel gives the subset's own: both remove any row or
  column offset). Per-group block sums make all G replicates of a pair cost
  about one pass over its two kernels. RBF keeps the full sample's bandwidth.
- **CCA family**, from the kept activations: moments are additive, so each
  replicate's scatters are the full ones less group g's, re-centred exactly;
  each side is whitened again per replicate. Done for layers of at most
  ``MAX_CCA_D`` features (memory (n + G d) d per layer); wider cells say why they
  have no error in their ``convention``.

>>> import numpy as np
>>> from cnnlens.similarity.jackknife import jackknife_se
>>> round(jackknife_se([0.5, 0.52, 0.48, 0.5]), 4)
0.0245
"""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import torch

from .gram import hsic_terms

__all__ = ["JACKKNIFE_GROUPS", "MAX_CCA_D", "cka_replicates", "jackknife_se", "replicates",
           "with_error"]

JACKKNIFE_GROUPS = 10   # delete-one-group jackknife over this many groups of images
MAX_CCA_D = 64          # CCA-family replicates re-whiten each side G times: d^3 each
KIND = {"linear_cka": "c", "debiased_cka": "u", "rbf_cka": "r"}


def jackknife_se(reps) -> float:
    """``sqrt((G-1)/G sum (s_g - mean)^2)`` of G delete-one-group replicates; NaN if < 2."""
    reps = np.asarray(reps, dtype=np.float64)
    g = len(reps)
    if g < 2 or not np.all(np.isfinite(reps)):
        return float("nan")
    return float(math.sqrt((g - 1) / g * ((reps - reps.mean()) ** 2).sum()))


def _text(g: int, source: str) -> str:
    return (f"standard error: delete-one-group jackknife over {g} groups of images (image k "
            f"in group k mod {g}) from the kept {source}")


def labels(rows_total: int, rows: int, groups: int = JACKKNIFE_GROUPS):
    """(group of every row, number of groups); the rows of one image are contiguous."""
    images = rows_total // rows
    g = max(2, min(groups, images))
    return (torch.arange(rows_total) // rows) % g, g


# -- CKA: centred kernels ------------------------------------------------------------------
class KernelSplit:
    """One layer's centred kernel split into image groups: what every replicate needs."""

    def __init__(self, M: torch.Tensor, lab: torch.Tensor, g: int, rows: int = 1):
        self.M, self.lab, self.g, self.rows = M, lab, g, rows
        # group sums as products with the one-hot matrix of images: BLAS (index_add_ is
        # ~20x slower); several rows per image are summed first (a reshape, no copy)
        self.onehot = torch.nn.functional.one_hot(lab[::rows], g).to(M.dtype)
        self.R = self._images(M, cols_only=True) @ self.onehot  # (n, G) row sums per group
        self.r, self.d = self.R.sum(1), M.diagonal().clone()  # contiguous: read G times
        self.keep = [lab != k for k in range(g)]

    def blocks(self, other: KernelSplit) -> torch.Tensor:
        """(G, G) sums of ``M * other.M`` over every pair of groups."""
        return self.onehot.mT @ self._images(self.M * other.M) @ self.onehot

    def _images(self, P: torch.Tensor, cols_only: bool = False) -> torch.Tensor:
        """Sums over the rows (and columns) of each image: (n, N) or (N, N)."""
        if self.rows == 1:
            return P
        n, r = P.shape[0], self.rows
        return P.view(n, n // r, r).sum(2) if cols_only else \
            P.view(n // r, r, n // r, r).sum((1, 3))

    def hsic(self, other: KernelSplit, S: torch.Tensor, debiased: bool) -> np.ndarray:
        """<centred M_-g, centred other_-g> for every group g (U-centred if debiased)."""
        total, by_group = float(S.sum()), S.sum(1)
        out = np.empty(self.g)
        for k in range(self.g):
            skl = total - float(by_group[k] + S[:, k].sum() - S[k, k])
            m = self.keep[k]
            out[k] = hsic_terms(skl, (self.r - self.R[:, k])[m], (other.r - other.R[:, k])[m],
                                self.d[m], other.d[m], debiased)
        return out


def _kernel_split(res, e, kind: str):
    def make():
        M = res.work.centred(e, "r" if kind == "r" else "c")[0]  # U-centring: from the centred Gram
        if M is None:
            return None
        s = KernelSplit(M, *labels(M.shape[0], e.rows), rows=e.rows)
        s.self = s.hsic(s, s.blocks(s), kind == "u")
        return s
    return res.work.get(("jk-split", kind, e), make)


def cka_replicates(res, kind: str, ea, eb) -> np.ndarray | None:
    """The G delete-one-group CKA values of a kept-form cell (cached), or None."""
    def make():
        a, b = _kernel_split(res, ea, kind), _kernel_split(res, eb, kind)
        if a is None or b is None or a.g != b.g:
            return None
        num, den = a.hsic(b, a.blocks(b), kind == "u"), a.self * b.self
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.sqrt(np.where(den > 0, den, 1.0)), np.nan)
    return res.work.get(("jk", kind, ea, eb), make)


# -- CCA family: moments of the kept activations ----------------------------------------------
def _side_split(res, e):
    """Per replicate: the layer's moments without group g, and their whitening / basis;
    and the centred rows ordered by group (``bounds``) for the pairs' cross-scatters."""
    from .linalg import feature_basis, whitener
    from .stats import Side

    def make():
        full = res.work.side(e)
        lab, g = labels(e.data.shape[0], e.rows)
        order = torch.argsort(lab, stable=True)
        E = e.data[order].to(torch.float64) - full.mean
        bounds = [0, *torch.bincount(lab, minlength=g).cumsum(0).tolist()]
        out = []
        for k in range(g):
            Ek = E[bounds[k]:bounds[k + 1]]
            n = full.n - Ek.shape[0]
            s = -Ek.sum(0)  # the other rows' sum about the full mean
            S = full.S - Ek.mT @ Ek - torch.outer(s, s) / n
            side = Side(n, full.mean + s / n, S)
            basis = feature_basis(S, res.rtol)
            out.append((side, s, whitener(S, side.mean, n, res.rtol, basis=lambda b=basis: b),
                        basis))
        return E, bounds, out
    return res.work.get(("jk-side", e), make)


def cca_replicates(res, metric: str, ea, eb) -> np.ndarray:
    from .cca import cca_from_pair, pwcca_from_pair, svcca_from_bases
    from .stats import Pair

    (Ea, bounds, ra), (Eb, _, rb) = _side_split(res, ea), _side_split(res, eb)
    C = [Ea[lo:hi].mT @ Eb[lo:hi] for lo, hi in itertools.pairwise(bounds)]
    total = sum(C)
    out = np.empty(len(ra))
    for k, ((xa, s_a, wa, ba), (xb, s_b, wb, bb)) in enumerate(zip(ra, rb)):
        M = total - C[k] - torch.outer(s_a, s_b) / xa.n
        if metric == "svcca":
            r = svcca_from_bases(ba, bb, res.keep, xa.n, M)
        elif metric == "cca":
            r = cca_from_pair(Pair(xa, xb, M), res.rtol, wa, wb)
        else:
            r = pwcca_from_pair(Pair(xa, xb, M), res.side, res.rtol, wa, wb)
        out[k] = r.score
    return out


def replicates(res, metric: str, ea, eb) -> tuple[np.ndarray | None, str]:
    """(replicates of a defined kept-form cell, or None; the sentence for its convention)."""
    if metric in KIND:
        reps = cka_replicates(res, KIND[metric], ea, eb)
        return reps, _text(len(reps), "kernels") if reps is not None else \
            "no standard error (fewer than 2 groups of images)"
    d, n = max(ea.d, eb.d), ea.data.shape[0]
    if d > MAX_CCA_D:
        return None, (f"no standard error: the jackknife of the CCA family is computed for "
                      f"layers of at most {MAX_CCA_D} features (it re-whitens each side per "
                      f"group of images); this pair has {d}")
    if n * (1 - 1 / JACKKNIFE_GROUPS) <= d + 1:
        return None, "no standard error: too few datapoints per replicate for the widths"

    reps = res.work.get(("jk", metric, ea, eb), lambda: cca_replicates(res, metric, ea, eb))
    return reps, _text(len(reps), "activations")


def with_error(res, metric: str, r, ea, eb):
    """``r`` (a kept-form cell) with its jackknife error and how it was obtained."""
    if not r.defined or math.isfinite(r.se):
        return r
    try:
        reps, text = replicates(res, metric, ea, eb)
    except ValueError as exc:  # a replicate the full sample does not hit (e.g. n <= d)
        reps, text = None, f"no standard error: {exc}"
    return dataclasses.replace(r, se=jackknife_se(reps) if reps is not None else float("nan"),
                               convention=f"{r.convention}; {text}")
