"""Centered kernel alignment (Kornblith et al. 2019): linear, debiased, RBF, minibatch.

Definitions follow Kornblith's reference code (google-research
``representation_similarity``): linear CKA = ||Xc^T Yc||_F^2 / (||Xc^T Xc||_F
||Yc^T Yc||_F); the debiased variant replaces every HSIC by the unbiased
estimator of Song et al. (it can be negative); RBF uses the bandwidth
``sigma * sqrt(median squared distance)``. Data are centred in float64 before
any product: no epsilon, so the value does not depend on the data's scale.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from ._inputs import as_matrix, as_tensor, check_finite, check_pair
from .conv import DEFAULT_REDUCE, prepare_pair, reduce_pair
from .gram import center, centred_gram, hsic_terms, sq_median, ucenter
from .joint import pair_from_data
from .result import Result
from .stats import Pair

__all__ = [
    "convention",
    "from_kernels",
    "linear_cka",
    "linear_from_pair",
    "minibatch_cka",
    "rbf_cka",
    "rbf_cka_grid",
]

_BLOCK = 1024  # kernel rows per block in rbf_cka: memory O(block * n)


def convention(metric: str, sigma: float | None = None) -> str:
    return {
        "linear_cka": "linear CKA (Kornblith et al. 2019): ||Xc^T Yc||^2 / (||Xc^T Xc|| "
                      "||Yc^T Yc||), biased HSIC, centred, float64",
        "debiased_cka": "debiased linear CKA: unbiased HSIC (Song et al. 2012) in numerator and "
                        "denominators (Kornblith's debiased=True); can be negative",
        "rbf_cka": f"RBF CKA: Gaussian kernel, bandwidth sigma={sigma} x median pairwise "
                   "distance (median over all n^2 squared distances, Kornblith's gram_rbf)",
        "minibatch_cka": "minibatch CKA (Nguyen et al. 2021): sum_b HSIC_1(K_b, L_b) / "
                         "sqrt(sum_b HSIC_1(K_b, K_b) sum_b HSIC_1(L_b, L_b)), linear kernel",
    }[metric]


def _debiased(xty: float, rr: float, sx: float, sy: float, n: int) -> float:
    """Kornblith's ``_debiased_dot_product_similarity_helper`` (= n(n-3) HSIC_1)."""
    return xty - n / (n - 2.0) * rr + sx * sy / ((n - 1.0) * (n - 2.0))


def _ratio(metric, num, nx2, ny2, n, sigma=None) -> Result:
    conv = convention(metric, sigma)
    if not (nx2 > 0 and ny2 > 0):
        side = "x" if not nx2 > 0 else "y"
        why = ("has no variance (every neuron constant)" if metric != "debiased_cka"
               else "has a non-positive unbiased HSIC with itself (too few datapoints or no "
                    "variance)")
        return Result(metric, float("nan"), conv, n=n, reason=f"{side} {why}: undefined")
    return Result(metric, num / math.sqrt(nx2 * ny2), conv, n=n)


def linear_from_pair(p: Pair, debiased: bool = False) -> Result:
    """Linear CKA from feature-space pair statistics (needs the higher moments if debiased)."""
    n = p.n
    xty = float(torch.linalg.matrix_norm(p.M) ** 2)
    xx = float(torch.linalg.matrix_norm(p.x.S) ** 2)
    yy = float(torch.linalg.matrix_norm(p.y.S) ** 2)
    if not debiased:
        return _ratio("linear_cka", xty, xx, yy, n)
    _need_n(n)
    qx, qy = p.x.Q, p.y.Q
    return _ratio("debiased_cka", _debiased(xty, p.G, qx, qy, n),
                  _debiased(xx, p.x.H, qx, qx, n), _debiased(yy, p.y.H, qy, qy, n), n)


def from_kernels(metric: str, A: torch.Tensor, na: float, B: torch.Tensor, nb: float,
                 sigma: float | None = None) -> Result:
    """CKA from two centred (U-centred for debiased CKA) kernels and their squared norms."""
    return _ratio(metric, float((A * B).sum()), na, nb, A.shape[0], sigma)


def linear_from_grams(Kx: torch.Tensor, Ky: torch.Tensor, debiased: bool = False) -> Result:
    """Linear CKA from two centred Gram matrices Xc Xc^T, Yc Yc^T."""
    if debiased:
        _need_n(Kx.shape[0])
        a, b = ucenter(Kx), ucenter(Ky)
    else:
        a, b = center(Kx), center(Ky)
    return from_kernels("debiased_cka" if debiased else "linear_cka", a, float((a * a).sum()),
                        b, float((b * b).sum()))


def _need_n(n: int) -> None:
    if n < 4:
        raise ValueError(f"the debiased (unbiased HSIC) estimator needs n >= 4 datapoints; got {n}")


def linear_cka(x, y, debiased: bool = False, reduce: str | None = None) -> Result:
    """Linear CKA between two representations (rows = the same datapoints).

    Parameters
    ----------
    x, y : array or Tensor, (n, d_x), (n, d_y), or conv (N, C, H, W)
    debiased : bool
        Use the unbiased HSIC estimator (Kornblith's ``debiased=True``).
    reduce : str, optional
        Conv reduction; default "flatten" (every unit a neuron). The Gram (n x n)
        form is used automatically when it is cheaper (features >> datapoints).

    Examples
    --------
    >>> import numpy as np
    >>> from cnnlens.similarity import linear_cka
    >>> x = np.random.default_rng(0).normal(size=(200, 10))
    >>> round(linear_cka(x, 2 * x).score, 12)
    1.0
    """
    X, Y = prepare_pair(x, y, reduce, "cka", convert=False)
    n, dx, dy = X.shape[0], X.shape[1], Y.shape[1]
    if n * (dx + dy) < dx * dx + dy * dy + dx * dy:   # Gram form is cheaper
        return linear_from_grams(centred_gram(X), centred_gram(Y), debiased)
    return linear_from_pair(pair_from_data(X, Y, higher=debiased), debiased)


def rbf_cka(x, y, sigma: float = 0.8, debiased: bool = False,
            reduce: str | None = None) -> Result:
    """CKA with Gaussian kernels of bandwidth ``sigma`` times the median distance.

    ``sigma`` is Kornblith's ``threshold``: K = exp(-D^2 / (2 sigma^2 median(D^2))),
    the median taken over all n^2 squared distances (zero diagonal included).
    Kernels are built in row blocks, so memory is O(n^2 / 2) for the median plus
    O(block * n), never several n x n matrices. See :func:`rbf_cka_grid` to get
    several bandwidths (biased and debiased) from one pass.
    """
    return rbf_cka_grid(x, y, (sigma,), reduce, debiased=(debiased,))[sigma, debiased]


def rbf_cka_grid(x, y, sigmas=(0.5, 1.0), reduce: str | None = None,
                 debiased=(False, True)) -> dict[tuple[float, bool], Result]:
    """RBF CKA for every (sigma, debiased) combination from one pass over the kernels."""
    sigmas = tuple(float(s) for s in sigmas)
    if not sigmas or not all(s > 0 for s in sigmas):
        raise ValueError(f"sigma must be > 0 (a fraction of the median distance); got {sigmas}")
    X, Y = prepare_pair(x, y, reduce, "cka")
    n = X.shape[0]
    if any(debiased):
        _need_n(n)
    X, Y = X - X.mean(0), Y - Y.mean(0)
    nx, ny = (X * X).sum(1), (Y * Y).sum(1)
    meds = []
    for Z, nz, name in ((X, nx, "x"), (Y, ny, "y")):
        meds.append(sq_median(_upper_sq_distances(Z, nz), n))
        if not meds[-1] > 0:
            return {(s, d): Result(
                "rbf_cka", float("nan"), convention("rbf_cka", s), n=n,
                reason=f"the median squared distance of {name} is 0 (most datapoints coincide): "
                       "the RBF bandwidth is undefined") for s in sigmas for d in debiased}
    acc = {s: [0.0, 0.0, 0.0, torch.zeros(n, dtype=torch.float64),
               torch.zeros(n, dtype=torch.float64)] for s in sigmas}
    # Kernels are symmetric: blocks of rows i0:i1 against columns i0:n cover the upper
    # triangle once; off-diagonal entries count twice in the sums and in the row sums.
    kbuf = [torch.empty(min(n, _BLOCK) * n, dtype=torch.float64) for _ in range(2)]
    ones = torch.ones(n, dtype=torch.float64)  # exp(0): the diagonal is exactly 1
    for (i0, i1, DX), (_, _, DY) in zip(_upper_blocks(X, nx), _upper_blocks(Y, ny), strict=True):
        b = i1 - i0
        for s in sigmas:
            a = acc[s]
            K = torch.mul(DX, -1.0 / (2 * s * s * meds[0]), out=kbuf[0][:DX.numel()].view_as(DX))
            L = torch.mul(DY, -1.0 / (2 * s * s * meds[1]), out=kbuf[1][:DY.numel()].view_as(DY))
            K.exp_(), L.exp_()
            for k, (A, B) in enumerate(((K, L), (K, K), (L, L))):
                # 2 x (whole block row) - (diagonal square): off-diagonal entries count twice
                a[k] += 2 * float(torch.dot(A.view(-1), B.view(-1))) - float(
                    (A[:, :b] * B[:, :b]).sum())
            for M, r in ((K, a[3]), (L, a[4])):   # row sums as GEMVs (strided sums are slow)
                r[i0:i1] += torch.mv(M, ones[: M.shape[1]])
                r[i1:] += torch.mv(M[:, b:].mT, ones[:b])
    out = {}
    for s in sigmas:
        skl, skk, sll, rk, rl = acc[s]
        for d in debiased:
            num = hsic_terms(skl, rk, rl, ones, ones, d)
            res = _ratio("linear_cka", num, hsic_terms(skk, rk, rk, ones, ones, d),
                         hsic_terms(sll, rl, rl, ones, ones, d), n)
            tag = " (debiased: U-centred kernels)" if d else ""
            out[s, d] = Result("rbf_cka", res.score, convention("rbf_cka", s) + tag, n=n,
                               reason=res.reason)
    return out


def _upper_blocks(Z, nz):
    """(i0, i1, D2[i0:i1, i0:]) blocks of the squared-distance matrix, zero diagonal.

    The block is a view of one reused buffer (valid until the next step): fresh
    80 MB allocations per block cost more in page faults than the arithmetic.
    """
    n = Z.shape[0]
    buf = torch.empty(min(n, _BLOCK) * n, dtype=torch.float64)
    for i0 in range(0, n, _BLOCK):
        i1 = min(n, i0 + _BLOCK)
        D2 = buf[:(i1 - i0) * (n - i0)].view(i1 - i0, n - i0)
        torch.add(nz[i0:i1, None], nz[None, i0:], out=D2)
        D2.addmm_(Z[i0:i1], Z[i0:].mT, alpha=-2.0)
        D2.diagonal().zero_()
        yield i0, i1, D2


def _upper_sq_distances(Z, nz) -> torch.Tensor:
    """The n(n-1)/2 strictly-upper squared distances (in no particular order)."""
    n = Z.shape[0]
    out = torch.empty(n * (n - 1) // 2, dtype=torch.float64)
    pos = 0
    for i0, i1, D2 in _upper_blocks(Z, nz):
        b = i1 - i0
        rect = out[pos:pos + b * (n - i1)].view(b, n - i1)
        rect.copy_(D2[:, b:])
        pos += rect.numel()
        iu = torch.triu_indices(b, b, 1)
        out[pos:pos + iu.shape[1]] = D2[iu[0], iu[1]]
        pos += iu.shape[1]
    return out


def _hsic1(X: torch.Tensor, Y: torch.Tensor) -> tuple[float, float, float]:
    """Unbiased HSIC_1 of a batch (linear kernel) for (x, y), (x, x), (y, y).

    HSIC_1 is invariant to centring the features, so the batch is centred first
    (raw Grams with offsets such as 1e4 lose ~8 digits, cf. README known faults).
    """
    b, dx, dy = X.shape[0], X.shape[1], Y.shape[1]
    Ex, Ey = X - X.mean(0), Y - Y.mean(0)
    qx, qy = (Ex * Ex).sum(1), (Ey * Ey).sum(1)
    if b * (dx + dy) < dx * dx + dy * dy + dx * dy:
        Kx, Ky = Ex @ Ex.mT, Ey @ Ey.mT
        xy, xx, yy = float((Kx * Ky).sum()), float((Kx * Kx).sum()), float((Ky * Ky).sum())
    else:
        xy = float(torch.linalg.matrix_norm(Ex.mT @ Ey) ** 2)
        xx = float(torch.linalg.matrix_norm(Ex.mT @ Ex) ** 2)
        yy = float(torch.linalg.matrix_norm(Ey.mT @ Ey) ** 2)
    sx, sy, f = float(qx.sum()), float(qy.sum()), b * (b - 3.0)
    return (_debiased(xy, float(qx @ qy), sx, sy, b) / f, _debiased(xx, float(qx @ qx), sx, sx, b)
            / f, _debiased(yy, float(qy @ qy), sy, sy, b) / f)


def _batches(x, y, batch_size, reduce):
    if batch_size is not None:
        X, Y = prepare_pair(x, y, reduce, "cka")
        if batch_size < 4:
            raise ValueError(f"batch_size must be >= 4 for the unbiased HSIC; got {batch_size}")
        for i in range(0, X.shape[0], batch_size):
            yield X[i:i + batch_size], Y[i:i + batch_size]
        return
    if isinstance(x, (torch.Tensor, np.ndarray)) or not isinstance(x, Iterable):
        raise TypeError("minibatch_cka takes two iterables of batches, or two arrays and "
                        "batch_size=")
    for k, (bx, by) in enumerate(zip(x, y, strict=True)):
        tx, ty = as_tensor(bx, f"x batch {k}"), as_tensor(by, f"y batch {k}")
        check_finite(tx, f"x batch {k}")
        check_finite(ty, f"y batch {k}")
        if tx.ndim == 4 or ty.ndim == 4:
            tx, ty = reduce_pair(tx, ty, reduce or DEFAULT_REDUCE["pair"]["cka"])
        X, Y = as_matrix(tx, f"x batch {k}"), as_matrix(ty, f"y batch {k}")
        check_pair(X, Y)
        yield X, Y


def minibatch_cka(x, y, batch_size: int | None = None, reduce: str | None = None) -> Result:
    """Minibatch linear CKA (Nguyen et al. 2021), for any number of datapoints.

    Parameters
    ----------
    x, y : iterables of batches (arrays/tensors with the same rows), or two arrays
        together with ``batch_size`` (contiguous rows, stored order, last batch kept).
    batch_size : int, optional
    reduce : str, optional
        Conv reduction (default "flatten").

    Not equal to full-data CKA, and it depends on how the data are batched:
    shuffle before batching. Each batch needs >= 4 rows.
    """
    hxy = hxx = hyy = 0.0
    n = batches = 0
    for X, Y in _batches(x, y, batch_size, reduce):
        if X.shape[0] < 4:
            raise ValueError(f"batch {batches} has {X.shape[0]} rows; the unbiased HSIC needs "
                             ">= 4 (drop or merge the last batch)")
        a, b, c = _hsic1(X, Y)
        hxy, hxx, hyy = hxy + a, hxx + b, hyy + c
        n, batches = n + X.shape[0], batches + 1
    if batches == 0:
        raise ValueError("minibatch_cka got no batches")
    res = _ratio("linear_cka", hxy, hxx, hyy, n)
    return Result("minibatch_cka", res.score, convention("minibatch_cka") +
                  f"; {batches} batches", n=n, reason=res.reason)
