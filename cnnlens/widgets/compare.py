"""Compare: two models layer by layer (heatmap + two linked Lens panes + spectrum).

The one place where the Compare views are linked in Python (``observe(..., names=[...])``):
everything that needs computation (a metric's matrix, a pair's spectrum, a pane's
activations) is wired here. Links that must survive a static export run in the
browser (``compare_link.py`` / ``js/compare_link.js``).
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from ..views.errors import describe
from ..views.maps import COST, cca_metric
from .canonical_view import CanonicalView, direction_dots
from .compare_job import METRICS, MatrixJob
from .compare_link import CompareLink
from .compare_options import read_options
from .compare_pair import PairViews
from .compare_panes import layer_names, make_pane, placeholder_reasons
from .compare_trust import TrustViews
from .gap_chart import gap_legend
from .heatmap import SimilarityHeatmap
from .maps_job import MapsJob
from .spectrum import Spectrum, spectrum_legend

__all__ = ["METRICS", "Compare"]

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
        self._check_metric(metric)
        opts = read_options(model_a, model_b, data, layers_a, layers_b, options)
        self._models, self._data, self.names = (model_a, model_b), data, opts.names
        panes, names, errors = [], [], []
        for side, model, layers in zip("AB", self._models, opts.layers, strict=True):
            lens, pane, err = make_pane(side, model, opts.pane_data, opts.lens,
                                        self.names[0 if side == "A" else 1])
            panes.append((lens, pane))
            errors.append(err)
            names.append(layer_names(lens, layers, side))
        (self.lens_a, pane_a), (self.lens_b, pane_b) = panes
        self.panes = (pane_a, pane_b)

        self.heatmap = SimilarityHeatmap(*names, metric=metric, names=self.names, metric_labels=METRICS,
                                         reasons=placeholder_reasons(names, errors))
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
        self.maps_job = MapsJob(self._models, opts.pane_data, (self.lens_a, self.lens_b),
                                self.maps, names=self.names, batch_size=opts.batch_size,
                                device=opts.device, result=lambda: self.result)
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
                                (*self.names, opts.reference_name), opts.reference,
                                opts.datasets)
        if self.trust.chart is not None:
            figure = W.VBox([figure, self.trust.chart, gap_legend(self.trust.names)])
        # the similarity pass, off the kernel thread (compare_job.py)
        self.matrix_job = MatrixJob(self._models, self._data, opts.engine,
                                    opts.precompute, self.heatmap, self.link,
                                    self.progress, self.button, self.status,
                                    metric=lambda: self.metric, on_done=lambda: self.pair_views.show(),
                                    broken="; ".join(e for e in errors if e))
        # the selected pair: panes, spectrum and canonical maps (compare_pair.py)
        self.pair_views = PairViews(self.heatmap, (self.lens_a, self.lens_b), self.spectrum,
                                    self.maps, self.maps_job, self.matrix_job, self.link,
                                    self.names, metric=lambda: self.metric)
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
        self.heatmap.observe(self.pair_views.show, names=["selected"])
        self.picker.observe(self._on_metric, names=["value"])
        self.picker.observe(lambda c: self._trust(self.trust.switch, c["new"]), names=["value"])
        self.link.observe(self._on_status, names=["status"])
        self.trust.link.observe(self._on_dataset, names=["dataset"])
        self.spectrum.curve.observe(self.pair_views.on_curve, names=["x", "y", "visible"])
        self.picker.observe(lambda _: self.pair_views.show_maps(), names=["value"])
        for lens in (self.lens_a, self.lens_b):
            if lens is not None:
                lens.grid.observe(self.pair_views.on_image, names=["image_index"])
        self.button.on_click(lambda _: self.cancel() if self.running else self.run())
        if opts.finished is not None:
            self.show_result(opts.finished)
        elif opts.autostart:
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
            self.pair_views.show()
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

    @staticmethod
    def _check_metric(metric):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")

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

    def _on_metric(self, change):
        metric = change["new"]
        try:
            self.matrix_job.repaint()
        except Exception as exc:  # noqa: BLE001 - shown in place
            self.link.error = f"metric {metric}: {describe(exc)}"
