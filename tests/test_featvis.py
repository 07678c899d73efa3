"""Feature visualisation (cnnlens.featvis): reaches high activations, caches, cleans up.

Few Adam steps everywhere: the assertions hold long before the default 256.
"""
import copy

import numpy as np
import pytest
import torch
from test_probe import no_hooks
from tiny_nets import Counting, tiny_cnn
from torch import nn

import cnnlens as cl
from cnnlens.capture import capture
from cnnlens.featvis import Cancelled, visualize
from cnnlens.probe import LayerNotFound


@pytest.fixture(scope="module")
def digit_net():
    return cl.demo.model("real", progress=False)


def _state(net):
    return [m.training for m in net.modules()], [p.requires_grad for p in net.parameters()]


def test_demo_conv3_visualisation_beats_the_best_real_test_digit(digit_net):
    test = cl.demo.data().test
    assert len(test) == 599
    means = capture(digit_net, test.images, ["conv3"])["conv3"].mean((2, 3))  # (599, 64)
    for channel in (0, 5):
        vis = visualize(digit_net, "conv3", channel, steps=48, cache=False)
        assert vis.image.shape == (16, 16, 1)  # the demo model's declared size, 1 channel
        assert 0.0 <= vis.image.min() and vis.image.max() <= 1.0
        assert vis.activation > float(means[:, channel].max()), channel
        # the reported activation is the model's own reading of the returned image
        x = torch.tensor(vis.image).permute(2, 0, 1)[None]
        again = capture(digit_net, x, ["conv3"])["conv3"][0, channel].mean()
        assert abs(float(again) - vis.activation) < 1e-4
    assert no_hooks(digit_net)


def test_cache_hit_skips_the_optimisation(digit_net):
    net = Counting(copy.deepcopy(digit_net))
    first = visualize(net, "net.conv3", 3, size=16, steps=12)
    runs = net.calls
    assert runs == 12 + 1 and not first.cached  # one forward per step + the final reading
    second = visualize(net, "net.conv3", 3, size=16, steps=12)
    assert net.calls == runs and second.cached
    assert np.array_equal(second.image, first.image) and second.activation == first.activation
    visualize(net, "net.conv3", 3, size=16, steps=12, seed=1)  # other settings: a miss
    assert net.calls == 2 * runs
    with torch.no_grad():
        net.net.conv3.bias.add_(0.5)  # a new model state (an optimizer step would do the same)
    third = visualize(net, "net.conv3", 3, size=16, steps=12)
    assert net.calls == 3 * runs and not third.cached


def test_same_seed_same_image_rgb_and_normalisation(model):
    kw = {"size": 16, "steps": 6, "normalize": "imagenet", "cache": False}
    a, b = visualize(model, "4", 7, **kw), visualize(model, "4", 7, **kw)
    assert a.image.shape == (16, 16, 3) and np.array_equal(a.image, b.image)
    assert not np.array_equal(a.image, visualize(model, "4", 7, seed=1, **kw).image)
    assert a.settings["normalize"] == "imagenet" and a.trace.shape == (6,)
    unit = visualize(model, "8", 3, size=16, steps=6, cache=False)  # a Linear unit: exact size
    assert unit.layer == "8" and np.isfinite(unit.activation)


def test_flags_and_requires_grad_restored_hooks_removed():
    net = tiny_cnn(0).train()
    net[1].eval()  # a frozen BN inside a training model keeps its own flag
    net[0].bias.requires_grad_(False)
    before = _state(net)
    seen = []
    visualize(net, "4", 1, size=16, steps=3, progress=lambda *a: seen.append(
        (a, net.training, net[0].weight.requires_grad)), cache=False)
    assert [s[0][:2] for s in seen] == [(1, 3), (2, 3), (3, 3)]
    assert all(not training and not grad for _, training, grad in seen)  # eval, no weight grads
    assert _state(net) == before and no_hooks(net) and torch.is_grad_enabled()


class Boom(RuntimeError):
    pass


def _raise(*_):
    raise Boom("from the progress callback")


@pytest.mark.parametrize("how", ["channel", "forward", "progress", "cancel"])
def test_no_hook_left_after_an_error(how):
    net = tiny_cnn(0).train()
    net[0].bias.requires_grad_(False)
    before = _state(net)
    kw = {"size": 16, "steps": 3, "cache": False}
    if how == "channel":
        with pytest.raises(IndexError, match=r"channel 99 out of range: layer '4' has 16 channels"):
            visualize(net, "4", 99, **kw)
    elif how == "forward":
        with pytest.raises(RuntimeError):  # a Linear after Flatten cannot take 20x20
            visualize(net, "8", 0, size=20, steps=3, cache=False)
    elif how == "progress":
        with pytest.raises(Boom):
            visualize(net, "4", 0, progress=_raise, **kw)
    else:
        with pytest.raises(Cancelled, match="after 0 of 3 steps"):
            visualize(net, "4", 0, cancel=lambda: True, **kw)
    assert no_hooks(net) and _state(net) == before


def test_bad_layer_names_the_closest_valid_ones(digit_net):
    with pytest.raises(LayerNotFound, match=r"unknown layer 'conv4'.*'conv3'"):
        visualize(digit_net, "conv4", 0, steps=2)
    with pytest.raises(IndexError, match="layer 'conv3' has 64 channels"):
        visualize(digit_net, "conv3", 64, steps=2)
    with pytest.raises(ValueError, match="normalize must be"):
        visualize(digit_net, "conv3", 0, steps=2, normalize="cifar")
    assert no_hooks(digit_net)


# -- the neuron pane (widget wiring only: the computation is the core's) ----------------------
def _gated_lens(digit_net, n=40):
    """A Lens whose model holds worker-thread forwards at a Gate (events, not timing)."""
    from collections import OrderedDict

    from test_inspector import Gate

    from cnnlens.widgets.lens import Lens

    gate = Gate()
    gate.release.set()
    net = nn.Sequential(OrderedDict(gate=gate, net=copy.deepcopy(digit_net)))
    lens = Lens(net, cl.demo.data().test.images[:n], layer="net.conv3", neuron=5)
    assert lens.wait(20)
    gate.release.clear()
    gate.entered.clear()
    return lens, gate


def _click(lens, **content):
    lens.detail._handle_custom_msg(content, [])  # what the browser's button sends


def test_visualise_button_runs_off_the_kernel_thread_with_progress(digit_net):
    import threading

    lens, gate = _gated_lens(digit_net)
    lens._featvis.steps = 24
    statuses, threads = [], set()
    lens.detail.observe(lambda c: statuses.append(c["new"]), names=["vis_status"])
    lens.detail.observe(lambda c: threads.add(threading.current_thread().name),
                        names=["vis_progress"])
    _click(lens, event="visualize", layer="net.conv3", neuron=5)
    assert gate.entered.wait(15)  # the worker is optimising; the kernel thread is free
    assert (lens.detail.vis_status, lens.detail.vis_key) == ("running", "net.conv3|5")
    gate.release.set()
    assert lens._featvis.wait(30) and not gate.timed_out
    d = lens.detail
    assert statuses == ["running", "ready"] and d.vis_progress == 1.0 and d.vis_error == ""
    assert "cnnlens-featvis" in threads
    assert (d.vis["layer"], d.vis["neuron"], d.vis["steps"]) == ("net.conv3", 5, 24)
    assert d.vis["image"]["shape"] == [1, 16, 16, 1] and len(d.vis["image"]["data"]) == 256
    assert isinstance(d.get_state()["vis"], dict)  # serialisable (bytes go as buffers)
    lens.neuron = 6  # another neuron: nothing for it yet
    assert (d.vis_status, d.vis_key) == ("none", "net.conv3|6")
    lens.neuron = 5  # back: the cached image shows at once, no worker
    assert d.vis_status == "ready" and lens._featvis.wait(0)  # no worker ran
    vis = lens.visualize(steps=6)  # the Python API, on the calling thread; shown as selected
    assert vis.layer == "net.conv3" and vis.channel == 5 and d.vis["steps"] == 6
    assert no_hooks(lens.inspector.model)


def test_visualise_cancel_and_errors_in_place(digit_net):
    lens, gate = _gated_lens(digit_net)
    lens._featvis.steps = 10_000
    _click(lens, event="visualize", layer="net.conv3", neuron=5)
    assert gate.entered.wait(15)
    _click(lens, event="cancel")
    assert lens.detail.vis_status == "none"  # said at once
    gate.release.set()
    assert lens._featvis.wait(30)  # stopped at its next step, not after 10,000
    assert lens.detail.vis_status == "none" and lens.detail.vis == {}
    lens._featvis.steps = 4
    _click(lens, event="visualize", layer="net.conv3", neuron=99)
    assert lens._featvis.wait(30)
    d = lens.detail
    assert (d.vis_status, d.vis_key) == ("error", "net.conv3|99")
    assert "channel 99 out of range" in d.vis_error
    net = lens.inspector.model
    assert no_hooks(net) and all(p.requires_grad for p in net.parameters())


def test_exported_page_carries_the_visualisations_and_says_what_was_left_out(digit_net, tmp_path):
    from cnnlens.widgets.lens import Lens

    lens = Lens(digit_net, cl.demo.data().test.images[:12], layer="conv1", neuron=2)
    lens._featvis.steps = 6  # the pane's settings decide what counts as visualised
    lens.visualize("conv3", 5, steps=6)
    report = lens.to_html(tmp_path / "cached.html", layers=["conv1", "conv3"])
    frames = lens.detail.vis_frames if lens.detail.vis_frames else None
    assert frames is None  # the page gets them, the live widget is left alone
    page = (tmp_path / "cached.html").read_text()
    assert "vis_frames" in page and "feature visualisations: 1 of 80 channels" in page
    assert report.left_out == ["conv1: 0 of 16 channels (not computed)",
                               "conv3: 1 of 64 channels (not computed)"]
    report = lens.to_html(tmp_path / "all.html", layers=["conv1"], featvis=True,
                          featvis_seconds=None)
    assert report.left_out == []
    assert "feature visualisations: 16 of 16 channels" in (tmp_path / "all.html").read_text()
    report = lens.to_html(tmp_path / "none.html", layers=["conv1"], featvis=False)
    assert "feature visualisations" not in (tmp_path / "none.html").read_text()
    with pytest.raises(ValueError, match="featvis must be"):
        lens.to_html(tmp_path / "bad.html", featvis="all")


def test_vis_frames_respect_the_time_and_byte_budgets(digit_net):
    from cnnlens.inspector import Inspector
    from cnnlens.views.featvis import vis_frames

    ins = Inspector(digit_net, cl.demo.data().test.images[:4])
    frames, left = vis_frames(ins, ["conv2"], steps=3, seconds=None, max_bytes=5 * 256)
    assert len(frames["conv2"]["channels"]) // 4 == 6  # 256 B each; stops once over budget
    assert left == ["conv2: 6 of 32 channels (page budget)"]
    frames, left = vis_frames(ins, ["conv1"], steps=3, seconds=1e-9)
    assert frames == {} and left == ["conv1: 0 of 16 channels (time budget)"]


def test_compare_page_carries_both_panes_visualisations(digit_net, tmp_path):
    other = cl.demo.model("real_seed1", progress=False)
    cmp = cl.Compare(digit_net, other, cl.demo.data().test.images[:40], metric="linear_cka")
    cmp.lens_a._featvis.steps = cmp.lens_b._featvis.steps = 4
    cmp.lens_b.visualize("conv2", 1, steps=4)
    report = cmp.to_html(tmp_path / "cmp.html", layers=(["conv2"], ["conv2"]))
    page = (tmp_path / "cmp.html").read_text()
    assert "A: feature visualisations: 0 of 48 channels" in page
    assert "B: feature visualisations: 1 of 48 channels" in page  # + the selected conv1
    assert report.left_out[-1] == "B conv2: 1 of 32 channels (not computed)"


def test_core_imports_no_widgets_and_normalisation_follows_the_images():
    import ast
    import pathlib

    # The core never imports widgets (read from the source: a fresh interpreter costs ~10 s
    # on a busy 2-core box, and the core modules it imports have their own such checks).
    for path in pathlib.Path(cl.featvis.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [f"{'.' * node.level}{node.module or ''}"] if isinstance(node, ast.ImportFrom)
                     else [])
            bad = [n for n in names if any(w in n for w in ("widgets", "export", "anywidget",
                                                             "ipywidgets", "bqplot"))]
            assert not bad, (path.name, bad)
    from cnnlens.featvis import normalization
    from cnnlens.inputs import IMAGENET_MEAN, IMAGENET_STD

    raw = torch.rand(8, 3, 6, 6)
    raw[0, :, 0, 0], raw[0, :, 0, 1] = 0.0, 1.0  # the darkest and brightest pixels present
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    got_mean, got_std = normalization((raw - mean) / std)
    assert np.allclose(got_mean, IMAGENET_MEAN, atol=1e-5) and np.allclose(got_std, IMAGENET_STD, atol=1e-5)
    assert normalization(raw) is None
