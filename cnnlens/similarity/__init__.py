"""Layer similarity: CCA, SVCCA, PWCCA and CKA on (n_samples, n_features) activations.

Pure math (numpy or torch in, float64 inside, no hooks, no widgets), plus the
all-pairs engine that streams data through two models once.

>>> import numpy as np
>>> from cnnlens import similarity as sim
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(2000, 20))
>>> y = x @ rng.normal(size=(20, 30)) + 0.1 * rng.normal(size=(2000, 30))
>>> r = sim.svcca(x, y, keep=0.99)
>>> r.score > 0.9, r.k_x
(True, 20)
>>> round(sim.linear_cka(x, x).score, 12), sim.pwcca(x, y, side="x").weights.shape
(1.0, (20,))

Conventions (DESIGN.md section 5) are stated on every result (``.convention``).
Where cnnlens deliberately differs from the original code:

- CCA whitens each side through its correlation matrix, rank-revealingly
  (neurons with std <= 1e-12 |mean| dropped, eigen-directions below 1e-10 of
  the largest dropped, ``k_x``/``k_y`` reported) instead of google/svcca's
  epsilon, which is relative to the largest variance and both drops and
  regularises: no NaN or LinAlgError on dead or dependent neurons, and exact
  (1e-8) where the original is off by 7e-6. ``score`` is the mean of all
  coefficients; google's 0.98-mass mean is ``Result.mean_thr()``.
- SVCCA's float ``keep`` is a fraction of the variance (squared singular
  values, Raghu et al.), not of the sum of singular values.
- PWCCA uses google's weights exactly (computed from moments; the sign each
  direction gets from LAPACK matters and is reproduced), on an explicit
  ``side``; the original uses the narrower side and crashes on the other.
- The DFT method runs in complex128 (the original: complex64) and resizes each
  axis separately.
- Minibatch CKA centres every batch and has no epsilon (cka-pytorch's float32,
  uncentred Grams are off by up to 7e-2 on resnet activations).
"""
from .baseline import random_spectrum
from .budget import BudgetError, Plan
from .canonical import CanonicalMaps, canonical_maps
from .cca import cca, pwcca, svcca
from .cka import linear_cka, minibatch_cka, rbf_cka
from .conv import REDUCTIONS, fourier_cca, reduce_conv
from .engine import Cancelled, similarity_matrix
from .gap import GapTable
from .gap_pass import gap_table
from .matrix import METRICS, MatrixResult
from .moments import Moments
from .result import DFTResult, Result
from .saved import SavedResult, load_result

__all__ = [
    "METRICS",
    "REDUCTIONS",
    "BudgetError",
    "Cancelled",
    "CanonicalMaps",
    "DFTResult",
    "GapTable",
    "MatrixResult",
    "Moments",
    "Plan",
    "Result",
    "SavedResult",
    "canonical_maps",
    "cca",
    "fourier_cca",
    "gap_table",
    "linear_cka",
    "load_result",
    "minibatch_cka",
    "pwcca",
    "random_spectrum",
    "rbf_cka",
    "reduce_conv",
    "similarity_matrix",
    "svcca",
]
