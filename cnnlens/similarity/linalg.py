"""Rank-revealing CCA building blocks on scatter matrices (no data needed).

Conventions (DESIGN.md section 5): canonical correlations are the singular
values of ``Sxx^-1/2 Sxy Syy^-1/2``. Instead of google/svcca's ``pinv`` +
square root of the inverse (which squares the conditioning twice, fails with
"SVD did not converge" on exactly rank-deficient input and is off by 7e-6 on a
cond-1e2 invertible map), each side is whitened through the eigendecomposition
of its *correlation* matrix:

1. neurons whose standard deviation is below ``CONST_TOL * |mean|`` (dead or
   constant, incl. float rounding of a constant) are dropped, not divided by;
2. the remaining scatter is scaled to unit diagonal (CCA is invariant to
   per-neuron scale, and this removes the scale part of the conditioning);
3. eigen-directions with eigenvalue <= ``rtol * largest`` are linearly dependent
   neurons and are dropped; what remains is the effective rank ``k``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "CONST_TOL",
    "RTOL",
    "Basis",
    "Whitener",
    "canonical_directions",
    "check_keep",
    "feature_basis",
    "gram_basis",
    "live_count",
    "n_keep",
    "pwcca_weights",
    "svcca_directions",
    "svcca_rho",
    "whitened_cross",
    "whitener",
]

#: eigenvalue cut relative to the largest (singular-value ratio 1e-5); float32
#: activations carry no information below ~1e-7 relative, and float64 eigenvalues
#: of a d x d matrix are only good to ~d * 1e-16 of the largest.
RTOL = 1e-10
#: a neuron is constant when std <= CONST_TOL * |mean| (also catches all-zero ones)
CONST_TOL = 1e-12


@dataclass(eq=False)
class Whitener:
    """Whitening of one side's ``live`` neurons (d_live of them, rank r).

    ``W`` (d_live, r) with W^H S_live W = I and ``F`` (r, d_live) with F^H F = S_live:
    the neurons in an orthonormal basis of their span. ``O`` (d_live, r), the polar
    factor of F^H (so that S^-1/2 = W O^H on the span), is computed on first use.
    """

    live: torch.Tensor
    W: torch.Tensor
    F: torch.Tensor
    d: int
    O: torch.Tensor | None = None
    R: torch.Tensor | None = None

    @property
    def rank(self) -> int:
        return int(self.W.shape[1])

    @property
    def dropped(self) -> int:
        return self.d - int(self.live.shape[0])

    def polar(self) -> torch.Tensor:
        if self.O is None:
            Uf, _, Vfh = torch.linalg.svd(self.F, full_matrices=False)
            self.O = Vfh.mH @ Uf.mH
        return self.O

    def inv_sqrt(self) -> torch.Tensor:
        """S^-1/2 on the live neurons' span, W O^H (d_live, d_live): once per layer, so a
        pair's symmetric whitened cross-scatter is two products instead of four."""
        if self.R is None:
            self.R = self.W @ self.polar().mH
        return self.R


#: the scatter's own eigendecomposition whitens when its condition number is below
#: FAST_COND_FACTOR / sqrt(rtol): then the correlation matrix's is below 1 / rtol
#: (cond R <= cond(S)^2), so the robust route would keep every neuron as well
FAST_COND_FACTOR = 0.1


def whitener(S: torch.Tensor, mean: torch.Tensor, n: int, rtol: float = RTOL,
             basis: Callable[[], Basis] | None = None) -> Whitener:
    """Rank-revealing whitening of a (d, d) scatter matrix (real or Hermitian).

    ``basis()`` gives the scatter's own eigendecomposition (:func:`feature_basis`,
    which SVCCA needs anyway; called only when every neuron is live). It is used
    when well conditioned: the same whitening as the correlation route up to
    rounding (~1e-16 x cond), one eigendecomposition per side instead of two, and
    S^-1/2 for PWCCA without a polar decomposition.
    """
    diag = S.diagonal().real.clamp_min(0)
    std = (diag / n).sqrt()
    live = ((std > CONST_TOL * mean.abs()) & (diag > 0)).nonzero().flatten()
    d = int(S.shape[0])
    if len(live) == 0:
        empty = torch.zeros(0, 0, dtype=S.dtype)
        return Whitener(live, empty, empty, d)
    b = basis() if basis is not None and len(live) == d else None
    if b is not None and b.rank == d and bool(
            b.lam[-1] * FAST_COND_FACTOR > math.sqrt(rtol) * b.lam[0]):
        return Whitener(live, b.vecs * b.lam.rsqrt(), b.lam.sqrt()[:, None] * b.vecs.mT, d,
                        O=b.vecs)
    sigma = diag[live].sqrt()
    R = S[live][:, live] / (sigma[:, None] * sigma[None, :])
    lam, V = torch.linalg.eigh(R)
    lam, V = lam.flip(0), V.flip(1)
    keep = lam > rtol * lam[0]
    lam, V = lam[keep], V[:, keep]
    return Whitener(live, V * (lam.rsqrt().to(V.dtype) / sigma[:, None]),
                    (V * lam.sqrt().to(V.dtype)).mH * sigma[None, :], d)


def live_count(X: torch.Tensor, chunk: int = 4096) -> int:
    """How many columns of data X (n, d) are not constant (the rule of :func:`whitener`)."""
    live = 0
    for c0 in range(0, X.shape[1], chunk):
        x = X[:, c0:c0 + chunk].to(torch.float64)
        mu = x.mean(0)
        std = (x - mu).pow(2).mean(0).sqrt()
        live += int(((std > CONST_TOL * mu.abs()) & (std > 0)).sum())
    return live


def whitened_cross(wx: Whitener, wy: Whitener, M: torch.Tensor) -> torch.Tensor:
    """T = Wx^H Sxy Wy (rank_x x rank_y): its singular values are the canonical correlations."""
    if wx.dropped or wy.dropped:
        M = M[wx.live][:, wy.live]
    return wx.W.mH @ M @ wy.W


def pwcca_weights(w: Whitener, other: Whitener, M: torch.Tensor, mean: torch.Tensor,
                  n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """google/svcca ``compute_pwcca`` weights of side ``w`` (cross-scatter M: w's x other's).

    The original builds ``dirns = u^T (A - mu) + mu``: u are the left singular
    vectors of ``S^-1/2 Sxy Syy^-1/2`` (symmetric inverse square roots, NO
    inverse-sqrt factor afterwards), and neuron i's mean is added to direction i.
    That mean term makes the result depend on the sign LAPACK gives each u_i,
    so u is taken from the SVD of that same matrix (same algorithm family,
    same signs). The dirns are orthonormalised with a QR over the n datapoints
    and direction i is weighted by ``sum_j |<P_i, a_j>|`` over the uncentred
    neurons a_j. Everything lies in the (rank+1)-dim span of the centred
    neurons and the ones vector, so with the coordinates F (F^T F = S) the QR
    runs on a (rank+1) x c matrix: exact from moments, no data needed.

    Returns (weights, rho): c = min(rank_x, rank_y) weights summing to 1 and the
    canonical correlations (singular values of the same matrix).
    """
    mu = mean[w.live]
    Rx, Ry = w.inv_sqrt(), other.inv_sqrt()
    if w.dropped or other.dropped:
        M = M[w.live][:, other.live]
    T_sym = Rx.mH @ M @ Ry
    U, rho, _ = torch.linalg.svd(T_sym, full_matrices=False)
    c = min(w.rank, other.rank)
    u, rho = U[:, :c], rho[:c].clamp(0.0, 1.0)
    root_n = math.sqrt(n)
    C = torch.cat([w.F @ u, root_n * mu[None, :c]])         # dirns in the basis [A_c^T W, 1/sqrt n]
    Qc, _ = torch.linalg.qr(C)
    X = Qc.mT @ torch.cat([w.F, root_n * mu[None, :]])       # <P_i, a_j>, (c, d_live)
    weights = X.abs().sum(1)
    return weights / weights.sum(), rho


@dataclass
class Basis:
    """Principal directions of one side for SVCCA: variances ``lam`` (desc, x n) and vectors.

    ``vecs`` are neuron-space eigenvectors (d, r) in the feature form or the
    normalised projections U (n, r) in the Gram form; ``total`` is the total
    variance (trace), so the kept fraction counts even directions below ``rtol``.
    """

    lam: torch.Tensor
    vecs: torch.Tensor
    total: float
    gram: bool

    @property
    def rank(self) -> int:
        return int(self.lam.shape[0])


def _basis(A: torch.Tensor, rtol: float, gram: bool) -> Basis:
    lam, V = torch.linalg.eigh(A)
    lam, V = lam.flip(0), V.flip(1)
    keep = lam > rtol * lam[0] if lam[0] > 0 else torch.zeros_like(lam, dtype=torch.bool)
    return Basis(lam[keep], V[:, keep], float(A.diagonal().sum()), gram)


def feature_basis(S: torch.Tensor, rtol: float = RTOL) -> Basis:
    return _basis(S, rtol, gram=False)


def gram_basis(Kc: torch.Tensor, rtol: float = RTOL) -> Basis:
    """From the centred Gram Kc = Xc Xc^T: eigenvectors are the left singular vectors."""
    return _basis(Kc, rtol, gram=True)


def check_keep(keep) -> None:
    """SVCCA's ``keep``: a float variance fraction in (0, 1] or an int count >= 1."""
    if isinstance(keep, (bool, np.bool_)) or not isinstance(keep, (int, float, np.integer,
                                                                      np.floating)):
        raise TypeError(f"keep must be a float variance fraction in (0, 1] or an int >= 1; "
                        f"got {keep!r}")
    if isinstance(keep, (int, np.integer)) and keep < 1:
        raise ValueError(f"keep={keep}: keep at least one direction")
    if isinstance(keep, (float, np.floating)) and not 0 < keep <= 1:
        raise ValueError(f"keep={keep}: a variance fraction must be in (0, 1]")


def n_keep(b: Basis, keep) -> int:
    """How many directions SVCCA keeps: a variance fraction (float) or a count (int)."""
    check_keep(keep)
    if isinstance(keep, (int, np.integer)):
        return min(int(keep), b.rank)
    if b.rank == 0:
        return 0
    frac = torch.cumsum(b.lam, 0) / b.total
    k = int((frac < keep).sum()) + 1   # smallest k with sum(lam[:k]) / total >= keep
    return min(k, b.rank)


def svcca_rho(bx: Basis, kx: int, by: Basis, ky: int, M: torch.Tensor | None = None):
    """Canonical correlations between the top-kx and top-ky principal subspaces."""
    if kx == 0 or ky == 0:
        return torch.zeros(0, dtype=torch.float64)
    if bx.gram:
        r = bx.rank
        if r == by.rank == bx.vecs.shape[0] - 1 and (r - kx) * (r - ky) < kx * ky:
            return _rho_from_complements(bx, kx, by, ky)
        T = bx.vecs[:, :kx].mT @ by.vecs[:, :ky]
    else:
        wx = bx.vecs[:, :kx] * bx.lam[:kx].rsqrt()
        wy = by.vecs[:, :ky] * by.lam[:ky].rsqrt()
        T = wx.mT @ M @ wy
    return torch.linalg.svdvals(T).clamp(0.0, 1.0)


def _rho_from_complements(bx: Basis, kx: int, by: Basis, ky: int) -> torch.Tensor:
    """The same correlations from the small orthogonal complements (Gram form, full rank).

    With full centred rank both Grams span the same r = n - 1 dimensional space
    (everything orthogonal to the ones vector). Subspaces A, B of it (dims kx, ky)
    and their complements in it share every principal angle strictly between 0
    and 90 degrees and the number of right angles; only the zero angles differ,
    by kx + ky - r. So when most directions are kept (SVCCA's 99 % variance on
    wide layers keeps ~95 %), the (r - kx) x (r - ky) problem replaces the
    kx x ky one, ~100x less work at n = 2000.
    """
    r = bx.rank
    s = torch.linalg.svdvals(bx.vecs[:, kx:r].mT @ by.vecs[:, ky:r]).clamp(0.0, 1.0)
    ones = torch.ones(max(0, kx + ky - r), dtype=torch.float64)
    return torch.cat([ones, s])[:min(kx, ky)]


def _paired(Wx: torch.Tensor, Wy: torch.Tensor, M: torch.Tensor):
    """Directions A = Wx U, B = Wy V from the SVD U diag(rho) V^H of Wx^H M Wy.

    With Wx^H Sxx Wx = I (and so for y), the columns of A and B are unit-variance
    (over the scatter) neuron weightings whose paired variates correlate at +rho_i.
    """
    U, rho, Vh = torch.linalg.svd(Wx.mH @ M @ Wy, full_matrices=False)
    return Wx @ U, Wy @ Vh.mH, rho.clamp(0.0, 1.0)


def canonical_directions(wx: Whitener, wy: Whitener, M: torch.Tensor):
    """Canonical directions of CCA: (A (d_x, c), B (d_y, c), rho (c,)), c = min(ranks).

    The rho are those of :func:`whitened_cross` (same matrix); ``A[:, i]`` weighs
    x's neurons (zero on the dropped constant ones) so that ``A^T Sxx A = I`` and
    ``A^T Sxy B = diag(rho)``.
    """
    Ml = M[wx.live][:, wy.live] if wx.dropped or wy.dropped else M
    a, b, rho = _paired(wx.W, wy.W, Ml)
    A = torch.zeros(wx.d, a.shape[1], dtype=a.dtype)
    B = torch.zeros(wy.d, b.shape[1], dtype=b.dtype)
    A[wx.live], B[wy.live] = a, b
    return A, B, rho


def svcca_directions(bx: Basis, kx: int, by: Basis, ky: int, M: torch.Tensor):
    """SVCCA's directions (feature form): CCA within the top-kx and top-ky principal subspaces.

    Same whitening as :func:`svcca_rho` (``V_k lam_k^-1/2``), so the same rho;
    returns (A (d_x, c), B (d_y, c), rho (c,)) with c = min(kx, ky).
    """
    if bx.gram or by.gram:
        raise ValueError("SVCCA directions need the feature form (neuron-space bases)")
    return _paired(bx.vecs[:, :kx] * bx.lam[:kx].rsqrt(), by.vecs[:, :ky] * by.lam[:ky].rsqrt(), M)
