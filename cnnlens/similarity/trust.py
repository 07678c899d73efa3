"""How far a cell can be trusted: permutation chance, jackknife replicates, warnings.

Everything here is computed after the pass from what the engine already holds
(each layer's centred n x n kernel and activations in the "kept" form, its
moments in the streamed form): the models never run again.

**Errors**: kept-form cells carry a delete-one-group jackknife error over
groups of images (:mod:`.jackknife`); :func:`jackknife` gives a cell's replicates.

**Chance** (permutation null: the score when model b's images are shuffled
against model a's). For the biased CKAs (linear, RBF) the mean over all n!
permutations is exact: for centred kernels A, B (rows summing to zero)
``E<A, P B P^T> = tr A tr B / (n - 1)``, so chance = ``sqrt(r_A r_B) / (n - 1)``
with ``r = (tr A)^2 / |A|_F^2`` a layer's effective dimension on these images.
When both layers' effective dimensions approach n, chance approaches 1 whatever
the models. Debiased CKA: exactly 0 (U-centred kernels have zero diagonals and
zero row sums). The CCA family: the mean of ``PERMUTATIONS`` seeded shuffles.
:func:`null` gives the shuffled scores themselves (also for CKA) to judge a cell by.

>>> import numpy as np, torch
>>> from cnnlens.similarity.gram import center
>>> from cnnlens.similarity.trust import cka_chance
>>> x = torch.from_numpy(np.random.default_rng(0).normal(size=(50, 400)))
>>> A = center(x @ x.mT)            # a wide layer on few images: chance near 1
>>> round(cka_chance(A, A), 2)
0.89
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .jackknife import JACKKNIFE_GROUPS, replicates
from .result import layer_index

__all__ = ["JACKKNIFE_GROUPS", "PERMUTATIONS", "chance", "cka_chance", "jackknife", "null",
           "p_value", "sampling_warnings"]

PERMUTATIONS = 20       # shuffles per cell for the sampled permutation null
SEED = 0                # the shuffles are fixed: the same cell gives the same null
_KIND = {"linear_cka": "c", "debiased_cka": "u", "rbf_cka": "r"}
#: chance level above which a warning says the layers are too wide for the images
HIGH_CHANCE = 0.5


def _kept(res, metric: str, i: int, j: int):
    """(entry a, entry b, group) when cell (i, j) of ``metric`` is exact from collected
    statistics (kept or streamed), else None."""
    ea, eb, g = res.cell_entries(metric, i, j)
    return (ea, eb, g) if g is not None and metric in g.exact else None


def jackknife(res, metric: str, i, j) -> np.ndarray | None:
    """Delete-one-group replicates of a defined kept-form cell (None for other cells);
    see :mod:`.jackknife`."""
    i, j = layer_index(res.layers_a, i), layer_index(res.layers_b, j)
    if not res.result(metric, i, j).defined:
        return None
    cell = _kept(res, metric, i, j)
    if cell is None or cell[2].mode != "memory":
        return None
    return replicates(res, metric, cell[0], cell[1])[0]


def cka_chance(A: torch.Tensor, B: torch.Tensor, n: int | None = None, rows: int = 1) -> float:
    """Exact mean of <A, P B P^T> / (|A| |B|) over all shuffles P of the images.

    ``A``, ``B``: centred n x n kernels with ``rows`` datapoints per image
    (contiguous), shuffled as whole images. With D = the sum of the N diagonal
    (image) blocks and T = the sum of all blocks, the mean is
    ``<D_A, D_B> / N + <T_A - D_A, T_B - D_B> / (N (N - 1))``; with one row per
    image, ``tr A tr B / (n - 1)``. Also from feature scatters ``S = Xc^T Xc``
    (same trace and norm as ``Xc Xc^T``) when ``n`` is given (one row per image).
    """
    den = float(torch.linalg.vector_norm(A) * torch.linalg.vector_norm(B))
    if not den > 0:
        return float("nan")
    if n is not None or rows == 1:
        n = A.shape[0] if n is None else n
        return float(A.diagonal().sum() * B.diagonal().sum()) / ((n - 1) * den)
    N = A.shape[0] // rows

    def blocks(K):
        K4 = K.view(N, rows, N, rows)
        D = K4.diagonal(dim1=0, dim2=2).sum(-1)  # (rows, rows)
        return D, K4.sum((0, 2)) - D
    (Da, Oa), (Db, Ob) = blocks(A), blocks(B)
    return (float((Da * Db).sum()) / N + float((Oa * Ob).sum()) / (N * (N - 1))) / den


def _perms(n_images: int, rows: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(SEED)
    out = []
    for _ in range(PERMUTATIONS):
        p = torch.randperm(n_images, generator=g)
        out.append((p[:, None] * rows + torch.arange(rows)).reshape(-1))
    return out


def null(res, metric: str, i, j) -> np.ndarray:
    """``PERMUTATIONS`` scores of cell (i, j) with model b's images shuffled (seeded).

    Empty where the cell is undefined or not in the kept form (then only the exact
    closed-form chance of linear CKA from moments is available, see :func:`chance`).
    """
    i, j = layer_index(res.layers_a, i), layer_index(res.layers_b, j)
    def make():
        cell = _kept(res, metric, i, j) if res.result(metric, i, j).defined else None
        if cell is None or cell[2].mode != "memory":
            return np.zeros(0)
        ea, eb, _ = cell
        score = _shuffler(res, metric, ea, eb)
        return np.array([score(p) for p in _perms(ea.data.shape[0] // ea.rows, ea.rows)])
    return res.work.get(("null", metric, i, j), make).copy()


def _shuffler(res, metric: str, ea, eb):
    """``p -> score`` of (ea, eb) with eb's rows reordered by ``p`` (images kept whole)."""
    from .cca import cca_from_pair, pwcca_from_pair
    from .stats import Pair

    if metric in _KIND:
        (A, na), (B, nb) = res.work.centred(ea, _KIND[metric]), res.work.centred(eb, _KIND[metric])
        return lambda p: float((A * B[p][:, p]).sum()) / math.sqrt(na * nb)
    if metric == "svcca":  # canonical correlations of the kept subspaces' orthonormal scores
        r = res.result(metric, ea.index, eb.index)
        Za, Zb = _scores(res, ea, r.k_x), _scores(res, eb, r.k_y)
        return lambda p: float(torch.linalg.svdvals(Za.mT @ Zb[p]).clamp(max=1.0).mean())
    # CCA, PWCCA: each side's whitening is unchanged by a shuffle; only Xc^T Yc changes
    sa, sb = res.work.side(ea), res.work.side(eb)
    Ea = ea.data.to(torch.float64) - sa.mean
    Eb = eb.data.to(torch.float64) - sb.mean
    wa, wb = res.work.whitener(ea, sa), res.work.whitener(eb, sb)

    def score(p):
        pair = Pair(sa, sb, Ea.mT @ Eb[p])
        r = cca_from_pair(pair, res.rtol, wa, wb) if metric == "cca" else \
            pwcca_from_pair(pair, res.side, res.rtol, wa, wb)
        return r.score
    return score


def _scores(res, e, k: int) -> torch.Tensor:
    """(n, k) orthonormal scores of a layer's top-k principal directions."""
    return res.work.gram_basis(e).vecs[:, :k]


def chance(res, metric: str, i=None, j=None):
    """Chance level of a cell (float) or of every cell ((La, Lb) array); NaN where unknown.

    The CKA family: the exact mean over shuffles of the images (:func:`cka_chance`
    on the kept kernels, U-centred for debiased CKA, whose chance is then 0 with one
    datapoint per image; from streamed moments: linear CKA, and debiased = 0, with
    one datapoint per image); the CCA family: the mean of :func:`null`.
    """
    if i is None and j is None:
        return np.array([[chance(res, metric, a, b) for b in range(len(res.layers_b))]
                         for a in range(len(res.layers_a))])
    i, j = layer_index(res.layers_a, i), layer_index(res.layers_b, j)
    if not res.result(metric, i, j).defined:
        return float("nan")
    cell = _kept(res, metric, i, j)
    if cell is None:
        return float("nan")
    ea, eb, g = cell
    if metric in _KIND and g.mode == "memory":  # U-centred kernels for debiased CKA
        return cka_chance(res.work.centred(ea, _KIND[metric])[0], res.work.centred(eb, _KIND[metric])[0],
                          rows=ea.rows)
    # moments: the closed forms over shuffles of datapoints, which are the images only when
    # there is one per image (with several, positions, each image's blocks are needed)
    if g.mode == "stream" and ea.rows == 1 and metric == "debiased_cka":
        return 0.0
    if g.mode == "stream" and ea.rows == 1 and metric == "linear_cka":  # tr A = tr S, |A| = |S|
        p = g.joint.pair(ea.slot, eb.slot)
        return cka_chance(p.x.S, p.y.S, p.n) if p.n > 1 else float("nan")
    values = null(res, metric, i, j)
    return float(values.mean()) if len(values) else float("nan")


def p_value(res, metric: str, i=None, j=None):
    """Permutation p-value of a cell (float) or of every cell ((La, Lb) array).

    ``(1 + #{shuffled scores >= score}) / (1 + PERMUTATIONS)``: with 20 shuffles the
    smallest is 1/21 < 0.05, so ``p < 0.05`` reads "above chance". NaN where
    :func:`null` is empty (no kept form).
    """
    if i is None and j is None:
        return np.array([[p_value(res, metric, a, b) for b in range(len(res.layers_b))]
                         for a in range(len(res.layers_a))])
    values = null(res, metric, i, j)
    if not len(values):
        return float("nan")
    score = res.result(metric, i, j).score
    return float((1 + np.sum(values >= score)) / (1 + len(values)))


def sampling_warnings(res) -> list[str]:
    """Plain sentences on what makes this result's scores hard to read.

    The CCA family: a layer with at least as many features as datapoints (its
    canonical correlations are 1 whatever the data). Biased CKA: cells whose
    chance level (exact permutation mean) exceeds ``HIGH_CHANCE``; nominal width
    says little there (a flattened conv layer is wide but has few directions).
    Cells from streamed moments: no error bars.
    """
    from .plan import FAMILY

    out, n = [], res.n
    if any(FAMILY[m] == "cca" for m in res.metrics):
        how = res.reduce["cca"]
        for side, names in (("a", res.layers_a), ("b", res.layers_b)):
            wide = [e for k in range(len(names))
                    if (e := res.collector.entries.get((side, k, how))) is not None
                    and n * e.rows <= e.d]
            if wide:
                big = max(wide, key=lambda e: e.d)
                out.append(
                    f"Under-sampled: {n} images ({n * big.rows} datapoints with reduce={how!r}) "
                    f"are no more than the width of {len(wide)} of {len(names)} layers of "
                    f"model_{side} (widest: {big.layer!r}, {big.d} features): there canonical "
                    "correlations are 1 whatever the models (CCA, PWCCA undefined; SVCCA near 1). "
                    "Use more images than features.")
    for m in ("linear_cka", "rbf_cka"):
        if m in res.metrics:
            c = chance(res, m)
            high = np.isfinite(c) & (c > HIGH_CHANCE)
            if high.any():
                out.append(
                    f"Under-sampled: the chance level of {m} (its score with the images "
                    f"shuffled) is above {HIGH_CHANCE} in {int(high.sum())} of {c.size} cells "
                    f"(up to {np.nanmax(c):.2f}): with {n} images these layers are too wide for "
                    "scores near 1 to mean much. Use more images and read scores against "
                    ".chance(metric).")
    streamed = sorted(m for g in res.collector.groups.values() if g.mode == "stream"
                      for m in g.exact & set(res.metrics))
    if streamed:
        out.append(
            f"No error bars for {', '.join(dict.fromkeys(streamed))} cells computed from "
            "streamed moments (the form for many images with narrow layers keeps nothing per "
            "image); fewer images or a larger memory= keeps activations and gives each cell "
            "a jackknife error.")
    return out
