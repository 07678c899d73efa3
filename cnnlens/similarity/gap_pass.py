"""The gap table's pass: A against B and a reference C in one run of the engine.

What the table means and how its intervals are computed: :mod:`cnnlens.similarity.gap`.
This module sits above the engine (it calls :func:`~cnnlens.similarity.similarity_matrix`);
``gap`` sits below it (the engine's reference results build their tables there).
"""
from __future__ import annotations

from .engine import similarity_matrix
from .gap import GapTable, _Both, _example, gap_rows

__all__ = ["gap_table"]


def _layers_of(model, example, names: list[str]) -> tuple[list[str], set]:
    """Layers to compare in ``model``: the names of A it has, plus its default selection
    when some are missing (candidates for the best match)."""
    from cnnlens.probe import layer_tree  # lazy, as in the engine: the dry run runs hooks

    tree = layer_tree(model, example)
    have = [n for n in names if n in tree and tree[n].shape is not None]
    if len(have) == len(names):
        return have, set(have)
    return list(dict.fromkeys([*have, *(x.name for x in tree.select(None))])), set(have)


def gap_table(model_a, model_b, data, reference, metric: str = "linear_cka", layers=None,
              memory="auto", batch_size: int = 64, **options) -> GapTable:
    """How much less similar to A is B than the reference C, layer by layer, with intervals.

    Parameters
    ----------
    model_a : nn.Module
        The model whose layers make the rows (e.g. trained on real data).
    model_b : nn.Module
        The model under question (e.g. trained on synthetic data).
    data : images or batches, or a dict of them
        As for :func:`~cnnlens.similarity.similarity_matrix`; the same images go through
        all three models. A dict ``{"real": ..., "synthetic": ...}`` gives a dict of tables.
    reference : nn.Module
        C: what "the same" looks like (e.g. A's recipe with another seed).
    metric : str
        One of ``METRICS``; the kept form (n <= 1024 images, or wide layers) gives CKA
        metrics jackknife errors, the minibatch estimator its own.
    layers : selector, optional
        Layers of A (default: its leaf conv and linear layers). Each is matched by name
        in B and C, else by the highest score (``match_b``/``match_c`` say which).
    memory, batch_size, **options
        Passed to ``similarity_matrix`` (e.g. ``reduce=``, ``device=``, ``progress=``).

    Returns
    -------
    GapTable
        Rows ``layer, score_b, score_c, gap, low, high, significant`` (+ ``match_b``,
        ``match_c``, ``se`` of the gap, and each score's permutation ``chance_b``,
        ``chance_c``: see :meth:`MatrixResult.chance`); ``.to_pandas()``, ``print()``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from cnnlens.similarity import gap_table
    >>> def net(seed):
    ...     torch.manual_seed(seed)
    ...     return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 5))
    >>> t = gap_table(net(0), net(1), torch.rand(40, 1, 8, 8), reference=net(0))
    >>> [r.layer for r in t], t[1].score_c
    (['0', '3'], 1.0)
    """
    from cnnlens.probe import layer_tree

    if isinstance(data, dict):  # one table per dataset (the study used both kinds of images)
        return {str(k): gap_table(model_a, model_b, v, reference, metric, layers, memory,
                                  batch_size, **options) for k, v in data.items()}
    if reference is model_b:
        raise ValueError("reference must be another model than model_b (e.g. model_a's "
                         "recipe with another seed)")
    example, data = _example(data)
    names = [x.name for x in layer_tree(model_a, example).select(layers)]
    lb, named_b = _layers_of(model_b, example, names)
    lc, named_c = _layers_of(reference, example, names)
    res = similarity_matrix(model_a, _Both(model_b, reference), data, layers_a=names,
                            layers_b=[f"b.{n}" for n in lb] + [f"c.{n}" for n in lc],
                            metrics=(metric,), collect="requested", memory=memory,
                            batch_size=batch_size, **options)
    return gap_rows(res, metric, names, lb, named_b, lc, named_c)
