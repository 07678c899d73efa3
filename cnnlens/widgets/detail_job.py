"""The Lens's neuron-detail job: rank a neuron's top images off the kernel thread.

The first neuron of a layer needs a pass over every image (``Inspector.top_images``:
~2 s for 16 images on resnet18 at 224). :class:`DetailJob` fills the cheap part of the
detail (channel, filter, input image) at once on the calling thread, says
``top_status="pending"``, and ranks on a worker thread, one per Lens:

* the newest request wins: a request still waiting is replaced, and a result is applied
  only if its request is still the newest and the detail still shows its selection;
* no result is lost: a dropped result's scores stay in the Inspector's cache, so the
  newest request for that layer finishes at once; the worker runs until none waits;
* a layer whose scores are cached is ranked at once on the calling thread: one message,
  no "pending" flash;
* errors land in ``detail.error`` with ``top_status="error"``.

The worker is a :class:`~cnnlens.widgets.worker.Worker`. Every read-check-write of the
detail's traits holds its lock. Lock order: that lock before the Inspector's, never the
other way round.
"""

from __future__ import annotations

from ..views.detail import detail_state, top_state
from ..views.errors import describe
from .worker import Worker

__all__ = ["DetailJob"]


class DetailJob:
    """Keep a NeuronDetail in step with a grid's selection; rank top images on a worker.

    Parameters
    ----------
    inspector : cnnlens.Inspector
    detail : NeuronDetail
    grid : ActivationGrid
        The selection model (layer, neuron, image_index).
    """

    def __init__(self, inspector, detail, grid):
        self._inspector, self._detail, self._grid = inspector, detail, grid
        self._worker = Worker(self._rank, self._failed, name="cnnlens-top-images")
        self._lock = self._worker.lock

    @property
    def busy(self) -> bool:
        """True while a ranking waits or runs."""
        return self._worker.busy

    def update(self) -> None:
        """Show the grid's selection in the detail; queue its ranking if it needs a pass."""
        d, g, ins = self._detail, self._grid, self._inspector
        with self._lock:
            ready = g.neuron >= 0 and self._cached(g.layer)
            fresh = d.image_index != g.image_index or not d.image  # uploads append: indices stay
            opts = {"k": d.k, "by": d.by, "with_image": fresh, "with_top": ready}
            state = detail_state(ins, g.layer, g.neuron, g.image_index, **opts)
            self._worker.cancel()  # whatever the worker holds now is stale
            if state["top_status"] == "pending":
                self._worker.submit((g.layer, g.neuron, d.k, d.by))
            self._set(state)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no ranking waits or runs; False if ``timeout`` (seconds) passed first."""
        return self._worker.wait(timeout)

    # -- on the worker ---------------------------------------------------------------
    def _cached(self, layer) -> bool:
        try:
            return self._inspector.has_scores(layer)
        except Exception:  # noqa: BLE001 - unknown layer etc.: detail_state reports it
            return False

    def _rank(self, key):
        layer, neuron, k, by = key
        self._show(key, top_state(self._inspector, layer, neuron, k=k, by=by))

    def _failed(self, key, exc):
        self._show(key, {"top": {}, "top_status": "error", "error": describe(exc)})

    def _show(self, key, state):
        """Apply a ranking if its request is the newest and the detail shows its selection."""
        with self._lock:
            d, g = self._detail, self._grid
            if (not self._worker.stale() and key == (d.layer, d.neuron, d.k, d.by)
                    and (g.layer, g.neuron) == key[:2]):
                self._set(state)

    def _set(self, state: dict):
        d = self._detail
        with d.hold_sync():
            for key, value in state.items():
                setattr(d, key, value)
