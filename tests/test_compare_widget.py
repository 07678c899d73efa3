"""Tier 1 for cl.Compare: heatmap selection (bqplot #1632), links, metric switch, progressive
fill, cancel, undefined cells and errors shown in place. Front-end messages are played with
``set_state`` (exactly what a click sends); the background job is real."""
import contextlib
import threading
import time

import bqplot
import numpy as np
import pytest
import torch
from torch import nn

from cnnlens import similarity as sim
from cnnlens.encode import pack_matrices, pack_spectra
from cnnlens.widgets.compare import METRICS, Compare
from cnnlens.widgets.compare_link import CompareLink
from cnnlens.widgets.heatmap import SimilarityHeatmap
from cnnlens.widgets.spectrum import Spectrum, index_ticks


@contextlib.contextmanager
def counting(*models):
    """Count forward passes of each model (wraps the instance's forward, restored after)."""
    counts = [0] * len(models)
    for k, m in enumerate(models):
        orig = m.forward

        def fwd(*a, _orig=orig, _k=k, **kw):
            counts[_k] += 1
            return _orig(*a, **kw)

        m.forward = fwd
    try:
        yield counts
    finally:
        for m in models:
            del m.forward


class Slow(nn.Module):
    """Wraps a model; every forward sleeps, so a job lasts long enough to be watched/cancelled."""

    def __init__(self, inner, delay=0.05):
        super().__init__()
        self.inner, self.delay = inner, delay

    def forward(self, x):
        time.sleep(self.delay)
        return self.inner(x)


class Broken(nn.Module):
    """Runs on small batches (the panes' dry run), raises `error` on large ones (the pass)."""

    def __init__(self, inner, max_batch=0, error=RuntimeError):
        super().__init__()
        self.inner, self.max_batch, self.error = inner, max_batch, error

    def forward(self, x):
        if x.shape[0] > self.max_batch:
            raise self.error(f"boom: batch of {x.shape[0]}")
        return self.inner(x)


def dead_cnn():
    """Second conv is all zeros: its ReLU output is constant, so CCA-type metrics are undefined."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1),
                        nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 8)).eval()
    with torch.no_grad():
        net[2].weight.zero_()
        net[2].bias.zero_()
    return net


@pytest.fixture(scope="module")
def done(model, model_b, images):
    """One finished Compare, shared by the read-mostly tests."""
    cmp = Compare(model, model_b, images, metric="svcca")
    assert cmp.wait(timeout=120)
    return cmp


# -- bqplot #1632 -------------------------------------------------------------------------
def test_base_gridheatmap_still_has_the_bug():
    """If bqplot fixes #1632 this fails: then the subclass' workaround can go."""
    hm, seen = bqplot.GridHeatMap(color=np.eye(3)), []
    hm.observe(seen.append, names=["selected"])
    with pytest.raises(ValueError, match="Unsupported dtype object"):
        hm.set_state({"selected": [[1, 2]]})
    assert seen == []


def test_heatmap_selected_from_the_browser_fires_the_observer():
    hm, seen = SimilarityHeatmap(["a", "b", "c"], ["x", "y"], np.zeros((3, 2))), []
    hm.observe(lambda c: seen.append(c["new"]), names=["selected"])
    hm.set_state({"selected": [[2, 1]]})  # exactly what a click sends with ipywidgets 8
    assert len(seen) == 1 and seen[0].dtype == np.int32 and seen[0].tolist() == [[2, 1]]
    assert hm.pair == (2, 1)
    state = hm.get_state()["selected"]  # echoes as int32 bytes (bqplot's JS has no int64)
    assert state["dtype"] == "int32" and tuple(state["shape"]) == (1, 2)
    hm.set_state({"selected": [[0, 0], [1, 1]]})  # ctrl-click: the last cell is the pair
    assert hm.pair == (1, 1)
    hm.set_state({"selected": None})  # background click clears
    assert hm.pair is None
    hm.selected = [[1, 0]]  # Python side
    assert hm.get_state()["selected"]["dtype"] == "int32"
    with pytest.raises(Exception, match="pairs"):
        hm.selected = [[1, 2, 3]]


def test_heatmap_tooltips_and_shape_checks():
    hm = SimilarityHeatmap(["conv1"], ["c1", "c2"], [[0.8349, np.nan]], metric="pwcca",
                           reasons={(0, 1): "c2 is constant"})
    assert hm.color.shape == (1, 2)  # a single row stays 2-D (bqplot would squeeze it)
    assert hm.tooltip_text(0, 0) == "A: conv1\nB: c1\npwcca = 0.835"
    assert hm.tooltip_text(0, 1) == "A: conv1\nB: c2\npwcca undefined: c2 is constant"
    hm.set_matrix([[0.1, np.nan]], reasons={}, metric="svcca")
    assert hm.tooltip_text(0, 1).endswith("svcca: pending")
    with pytest.raises(ValueError, match="does not match"):
        hm.set_matrix(np.zeros((2, 2)))
    fig = hm.figure()
    assert "cnnlens-heatmap" in fig._dom_classes
    assert fig.axes[2].scale.min == 0 and fig.axes[2].scale.max == 1  # 0..1 colour legend


def test_spectrum_and_packing():
    sp = Spectrum()
    sp.show([0.9, 0.5, 0.2], [0.3, 0.1], pair=(1, 2), title="a × b")
    assert sp.rho.tolist() == [0.9, 0.5, 0.2] and sp.pair == [1, 2]
    assert sp.baseline.y.tolist() == [0.3, 0.1] and sp.baseline.x.tolist() == [1, 2]
    assert sp.axes[0].tick_values.tolist() == [1, 2, 3]  # integer ticks for the index axis
    assert sp.axes[0].tick_format == "d"  # 10, not d3's default "1e+1"
    sp.clear()  # nothing to draw: hidden, but still valid data for bqplot's JS
    assert not sp.curve.visible and sp.rho.size == 0 and np.isfinite(sp.curve.y).all()
    assert "cnnlens-spectrum" in sp._dom_classes
    # same numbers as indexTicks in js/tests/compare_link.test.js
    assert index_ticks(64).tolist() == [1, 10, 20, 30, 40, 50, 60] and index_ticks(0).tolist() == [1]
    assert index_ticks(11).tolist() == [1, 3, 5, 7, 9, 11]
    assert index_ticks(2000).tolist() == [1, 500, 1000, 1500, 2000]
    buf, shape = pack_spectra({(0, 1): [0.9, 0.5], (1, 0): np.arange(400) / 400}, 2, 2, k_max=8)
    arr = np.frombuffer(buf, np.float32).reshape(shape)
    assert shape == [2, 2, 8] and np.isnan(arr[0, 0]).all() and arr[0, 1, :2].tolist() == [
        pytest.approx(0.9), 0.5]
    mbuf, names = pack_matrices({"svcca": np.eye(2), "pwcca": np.ones((2, 2))})
    assert names == ["svcca", "pwcca"] and len(mbuf) == 2 * 4 * 4


# -- Compare --------------------------------------------------------------------------------
def test_unknown_kwargs_and_metric_rejected(model, model_b, images):
    with pytest.raises(TypeError, match="did you mean 'batch_size'"):
        Compare(model, model_b, images, batchsize=8)
    with pytest.raises(ValueError, match="unknown metric 'cca2'"):
        Compare(model, model_b, images, metric="cca2")


def test_layout_state_and_matrix(done, model, model_b, images):
    cmp = done
    assert "cnnlens-compare" in cmp._dom_classes
    # a job needs a kernel: an exported page hides these (CSS on .cnnlens-needs-kernel)
    assert all("cnnlens-needs-kernel" in w._dom_classes for w in (cmp.button, cmp.progress))
    assert all("cnnlens-needs-kernel" in lens.upload._dom_classes for lens in (cmp.lens_a, cmp.lens_b))
    # the colour bar: five readable ticks, labelled with the metric as people name it, beside
    # the bar; the title says what is compared with what; no bqplot toolbar over the cells
    figure = cmp.link.heatmap_figure
    color_axis = next(a for a in figure.axes if a.scale is cmp.heatmap.scales["color"])
    label = METRICS[cmp.metric]
    assert color_axis.label == label and color_axis.tick_values.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert figure.title == label and not figure.display_toolbar
    cmp.metric = "linear_cka"
    assert color_axis.label == "linear CKA" and figure.title == "linear CKA"
    cmp.metric = "svcca"
    la, lb = len(cmp.heatmap.layers_a), len(cmp.heatmap.layers_b)
    assert cmp.matrix.shape == (la, lb) and cmp.matrix.dtype == np.float64
    assert cmp.heatmap.layers_a == cmp.result.layers_a and cmp.heatmap.layers_b == cmp.result.layers_b
    state = cmp.link.get_state()
    assert state["heatmap"] == f"IPY_MODEL_{cmp.heatmap.model_id}"
    assert state["grid_a"] == f"IPY_MODEL_{cmp.lens_a.grid.model_id}"
    assert state["status"] == "done" and state["complete"] is True
    # precomputed for kernel-less views: every pair's spectrum, every metric's matrix
    assert cmp.link.spectra_shape[:2] == [la, lb]
    assert cmp.link.matrix_metrics == list(METRICS)
    mats = np.frombuffer(cmp.link.matrices, np.float32).reshape(len(METRICS), la, lb)
    np.testing.assert_allclose(mats[0], cmp.result.matrix("svcca"), rtol=1e-6, atol=1e-6)


def test_click_sets_both_panes_and_spectrum_without_forward(done, model, model_b):
    cmp = done
    i, j = len(cmp.heatmap.layers_a) - 1, 0
    before = cmp.spectrum.rho.copy()
    fa0, fb0 = cmp.lens_a.inspector.forward_calls, cmp.lens_b.inspector.forward_calls
    b0 = cmp.maps_job.batches  # the canonical maps' own pass (one per new pair, test_canonical_compare)
    with counting(model, model_b) as calls:
        cmp.heatmap.set_state({"selected": [[i, j]]})
        assert cmp.maps_job.wait(60)
    assert cmp.lens_a.layer == cmp.heatmap.layers_a[i]
    assert cmp.lens_b.layer == cmp.heatmap.layers_b[j]
    np.testing.assert_allclose(cmp.spectrum.rho, cmp.result.spectrum(i, j), rtol=1e-6)
    assert cmp.spectrum.pair == [i, j]
    assert before.shape != cmp.spectrum.rho.shape or not np.allclose(before, cmp.spectrum.rho)
    assert np.isfinite(np.asarray(cmp.spectrum.baseline.y)).any()
    # every other forward was a pane drawing its new layer, none for the spectrum
    maps = cmp.maps_job.batches - b0
    assert calls == [cmp.lens_a.inspector.forward_calls - fa0 + maps,
                     cmp.lens_b.inspector.forward_calls - fb0 + maps]
    fa0, fb0 = cmp.lens_a.inspector.forward_calls, cmp.lens_b.inspector.forward_calls
    b0 = cmp.maps_job.batches
    with counting(model, model_b) as calls:  # back and forth: still no forward of our own
        cmp.heatmap.set_state({"selected": [[0, 0]]})
        cmp.heatmap.set_state({"selected": [[i, j]]})
        assert cmp.maps_job.wait(60)
    np.testing.assert_allclose(cmp.spectrum.rho, cmp.result.spectrum(i, j), rtol=1e-6)
    maps = cmp.maps_job.batches - b0
    assert calls == [cmp.lens_a.inspector.forward_calls - fa0 + maps,
                     cmp.lens_b.inspector.forward_calls - fb0 + maps]


def test_metric_switch_without_recompute(done, model, model_b):
    cmp = done
    with counting(model, model_b) as calls:
        for metric in ("linear_cka", "pwcca", "debiased_cka", "svcca"):
            cmp.metric = metric
            np.testing.assert_array_equal(cmp.heatmap.color, cmp.result.matrix(metric))
            np.testing.assert_array_equal(cmp.matrix, cmp.result.matrix(metric))
            assert cmp.heatmap.metric == metric  # the one place the metric shown lives
        cmp.picker.set_state({"index": list(METRICS).index("linear_cka")})  # the browser's pick
        assert cmp.heatmap.metric == "linear_cka"
        cmp.metric = "svcca"
    assert calls == [0, 0]
    with pytest.raises(ValueError, match="unknown metric"):
        cmp.metric = "cosine"


def test_progressive_fill_matches_engine(model, model_b, images):
    colors, progress, threads = [], [], set()
    cmp = Compare(model, model_b, images, metric="linear_cka", autostart=False)
    cmp.heatmap.observe(lambda c: colors.append(np.array(c["new"])), names=["color"])
    cmp.link.observe(lambda c: (progress.append((cmp.link.stage, c["new"])),
                                threads.add(threading.current_thread().name)),
                     names=["progress_done"])
    cmp.run()
    assert cmp.wait(timeout=120)
    assert "cnnlens-compare" in threads  # updates came from the background thread
    stages = [s for s, _ in progress]
    assert "forward" in stages and "pairs" in stages
    filled = [int(np.isfinite(c).sum()) for c in colors]
    assert filled == sorted(filled), "cells only ever fill in"
    assert any(0 < f < cmp.matrix.size for f in filled), f"no partial paint: {filled}"
    ref = sim.similarity_matrix(model, model_b, images, layers_a=cmp.heatmap.layers_a,
                                layers_b=cmp.heatmap.layers_b, metrics=("linear_cka",))
    np.testing.assert_allclose(cmp.matrix, ref.matrix("linear_cka"), rtol=1e-6, equal_nan=True)
    assert cmp.link.complete and cmp.link.progress_done == cmp.link.progress_total


def test_cancel_then_rerun(model, model_b, images):
    slow = Slow(model_b, delay=0.1)
    cmp = Compare(model, slow, images, batch_size=4)
    t0 = time.monotonic()
    while cmp.link.progress_done < 1 and time.monotonic() - t0 < 30:
        time.sleep(0.01)
    cmp.button.click()  # the Cancel button
    assert cmp.wait(timeout=30) is False
    assert cmp.link.status == "cancelled" and not cmp.link.complete
    assert cmp.button.description == "Run"
    slow.delay = 0.0
    cmp.button.click()  # Run again: the widget stayed usable
    assert cmp.wait(timeout=120) is True and cmp.link.status == "done"
    assert np.isfinite(cmp.matrix).any()


def test_kernel_thread_stays_free_while_job_runs(model, model_b, images):
    cmp = Compare(model, Slow(model_b, delay=0.2), images, batch_size=4)
    t0 = time.perf_counter()
    assert cmp.running
    cmp.metric = "pwcca"  # the main thread is not blocked by the job
    assert time.perf_counter() - t0 < 0.5
    assert cmp.heatmap.metric == "pwcca"
    cmp.cancel()
    cmp.wait(timeout=30)


def test_undefined_cell_is_explained(model, images):
    cmp = Compare(dead_cnn(), model, images, metric="svcca")
    assert cmp.wait(timeout=120)
    nan = np.argwhere(np.isnan(cmp.matrix))
    assert len(nan), "the zeroed conv layer should make SVCCA undefined"
    i, j = map(int, nan[0])
    reason = cmp.result.reason("svcca", i, j)
    assert reason and cmp.heatmap.reasons[f"{i},{j}"] == reason
    assert cmp.heatmap.tooltip_text(i, j).endswith(f"SVCCA undefined: {reason}")
    assert cmp.link.matrix_reasons["svcca"][f"{i},{j}"] == reason
    cmp.heatmap.set_state({"selected": [[i, j]]})  # clicking it does not break anything
    assert cmp.spectrum.pair == [i, j] and cmp.error == ""
    assert cmp.spectrum.rho.size == 0 and reason in cmp.spectrum.title


def test_forward_error_in_the_job_is_shown_in_place(model, images):
    cmp = Compare(model, Broken(model, max_batch=8), images, batch_size=24)
    with pytest.raises(RuntimeError, match="Compare job failed") as info:
        cmp.wait(timeout=120)
    assert "boom" in cmp.error and cmp.link.status == "error"
    assert "boom" in repr(info.value.__cause__) or "boom" in str(info.value)
    # still usable: pick a pair (panes follow), switch metric
    cmp.heatmap.set_state({"selected": [[0, 0]]})
    assert cmp.lens_b.layer == cmp.heatmap.layers_b[0]
    cmp.metric = "linear_cka"
    assert np.isnan(cmp.matrix).all()


class Crash(BaseException):
    """Not an Exception: what a model calling sys.exit() (or similar) throws in the job."""


def test_job_thread_crash_sets_error_state_and_wait_reraises(model, images):
    dies = Broken(model, max_batch=8, error=Crash)  # kills the job thread on large batches
    cmp = Compare(model, dies, images, batch_size=24)
    with pytest.raises(RuntimeError, match="Compare job failed") as info:
        cmp.wait(timeout=120)
    assert isinstance(info.value.__cause__, Crash)
    # never stuck at "running": the crash is shown in place and the button is back to Run
    assert cmp.link.status == "error" and "boom: batch of" in cmp.error
    assert not cmp.running and cmp.button.description == "Run"
    assert cmp.progress.bar_style == "danger"
    with pytest.raises(RuntimeError, match="boom: batch of"):  # every later wait() too
        cmp.wait(timeout=1)
    dies.max_batch = len(images)  # a rerun starts clean
    cmp.run()
    assert cmp.wait(timeout=120) is True and cmp.link.status == "done" and cmp.error == ""


def test_model_that_cannot_run_at_all(model, images):
    cmp = Compare(model, Broken(model, max_batch=0), images)
    assert cmp.lens_b is None and cmp.lens_a is not None
    title, error_box = cmp.panes[1].children
    assert "model B" in title.value
    assert "cnnlens-error" in error_box._dom_classes and "boom" in error_box.value
    assert "model B" in cmp.error and cmp.link.status == "error"
    assert cmp.wait() is False and not cmp.running
    assert "boom" in cmp.heatmap.tooltip_text(0, 0)
    cmp.lens_a.layer = cmp.heatmap.layers_a[-1]  # pane A keeps working
    cmp.heatmap.set_state({"selected": [[1, 0]]})
    assert cmp.lens_a.layer == cmp.heatmap.layers_a[1]


def test_link_defaults():
    link = CompareLink()
    assert link.status == "idle" and link.spectra_shape == [] and link.heatmap is None


KERNEL_CODE = r'''
import sys, time, torch
from torch import nn
sys.path.insert(0, {tests!r})
from tiny_nets import tiny_cnn
from cnnlens.widgets.compare import Compare
class Slow(nn.Module):
    def __init__(self, m): super().__init__(); self.m = m
    def forward(self, x): time.sleep(0.3); return self.m(x)
cmp = Compare(tiny_cnn(0), Slow(tiny_cnn(1)), torch.rand(24, 3, 16, 16), batch_size=4)
'''


@pytest.mark.slow
def test_real_kernel_thread_updates_and_responsiveness():
    """ipykernel 7 + ipywidgets 8: widget updates made by the job thread reach iopub, and the
    kernel answers other requests while the job runs."""
    import pathlib
    import sys

    jupyter_client = pytest.importorskip("jupyter_client.manager")
    env = {**__import__("os").environ,
           "PATH": f"{pathlib.Path(sys.executable).parent}:{__import__('os').environ['PATH']}"}
    km, kc = jupyter_client.start_new_kernel(kernel_name="python3", env=env)
    try:
        code = KERNEL_CODE.format(tests=str(pathlib.Path(__file__).parent))
        assert kc.execute_interactive(code, timeout=120)["content"]["status"] == "ok"
        latency, running = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            kc.execute_interactive("print(cmp.running)", timeout=30, output_hook=lambda m: (
                m["msg_type"] == "stream" and running.append(m["content"]["text"].strip())))
            latency.append(time.perf_counter() - t0)
        assert running[0] == "True", "the job should still be running during the probes"
        updates, out = [], []

        def hook(msg):
            if msg["msg_type"] == "comm_msg" and msg["content"]["data"].get("method") == "update":
                updates.append(msg["content"]["data"]["state"])
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])

        kc.execute_interactive("print(cmp.wait(120), cmp.link.status)", timeout=180,
                               output_hook=hook)
        assert "".join(out).split() == ["True", "done"]
        assert max(latency) < 1.0, latency  # the job thread does not block the kernel
        assert any("progress_done" in s for s in updates)  # sent from the job thread
        assert any(s.get("complete") is True for s in updates)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_names_label_axes_panes_and_tooltips(model, model_b, images):
    cmp = Compare(model, model_b, images, metric="linear_cka", names=("real", "synthetic"),
                  autostart=False)
    assert cmp.names == ("real", "synthetic") and cmp.heatmap.names == ["real", "synthetic"]
    figure = cmp.link.heatmap_figure
    assert [a.label for a in figure.axes[:2]] == ["real", "synthetic"]
    assert figure.title == "linear CKA"
    assert cmp.heatmap.tooltip_text(0, 0).startswith(
        f"real: {cmp.heatmap.layers_a[0]}\nsynthetic: {cmp.heatmap.layers_b[0]}\nlinear CKA")
    assert "<b>real</b>" in cmp.panes[0].children[0].value
    # the same class twice: told apart, not "Sequential" and "Sequential"
    same = Compare(model, model, images, autostart=False)
    assert same.names == ("Sequential A", "Sequential B")
    with pytest.raises(ValueError, match="two non-empty names"):
        Compare(model, model_b, images, names=("only one",), autostart=False)
