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

Trait updates from the worker are safe with ipykernel >= 6 / ipywidgets 8 (as in
``compare_job.py``). Every read-check-write of the detail's traits holds ``self._lock``.
Lock order: ``self._lock`` before the Inspector's, never the other way round.
"""

from __future__ import annotations

import threading

from ..views.detail import detail_state, top_state
from ..views.errors import describe

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
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._serial = 0  # of the newest request; results of older ones are dropped
        self._request = None  # (serial, key) waiting for the worker
        self._thread = None  # the worker, while it has work

    @property
    def busy(self) -> bool:
        """True while a ranking waits or runs."""
        with self._lock:
            return self._thread is not None

    def update(self) -> None:
        """Show the grid's selection in the detail; queue its ranking if it needs a pass."""
        d, g, ins = self._detail, self._grid, self._inspector
        with self._lock:
            ready = g.neuron >= 0 and self._cached(g.layer)
            fresh = d.image_index != g.image_index or not d.image  # uploads append: indices stay
            opts = {"k": d.k, "by": d.by, "with_image": fresh, "with_top": ready}
            state = detail_state(ins, g.layer, g.neuron, g.image_index, **opts)
            self._serial += 1  # whatever the worker holds now is stale
            self._request = None
            if state["top_status"] == "pending":
                self._request = (self._serial, (g.layer, g.neuron, d.k, d.by))
                if self._thread is None:
                    self._start()
            self._set(state)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no ranking waits or runs; False if ``timeout`` (seconds) passed first."""
        with self._lock:
            return self._idle.wait_for(lambda: self._thread is None, timeout)

    # -- worker ----------------------------------------------------------------------
    def _cached(self, layer) -> bool:
        try:
            return self._inspector.has_scores(layer)
        except Exception:  # noqa: BLE001 - unknown layer etc.: detail_state reports it
            return False

    def _start(self):
        self._thread = threading.Thread(target=self._work, name="cnnlens-top-images", daemon=True)
        self._thread.start()

    def _work(self):
        try:
            while True:
                with self._lock:
                    if self._request is None:
                        return
                    (serial, key), self._request = self._request, None
                layer, neuron, k, by = key
                try:
                    state = top_state(self._inspector, layer, neuron, k=k, by=by)
                except Exception as exc:  # noqa: BLE001 - shown in place
                    state = {"top": {}, "top_status": "error", "error": describe(exc)}
                with self._lock:
                    d, g = self._detail, self._grid
                    if (
                        serial == self._serial
                        and key == (d.layer, d.neuron, d.k, d.by)
                        and (g.layer, g.neuron) == key[:2]
                    ):
                        self._set(state)
        finally:  # also after a crash (a user's observer raised): never leave wait() hanging
            with self._lock:
                self._thread = None
                if self._request is not None:  # queued while this thread was on its way out
                    self._start()
                self._idle.notify_all()

    def _set(self, state: dict):
        d = self._detail
        with d.hold_sync():
            for key, value in state.items():
                setattr(d, key, value)
