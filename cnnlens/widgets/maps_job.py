"""Compare's canonical-maps job: one extra pass per pair, off the kernel's main thread.

The similarity engine's pass keeps no position-level statistics, so the directions of a
pair's maps come from :func:`cnnlens.similarity.canonical_maps`: one streamed pass over
the data through both models (CCA with spatial positions as datapoints). :class:`MapsJob`

* caches the directions per (layer A, layer B, metric): a pair is passed over once;
* serves another image from the cache: only that image's activations, read from the
  panes' Inspectors (cached there too), projected on the same directions
  (:meth:`CanonicalMaps.for_image`) -- no new pass;
* runs on a :class:`~cnnlens.widgets.worker.Worker`, one per Compare, newest request
  wins; a request for another pair cancels a running pass at its next batch; progress,
  errors and results land in a :class:`~cnnlens.widgets.canonical_view.CanonicalView`;
* gives an exported page the same payloads (:meth:`MapsJob.payloads`).

Lock order: ``self._pass`` (one pass at a time, shared with the caller's thread) before
the worker's lock (a pass's cancel check takes it), never the other way round.
"""

from __future__ import annotations

import threading
import time

from ..encode import encode_canonical_image, encode_canonical_pair
from ..inputs import iter_batches, num_images
from ..similarity.canonical import CanonicalMaps, canonical_maps
from ..similarity.positions import maps_source
from ..views.errors import describe
from ..views.maps import COST_IN_PASS, K_MAX, RHO_NOTE, cca_metric, first_k
from .worker import Worker

__all__ = ["MapsJob"]

PROGRESS_S = 0.2


class _Cancelled(Exception):
    """A newer request replaced the one whose pass was running."""


class MapsJob:
    """Canonical maps of a Compare's pairs: cached directions, a worker, a view to fill.

    Parameters
    ----------
    models : (nn.Module, nn.Module)
    data : images or Dataset
        The Compare's data (streamed once per pair).
    lenses : (Lens, Lens)
        The panes: their Inspectors give one image's activations and the image itself.
    view : CanonicalView or None
        Where progress, errors and payloads go (None: :meth:`maps` only).
    names : (str, str)
        What the models are called.
    batch_size, device
        Of the extra pass.
    result : callable, optional
        Returns the Compare's similarity result (or None): when it holds the pairs'
        position statistics (``similarity_matrix(..., maps=True)``), the directions come
        from it and no pass over the data runs (:mod:`cnnlens.similarity.positions`).
    """

    def __init__(self, models, data, lenses, view=None, names=("A", "B"), batch_size=64,
                 device=None, result=None):
        self._models, self._data, self._lenses, self._view = models, data, lenses, view
        self._names, self._batch_size, self._device = tuple(names), batch_size, device
        self._result = result
        self._worker = Worker(self._compute, self._failed, name="cnnlens-canonical-maps")
        self._lock = self._worker.lock
        self._pass = threading.Lock()
        self._cache: dict[tuple, tuple[CanonicalMaps, int]] = {}  # + k asked
        self.passes = 0  # passes over the data so far (tests and the curious)
        self.batches = 0  # batches those passes streamed (one forward of each model each)
        self.in_pass = 0  # directions read from the matrix pass's statistics (no pass)

    # -- on the caller's thread ------------------------------------------------------
    def directions(self, layer_a: str, layer_b: str, metric: str, k: int = K_MAX,
                   cancel=None, progress=None) -> CanonicalMaps:
        """The pair's directions (cached; from the matrix pass's statistics when it kept
        them, else one pass over the data the first time)."""
        key = (layer_a, layer_b, metric)
        with self._pass:  # one pass at a time: a second caller then finds it cached
            cm, asked = self._cache.get(key, (None, 0))
            if cm is None or (k > asked and cm.k == asked):  # more directions may exist
                asked = max(k, K_MAX)
                cm = self._from_result(layer_a, layer_b, metric, asked)
                if cm is None:  # the matrix pass kept no position statistics: a pass
                    cm = canonical_maps(*self._models, self._batches(cancel, progress),
                                        layer_a, layer_b, image=0, k=asked, metric=metric,
                                        batch_size=self._batch_size, device=self._device)
                    self.passes += 1
                self._cache[key] = (cm, asked)
        return cm

    def _from_result(self, layer_a: str, layer_b: str, metric: str, k: int):
        """The pair's directions from the Compare's result (None: it holds none for it)."""
        res = maps_source(self._result() if self._result is not None else None)
        if res is None or layer_a not in res.layers_a or layer_b not in res.layers_b:
            return None
        cm = res.canonical_maps(res.layers_a.index(layer_a), res.layers_b.index(layer_b),
                                k=k, metric=metric)
        self.in_pass += 1
        if self._view is not None and self._view.cost != COST_IN_PASS:
            self._set(cost=COST_IN_PASS)
        return cm

    def maps(self, layer_a: str, layer_b: str, image: int, metric: str,
             k: int = 4) -> CanonicalMaps:
        """:class:`CanonicalMaps` of ``image`` for the pair (the directions cached)."""
        cm = self.directions(layer_a, layer_b, metric, k)
        return first_k(self.for_image(cm, image), k)

    def payloads(self, pair, layer_a: str, layer_b: str, metric: str, images, k: int = 4,
                 cancel=None, progress=None) -> tuple[dict, dict]:
        """What the view shows of ``pair``: ``(pair payload, {image: image payload})``.

        The pair payload (:func:`cnnlens.encode.encode_canonical_pair`) is of the first of
        ``images``; each image payload (:func:`cnnlens.encode.encode_canonical_image`)
        projects that image on the same directions (one pass over the data the first time).
        """
        cm = self.directions(layer_a, layer_b, metric, k, cancel=cancel, progress=progress)
        shown = {n: first_k(self.for_image(cm, n), k) for n in images}
        lens = self._lenses[0] if self._lenses[0] is not None else self._lenses[1]
        head = encode_canonical_pair(shown[images[0]], lens.images, pair=tuple(pair),
                                     labels=self._names, note=RHO_NOTE)
        return head, {n: encode_canonical_image(c, lens.images[n]) for n, c in shown.items()}

    def cached(self, layer_a: str, layer_b: str, metric: str) -> bool:
        """Whether the pair's directions under ``metric`` are computed (no pass needed)."""
        return (layer_a, layer_b, metric) in self._cache

    def for_image(self, cm: CanonicalMaps, image: int) -> CanonicalMaps:
        """``cm``'s directions with the maps of ``image`` (its activations from the panes)."""
        if cm.image == image:
            return cm
        lens_a, lens_b = self._lenses
        acts_a = lens_a.inspector.activations(cm.layer_a, images=image)[0]
        acts_b = lens_b.inspector.activations(cm.layer_b, images=image)[0]
        return cm.for_image(acts_a, acts_b, image=image)

    def _batches(self, cancel, progress):
        """The data's batches, checking ``cancel`` and reporting images done."""
        total, done = num_images(self._data), 0
        for batch in iter_batches(self._data, self._batch_size):
            if cancel is not None and cancel():
                raise _Cancelled
            self.batches += 1
            yield batch
            done += len(batch)
            if progress is not None:
                progress(done, total)

    # -- the view's worker -----------------------------------------------------------
    def request(self, pair, layer_a: str, layer_b: str, image: int, metric: str,
                k: int = 4, note: str = "") -> None:
        """Show the maps of ``pair`` on ``image`` in the view, computed on the worker."""
        key = (tuple(pair), layer_a, layer_b, int(image), cca_metric(metric), int(k))
        with self._lock:
            cached = (layer_a, layer_b, key[4]) in self._cache
            shown = self._view is not None and self._view.status == "ready"
            self._set(pair=list(key[0]), note=note, error="",
                      status="ready" if cached and shown else "running",
                      **({} if cached else {"progress": 0.0}))
            self._worker.submit(key)

    def cancel(self) -> None:
        """Drop a waiting request and stop a running pass at its next batch."""
        with self._lock:
            self._worker.cancel()
            if self._view is not None and self._view.status == "running":
                self._set(status="empty", progress=0.0)

    def close(self) -> None:
        """:meth:`cancel`, and take no request from now on."""
        self.cancel()
        self._worker.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no request waits or runs; False if ``timeout`` (s) passed first."""
        return self._worker.wait(timeout)

    @property
    def busy(self) -> bool:
        return self._worker.busy

    def _compute(self, request):
        pair, la, lb, image, metric, k = request
        last = [0.0]

        def progress(done, total):
            now = time.monotonic()
            if total and (now - last[0] > PROGRESS_S or done == total):
                last[0] = now
                self._show(progress=done / total)

        def superseded() -> bool:
            """A newer request wants other directions: this pass is of no use (another
            image of the same pair still needs it, so that one keeps running)."""
            with self._lock:
                newest = self._worker.pending
                return self._worker.stale() and (
                    newest is None or (newest[1], newest[2], newest[4]) != (la, lb, metric))

        head, images = self.payloads(pair, la, lb, metric, [image], k, cancel=superseded,
                                     progress=progress)
        self._show(pair_data=head, image_data=images[image], status="ready", progress=1.0,
                   error="")

    def _failed(self, request, exc):
        """Shown in place, unless a newer request came (a cancelled pass ends here too)."""
        self._show(status="error", error=f"pair {request[1]} x {request[2]}: {describe(exc)}")

    def _show(self, **state):
        with self._lock:
            if not self._worker.stale():
                self._set(**state)

    def _set(self, **state):
        v = self._view
        if v is None:
            return
        with v.hold_sync():
            for key, value in state.items():
                if getattr(v, key) != value:
                    setattr(v, key, value)
