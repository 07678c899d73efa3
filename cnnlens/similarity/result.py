"""Result objects returned by every similarity function."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CellReader", "DFTResult", "Result", "layer_index", "threshold_index"]

_EMPTY = np.zeros(0)


def threshold_index(rho: np.ndarray, threshold: float = 0.98) -> int:
    """The original SVCCA code's ``sum_threshold``: smallest i with sum(rho[:i]) >= thr*sum(rho).

    Returns ``len(rho)`` when no such i < len(rho) exists (google/svcca returns None
    there, and ``rho[:None]`` keeps everything).
    """
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be in [0, 1]; got {threshold}")
    rho = np.asarray(rho, dtype=np.float64)
    total = rho.sum()
    if len(rho) == 0 or total <= 0:
        return len(rho)
    partial = np.concatenate([[0.0], np.cumsum(rho)[:-1]])  # sum(rho[:i]) for i < len
    hit = np.flatnonzero(partial / total >= threshold)
    return int(hit[0]) if len(hit) else len(rho)


@dataclass(frozen=True, repr=False)
class Result:
    """One similarity value and what it was computed from.

    Attributes
    ----------
    metric : str
        ``"cca"``, ``"svcca"``, ``"pwcca"``, ``"linear_cka"``, ``"debiased_cka"``,
        ``"rbf_cka"`` or ``"minibatch_cka"``.
    score : float
        The similarity; NaN when undefined (then ``reason`` says why).
    convention : str
        One line saying exactly what was computed (shown in tooltips).
    rho : ndarray
        Canonical correlations, descending (CCA family; empty for CKA).
    k_x, k_y : int or None
        Dimensions used on each side: effective ranks for CCA/PWCCA, kept singular
        directions for SVCCA.
    weights : ndarray or None
        PWCCA weights (sum to 1), aligned with ``rho``.
    n : int
        Datapoints the value is computed over.
    reason : str or None
        Why ``score`` is NaN, or a caveat.
    dropped_x, dropped_y : int
        Constant (dead) neurons removed before CCA.
    se : float
        Standard error of ``score`` when the method provides one (NaN otherwise);
        ``convention`` says how it was obtained.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnlens import similarity as sim
    >>> x = np.random.default_rng(0).normal(size=(500, 8))
    >>> r = sim.cca(x, x @ np.random.default_rng(1).normal(size=(8, 8)))
    >>> round(r.score, 6), r.k_x
    (1.0, 8)
    """

    metric: str
    score: float
    convention: str
    rho: np.ndarray = field(default_factory=lambda: _EMPTY)
    k_x: int | None = None
    k_y: int | None = None
    weights: np.ndarray | None = None
    n: int = 0
    reason: str | None = None
    dropped_x: int = 0
    dropped_y: int = 0
    se: float = float("nan")

    def __float__(self) -> float:
        return float(self.score)

    @property
    def defined(self) -> bool:
        """False when the score is NaN (see ``reason``)."""
        return bool(np.isfinite(self.score))

    def mean_thr(self, threshold: float = 0.98) -> float:
        """Mean of the leading coefficients holding ``threshold`` of the total mass.

        This is what google/svcca's ``get_cca_similarity(...)["mean"]`` reports; the
        trailing ~2% are dropped as noise.
        """
        i = threshold_index(self.rho, threshold)
        return float(np.mean(self.rho[:i])) if i else float("nan")

    def __repr__(self) -> str:
        ks = f", k_x={self.k_x}, k_y={self.k_y}" if self.k_x is not None else ""
        ks += f", se={self.se:.2g}" if np.isfinite(self.se) else ""
        why = f", reason={self.reason!r}" if self.reason else ""
        return f"Result({self.metric}={self.score:.6g}{ks}, n={self.n}{why})"


@dataclass(frozen=True, repr=False)
class DFTResult(Result):
    """CCA per 2-D spatial frequency (Raghu et al. 2017, google/svcca ``dft_ccas``).

    ``coefs`` has shape (H, W, c): the canonical correlations at each frequency
    (zero-padded where a frequency has fewer); ``rho`` is their union sorted
    descending and ``score`` their mean.
    """

    coefs: np.ndarray = field(default_factory=lambda: _EMPTY)
    counts: np.ndarray = field(default_factory=lambda: _EMPTY)

    def loc_mean_thr(self, threshold: float = 0.98) -> np.ndarray:
        """(H, W) array: the thresholded mean (see :meth:`Result.mean_thr`) per frequency."""
        h, w = self.coefs.shape[:2]
        out = np.full((h, w), np.nan)
        for i in range(h):
            for j in range(w):
                rho = self.coefs[i, j, : self.counts[i, j]]
                k = threshold_index(rho, threshold)
                out[i, j] = rho[:k].mean() if k else np.nan
        return out


def layer_index(names: list[str], key) -> int:
    """A layer's position in ``names`` from its name or a (negative) index."""
    if isinstance(key, str):
        if key not in names:
            raise KeyError(f"unknown layer {key!r}; layers are {names}")
        return names.index(key)
    k = int(key)
    if not -len(names) <= k < len(names):
        raise IndexError(f"layer index {k} out of range for {len(names)} layers")
    return k % len(names)


class CellReader:
    """What every all-pairs result reads from its cells (``result(metric, i, j)``):
    shared by the live :class:`~cnnlens.similarity.MatrixResult` and a loaded
    :class:`~cnnlens.similarity.saved.SavedResult`."""

    def result(self, metric: str, i, j) -> Result:  # pragma: no cover - the subclasses'
        raise NotImplementedError

    def reason(self, metric: str, i, j) -> str | None:
        """Why cell (i, j) is NaN, or None when it is defined."""
        r = self.result(metric, i, j)
        return None if r.defined else (r.reason or "undefined")

    def spectrum(self, i, j) -> np.ndarray:
        """Canonical correlations (descending) of the pair: its SVCCA spectrum (``keep``)."""
        return self.result("svcca", i, j).rho.copy()

    def baseline(self, i, j) -> np.ndarray:
        """The mean spectrum of independent random data with the same n and (k_x, k_y)."""
        from .baseline import random_spectrum

        r = self.result("svcca", i, j)
        if not r.defined:
            return np.zeros(0)
        cache = self.__dict__.setdefault("_baselines", {})
        key = (r.n, r.k_x, r.k_y)
        if key not in cache:  # a race computes it twice, never wrongly
            cache[key] = random_spectrum(r.n, r.k_x, r.k_y)
        return cache[key].copy()
