"""Which canonical directions a Compare's maps view shows, and what it says about them."""

from __future__ import annotations

import dataclasses

from ..similarity.canonical import CanonicalMaps

__all__ = ["COST", "COST_IN_PASS", "K_MAX", "RHO_NOTE", "cca_metric", "first_k"]

K_MAX = 8  # directions computed per pair; asking for more recomputes
COST = ("Directions: one extra pass over the data for this pair (CCA over spatial "
        "positions); other images reuse them.")
COST_IN_PASS = ("Directions: from the statistics the matrix pass kept (CCA over spatial "
                "positions); no extra pass over the data.")
RHO_NOTE = ("These rho come from CCA with every spatial position a datapoint, the spectrum's "
            "from the heatmap's reduction (by default one datapoint per image): they differ.")


def cca_metric(metric: str) -> str:
    """The CCA-family metric whose directions map ``metric``'s pair (CKA has none: SVCCA's)."""
    return metric if metric in ("svcca", "pwcca", "cca") else "svcca"


def first_k(cm: CanonicalMaps, k: int) -> CanonicalMaps:
    """The first ``k`` directions of ``cm`` (all of them if it has fewer)."""
    if k >= cm.k:
        return cm
    return dataclasses.replace(cm, rho=cm.rho[:k], maps_a=cm.maps_a[:k], maps_b=cm.maps_b[:k],
                               corr=cm.corr[:k], dirs_a=cm.dirs_a[:, :k], dirs_b=cm.dirs_b[:, :k])
