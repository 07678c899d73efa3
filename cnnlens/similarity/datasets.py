"""One matrix per dataset: ``similarity_matrix(..., data={"real": x, "synthetic": y})``.

The study compared its models on both kinds of test images. Each dataset gets its own
pass (its statistics are of its own images); the result reads as the *selected*
dataset's (every ``MatrixResult`` accessor, and ``.reference``, ``.gap_table`` with a
reference model), ``results[name]`` holds each, and setting ``selected`` switches.

>>> import torch
>>> from torch import nn
>>> from cnnlens.similarity import similarity_matrix
>>> _ = torch.manual_seed(0)
>>> net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8))
>>> res = similarity_matrix(net, net, {"noise": torch.rand(20, 1, 8, 8),
...                                    "zeros+noise": 0.1 * torch.rand(20, 1, 8, 8)},
...                         metrics=("linear_cka",))
>>> res.names, res.selected, round(float(res.matrix("linear_cka")[0, 0]), 6)
(['noise', 'zeros+noise'], 'noise', 1.0)
>>> res.selected = "zeros+noise"; res.n
20
"""
from __future__ import annotations

__all__ = ["DatasetResults", "per_dataset"]


class DatasetResults:
    """Results of the same comparison on several datasets; reads as the selected one's.

    Attributes
    ----------
    results : dict
        Dataset name -> ``MatrixResult`` (or ``ReferenceResult``), in the order given.
    names : list of str
    selected : str
        The dataset whose result the accessors read (default: the first); settable.
    """

    def __init__(self, results: dict):
        if not results:
            raise ValueError("no datasets: pass data={'name': images, ...}")
        self.results = dict(results)
        self.names = list(self.results)
        self._selected = self.names[0]

    @property
    def selected(self) -> str:
        return self._selected

    @selected.setter
    def selected(self, name: str) -> None:
        if name not in self.results:
            raise KeyError(f"unknown dataset {name!r}; datasets are {self.names}")
        self._selected = name

    def __getitem__(self, name: str):
        return self.results[name]

    def __iter__(self):
        return iter(self.names)

    def __len__(self):
        return len(self.names)

    def __getattr__(self, name):
        # everything else reads the selected dataset's result (matrix, result, spectrum, ...)
        if name.startswith("_") or name in ("results", "names"):
            raise AttributeError(name)
        return getattr(self.results[self._selected], name)

    def __repr__(self):
        return (f"DatasetResults({', '.join(self.names)}; selected={self._selected!r}: "
                f"{self.results[self._selected]!r})")


def per_dataset(engine, model_a, model_b, data: dict, progress=None, dry_run=False, **options):
    """``engine`` once per dataset of ``data`` (name -> images); see :class:`DatasetResults`.

    ``progress`` gets each pass's reports with ``dataset`` (its name) added.
    """
    if not data:
        raise ValueError("no datasets: pass data={'name': images, ...}")
    out = {}
    for name, images in data.items():
        report = progress
        if callable(progress):
            def report(info, _name=str(name)):
                progress(dict(info, dataset=_name))
        out[str(name)] = engine(model_a, model_b, images, progress=report, dry_run=dry_run,
                                **options)
    return out if dry_run else DatasetResults(out)
