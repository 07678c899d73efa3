"""Inspector: activations with an LRU cache, weights, top images, uploads, errors, threads."""
import copy
import threading

import pytest
import torch
from PIL import Image
from test_probe import Twice
from torch import nn

import cnnlens as cl
from cnnlens.capture import capture
from cnnlens.inspector import Inspector


class Counting(nn.Module):
    """Wraps a model and counts its forward calls: the ground truth for cache tests."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


class Gate(nn.Module):
    """Identity that, off the main thread, holds the forward until ``release`` is set.

    A slow pass without timing: the test decides when a worker thread may go on, and
    ``timed_out`` tells whether it had to give up waiting (the test never released it).
    """

    def __init__(self):
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()
        self.timed_out = False

    def forward(self, x):
        if threading.current_thread() is not threading.main_thread():
            self.entered.set()
            self.timed_out |= not self.release.wait(15)
        return x


@pytest.fixture
def counted(model):
    return Counting(copy.deepcopy(model))


def test_public_and_shapes(model, images):
    ins = cl.Inspector(model, images)
    assert ins.images.shape == (24, 3, 16, 16) and ins.images.dtype == torch.float32
    conv, fc = ins.activations("0"), ins.activations("8")
    assert conv.shape == (24, 8, 16, 16) and fc.shape == (24, 32)
    assert conv.dtype == torch.float32 and conv.device.type == "cpu"
    torch.testing.assert_close(conv, capture(model, images, ["0"])["0"])
    assert ins.activations("0", images=3).shape == (1, 8, 16, 16)
    torch.testing.assert_close(ins.activations("0", images=[5, 2]), conv[[5, 2]])
    assert ins.layers["4"].shape == (16, 8, 8) and "24 images" in repr(ins)


def test_cache_hit_avoids_a_second_forward(counted, images):
    ins = Inspector(counted, images, batch_size=64)
    assert counted.calls == ins.forward_calls == 1  # the dry run
    a = ins.activations("inner.4")
    assert counted.calls == ins.forward_calls == 2
    b = ins.activations("inner.4")
    ins.activations("inner.4", images=[0, 7])
    assert counted.calls == 2
    torch.testing.assert_close(a, b)
    ins.activations("inner.4", images=0)  # single image: cached too
    assert counted.calls == 2


def test_several_layers_share_one_forward(counted, images):
    ins = Inspector(counted, images)
    out = ins.activations(["inner.0", "inner.4", "inner.10"], images=[1, 2])
    assert list(out) == ["inner.0", "inner.4", "inner.10"] and counted.calls == 2
    ins.prefetch(lambda x: x.kind == "conv")
    assert counted.calls == 3
    ins.activations("inner.0")
    ins.activations("inner.4", images=[3])
    assert counted.calls == 3


def test_cache_is_bounded_by_bytes(counted, images):
    per_image = 8 * 16 * 16 * 4
    ins = Inspector(counted, images, cache_bytes=5 * per_image)
    full = ins.activations("inner.0")
    assert ins.cached_bytes <= 5 * per_image
    torch.testing.assert_close(ins.activations("inner.0", images=[23, 22]), full[[23, 22]])
    calls = counted.calls
    ins.activations("inner.0", images=[23])  # most recent: still cached
    assert counted.calls == calls
    ins.activations("inner.0", images=[0])  # least recent: evicted long ago
    assert counted.calls == calls + 1
    off = Inspector(counted, images, cache_bytes=0)
    torch.testing.assert_close(off.activations("inner.0"), full)
    assert off.cached_bytes == 0


def test_cache_notices_in_place_weight_changes(model, images):
    net = copy.deepcopy(model)
    ins = Inspector(net, images)
    before = ins.activations("0")
    with torch.no_grad():
        net[0].bias += 1.0
    torch.testing.assert_close(ins.activations("0"), before + 1.0)
    net[0] = nn.Conv2d(3, 8, 3, padding=1)  # a replaced module: new tensors
    assert not torch.allclose(ins.activations("0"), before + 1.0)
    assert torch.equal(ins.weights("0"), net[0].weight)


def test_weights(model, images):
    ins = Inspector(model, images)
    assert ins.weights("0").shape == (8, 3, 3, 3) and ins.weights("8").shape == (32, 256)
    assert ins.weights("2") is None and ins.weights("1") is None
    w = ins.weights("0")
    w += 1  # a copy: the model is not touched
    assert not torch.equal(w, model[0].weight)


def test_weight_accessors_copy_only_what_is_asked(model, images):
    ins = Inspector(model, images)
    assert ins.weight_param("4") is model[4].weight and ins.weight_param("2") is None
    one = ins.weights("4", filters=3)
    assert one.shape == (1, 8, 3, 3) and torch.equal(one, model[4].weight[3:4])
    assert torch.equal(ins.weights("4", filters=-1), model[4].weight[15:])
    assert ins.weights("8", filters=slice(4, 8)).shape == (4, 256)
    one += 1  # a copy: the model is not touched
    assert not torch.equal(one, model[4].weight[3:4])
    assert ins.weights("2", filters=0) is None
    with pytest.raises(IndexError, match="filter 16 out of range: layer '4' has 16 filters"):
        ins.weights("4", filters=16)


def test_top_images(model, images):
    ins = Inspector(model, images)
    acts = ins.activations("4")
    idx, scores = ins.top_images("4", channel=3, k=5)
    expect = acts[:, 3].mean((1, 2))
    assert idx.tolist() == expect.argsort(descending=True)[:5].tolist()
    torch.testing.assert_close(scores, expect[idx])
    idx, scores = ins.top_images("10", channel=2, k=3, by="max")
    assert scores.tolist() == sorted(scores.tolist(), reverse=True)
    with pytest.raises(IndexError, match="channel 16 out of range: layer '4' has 16 channels"):
        ins.top_images("4", 16)
    with pytest.raises(ValueError, match="by must be"):
        ins.top_images("4", 0, by="median")


def test_a_ranking_pass_does_not_hold_up_other_threads(images):
    """The Lens ranks on a worker: the kernel thread must get activations meanwhile."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), Gate(), nn.ReLU()).eval()
    gate, ins, out = net[1], Inspector(net, images[:6]), {}
    worker = threading.Thread(target=lambda: out.update(top=ins.top_images("2", 1, k=3)))
    worker.start()
    assert gate.entered.wait(15), "the pass did not start"
    assert not ins.has_scores("2")
    assert ins.activations("2", images=[0, 3]).shape == (2, 4, 14, 14)  # during the pass
    gate.release.set()
    worker.join(15)
    assert not gate.timed_out, "the main thread waited for the worker's pass"
    assert ins.has_scores("2") and not ins.has_scores("0")
    expect = ins.activations("2")[:, 1].mean((1, 2))
    idx, scores = out["top"]
    assert idx.tolist() == expect.argsort(descending=True)[:3].tolist()
    torch.testing.assert_close(scores, expect[idx])


def test_scores_of_a_pass_overtaken_by_a_weight_change_are_not_kept(images):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), Gate(), nn.ReLU()).eval()
    gate, ins = net[1], Inspector(net, images[:6])
    worker = threading.Thread(target=ins.channel_scores, args=("2",))
    worker.start()
    assert gate.entered.wait(15)
    with torch.no_grad():
        net[0].bias.add_(1.0)  # e.g. a training step while the Lens ranks
    ins.activations("0", images=0)  # the kernel notices: the cache is dropped
    gate.release.set()
    worker.join(15)
    assert not gate.timed_out and not ins.has_scores("2"), "stale scores were cached"
    torch.testing.assert_close(ins.channel_scores("2"), ins.activations("2").mean((2, 3)))


def test_add_image(model, images):
    ins = Inspector(model, images)
    scores = ins.channel_scores("4")
    i = ins.add_image(Image.new("RGB", (40, 30), (255, 255, 255)))
    assert i == 24 and ins.images.shape == (25, 3, 16, 16)
    assert ins.activations("4", images=i).shape == (1, 16, 8, 8)
    assert ins.add_image(torch.rand(3, 16, 16)) == 25
    new = ins.channel_scores("4")
    assert new.shape == (26, 16)
    torch.testing.assert_close(new[:24], scores)


def test_scalar_outputs_rank_too():
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 1), nn.Flatten(0))
    ins = Inspector(net, torch.rand(5, 3, 8, 8))
    idx, scores = ins.top_images("3", 0, k=2)
    best = ins.activations("3").topk(2)
    assert torch.equal(scores, best.values) and torch.equal(idx, best.indices)


def test_repeated_calls_through_the_inspector():
    ins = Inspector(Twice(), torch.rand(4, 3, 8, 8))
    assert ins.activations("act:1").shape == (4, 3, 8, 8)
    assert not torch.equal(ins.activations("act"), ins.activations("act:1"))


def test_actionable_errors(model, images):
    with pytest.raises(ValueError, match=r"expects 3 input channel.*got 1 channel"):
        Inspector(model, images[:, :1])
    ins = Inspector(model, images)
    with pytest.raises(KeyError, match="unknown layer '40'; closest valid names"):
        ins.activations("40")
    with pytest.raises(IndexError, match="image index 24 out of range for 24 images"):
        ins.activations("0", images=[24])
    with pytest.raises(ValueError, match=r"weights\(\) takes one layer; the selector picked 4"):
        ins.weights(None)
    with pytest.raises(IndexError, match="no image index"):
        ins.activations("0", images=[])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        Inspector("resnet", images)


def test_core_imports_no_widget_library():
    import subprocess
    import sys

    code = ("import sys, cnnlens.inspector, cnnlens.capture, cnnlens.probe, cnnlens.inputs; "
            "print(sorted(m for m in ('ipywidgets', 'anywidget', 'bqplot') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
