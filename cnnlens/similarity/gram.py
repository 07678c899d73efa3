"""Sample-space (n x n Gram) form: used when a layer has more features than datapoints.

Centring follows Kornblith et al.'s reference code (``center_gram``): the
biased form is H K H; the unbiased one is the U-centring of Szekely & Rizzo,
whose inner products are n(n-3) times the unbiased HSIC of Song et al.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "center",
    "centred_gram",
    "colsum64",
    "hsic_terms",
    "rbf_kernel",
    "sq_median",
    "ucenter",
]

_CHUNK = 4096  # features converted to float64 at a time: bounds the extra memory


def colsum64(t: torch.Tensor) -> torch.Tensor:
    """Column sums in float64. torch's float32 -> float64 reductions are ~25x slower
    than numpy's buffered ones on CPU (no BLAS involved), so numpy does those."""
    if t.dtype == torch.float32 and t.device.type == "cpu" and t.is_contiguous():
        return torch.from_numpy(np.add.reduce(t.numpy(), axis=0, dtype=np.float64))
    return t.sum(0, dtype=torch.float64)


def centred_gram(X, shift: torch.Tensor | None = None) -> torch.Tensor:
    """H (X - s)(X - s)^T H in float64, for an (n, d) array or a list of row blocks.

    ``X`` may be a list of (b_k, d) parts of any float dtype (the engine's batches,
    never concatenated); ``shift`` s defaults to the exact column mean. Removing
    a shift close to the mean before the product keeps offsets such as 1e4 out of
    the sums (they would cost ~8 digits); H K H then centres exactly. Features are
    converted to float64 ``_CHUNK`` columns at a time into one reused buffer, and
    only the lower block-triangle is multiplied (~56% of the flops of X X^T).
    """
    parts = list(X) if isinstance(X, (list, tuple)) else [X]
    n, d = sum(p.shape[0] for p in parts), parts[0].shape[1]
    if shift is None:
        shift = sum(colsum64(p) for p in parts) / n
    dev = parts[0].device
    # about 32 MiB of float64 per chunk: few rows (wide conv maps) take many columns at once,
    # or the per-chunk overhead of the block products dominates
    chunk = max(_CHUNK, (4 << 20) // max(n, 1))
    K = torch.zeros(n, n, dtype=torch.float64, device=dev)
    buf = torch.empty(n, min(d, chunk), dtype=torch.float64, device=dev)
    shift = shift.to(dev)
    step = -(-n // 8) if n >= 256 else n  # 8 row blocks (36 of 64 products) when it pays
    for c0 in range(0, d, chunk):
        E = buf[:, :min(chunk, d - c0)]
        r0 = 0
        for p in parts:
            E[r0:r0 + p.shape[0]].copy_(p[:, c0:c0 + E.shape[1]])
            r0 += p.shape[0]
        E.sub_(shift[c0:c0 + E.shape[1]])
        for i in range(0, n, step):
            b = min(step, n - i)
            K[i:i + b, :i + b].addmm_(E[i:i + b], E[:i + b].mT)
    K = torch.tril(K) + torch.tril(K, -1).mT
    return center(K)


def center(K: torch.Tensor) -> torch.Tensor:
    """H K H (Kornblith ``center_gram(unbiased=False)``), as a new matrix."""
    means = K.mean(0)
    means = means - means.mean() / 2
    return K - means[:, None] - means[None, :]


def ucenter(K: torch.Tensor) -> torch.Tensor:
    """U-centred Gram (Kornblith ``center_gram(unbiased=True)``), as a new matrix."""
    n = K.shape[0]
    G = K.clone()
    G.fill_diagonal_(0)
    means = G.sum(0) / (n - 2)
    means = means - means.sum() / (2 * (n - 1))
    G -= means[:, None]
    G -= means[None, :]
    G.fill_diagonal_(0)
    return G


def hsic_terms(skl: float, rk: torch.Tensor, rl: torch.Tensor, dk: torch.Tensor,
               dl: torch.Tensor, debiased: bool) -> float:
    """<K, L> after centring, from sum(K * L), row sums rk, rl and diagonals dk, dl.

    Biased: <HKH, HLH>. Debiased: n(n-3) HSIC_1 (Song et al. 2012), which equals
    the inner product of the U-centred matrices. Lets kernels be streamed in row
    blocks without ever holding n x n.
    """
    n = rk.shape[0]
    if not debiased:
        return skl - 2.0 / n * float(rk @ rl) + float(rk.sum() * rl.sum()) / n ** 2
    rk0, rl0 = rk - dk, rl - dl                      # row sums with a zero diagonal
    trace = skl - float(dk @ dl)
    return (trace + float(rk0.sum() * rl0.sum()) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * float(rk0 @ rl0))


def sq_median(upper: torch.Tensor, n: int) -> float:
    """np.median over all n*n entries of a symmetric matrix with zero diagonal.

    ``upper`` holds the n(n-1)/2 strictly-upper entries (any order; it is
    partially sorted in place); every one of them appears twice and the diagonal
    adds n zeros (Kornblith's ``gram_rbf`` takes the median over the full
    matrix, zeros included).
    """
    neg = int((upper < 0).sum())  # rounding can make a few squared distances negative
    total = n * n

    def index(k: int) -> int | None:  # 0-based k-th of the full multiset -> index into upper
        if k < 2 * neg:
            return k // 2
        if k < 2 * neg + n:
            return None  # a diagonal zero
        return neg + (k - 2 * neg - n) // 2

    ks = [total // 2] if total % 2 else [total // 2 - 1, total // 2]
    js = [index(k) for k in ks]
    wanted = sorted({j for j in js if j is not None})
    vals = {}
    if wanted:
        # In-place selection on our own scratch copy (np.partition: no BLAS, no extra copy;
        # torch.kthvalue copies and needs one call per order statistic).
        arr = upper.numpy()
        arr.partition(wanted)
        vals = {j: float(arr[j]) for j in wanted}
    out = [0.0 if j is None else vals[j] for j in js]
    return sum(out) / len(out)


def sq_distances(Kc: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances from a Gram matrix, with an exactly zero diagonal."""
    diag = Kc.diagonal()
    D2 = diag[:, None] + diag[None, :] - 2 * Kc
    D2.fill_diagonal_(0)
    return D2


def rbf_kernel(Kc: torch.Tensor, sigma: float) -> tuple[torch.Tensor | None, str | None]:
    """Kornblith's ``gram_rbf``: exp(-D2 / (2 sigma^2 median(D2))), from a Gram matrix."""
    n = Kc.shape[0]
    D2 = sq_distances(Kc)
    iu = torch.triu_indices(n, n, 1)
    med = sq_median(D2[iu[0], iu[1]].contiguous(), n)
    if not med > 0:
        return None, ("the median squared distance is 0 (most datapoints coincide): the RBF "
                      "bandwidth is undefined")
    D2.mul_(-1.0 / (2 * sigma ** 2 * med)).exp_()
    return D2, None

