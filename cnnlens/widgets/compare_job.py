"""The background job of ``cl.Compare``: fill the matrix progressively off the kernel thread.

:class:`MatrixJob` gets the views it fills in its constructor; ``compare.py`` keeps the
layout and the Python-side links and calls the job's methods. Widget trait updates from
this thread are safe with ipykernel >= 6 / ipywidgets 8 (comm messages go through the
kernel's IOPub thread; ``tests/test_compare_widget.py`` checks it against a real kernel).
Every touch of the result and of the views holds :attr:`MatrixJob.lock`.
"""
from __future__ import annotations

import html
import threading
import time

import numpy as np

from .. import similarity as sim
from ..encode import pack_matrices, pack_spectra
from ..similarity.engine import progress_text
from ..views.errors import describe

__all__ = ["METRICS", "MatrixJob"]

METRICS = {"svcca": "SVCCA", "pwcca": "PWCCA", "linear_cka": "linear CKA",
           "debiased_cka": "debiased CKA", "rbf_cka": "RBF CKA"}
PRECOMPUTE_AUTO_PAIRS = 400  # "auto": spectra/matrices for export only up to this many cells
PAINT_EVERY_S = 0.2          # progressive repaint throttle (each paint is one comm message)


class MatrixJob:
    """Run / cancel / wait for the similarity pass of a Compare; fill its views.

    Parameters
    ----------
    models : (nn.Module, nn.Module)
    data : images, Dataset or dict of them
        What :func:`cnnlens.similarity.similarity_matrix` streams.
    engine_opts : dict
        Its other options (reduce, batch_size, device, memory, reference).
    precompute : bool or "auto"
        Precompute every pair's spectrum and every metric's matrix after the pass.
    heatmap : SimilarityHeatmap
        Its layers are the pass's; the matrix is painted there.
    link : CompareLink
        Status, progress and the precomputed spectra and matrices.
    progress, button, status : ipywidgets
        The progress bar, the Run/Cancel button and the status line.
    metric : callable
        ``metric()`` is the metric shown.
    on_done : callable
        Called once the matrix is complete (Compare shows the selected pair).
    broken : str
        Why no pass can run (a pane failed to build); "" when it can.

    Attributes
    ----------
    lock : threading.RLock
        Held while the result and the views are touched (by the job and by observers).
    """

    def __init__(self, models, data, engine_opts, precompute, heatmap, link, progress, button,
                 status, metric, on_done, broken=""):
        self._models, self._data, self._engine_opts = models, data, engine_opts
        self.precompute, self._broken = precompute, broken
        self._heatmap, self._link, self._progress, self._button, self._status = (
            heatmap, link, progress, button, status)
        self._metric, self._on_done = metric, on_done
        self.lock = threading.RLock()
        self._thread, self._cancel, self._token = None, threading.Event(), object()
        self._result, self._job_error, self._complete = None, None, False
        self._filled = None  # (in-flight result, cells done) while the pass fills the matrix

    @property
    def metric(self) -> str:
        """The metric shown (the Compare's)."""
        return self._metric()

    @property
    def result(self):
        """The last result (None before the pass has produced one)."""
        return self._result

    @property
    def complete(self) -> bool:
        """Whether :attr:`result` is complete (False while a pass runs)."""
        return self._complete

    @property
    def running(self) -> bool:
        """True while the background job runs."""
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """(Re)start the background pass that fills the matrix."""
        if self.running:
            raise RuntimeError("Compare job already running; call cancel() and wait() first")
        if self._broken:
            self._set_status("error", error=self._broken)
            return
        self._cancel, self._token = threading.Event(), object()
        with self.lock:
            self._job_error, self._complete, self._filled = None, False, None
            # a rerun starts from pending cells, and no stale offline data for JS to show
            shape = (len(self._heatmap.layers_a), len(self._heatmap.layers_b))
            self._heatmap.set_matrix(np.full(shape, np.nan), {}, self.metric)
            with self._link.hold_sync():
                self._link.spectra, self._link.baselines, self._link.spectra_shape = b"", b"", []
                self._link.matrices, self._link.matrix_metrics, self._link.matrix_reasons = b"", [], {}
        self._set_status("running", error="")
        self._button.description, self._button.icon = "Cancel", "stop"
        self._thread = threading.Thread(target=self._job, args=(self._token,),
                                        name="cnnlens-compare", daemon=True)
        self._thread.start()

    def show_result(self, result) -> None:
        """Show a finished result (say, loaded with ``cl.load_result``): no pass over the data."""
        if self.running:
            raise RuntimeError("Compare job running; call cancel() and wait() first")
        for side, have, shown in (("A", result.layers_a, self._heatmap.layers_a),
                                  ("B", result.layers_b, self._heatmap.layers_b)):
            if list(have) != list(shown):
                raise ValueError(f"the result's layers of model {side} {list(have)} are not the "
                                 f"heatmap's {list(shown)}: pass the same models, or no layers_a/"
                                 "layers_b (the result's are used)")
        self._cancel, self._token = threading.Event(), object()
        with self.lock:
            self._result, self._complete, self._job_error, self._filled = result, True, None, None
            self._paint(result)
        self._show_status(None, result)
        self._set_status("running")
        self._after_matrix(self._token, result)
        self._set_status("done")
        self._on_done()

    def matrix(self) -> np.ndarray:
        """(La, Lb) float64 values of the current metric, NaN where undefined (or pending)."""
        with self.lock:
            if self._result is not None and self._complete:
                return np.array(self._result.matrix(self.metric), dtype=np.float64)
            return np.array(self._heatmap.color, dtype=np.float64)

    def repaint(self) -> None:
        """The metric changed: show it (the matrix, the cells done so far, or all pending)."""
        if self._complete:
            self._show_status(None, self._result)
        with self.lock:
            if self._result is not None and self._complete:
                self._paint(self._result)
            elif self._filled is not None:  # mid-pass: the cells done so far, new metric
                self._paint(*self._filled)
            else:  # nothing computed yet (or a cancelled forward pass): all pending
                shape = self._heatmap.color.shape
                self._heatmap.set_matrix(np.full(shape, np.nan), {}, self.metric)

    def show_dataset(self, name: str) -> bool:
        """Show dataset ``name`` of a finished data={...} result; False if there is none."""
        result = self._result
        if result is None or not self._complete or not hasattr(result, "selected"):
            return False
        with self.lock:
            result.selected = name
            self._paint(result)
        self._show_status(None, result)
        self._after_matrix(self._token, result)
        return True

    def _show_status(self, info, result) -> None:
        """Rate and ETA of the pass, and the plan: which form each metric took, in what memory."""
        parts = [progress_text(info)] if info and info.get("stage") == "forward" else []
        plan = getattr(result, "plan", None)
        if plan is not None:
            form = plan.form(self.metric)
            parts.append(f"{METRICS[self.metric]}: {'exact' if form == 'exact' else form}"
                         + (" estimate (unbiased HSIC)" if form == "minibatch" else ""))
            parts.append(plan.summary())
        value = (f'<small title="{html.escape(repr(plan) if plan else "")}">'
                 f'{html.escape(" · ".join(parts))}</small>')
        if self._status.value != value:
            self._status.value = value

    def cancel(self) -> None:
        """Ask the background job to stop (it stops at its next batch or pair)."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends. True: matrix complete; False: cancelled or timed out.

        Raises
        ------
        RuntimeError
            The job failed (the cause is chained); the widget shows it too.
        """
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        if self._job_error is not None:
            raise RuntimeError(f"Compare job failed: {describe(self._job_error)}") from self._job_error
        if self._thread is not None and not self._complete and self._link.status == "running":
            # the thread is gone but never said how it ended: a crash, not a timeout
            raise RuntimeError("Compare job stopped without finishing or reporting an error")
        return self._complete

    # -- background job ----------------------------------------------------------------
    def _job(self, token):
        last, shown = [0.0], [0.0]  # last paint, last status line

        def progress(info):
            if token is not self._token:
                return
            self._set_progress(info.get("stage", ""), info.get("done", 0), info.get("total", 0))
            result = info.get("result")
            now = time.monotonic()
            if info.get("stage") == "forward" and now - shown[0] > PAINT_EVERY_S:
                shown[0] = now
                self._show_status(info, result)
            if result is not None and info.get("stage") == "pairs":
                self._filled = (result, info.get("done"))  # for a metric switch mid-pass
                if now - last[0] > PAINT_EVERY_S or info.get("done") == info.get("total"):
                    last[0] = now
                    self._paint(result, done=info.get("done"))

        try:
            result = sim.similarity_matrix(
                *self._models, self._data, layers_a=self._heatmap.layers_a,
                layers_b=self._heatmap.layers_b, metrics=(self.metric,), progress=progress,
                cancel=self._cancel, **self._engine_opts)
            with self.lock:
                self._result, self._complete = result, True
                self._paint(result)
            self._show_status(None, result)
            self._set_status("running")  # publishes complete=True before the extras
            self._after_matrix(token, result)
            self._set_status("done")
            self._on_done()  # a cell clicked while the matrix was filling
        except sim.Cancelled:
            self._set_status("cancelled")
        # BaseException too: whatever ends this thread (say, a model that calls sys.exit())
        # must not leave the widget "running" forever, with wait() returning False as if
        # it had merely timed out.
        except BaseException as exc:  # noqa: BLE001 - shown in place; wait() re-raises it
            self._fail(exc)
        finally:
            if token is self._token:
                self._button.description, self._button.icon = "Run", "play"

    def _fail(self, exc):
        """Record a crash of the job (wait() re-raises it) and show it in place."""
        self._job_error = exc
        try:
            text = describe(exc)
        except Exception:  # noqa: BLE001 - an exception whose str() raises still gets a line
            text = f"{type(exc).__name__} (unprintable)"
        try:
            self._set_status("error", error=text)
        except Exception:  # noqa: BLE001, S110 - views closed meanwhile; wait() still raises
            pass

    def _after_matrix(self, token, result):
        """Spectra of every pair + every metric's matrix, for kernel-less views (export)."""
        la, lb = len(self._heatmap.layers_a), len(self._heatmap.layers_b)
        want = self.precompute
        if want is False or (want == "auto" and la * lb > PRECOMPUTE_AUTO_PAIRS):
            return
        spectra, baselines, last = {}, {}, 0.0
        for n, (i, j) in enumerate(np.ndindex(la, lb)):
            if self._cancel.is_set():
                raise sim.Cancelled("cancelled while precomputing spectra")
            if time.monotonic() - last > PAINT_EVERY_S:  # two comm messages per update
                last = time.monotonic()
                self._set_progress("spectra", n, la * lb)
            with self.lock:
                try:
                    spectra[i, j] = result.spectrum(i, j)
                    baselines[i, j] = result.baseline(i, j)
                except Exception:  # noqa: BLE001, S112 - undefined pair: no spectrum, its cell says why
                    continue
        self._set_progress("spectra", la * lb, la * lb)
        with self.lock:
            mats = {m: result.matrix(m) for m in METRICS}
            reasons = {m: self._reasons(result, m, mats[m]) for m in METRICS}
        s_buf, shape = pack_spectra(spectra, la, lb)
        b_buf, _ = pack_spectra(baselines, la, lb, k_max=shape[2])
        m_buf, order = pack_matrices(mats)
        if token is not self._token:
            return
        with self._link.hold_sync():
            self._link.spectra, self._link.baselines, self._link.spectra_shape = s_buf, b_buf, shape
            self._link.matrices, self._link.matrix_metrics = m_buf, order
            self._link.matrix_reasons = {m: {f"{i},{j}": r for (i, j), r in rs.items()}
                                        for m, rs in reasons.items()}

    @staticmethod
    def _reasons(result, metric, matrix):
        out = {}
        for i, j in zip(*np.nonzero(~np.isfinite(matrix))):
            r = result.reason(metric, int(i), int(j))
            if r:
                out[int(i), int(j)] = r
        return out

    def _paint(self, result, done=None):
        """Show the current metric; with ``done``, only the first ``done`` cells are final.

        The engine fills its cells row-major and reports how many are done; reading
        exactly those keeps the fill progressive (``result.matrix`` would compute every
        cell at once, the pass being complete by then). Cells of another metric, after a
        switch during the pass, are computed here from the same statistics.
        """
        la, lb = len(self._heatmap.layers_a), len(self._heatmap.layers_b)
        metric = self.metric
        with self.lock:
            m, reasons = np.full((la, lb), np.nan), {}
            for flat in range(la * lb if done is None else min(int(done), la * lb)):
                i, j = divmod(flat, lb)
                r = result.result(metric, i, j)
                m[i, j] = r.score
                if not np.isfinite(r.score):
                    reasons[i, j] = r.reason or "undefined"
            self._heatmap.set_matrix(m, reasons, metric)

    def _set_progress(self, stage, done, total):
        with self._progress.hold_sync(), self._link.hold_sync():
            self._progress.max = max(int(total), 1)
            self._progress.value = min(int(done), self._progress.max)
            self._progress.description = stage
            self._link.stage, self._link.progress_done, self._link.progress_total = stage, done, total

    def _set_status(self, status, error=None):
        with self._link.hold_sync():
            self._link.status = status
            self._link.complete = self._complete
            if error is not None:
                self._link.error = error
            if status != "running":
                self._link.stage = ""
                self._progress.description = status
        self._progress.bar_style = {"done": "success", "error": "danger",
                                   "cancelled": "warning"}.get(status, "")
