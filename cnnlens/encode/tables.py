"""Compare's tables: spectra and metric matrices as one float32 buffer each.

>>> import numpy as np
>>> buf, shape = pack_spectra({(0, 1): np.array([0.9, 0.5])}, 1, 2, k_max=4)
>>> shape, len(buf)
([1, 2, 2], 16)
"""

from __future__ import annotations

import numpy as np

__all__ = ["pack_matrices", "pack_spectra"]


def pack_spectra(spectra: dict, la: int, lb: int, k_max: int = 256) -> tuple[bytes, list[int]]:
    """Pack ``{(i, j): vector}`` into one NaN-padded float32 buffer (La, Lb, K).

    K is the longest vector (at most ``k_max``; longer ones keep their first
    ``k_max`` values, the largest correlations). Pairs without a vector are all NaN.
    """
    k = min(max((len(np.ravel(v)) for v in spectra.values()), default=0), k_max)
    out = np.full((la, lb, max(k, 1)), np.nan, dtype=np.float32)
    for (i, j), v in spectra.items():
        v = np.asarray(v, dtype=np.float32).ravel()[:k]
        out[i, j, : len(v)] = v
    return out.tobytes(), [la, lb, max(k, 1)]


def pack_matrices(matrices: dict) -> tuple[bytes, list[str]]:
    """Stack ``{metric: (La, Lb) array}`` into one float32 buffer (M, La, Lb) + the metric order."""
    names = list(matrices)
    if not names:
        return b"", []
    stack = np.stack([np.asarray(matrices[m], dtype=np.float32) for m in names])
    return stack.tobytes(), names
