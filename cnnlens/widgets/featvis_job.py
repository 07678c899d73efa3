"""The neuron pane's feature visualisation: run :func:`cnnlens.featvis.visualize` off the
kernel thread, with progress, cancel and errors in place; payloads for live and offline use.

The computation lives in :mod:`cnnlens.featvis`; this module only wires it to a
:class:`~cnnlens.widgets.neuron_detail.NeuronDetail`:

* the browser's "visualise" button sends ``{"event": "visualize", "layer", "neuron"}``;
  :meth:`FeatvisJob.on_msg` starts a worker (one per Lens) and says
  ``vis_status="running"``, then updates ``vis_progress`` (throttled) until the image
  lands in ``vis`` (``"ready"``) or the error in ``vis_error`` (``"error"``);
* a second click (``{"event": "cancel"}``) or a request for another neuron cancels the
  running one; the newest request wins;
* a neuron whose visualisation is cached shows it as soon as it is selected.

Trait updates from the worker are safe with ipykernel >= 6 / ipywidgets 8 (as in
``detail_job.py``).
"""

from __future__ import annotations

import threading
import time

import torch

from .. import featvis
from ..encode import FORMAT, encode_vector
from ..probe import Layer
from .activation_grid import describe

__all__ = ["FeatvisJob", "vis_frames", "vis_payload"]

SIDE = 128  # longest side of a shown/exported visualisation (px); the stage stretches it


def vis_payload(vis: featvis.Visualization) -> dict:
    """``vis`` trait value: the image (``encode_images``) and what produced it."""
    img = torch.tensor(vis.image).permute(2, 0, 1)
    return {
        "layer": vis.layer, "neuron": vis.channel, "activation": vis.activation,
        "steps": vis.settings["steps"], "seed": vis.settings["seed"],
        "size": list(vis.settings["size"]), "seconds": round(vis.seconds, 3),
        "image": _encode(img[None]),
    }  # fmt: skip


def _encode(images: torch.Tensor) -> dict:
    """(n, C, H, W) in [0, 1] -> ``encode_images``'s layout, values kept as they are.

    Not ``encode_images`` itself: it stretches each image to its own min..max, which would
    turn a nearly flat visualisation (a dead channel) into noise.
    """
    x = images[:, :3] if images.shape[1] >= 3 else images[:, :1]
    if max(x.shape[-2:]) > SIDE:
        s = SIDE / max(x.shape[-2:])
        size = (max(1, round(x.shape[-2] * s)), max(1, round(x.shape[-1] * s)))
        x = torch.nn.functional.interpolate(x, size=size, mode="area")
    data = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    return {"format": FORMAT, "kind": "images", "shape": list(data.shape),
            "data": data.numpy().tobytes()}


def lens_featvis(inspector, layer, channel, size=None, steps=256, seed=0, **kwargs):
    """:func:`cnnlens.featvis.visualize` with the settings a Lens's images imply.

    Size: the images' size (unless given); normalisation: :func:`featvis.normalization`
    of the image set; ``pick``: the Inspector's.
    """
    args, kw = _args(inspector, layer, channel, steps, seed, size)
    return featvis.visualize(*args, **{**kw, **kwargs})


_NORM: list = [None, None, None]  # the last image set, its _version, its normalization


def _args(inspector, layer, channel, steps, seed, size=None) -> tuple[tuple, dict]:
    if not isinstance(layer, Layer):  # the Inspector's tree knows "name:1" and skips a rebuild
        chosen = inspector.layers.select(layer)
        if len(chosen) != 1:
            raise ValueError(f"visualize() takes one layer; the selector picked {len(chosen)}")
        layer = chosen[0]
    images = inspector.images
    last, version, norm = _NORM  # one read: another thread may replace the list's items
    if last is not images or version != images._version:  # a full scan, so only once a set
        norm = featvis.normalization(images)
        _NORM[:] = [images, images._version, norm]
    size = tuple(images.shape[-2:]) if size is None else size
    pick = inspector.pick.get(layer.name) if isinstance(inspector.pick, dict) else inspector.pick
    return ((inspector.model, layer, channel, size, steps, seed),
            {"normalize": norm, "pick": pick})


def vis_frames(inspector, layers, *, steps=256, seed=0, seconds=60.0,
               max_bytes=None) -> tuple[dict, list[str]]:
    """Visualisations of every channel of ``layers`` for a page with no kernel.

    Cached ones cost nothing; new ones are computed in layer order until ``seconds``
    (None: no limit; 0: cached ones only) or ``max_bytes`` of images is spent. Returns ``(frames, left_out)``:
    ``frames[layer] = {"channels": int32 bytes, "activations": float32 bytes,
    "image": encode_images (n, h, w, C), "total": channel count, "steps", "seed"}`` and a
    line per layer that is not complete (``"conv3: 40 of 64 channels (time budget)"``).
    """
    frames, left, t0, used = {}, [], time.perf_counter(), 0
    for layer in layers:
        x = inspector.layers[layer]  # a Layer from here on: no tree is rebuilt per channel
        total = x.shape[0] if x.shape else 0
        done, why = [], ""
        for c in range(total):
            args, kw = _args(inspector, x, c, steps, seed)
            if featvis.cached(*args, **kw) is None:
                if seconds is not None and time.perf_counter() - t0 > seconds:
                    why = why or ("not computed" if seconds == 0 else "time budget")
                    continue
                if max_bytes is not None and used > max_bytes:
                    why = why or "page budget"
                    continue
            try:
                vis = lens_featvis(inspector, x, c, steps=steps, seed=seed)
            except Exception as exc:  # noqa: BLE001 - one failing layer must not sink the page
                why = f"error: {describe(exc)}"
                break
            done.append(vis)
            used += vis.image.size
        if done:
            img = torch.stack([torch.tensor(v.image).permute(2, 0, 1) for v in done])
            frames[layer] = {
                "channels": torch.tensor([v.channel for v in done], dtype=torch.int32)
                .numpy().tobytes(),
                "activations": encode_vector(torch.tensor([v.activation for v in done])),
                "image": _encode(img), "total": total, "steps": steps, "seed": seed,
            }  # fmt: skip
        if len(done) < total:
            left.append(f"{layer}: {len(done)} of {total} channels ({why or 'not visualised'})")
    return frames, left



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
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._request = None  # (layer, neuron) waiting for the worker
        self._cancel = threading.Event()  # set: the running one stops at its next step
        self._thread = None

    def on_msg(self, _widget, content, _buffers=None) -> None:
        """Handle the detail view's ``visualize``/``cancel`` messages."""
        event = content.get("event") if isinstance(content, dict) else None
        if event == "visualize":
            self.request(str(content["layer"]), int(content["neuron"]))
        elif event == "cancel":
            self.cancel()

    def cancel(self) -> None:
        """Stop the running visualisation at its next step and drop a waiting one."""
        with self._lock:  # the worker picks up a request and clears the event under it too
            self._request = None
            self._cancel.set()
            if self._detail.vis_status == "running":
                self._set(vis_status="none", vis_progress=0.0)

    def request(self, layer: str, neuron: int) -> None:
        """Visualise ``neuron`` of ``layer`` on the worker (cancels a running one)."""
        with self._lock:
            self._request = (layer, neuron)
            self._cancel.set()  # the running request (if any) is superseded
            self._set(vis_status="running", vis_progress=0.0, vis_error="",
                      vis_key=f"{layer}|{neuron}")
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="cnnlens-featvis",
                                                daemon=True)
                self._thread.start()

    def show_cached(self) -> None:
        """On a selection change: show a cached visualisation of it, else clear the status."""
        g = self._grid
        with self._lock:
            if self._thread is not None and self._detail.vis_key == f"{g.layer}|{g.neuron}":
                return  # it is being computed: keep "running"
            hit = None
            if g.neuron >= 0:
                try:
                    args, kw = _args(self._inspector, g.layer, g.neuron, self.steps, self.seed)
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
            if key == f"{g.layer}|{g.neuron}" and not (self._thread is not None
                                                          and self._detail.vis_key == key):
                self._set(vis=vis_payload(vis), vis_key=key, vis_status="ready",
                          vis_progress=1.0, vis_error="")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no visualisation runs; False if ``timeout`` (seconds) passed first."""
        with self._lock:
            return self._idle.wait_for(lambda: self._thread is None, timeout)

    def _work(self):
        try:
            while True:
                with self._lock:
                    if self._request is None:
                        return
                    (layer, neuron), self._request = self._request, None
                    self._cancel.clear()
                key, last = f"{layer}|{neuron}", [0.0]

                def progress(done, total, _value, key=key, last=last):
                    now = time.perf_counter()
                    if now - last[0] >= self.PROGRESS_S or done == total:
                        last[0] = now
                        with self._lock:
                            if self._detail.vis_key == key:
                                self._set(vis_progress=done / total)

                try:
                    vis = lens_featvis(self._inspector, layer, neuron, steps=self.steps,
                                       seed=self.seed, progress=progress,
                                       cancel=self._cancel.is_set)
                    state = {"vis": vis_payload(vis), "vis_status": "ready", "vis_progress": 1.0}
                except featvis.Cancelled:
                    state = {"vis_status": "none", "vis_progress": 0.0}
                except Exception as exc:  # noqa: BLE001 - shown in place
                    state = {"vis_status": "error", "vis_error": describe(exc)}
                with self._lock:
                    if self._request is None and self._detail.vis_key == key:
                        self._set(**state)
        finally:  # also after a crash: never leave wait() hanging
            with self._lock:
                self._thread = None
                if self._request is not None:  # queued while this thread was on its way out
                    self._thread = threading.Thread(target=self._work, name="cnnlens-featvis",
                                                    daemon=True)
                    self._thread.start()
                self._idle.notify_all()

    def _set(self, **state):
        d = self._detail
        with d.hold_sync():
            for key, value in state.items():
                setattr(d, key, value)
