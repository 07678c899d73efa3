"""What a ``cl.Compare(...)`` call asked for, checked and sorted by who needs it.

The engine's options, the panes' options, the names, a finished result to show and
several datasets are all given as keywords of one call; :func:`read_options` checks them
(an unknown keyword names the closest valid one) and hands each part to its user.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from .compare_panes import model_names

__all__ = ["OPTIONS", "CompareOptions", "read_options"]

OPTIONS = ("reduce", "batch_size", "device", "memory", "result", "autostart", "precompute",
           "lens_options", "names", "reference", "maps")
_ENGINE = ("reduce", "batch_size", "device", "memory", "reference")


@dataclass
class CompareOptions:
    """A Compare call's options, each part for the one that uses it."""

    pane_data: object                # the images the panes and the canonical maps show
    datasets: list = field(default_factory=list)
    names: tuple = ("A", "B")
    reference_name: str = "reference"
    layers: tuple = (None, None)
    engine: dict = field(default_factory=dict)
    lens: dict = field(default_factory=dict)
    finished: object = None          # a finished result to show with no pass
    precompute: object = "auto"
    autostart: bool = True
    batch_size: int = 64
    device: object = None

    @property
    def reference(self) -> bool:
        return self.engine.get("reference") is not None


def read_options(model_a, model_b, data, layers_a, layers_b, options: dict) -> CompareOptions:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        valid = ("metric", "layers_a", "layers_b") + OPTIONS
        hints = [f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(u, valid, 1))
                 else repr(u) for u in unknown]
        raise TypeError(f"Compare() got unknown keyword argument(s) {', '.join(hints)}; "
                        f"valid options: {', '.join(valid)}")
    # data={"real": ..., "synthetic": ...}: one matrix per dataset (switched in the
    # widget); the panes and the canonical maps show the first dataset's images
    datasets, pane_data = [], data
    if isinstance(data, dict):
        if not data:
            raise ValueError("data={} holds no dataset: pass data={'name': images, ...}")
        datasets, pane_data = [str(k) for k in data], next(iter(data.values()))
    engine = {k: options[k] for k in _ENGINE if k in options}
    # canonical maps from the matrix pass (no extra pass per pair) when they fit
    engine["maps"] = bool(options.get("maps", "reference" not in engine))
    given = options.get("names")
    third = given is not None and len(given) == 3
    finished = options.get("result")
    if finished is not None:  # its layers, unless the caller chose the same ones
        layers_a = finished.layers_a if layers_a is None else layers_a
        layers_b = finished.layers_b if layers_b is None else layers_b
    lens = dict(options.get("lens_options") or {})
    if "batch_size" in options:
        lens.setdefault("batch_size", options["batch_size"])
    return CompareOptions(
        pane_data=pane_data, datasets=datasets,
        names=model_names(model_a, model_b, tuple(given)[:2] if third else given),
        reference_name=str(given[2]) if third else "reference", layers=(layers_a, layers_b),
        engine=engine, lens=lens, finished=finished,
        precompute=options.get("precompute", "auto"), autostart=options.get("autostart", True),
        batch_size=options.get("batch_size", 64), device=options.get("device"))
