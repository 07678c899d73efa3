"""Random-data baseline for canonical-correlation spectra.

Canonical correlations of unrelated data are not zero: with n datapoints and
k_x, k_y dimensions they follow the Wachter (matrix-variate beta) law. The
spectrum view draws this baseline next to a pair's spectrum.
"""
from __future__ import annotations

import zlib

import numpy as np
import torch

__all__ = ["random_spectrum"]


def random_spectrum(n: int, kx: int, ky: int, draws: int = 3) -> np.ndarray:
    """Mean sorted canonical correlations of independent Gaussian data (n rows, kx/ky dims).

    Sampled exactly through the Wishart representation: for centred independent
    X, Y the squared correlations are the eigenvalues of (A + C)^-1 A with
    A ~ W_p(q), C ~ W_p(n - 1 - q) (p <= q), so the cost does not depend on n.
    Seeded by (n, kx, ky): the same pair always gets the same baseline.
    """
    p, q = sorted((int(kx), int(ky)))
    if p == 0 or n < 3:
        return np.zeros(0)
    df = n - 1 - q
    if df < p:  # at least p + q - (n - 1) coefficients are exactly 1
        return np.ones(p)
    rng = np.random.default_rng(zlib.crc32(f"{n},{p},{q}".encode()))
    out = np.zeros(p)
    for _ in range(draws):
        A = _wishart(rng, p, q)
        Cm = _wishart(rng, p, df)
        L = torch.linalg.cholesky(A + Cm)
        Li = torch.linalg.solve_triangular(L, torch.eye(p, dtype=torch.float64), upper=False)
        r2 = torch.linalg.eigvalsh(Li @ A @ Li.mT).clamp(0, 1)
        out += np.sort(r2.sqrt().numpy())[::-1]
    return out / draws


def _wishart(rng: np.random.Generator, p: int, df: int) -> torch.Tensor:
    """One W_p(df, I) draw: Z^T Z for small df, the Bartlett decomposition otherwise."""
    if df <= 4 * p:
        Z = torch.from_numpy(rng.standard_normal((df, p)))
        return Z.mT @ Z
    L = np.tril(rng.standard_normal((p, p)), -1)
    L[np.diag_indices(p)] = np.sqrt(rng.chisquare(df - np.arange(p)))
    L = torch.from_numpy(L)
    return L @ L.mT
