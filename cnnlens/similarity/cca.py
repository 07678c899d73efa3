"""CCA, SVCCA and PWCCA: public functions and their versions on precomputed statistics.

The ``*_from_pair`` / ``svcca_from_bases`` functions take the statistics of
:mod:`cnnlens.similarity.stats` (from memory or from the streaming accumulator)
and optional per-layer caches, so the all-pairs engine whitens each layer once.
"""
from __future__ import annotations

import torch

from .conv import fourier_cca, prepare_pair
from .gram import centred_gram
from .joint import pair_from_data
from .layer_work import LayerWork
from .linalg import (
    RTOL,
    Basis,
    Whitener,
    check_keep,
    gram_basis,
    n_keep,
    pwcca_weights,
    svcca_rho,
    whitened_cross,
)
from .result import Result
from .stats import Pair

__all__ = [
    "cca",
    "cca_from_pair",
    "check_n_gt_d",
    "pwcca",
    "pwcca_from_pair",
    "svcca",
    "svcca_from_bases",
    "svcca_from_pair",
]

_USE_INSTEAD = ("use svcca(x, y, keep=...) or linear_cka(x, y), or reduce the layer "
                "(e.g. reduce='mean' for conv activations)")


def check_n_gt_d(metric: str, n: int, dx: int, dy: int) -> None:
    """CCA needs more datapoints than (non-constant) neurons on each side."""
    if n <= max(dx, dy):
        raise ValueError(
            f"{metric} needs more datapoints than neurons: n={n}, d_x={dx}, d_y={dy} "
            f"(non-constant neurons). With n <= d every canonical correlation is 1 whatever "
            f"the data; {_USE_INSTEAD}")


def _forced(n: int, wx: Whitener, wy: Whitener) -> str | None:
    """A caveat when the two spans must intersect: some correlations are 1 whatever the data."""
    forced = wx.rank + wy.rank - (n - 1)
    if forced <= 0:
        return None
    return (f"{forced} canonical correlations are 1 by construction (k_x + k_y = "
            f"{wx.rank + wy.rank} > n - 1 = {n - 1}); use more datapoints or svcca")


def _whiteners(p: Pair, rtol: float, wx: Whitener | None, wy: Whitener | None):
    # the same route as the engine and Moments (LayerWork, which reuses SVCCA's bases):
    # PWCCA's weights depend on the singular vectors' signs, so all must see one matrix
    work = LayerWork(rtol)
    return wx or work.whitener("x", p.x), wy or work.whitener("y", p.y)


def _undefined(metric, n, wx, wy, convention) -> Result:
    side = "x" if wx.rank == 0 else "y"
    return Result(metric, float("nan"), convention, k_x=wx.rank, k_y=wy.rank, n=n,
                  dropped_x=wx.dropped, dropped_y=wy.dropped,
                  reason=f"{side} has no non-constant neuron (all {[wx, wy][side == 'y'].d} "
                         "are dead or constant over these datapoints): similarity is undefined")


def cca_from_pair(p: Pair, rtol: float = RTOL, wx: Whitener | None = None,
                  wy: Whitener | None = None) -> Result:
    """Mean canonical correlation from pair statistics (raises ValueError if n <= d)."""
    wx, wy = _whiteners(p, rtol, wx, wy)
    check_n_gt_d("CCA", p.n, wx.d - wx.dropped, wy.d - wy.dropped)
    conv = "CCA: mean canonical correlation (centred, float64)"
    if wx.rank == 0 or wy.rank == 0:
        return _undefined("cca", p.n, wx, wy, conv)
    rho = torch.linalg.svdvals(whitened_cross(wx, wy, p.M)).clamp(0.0, 1.0).numpy()
    conv = (f"CCA: mean of {len(rho)} canonical correlations (singular values of "
            f"Sxx^-1/2 Sxy Syy^-1/2, centred, float64) over effective ranks k_x={wx.rank}, "
            f"k_y={wy.rank}; constant neurons dropped: {wx.dropped} (x), {wy.dropped} (y)")
    return Result("cca", float(rho.mean()), conv, rho=rho, k_x=wx.rank, k_y=wy.rank, n=p.n,
                  dropped_x=wx.dropped, dropped_y=wy.dropped, reason=_forced(p.n, wx, wy))


def pwcca_from_pair(p: Pair, side: str = "x", rtol: float = RTOL, wx: Whitener | None = None,
                    wy: Whitener | None = None) -> Result:
    """Projection-weighted CCA, weights from ``side`` (raises ValueError if n <= d)."""
    if side not in ("x", "y"):
        raise ValueError(f"side must be 'x' or 'y' (whose neurons weigh the directions); got "
                         f"{side!r}")
    wx, wy = _whiteners(p, rtol, wx, wy)
    check_n_gt_d("PWCCA", p.n, wx.d - wx.dropped, wy.d - wy.dropped)
    conv = f"PWCCA weighted by {side}'s neurons"
    if wx.rank == 0 or wy.rank == 0:
        return _undefined("pwcca", p.n, wx, wy, conv)
    if side == "x":
        w_side, (weights, rho) = wx, pwcca_weights(wx, wy, p.M, p.x.mean, p.n)
    else:
        w_side, (weights, rho) = wy, pwcca_weights(wy, wx, p.M.mT, p.y.mean, p.n)
    weights, rho = weights.numpy(), rho.numpy()
    conv = (f"PWCCA (Morcos et al. 2018; weights as google/svcca pwcca.py): sum_i w_i rho_i, "
            f"w_i = sum_j |<h_i, a_j>| over {side}'s {w_side.d - w_side.dropped} non-constant "
            f"neurons (uncentred), {len(rho)} directions; asymmetric: side={side!r}")
    return Result("pwcca", float(weights @ rho), conv, rho=rho, weights=weights, k_x=wx.rank,
                  k_y=wy.rank, n=p.n, dropped_x=wx.dropped, dropped_y=wy.dropped,
                  reason=_forced(p.n, wx, wy))


def _keep_text(keep) -> str:
    if isinstance(keep, float):
        return f"explaining {keep:.4g} of the variance"
    return f"{keep}"


def svcca_from_bases(bx: Basis, by: Basis, keep, n: int, M=None) -> Result:
    """SVCCA from two :class:`~cnnlens.similarity.linalg.Basis` (+ cross-scatter if feature form)."""
    kx, ky = n_keep(bx, keep), n_keep(by, keep)
    form = "Gram (n x n) form" if bx.gram else "feature form"
    conv = (f"SVCCA (Raghu et al. 2017): top singular directions of the centred data "
            f"{_keep_text(keep)} per side (k_x={kx}, k_y={ky}), then CCA; score = mean of "
            f"min(k_x, k_y) canonical correlations; {form}")
    if kx == 0 or ky == 0:
        side = "x" if kx == 0 else "y"
        return Result("svcca", float("nan"), conv, k_x=kx, k_y=ky, n=n,
                      reason=f"{side} has no variance (all neurons constant): undefined")
    rho = svcca_rho(bx, kx, by, ky, M).numpy()
    reason = None
    if isinstance(keep, int) and keep > min(bx.rank, by.rank):
        reason = f"keep={keep} exceeds the effective rank; kept k_x={kx}, k_y={ky}"
    return Result("svcca", float(rho.mean()), conv, rho=rho, k_x=kx, k_y=ky, n=n, reason=reason)


def svcca_from_pair(p: Pair, keep=0.99, rtol: float = RTOL, bx: Basis | None = None,
                    by: Basis | None = None) -> Result:
    work = LayerWork(rtol)
    bx, by = bx or work.basis("x", p.x), by or work.basis("y", p.y)
    return svcca_from_bases(bx, by, keep, p.n, p.M)


def cca(x, y, reduce: str | None = None, rtol: float = RTOL) -> Result:
    """Mean canonical correlation between two representations.

    Parameters
    ----------
    x, y : array or Tensor, (n, d_x) and (n, d_y), or conv (N, C, H, W)
        Rows are datapoints (the same ones on both sides); any float dtype.
    reduce : str, optional
        For conv activations: "positions" (default), "mean", "flatten", "resize",
        or "dft" (CCA per spatial frequency, see :func:`~cnnlens.similarity.conv.fourier_cca`).
    rtol : float
        Rank cut: eigenvalues of each side's correlation matrix below ``rtol`` times
        the largest are linearly dependent directions and are dropped.

    Returns
    -------
    Result
        ``score`` = mean of ``rho`` (canonical correlations, descending); ``k_x``,
        ``k_y`` effective ranks. ``mean_thr()`` gives google/svcca's 0.98-mass mean.

    Raises
    ------
    ValueError
        n <= d (CCA is degenerate there: use svcca or a CKA), NaN/Inf, bad shapes.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnlens.similarity import cca
    >>> x = np.random.default_rng(0).normal(size=(1000, 5))
    >>> round(cca(x, 3 * x + 1).score, 8)
    1.0
    """
    if reduce == "dft":
        return fourier_cca(x, y, rtol)
    X, Y = prepare_pair(x, y, reduce, "cca", convert=False)
    return cca_from_pair(pair_from_data(X, Y, higher=False), rtol)


def pwcca(x, y, side: str = "x", reduce: str | None = None, rtol: float = RTOL) -> Result:
    """Projection-weighted CCA (Morcos et al. 2018) with google/svcca's weights.

    PWCCA is asymmetric: ``side="x"`` weighs each canonical direction by how
    much of x's (uncentred) neurons it accounts for, ``side="y"`` by y's. The
    original ``compute_pwcca(acts1, acts2)`` uses acts1's side and crashes when
    acts1 has more neurons; here either side works (with c = min(k_x, k_y)
    directions). ``.weights`` holds the normalised weights. Other parameters
    and errors as :func:`cca`.
    """
    X, Y = prepare_pair(x, y, reduce, "cca", convert=False)
    return pwcca_from_pair(pair_from_data(X, Y, higher=False), side, rtol)


def svcca(x, y, keep=0.99, reduce: str | None = None, rtol: float = RTOL) -> Result:
    """SVCCA (Raghu et al. 2017): SVD per side, then CCA; score = mean correlation.

    Parameters
    ----------
    keep : float or int
        A float in (0, 1]: per side, the fewest top singular directions whose
        variance (squared singular values) reaches this fraction of the total
        (0.99 in the paper); an int: exactly that many (capped at the rank).
    x, y, reduce, rtol
        As :func:`cca`. With more features than datapoints the Gram (n x n) form
        is used, so SVCCA stays defined where CCA is not.

    Returns
    -------
    Result
        ``rho`` (min(k_x, k_y) correlations), ``k_x``, ``k_y`` (directions kept).
    """
    check_keep(keep)
    X, Y = prepare_pair(x, y, reduce, "cca", convert=False)
    n = X.shape[0]
    if n < max(X.shape[1], Y.shape[1]):
        bx, by = gram_basis(centred_gram(X), rtol), gram_basis(centred_gram(Y), rtol)
        return svcca_from_bases(bx, by, keep, n)
    return svcca_from_pair(pair_from_data(X, Y, higher=False), keep, rtol)

