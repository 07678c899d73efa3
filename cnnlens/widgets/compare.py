"""Compare: two models layer by layer (heatmap + two linked Lens panes + spectrum).

The one place where the Compare views are linked in Python (``observe(..., names=[...])``):
everything that needs computation (a metric's matrix, a pair's spectrum, a pane's
activations) is wired here. Links that must survive a static export run in the
browser (``compare_link.py`` / ``js/compare_link.js``).
"""
from __future__ import annotations

import contextlib
import difflib
import html

import ipywidgets as W
import numpy as np

from ..views.errors import describe
from ..views.maps import COST, cca_metric
from .canonical_view import CanonicalView, direction_dots
from .compare_job import METRICS, MatrixJob
from .compare_link import CompareLink
from .compare_trust import TrustViews
from .gap_chart import gap_legend
from .heatmap import SimilarityHeatmap
from .lens import Lens
from .maps_job import MapsJob
from .spectrum import Spectrum, spectrum_legend, spectrum_title

__all__ = ["METRICS", "Compare"]

OPTIONS = ("reduce", "batch_size", "device", "memory", "result", "autostart", "precompute",
           "lens_options", "names", "reference", "maps")


def model_names(model_a, model_b, names=None) -> tuple[str, str]:
    """What the two models are called on axes, panes and tooltips.

    The given ``names``, else the class names, else (the same class twice, as in a
    real-vs-synthetic study) the class name with A and B.

    >>> import torch
    >>> model_names(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1))
    ('Linear A', 'Linear B')
    >>> model_names(None, None, names=("real", "synthetic"))
    ('real', 'synthetic')
    """
    if names is not None:
        names = tuple(str(n) for n in names)
        if len(names) != 2 or not all(names):
            raise ValueError(f"names must be two non-empty names, got {names!r}")
        return names
    a, b = type(model_a).__name__, type(model_b).__name__
    return (a, b) if a != b else (f"{a} A", f"{a} B")


class Compare(W.VBox):
    """Compare two CNNs layer by layer on the same data.

    Examples
    --------
    >>> import torch, cnnlens as cl
    >>> a = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten())
    >>> b = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), torch.nn.Flatten())
    >>> cmp = cl.Compare(a, b, torch.rand(32, 3, 8, 8), metric="linear_cka")
    >>> cmp.wait()                      # the matrix fills in a background thread
    True
    >>> cmp.matrix.shape                # (layers of A, layers of B), NaN where undefined
    (1, 1)
    >>> cmp.metric = "svcca"            # switch: no new forward pass

    Parameters
    ----------
    model_a, model_b : nn.Module
        The two networks (rows: layers of A, columns: layers of B).
    data : Tensor, PIL images, paths or Dataset, or a dict of them
        Inputs streamed once through both models; also the panes' image set.
        ``{"real": x, "synthetic": y}``: one matrix per dataset, switched in the widget
        (:attr:`dataset`); the panes show the first dataset's images.
    metric : str
        One of ``METRICS``: svcca, pwcca, linear_cka, debiased_cka, rbf_cka.
    layers_a, layers_b : selector, optional
        Layers to compare (name, module, list or predicate; default conv/linear leaves).
    reduce : str, optional
        How conv activations become 2-D (see :func:`cnnlens.similarity.similarity_matrix`).
    batch_size : int
        Batch size of the similarity pass and of the panes. Default 64.
    device : str or torch.device, optional
        Where the similarity pass runs (a pair ``(device_a, device_b)`` splits the models).
    memory : "auto" or int
        Memory budget of the pass's statistics in bytes (see
        :func:`cnnlens.similarity.similarity_matrix`); the plan shows in the status line.
    result : MatrixResult or SavedResult, optional
        A finished result (say ``cl.load_result("run.npz")`` from a ``torchrun`` job):
        shown as is, with no pass over the data; its layers are the heatmap's.
    autostart : bool
        Start the background job at once. Default True (else call :meth:`run`).
    precompute : bool or "auto"
        After the matrix, precompute every pair's spectrum and every metric's matrix so
        the views also switch without a kernel (export). "auto": up to 400 cells.
    lens_options : dict, optional
        Extra keyword arguments for both :class:`cnnlens.Lens` panes.
    names : (str, str), optional
        What to call the two models on the axes, panes and tooltips, e.g.
        ``("real", "synthetic")``. Default: their class names (with A and B when equal).
        A third name is the reference's (default "reference").
    reference : nn.Module, optional
        A third model C to read A~B against (e.g. A's recipe with another seed): one pass
        through the three models; the heatmap gets a difference mode (A~B minus A~C, when
        B and C have the same layers), tooltips give both scores, and a per-layer gap
        chart under the heatmap links to it (see :mod:`cnnlens.widgets.compare_trust`).
    maps : bool, optional
        Keep the canonical maps' statistics in the matrix pass (``similarity_matrix(...,
        maps=True)``), so a pair's maps need no pass of their own; the plan drops them when
        they do not fit the budget, and then each pair's first maps take one extra pass.
        Default: True (False with ``reference``).

    Attributes
    ----------
    matrix_job : cnnlens.widgets.compare_job.MatrixJob
        The similarity pass (:meth:`run`, :meth:`cancel`, :meth:`wait` call it).
    maps_job : cnnlens.widgets.maps_job.MapsJob
        The selected pair's canonical maps (directions cached per pair and metric).
    """

    def __init__(self, model_a, model_b, data, metric="svcca", layers_a=None, layers_b=None,
                 **options):
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            valid = ("metric", "layers_a", "layers_b") + OPTIONS
            hints = [f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(u, valid, 1))
                     else repr(u) for u in unknown]
            raise TypeError(f"Compare() got unknown keyword argument(s) {', '.join(hints)}; "
                            f"valid options: {', '.join(valid)}")
        self._check_metric(metric)
        self._models, self._data = (model_a, model_b), data
        # data={"real": ..., "synthetic": ...}: one matrix per dataset (switched in the
        # widget); the panes and the canonical maps show the first dataset's images
        datasets = [str(k) for k in data] if isinstance(data, dict) else []
        if isinstance(data, dict):
            if not data:
                raise ValueError("data={} holds no dataset: pass data={'name': images, ...}")
            data = next(iter(data.values()))
        engine_opts = {k: options[k] for k in ("reduce", "batch_size", "device", "memory",
                                               "reference") if k in options}
        # canonical maps from the matrix pass (no extra pass per pair) when they fit
        engine_opts["maps"] = bool(options.get("maps", "reference" not in engine_opts))
        given = options.get("names")
        ref_name = str(given[2]) if given is not None and len(given) == 3 else "reference"
        if given is not None and len(given) == 3:
            options["names"] = tuple(given)[:2]
        finished = options.get("result")
        if finished is not None:  # its layers, unless the caller chose the same ones
            layers_a = finished.layers_a if layers_a is None else layers_a
            layers_b = finished.layers_b if layers_b is None else layers_b

        self.names = model_names(model_a, model_b, options.get("names"))
        lens_opts = dict(options.get("lens_options") or {})
        if "batch_size" in options:
            lens_opts.setdefault("batch_size", options["batch_size"])
        panes, names, errors = [], [], []
        for side, model, layers in (("A", model_a, layers_a), ("B", model_b, layers_b)):
            lens, pane, err = self._make_lens(side, model, data, lens_opts,
                                              self.names[0 if side == "A" else 1])
            panes.append((lens, pane))
            errors.append(err)
            names.append(self._layer_names(lens, layers, side))
        (self.lens_a, pane_a), (self.lens_b, pane_b) = panes
        self.panes = (pane_a, pane_b)

        self.heatmap = SimilarityHeatmap(*names, metric=metric, names=self.names, metric_labels=METRICS,
                                         reasons=self._placeholder_reasons(names, errors))
        # heatmap | spectrum | canonical maps share one row of a 1280 px screen (~1100 px in Lab)
        self.spectrum = Spectrum(layout={"width": "320px", "height": "290px"})
        # where the selected pair agrees: canonical maps beside the spectrum (from the matrix
        # pass's statistics, else one extra pass per pair on maps_job's worker; its points on
        # the spectrum select a direction); it shrinks to the row's width instead of clipping
        dots = direction_dots(self.spectrum.curve)
        self.spectrum.marks = [*self.spectrum.marks, dots]
        self.maps = CanonicalView(heatmap=self.heatmap, dots=dots, curve=self.spectrum.curve,
                                  grid_a=self.lens_a.grid if self.lens_a else None,
                                  grid_b=self.lens_b.grid if self.lens_b else None, cost=COST,
                                  layout=W.Layout(flex="1 1 300px", min_width="0"))
        self.maps_job = MapsJob(self._models, data, (self.lens_a, self.lens_b), self.maps,
                                names=self.names, batch_size=options.get("batch_size", 64),
                                device=options.get("device"), result=lambda: self.result)
        self.picker = W.Dropdown(options=[(label, key) for key, label in METRICS.items()],
                                 value=metric, description="metric", layout=W.Layout(width="220px"))
        self.progress = W.IntProgress(value=0, min=0, max=1, description="",
                                      layout=W.Layout(width="220px"))
        # tooltips say what a control does (issue 11: the button's said only "Run")
        self.button = W.Button(description="Run", icon="play", layout=W.Layout(width="110px"),
                               tooltip="Run: stream the data through both models once and fill "
                                       "the heatmap with every layer pair's similarity; "
                                       "Cancel stops the pass")
        self.picker.tooltip = "the similarity measure the heatmap shows (switching needs no new pass)"
        # images/s, ETA and the engine's memory plan (which metric is exact or estimated)
        self.status = W.HTML(layout=W.Layout(max_width="100%"))
        self.status.add_class("cnnlens-status")
        for control in (self.progress, self.button):  # hidden in an exported page: no job there
            control.add_class("cnnlens-needs-kernel")
        figure = self.heatmap.figure(layout={"width": "390px", "height": "360px"})  # one screen
        self.link = CompareLink(heatmap=self.heatmap, heatmap_figure=figure, curve=self.spectrum.curve,
                                baseline=self.spectrum.baseline, spectrum=self.spectrum,
                                picker=self.picker, metrics=list(METRICS),
                                grid_a=self.lens_a.grid if self.lens_a else None,
                                grid_b=self.lens_b.grid if self.lens_b else None,
                                error="; ".join(e for e in errors if e))
        # warnings, chance dimming, difference mode and the gap chart (compare_trust.py)
        self.trust = TrustViews(self.heatmap, figure, METRICS,
                                (*self.names, ref_name), options.get("reference") is not None,
                                datasets)
        if self.trust.chart is not None:
            figure = W.VBox([figure, self.trust.chart, gap_legend(self.trust.names)])
        # the similarity pass, off the kernel thread (compare_job.py)
        self.matrix_job = MatrixJob(self._models, self._data, engine_opts,
                                    options.get("precompute", "auto"), self.heatmap, self.link,
                                    self.progress, self.button, self.status,
                                    metric=lambda: self.metric, on_done=self._on_selected,
                                    broken="; ".join(e for e in errors if e))
        super().__init__(children=[
            W.HBox([self.picker, self.progress, self.button, self.link],
                   layout=W.Layout(align_items="center", flex_flow="row wrap")),
            self.status,
            self.trust.link,
            W.HBox([figure, W.VBox([self.spectrum, spectrum_legend()]), self.maps],
                   layout=W.Layout(flex_flow="row wrap")),
            W.HBox([pane_a, pane_b], layout=W.Layout(flex_flow="row wrap", gap="0 16px")),
        ])
        self.add_class("cnnlens-compare")

        # Python-side links (computation); the JS-side ones live in compare_link.js.
        self.heatmap.observe(self._on_selected, names=["selected"])
        self.picker.observe(self._on_metric, names=["value"])
        self.picker.observe(lambda c: self._trust(self.trust.switch, c["new"]), names=["value"])
        self.link.observe(self._on_status, names=["status"])
        self.trust.link.observe(self._on_dataset, names=["dataset"])
        self.spectrum.curve.observe(self._on_curve, names=["x", "y", "visible"])
        self.picker.observe(lambda _: self._show_maps(), names=["value"])
        for lens in (self.lens_a, self.lens_b):
            if lens is not None:
                lens.grid.observe(self._on_image, names=["image_index"])
        self.button.on_click(lambda _: self.cancel() if self.running else self.run())
        if finished is not None:
            self.show_result(finished)
        elif options.get("autostart", True):
            self.run()

    def _on_status(self, change):
        """The pass ended: fill the trust views; a new one started: clear them."""
        job = self.matrix_job
        if change["new"] == "done" and job.result is not None:
            self._trust(self.trust.show, job.result, self.metric,
                        None if job.precompute == "auto" else bool(job.precompute))
            self.trust.link.spectra_dataset = getattr(job.result, "selected", "")
        elif change["new"] == "running" and not job.complete:
            self._trust(self.trust.clear)

    def _on_dataset(self, change):
        """Another dataset of data={...}: its matrix, notes, gap and precomputed spectra."""
        try:
            if not self.matrix_job.show_dataset(change["new"]):
                return
            self.trust.select(change["new"], self.metric)
            self.trust.link.spectra_dataset = self.matrix_job.result.selected
            self._on_selected()
        except Exception as exc:  # noqa: BLE001 - shown in place
            self.link.error = f"dataset {change['new']}: {describe(exc)}"

    @property
    def dataset(self) -> str:
        """The dataset shown with data={...} ("" for one dataset); set it to switch."""
        return self.trust.link.dataset

    @dataset.setter
    def dataset(self, name):
        if name not in self.trust.link.datasets:
            raise KeyError(f"unknown dataset {name!r}; datasets are {self.trust.link.datasets}")
        self.trust.link.dataset = name

    def _trust(self, fn, *args):
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - shown in place, the heatmap stays usable
            self.link.error = f"errors and chance levels: {describe(exc)}"

    # -- construction helpers ----------------------------------------------------------
    @staticmethod
    def _check_metric(metric):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")

    @staticmethod
    def _make_lens(side, model, data, opts, name):
        """A Lens pane, or an in-place error box when the model cannot run on the data."""
        kind = type(model).__name__
        where = "rows" if side == "A" else "columns"
        title = W.HTML(f"<b>{html.escape(name)}</b>"
                       + ("" if kind in name else f" · {html.escape(kind)}")
                       + f" · model {side}, the heatmap's {where}")
        # Compact (the selected layer's grid and the neuron detail; the full Lens one click
        # away, compare_link.js): both panes side by side from about 1150 px, so one laptop
        # screen holds heatmap, spectrum and both grids; stacked when narrower.
        layout = W.Layout(flex="1 1 540px", min_width="0", overflow="auto")
        try:
            lens = Lens(model, data, **opts)
            pane = W.VBox([title, lens], layout=layout)
            pane.add_class("cnnlens-compare-pane")
            pane.add_class("cnnlens-compact")
            return lens, pane, ""
        except TypeError as exc:  # bad lens_options: the caller's mistake, not the model's
            if "unknown keyword" in str(exc):
                raise
            err = f"model {side}: {describe(exc)}"
        except Exception as exc:  # noqa: BLE001 - failing forward, NaN layer, bad input: show it
            err = f"model {side}: {describe(exc)}"
        box = W.HTML(f"<pre>{html.escape(err)}</pre>")
        box.add_class("cnnlens-error")
        return None, W.VBox([title, box], layout=layout), err

    @staticmethod
    def _layer_names(lens, layers, side):
        if lens is None:
            return [f"({side} failed)"]
        tree = lens.inspector.layers
        names = [x.name for x in tree.select(layers) if x.shape is not None]
        if not names:
            raise ValueError(f"layers_{side.lower()}={layers!r} selects no layer with an output")
        return names

    @staticmethod
    def _placeholder_reasons(names, errors):
        err = "; ".join(e for e in errors if e)
        if not err:
            return {}
        return {(i, j): err for i in range(len(names[0])) for j in range(len(names[1]))}

    # -- public API --------------------------------------------------------------------
    @property
    def metric(self) -> str:
        """The metric shown; setting it switches the matrix from cached statistics."""
        return self.picker.value

    @metric.setter
    def metric(self, value):
        self._check_metric(value)
        self.picker.value = value

    @property
    def matrix(self) -> np.ndarray:
        """(La, Lb) float64 values of the current metric, NaN where undefined (or pending)."""
        return self.matrix_job.matrix()

    @property
    def result(self):
        """The :class:`cnnlens.similarity.MatrixResult` (None before the pass has produced one)."""
        return self.matrix_job.result

    @property
    def running(self) -> bool:
        """True while the background pass runs."""
        return self.matrix_job.running

    def run(self) -> None:
        """(Re)start the background pass that fills the matrix."""
        self.matrix_job.run()

    def cancel(self) -> None:
        """Ask the background pass to stop (it stops at its next batch or pair)."""
        self.matrix_job.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the pass ends: True when the matrix is complete, False when cancelled
        or timed out; a failed pass raises RuntimeError (:meth:`MatrixJob.wait`)."""
        return self.matrix_job.wait(timeout)

    def show_result(self, result) -> None:
        """Show a finished result (say, loaded with ``cl.load_result``): no pass over the data."""
        self.matrix_job.show_result(result)

    @property
    def pair(self):
        """Selected heatmap cell (i, j) or None; set it to select (same as a click)."""
        return self.heatmap.pair

    @pair.setter
    def pair(self, value):
        self.heatmap.selected = None if value is None else [list(value)]

    @property
    def error(self) -> str:
        """The error shown in the widget ("" when none)."""
        return self.link.error

    def canonical_maps(self, i, j, image=None, k=4):
        """Where layers ``i`` (of A) and ``j`` (of B) agree: their top ``k`` canonical maps.

        The directions are CCA with every spatial position a datapoint, under the current
        metric when it is SVCCA or PWCCA, else SVCCA (CKA has no directions). They come
        from the statistics the matrix pass kept (``maps=True``, the default, when the
        memory plan kept them: no pass over the data), else from **one extra pass over the
        data for that pair** (saved results, a reference model, a dropped group). They
        are cached per (pair, metric): another image needs only its own activations.

        Parameters
        ----------
        i, j : int
            The heatmap cell (row: layer of A, column: layer of B).
        image : int, optional
            Index into the data (default: the image pane A shows).
        k : int
            Directions (fewer if fewer exist).

        Returns
        -------
        cnnlens.similarity.CanonicalMaps
            ``.rho``, ``.maps_a``, ``.maps_b``, ``.corr``, ``.top_images(d, side)``, ``.convention``.

        Examples
        --------
        >>> res = cmp.canonical_maps(1, 1, image=3)            # doctest: +SKIP
        >>> res.rho, res.maps_a.shape, res.top_images(0, "b")  # doctest: +SKIP
        """
        la, lb = self.heatmap.layers_a, self.heatmap.layers_b
        if not (0 <= i < len(la) and 0 <= j < len(lb)):
            raise IndexError(f"pair ({i}, {j}) out of range: the heatmap is {len(la)} x {len(lb)}")
        if self.lens_a is None or self.lens_b is None:
            raise RuntimeError(f"no canonical maps: {self.link.error}")
        image = self.lens_a.image_index if image is None else int(image)
        return self.maps_job.maps(la[i], lb[j], image, cca_metric(self.metric), k)

    def to_html(self, path, **kwargs):
        """Write an offline page of this comparison; see :func:`cnnlens.export.export_compare`."""
        from ..export import export_compare

        return export_compare(self, path, **kwargs)

    def close(self):
        if hasattr(self, "matrix_job"):  # __del__ may close a half-built instance
            self.matrix_job.cancel()
        if hasattr(self, "maps_job"):  # a canonical-maps pass stops at its next batch
            self.maps_job.close()
        super().close()

    # -- Python-side links -------------------------------------------------------------
    def _on_selected(self, change=None):
        pair = self.heatmap.pair
        if pair is None:
            return
        i, j = pair
        name_a, name_b = self.heatmap.layers_a[i], self.heatmap.layers_b[j]
        try:
            # Both grids first, then each pane's detail and filters: the browser handles
            # messages in order, so pane B's grid would otherwise wait behind pane A's views.
            moves = [(lens, name) for lens, name in ((self.lens_a, name_a), (self.lens_b, name_b))
                     if lens is not None and lens.layer != name]
            with contextlib.ExitStack() as stack:
                for lens, _ in reversed(moves):  # exits in reverse: pane A's views go first
                    stack.enter_context(lens.grid_first())
                for lens, name in moves:
                    lens.layer = name
            self._show_spectrum(i, j, name_a, name_b)
            self._show_maps()
        except Exception as exc:  # noqa: BLE001 - keep the widget usable; say what went wrong
            self.link.error = f"pair {name_a} x {name_b}: {describe(exc)}"

    def _show_spectrum(self, i, j, name_a, name_b):
        title = spectrum_title(self.names, name_a, name_b)
        with self.matrix_job.lock:
            result = self.matrix_job.result if self.matrix_job.complete else None
            if result is None:
                self.spectrum.clear(title=f"{title}: matrix not ready")
                return
            reason = result.reason("svcca", i, j)  # the spectrum is the pair's SVCCA one
            try:
                rho, base = result.spectrum(i, j), result.baseline(i, j)
            except Exception as exc:  # noqa: BLE001 - undefined pair: its title says why
                self.spectrum.show([], [], pair=(i, j), title=f"{title}: {reason or describe(exc)}")
                return
        if len(rho) == 0:  # undefined pair: say why instead of drawing nothing silently
            title = f"{title}: {reason or 'no spectrum'}"
        self.spectrum.show(rho, base, pair=(i, j), title=title)

    def _show_maps(self, image=None):
        """Queue the selected pair's canonical maps for the maps view (maps_job's worker)."""
        pair = self.heatmap.pair
        if pair is None or self.lens_a is None or self.lens_b is None:
            return
        i, j = pair
        metric = cca_metric(self.metric)
        note = ("" if metric == self.metric else f"The heatmap shows {METRICS[self.metric]}, "
                "which has no directions: these maps come from SVCCA of the same pair.")
        image = self.lens_a.image_index if image is None else image
        self.maps_job.request((i, j), self.heatmap.layers_a[i], self.heatmap.layers_b[j],
                              image, metric, k=self.maps.k, note=note)

    def _on_image(self, change):
        """A pane's image picker: the maps of that image (same directions, no new pass)."""
        try:
            self._show_maps(image=change["new"])
        except Exception as exc:  # noqa: BLE001 - shown in place
            self.maps.error = describe(exc)

    def _on_curve(self, _change=None):
        """The spectrum's clickable points stay on its curve."""
        dots, curve = self.maps.dots, self.spectrum.curve
        with dots.hold_sync():
            dots.x, dots.y, dots.visible = curve.x, curve.y, curve.visible
            dots.selected = None if not curve.visible else [min(self.maps.direction, len(curve.y) - 1)]

    def _on_metric(self, change):
        metric = change["new"]
        try:
            self.matrix_job.repaint()
        except Exception as exc:  # noqa: BLE001 - shown in place
            self.link.error = f"metric {metric}: {describe(exc)}"
