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

Conventions (DESIGN.md section 5) are stated on every result (``.convention``);
deviations from the original implementations are listed in ``docs`` of each
function and in the package report.
"""
from .baseline import random_spectrum
from .cca import cca, pwcca, svcca
from .cka import linear_cka, minibatch_cka, rbf_cka
from .conv import REDUCTIONS, fourier_cca, reduce_conv
from .engine import Cancelled, similarity_matrix
from .matrix import METRICS, MatrixResult
from .moments import Moments
from .result import DFTResult, Result

__all__ = [
    "METRICS",
    "REDUCTIONS",
    "Cancelled",
    "DFTResult",
    "MatrixResult",
    "Moments",
    "Result",
    "cca",
    "fourier_cca",
    "linear_cka",
    "minibatch_cka",
    "pwcca",
    "random_spectrum",
    "rbf_cka",
    "reduce_conv",
    "similarity_matrix",
    "svcca",
]
