"""The neuron pane's feature visualisation: run :func:`cnnlens.featvis.visualize` off the
kernel thread, with progress, cancel and errors in place.

The computation lives in :mod:`cnnlens.featvis`, its payloads and page frames in
:mod:`cnnlens.views.featvis`; this module only wires them to a
:class:`~cnnlens.widgets.neuron_detail.NeuronDetail`:

* the browser's "visualise" button sends ``{"event": "visualize", "layer", "neuron"}``;
  :meth:`FeatvisJob.on_msg` starts a worker (one per Lens) and says
  ``vis_status="running"``, then updates ``vis_progress`` (throttled) until the image
  lands in ``vis`` (``"ready"``) or the error in ``vis_error`` (``"error"``);
* a second click (``{"event": "cancel"}``) or a request for another neuron cancels the
  running one; the newest request wins;
* a neuron whose visualisation is cached shows it as soon as it is selected.

The worker is a :class:`~cnnlens.widgets.worker.Worker` (as in ``detail_job.py``).
"""

from __future__ import annotations

import time

from .. import featvis
from ..views.errors import describe
from ..views.featvis import featvis_args, lens_featvis, vis_payload
from .worker import Worker

__all__ = ["FeatvisJob"]


class FeatvisJob:
    """Run the neuron pane's visualisations on a worker thread; newest request wins.

    Parameters
    ----------
    inspector : cnnlens.Inspector
    detail : NeuronDetail
    grid : ActivationGrid
        The selection model; a result is shown only while its neuron is selected.
    """

    PROGRESS_S = 0.1  # at most ~10 progress messages a second

    def __init__(self, inspector, detail, grid, steps: int = 256, seed: int = 0):
        self._inspector, self._detail, self._grid = inspector, detail, grid
        self.steps, self.seed = steps, seed
        self._worker = Worker(self._visualize, self._failed, name="cnnlens-featvis")
        self._lock = self._worker.lock

    def on_msg(self, _widget, content, _buffers=None) -> None:
        """Handle the detail view's ``visualize``/``cancel`` messages."""
        event = content.get("event") if isinstance(content, dict) else None
        if event == "visualize":
            self.request(str(content["layer"]), int(content["neuron"]))
        elif event == "cancel":
            self.cancel()

    def cancel(self) -> None:
        """Stop the running visualisation at its next step and drop a waiting one."""
        with self._lock:
            self._worker.cancel()
            if self._detail.vis_status == "running":
                self._set(vis_status="none", vis_progress=0.0)

    def request(self, layer: str, neuron: int) -> None:
        """Visualise ``neuron`` of ``layer`` on the worker (cancels a running one)."""
        with self._lock:
            self._set(vis_status="running", vis_progress=0.0, vis_error="",
                      vis_key=f"{layer}|{neuron}")
            self._worker.submit((layer, neuron))  # the running one (if any) is superseded

    def show_cached(self) -> None:
        """On a selection change: show a cached visualisation of it, else clear the status."""
        g = self._grid
        with self._lock:
            if self._worker.busy and self._detail.vis_key == f"{g.layer}|{g.neuron}":
                return  # it is being computed: keep "running"
            hit = None
            if g.neuron >= 0:
                try:
                    args, kw = featvis_args(self._inspector, g.layer, g.neuron, self.steps, self.seed)
                    hit = featvis.cached(*args, **kw)
                except Exception:  # noqa: BLE001 - unknown layer etc.: the detail says so
                    hit = None
            self._set(vis_key=f"{g.layer}|{g.neuron}", vis_status="ready" if hit else "none",
                      vis_progress=1.0 if hit else 0.0, vis_error="",
                      **({"vis": vis_payload(hit)} if hit else {}))

    def show(self, vis: featvis.Visualization) -> None:
        """Show ``vis`` (from :meth:`cnnlens.Lens.visualize`) if its neuron is selected."""
        g, key = self._grid, f"{vis.layer}|{vis.channel}"
        with self._lock:
            if key == f"{g.layer}|{g.neuron}" and not (self._worker.busy
                                                          and self._detail.vis_key == key):
                self._set(vis=vis_payload(vis), vis_key=key, vis_status="ready",
                          vis_progress=1.0, vis_error="")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no visualisation runs; False if ``timeout`` (seconds) passed first."""
        return self._worker.wait(timeout)

    # -- on the worker ---------------------------------------------------------------
    def _visualize(self, request):
        layer, neuron = request
        key, last = f"{layer}|{neuron}", [0.0]

        def progress(done, total, _value):
            now = time.perf_counter()
            if now - last[0] >= self.PROGRESS_S or done == total:
                last[0] = now
                with self._lock:
                    if self._detail.vis_key == key:
                        self._set(vis_progress=done / total)

        # a newer request or a cancel stops this one at its next step (featvis.Cancelled:
        # dropped by _failed, the request being stale)
        vis = lens_featvis(self._inspector, layer, neuron, steps=self.steps, seed=self.seed,
                           progress=progress, cancel=self._worker.stale)
        self._show(key, vis=vis_payload(vis), vis_status="ready", vis_progress=1.0)

    def _failed(self, request, exc):
        self._show("{}|{}".format(*request), vis_status="error", vis_error=describe(exc))

    def _show(self, key, **state):
        """Apply a result if its request is the newest and its neuron still the detail's."""
        with self._lock:
            if not self._worker.stale() and self._detail.vis_key == key:
                self._set(**state)

    def _set(self, **state):
        d = self._detail
        with d.hold_sync():
            for key, value in state.items():
                setattr(d, key, value)
