"""Lens widget state (tier 1): traits, front-end messages via set_state, payloads, errors in place.

``widget.set_state({...})`` is exactly what a message from the browser does, and
``get_state()`` is what goes out (bytes become binary buffers). Top images rank on a
worker thread: tests hold it with ``Gate`` (events, not timing) or call ``lens.wait()``.
"""

import io
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image
from test_inspector import Gate
from torch import nn

from cnnlens.encode import channel_indices, decode, payload_nbytes
from cnnlens.inspector import Inspector
from cnnlens.widgets.lens import Lens

JS = pathlib.Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(scope="module")
def inspector(model, images):
    return Inspector(model, images)


@pytest.fixture
def lens(inspector):
    return Lens(inspector)


def _numbers_in_json(v):
    if isinstance(v, dict):
        return max([_numbers_in_json(x) for x in v.values()] + [0])
    if isinstance(v, (list, tuple)):
        return max(
            [len(v) if all(isinstance(x, (int, float)) for x in v) else 0]
            + [_numbers_in_json(x) for x in v]
        )
    return 0


def test_default_selection_and_views_filled(lens, inspector):
    assert lens.layer == "0" and lens.neuron == -1 and lens.image_index == 0
    assert lens.grid.payload["shape"] == [8, 16, 16] and lens.grid.error == ""
    assert [n["name"] for n in lens.tree.nodes] == inspector.layers.names
    assert lens.filters.payload["mode"] == "rgb" and lens.filters.weights_layer == "0"
    assert lens.picker.count == 24 and lens.picker.thumbs["shape"] == [24, 16, 16, 3]
    assert sum(lens.histogram.marks[0].y) == inspector.weights("0").numel()


@pytest.mark.parametrize("kind", ["tensor", "pil", "paths", "dataset"])
def test_images_as_tensor_pil_paths_or_dataset(model, images, tmp_path, kind):
    pil = [
        Image.fromarray((im.permute(1, 2, 0).numpy() * 255).astype(np.uint8)) for im in images[:4]
    ]
    if kind == "tensor":
        data = images[:4]
    elif kind == "pil":
        data = pil
    elif kind == "paths":
        data = []
        for i, im in enumerate(pil):
            im.save(tmp_path / f"{i}.png")
            data.append(tmp_path / f"{i}.png")
    else:
        data = torch.utils.data.TensorDataset(images[:4], torch.arange(4))
    lens = Lens(model, data)
    assert lens.images.shape == (4, 3, 16, 16)
    assert lens.activations("4").shape == (4, 16, 8, 8)
    assert lens.activations(images=[1]).shape == (1, 8, 16, 16)  # the selected layer


def test_unknown_kwargs_rejected_with_suggestion(model, images):
    with pytest.raises(
        TypeError, match=r"'colour_map' \(did you mean 'colormap'\?\).*valid options"
    ):
        Lens(model, images, colour_map="magma")
    with pytest.raises(TypeError, match="needs images"):
        Lens(model)
    with pytest.raises(KeyError, match="closest valid names"):
        Lens(model, images, layer="conv9")


def test_state_round_trip_and_references(lens):
    state = lens.grid.get_state()
    assert {"layer", "neuron", "image_index", "payload", "frames", "error"} <= set(state)
    assert isinstance(state["payload"]["data"], bytes), "activations travel as one binary buffer"
    assert _numbers_in_json(state["payload"]) <= 3, "no tensor as a JSON list"
    for view in (lens.tree, lens.detail, lens.filters, lens.picker):
        assert view.get_state()["grid"] == f"IPY_MODEL_{lens.grid.model_id}"
    lens.grid.set_state({"layer": "4", "neuron": 5, "image_index": 2})
    assert (lens.layer, lens.neuron, lens.image_index) == ("4", 5, 2)
    back = lens.grid.get_state()
    assert (back["layer"], back["neuron"], back["image_index"]) == ("4", 5, 2)


def test_front_end_layer_change_updates_payload_filters_detail(lens, inspector):
    lens.grid.set_state({"neuron": 3})
    lens.grid.set_state({"layer": "2"})  # ReLU after conv 0 + BN: 8 channels, the neuron is kept
    p = lens.grid.payload
    assert (p["layer"], p["shape"], lens.neuron) == ("2", [8, 16, 16], 3)
    want = inspector.activations("2", images=0)[0].numpy()
    step = (want.reshape(8, -1).max(1) - want.reshape(8, -1).min(1)) / 255
    assert (np.abs(decode(p) - want).reshape(8, -1).max(1) <= step / 2 + 1e-6).all()
    assert lens.filters.layer == "2" and lens.filters.weights_layer == "0"
    assert "produces the channels of 2" in lens.filters.note
    assert (lens.detail.layer, lens.detail.neuron) == ("2", 3)
    lens.grid.set_state({"layer": "4"})  # 16 channels: neuron 3 still exists
    assert lens.neuron == 3 and lens.filters.payload["mode"] == "kernels"
    lens.grid.set_state({"neuron": 12, "layer": "0"})  # conv 0 has 8 channels: selection cleared
    assert lens.neuron == -1


def test_layer_clicks_do_not_resend_unchanged_payloads(lens):
    lens.layer = "0"
    sent = []
    lens.detail.observe(lambda c: sent.append(c["name"]), names=["image"])
    lens.filters.observe(lambda c: sent.append(c["name"]), names=["payload"])
    lens.grid.set_state({"layer": "2"})  # same filters (conv 0), same input image
    assert sent == [] and lens.filters.layer == "2"
    lens.grid.set_state({"image_index": 4})
    assert sent == ["image"]
    lens.grid.set_state({"layer": "4"})
    assert sent == ["image", "payload"]


def test_neuron_detail_payloads(lens, inspector):
    lens.grid.set_state({"layer": "4", "image_index": 5})
    lens.grid.set_state({"neuron": 7})
    assert lens.wait(30)
    d = lens.detail
    assert (d.layer, d.neuron, d.image_index, d.error, d.top_status) == ("4", 7, 5, "", "ready")
    assert d.channel["shape"] == [1, 8, 8] and d.image["shape"] == [1, 16, 16, 3]
    np.testing.assert_allclose(
        decode(d.channel)[0], inspector.activations("4", images=5)[0, 7].numpy(), atol=0.02
    )
    assert d.kernels["shape"] == [1, 8, 3, 3] and d.kernels["layer"] == "4"
    idx, scores = inspector.top_images("4", 7, k=8, by="mean")
    np.testing.assert_array_equal(np.frombuffer(d.top["indices"], np.int32), idx.numpy())
    np.testing.assert_allclose(
        np.frombuffer(d.top["scores"], np.float32), scores.numpy(), rtol=1e-6
    )
    d.set_state({"by": "max", "k": 3})
    assert lens.wait(30)
    idx, _ = inspector.top_images("4", 7, k=3, by="max")
    assert d.top["by"] == "max"
    np.testing.assert_array_equal(np.frombuffer(d.top["indices"], np.int32), idx.numpy())


def test_python_mirrors_read_and_write(lens):
    lens.layer = "5"
    assert lens.grid.layer == "5" and lens.grid.payload["layer"] == "5"
    lens.neuron = 15
    assert lens.detail.neuron == 15
    lens.image_index = 23
    assert lens.grid.payload["image_index"] == 23
    with pytest.raises(KeyError, match="closest valid names"):
        lens.layer = "5.weight"
    with pytest.raises(IndexError, match="has 16 channels"):
        lens.neuron = 16
    with pytest.raises(IndexError, match="out of range for 24 images"):
        lens.image_index = 24
    lens.layer = lens.inspector.model[9]  # a module selects its layer too
    assert lens.layer == "9" and lens.grid.payload["kind"] == "vector"


def test_front_end_errors_show_in_place(lens):
    lens.grid.set_state({"layer": "nope"})
    assert "unknown layer 'nope'" in lens.grid.error and "data" not in lens.grid.payload
    lens.grid.set_state({"layer": "4", "image_index": 99})
    assert "out of range" in lens.grid.error
    lens.grid.set_state({"image_index": 1, "layer": "0"})
    assert lens.grid.error == "" and lens.grid.payload["layer"] == "0"


class Flaky(nn.Module):
    """A CNN whose forward raises while ``fail`` is set."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.act = nn.ReLU()
        self.fail = False

    def forward(self, x):
        if self.fail:
            raise RuntimeError("sensor unplugged")
        return self.act(self.conv(x))


def test_failing_forward_shows_in_place_and_recovers(images):
    net = Flaky().eval()
    lens = Lens(net, images[:6])
    net.fail = True
    lens.grid.set_state({"layer": "act"})  # not cached yet: needs a forward
    assert "ForwardError" in lens.grid.error and "sensor unplugged" in lens.grid.error
    assert "data" not in lens.grid.payload and lens.grid.payload["layer"] == "act"
    lens.grid.set_state({"neuron": 1})
    assert "sensor unplugged" in lens.detail.error
    net.fail = False
    lens.grid.set_state({"image_index": 3})
    assert lens.grid.error == "" and lens.grid.payload["shape"] == [4, 14, 14]


def _gated():
    """conv(3->4) -> Gate -> ReLU ("2": 4 x 14 x 14) -> conv(4->6) ("3": 6 x 12 x 12)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), Gate(), nn.ReLU(), nn.Conv2d(4, 6, 3)).eval()
    return net, net[1]


def _top(detail):
    return np.frombuffer(detail.top["indices"], np.int32).tolist()


def test_first_neuron_click_ranks_off_the_kernel_thread(images):
    net, gate = _gated()
    lens = Lens(net, images[:6], layer="2")
    lens.grid.set_state({"neuron": 1})  # a click: returns while the ranking waits at the gate
    assert gate.entered.wait(15), "the ranking pass did not start on a worker thread"
    d = lens.detail
    assert (d.neuron, d.top_status, d.top, d.error) == (1, "pending", {}, "")
    assert d.channel["shape"] == [1, 14, 14] and d.kernels["layer"] == "0"  # the cheap part
    # the kernel thread stays usable while the pass is held: image 3 needs a forward
    lens.grid.set_state({"image_index": 3})
    assert lens.grid.payload["image_index"] == 3 and lens.grid.error == ""
    assert (d.image_index, d.top_status) == (3, "pending")
    assert lens.wait(timeout=0) is False
    gate.release.set()
    assert lens.wait(15)
    assert not gate.timed_out, "the kernel thread was held up behind the ranking"
    assert d.top_status == "ready" and d.error == ""
    assert _top(d) == lens.inspector.top_images("2", 1)[0].tolist()
    # the layer is scored now: the next neuron ranks at once, with no pending round trip
    states = []
    d.observe(lambda c: states.append(c["new"]), names=["top_status"])
    lens.neuron = 3
    assert d.top_status == "ready" and states == [] and lens.wait(timeout=0)
    assert _top(d) == lens.inspector.top_images("2", 3)[0].tolist()
    lens.neuron = -1
    assert (d.top_status, d.top) == ("none", {})


def test_a_newer_ranking_supersedes_an_older_one(images):
    net, gate = _gated()
    lens = Lens(net, images[:6], layer="2")
    d, applied = lens.detail, []
    d.observe(lambda c: c["new"] and applied.append((d.layer, d.neuron, _top(d))), names=["top"])
    lens.neuron = 1
    assert gate.entered.wait(15)  # the worker holds layer 2's pass
    lens.layer = "3"  # neuron 1 is kept (6 channels): a request for ("3", 1) ...
    lens.neuron = 4  # ... replaced before it started
    assert (d.layer, d.neuron, d.top_status) == ("3", 4, "pending")
    gate.release.set()
    assert lens.wait(15) and not gate.timed_out
    assert applied == [("3", 4, lens.inspector.top_images("3", 4)[0].tolist())]
    assert d.top_status == "ready"
    assert lens.inspector.has_scores("2"), "the superseded pass's scores are kept"


class FailsOnBatches(nn.Module):
    """Runs one image at a time, fails on a batch: the detail works, the ranking pass fails."""

    def forward(self, x):
        if len(x) > 1:
            raise RuntimeError("batch too large for this device")
        return x


def test_ranking_errors_show_in_place(images):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), FailsOnBatches(), nn.ReLU()).eval()
    lens = Lens(net, images[:6], layer="2")
    lens.neuron = 2
    assert lens.wait(15)
    d = lens.detail
    assert d.top_status == "error" and d.top == {} and d.channel["shape"] == [1, 14, 14]
    assert "ForwardError" in d.error and "batch too large" in d.error
    lens.neuron = -1
    assert (d.error, d.top_status) == ("", "none")


class NaNAfter(nn.Module):
    def forward(self, x):
        return x * torch.where(x > 0, torch.nan, 1.0)


def test_nan_layer_shows_in_place(images):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), NaNAfter(), nn.ReLU()).eval()
    with torch.no_grad():
        net[0].bias.fill_(-100.0)  # all negative: finite for the dry run's image ...
    lens = Lens(net, images[:4])
    with torch.no_grad():
        net[0].bias.fill_(0.0)  # ... now NaN appears in layer "1"
    lens.grid.set_state({"layer": "1", "image_index": 2})
    assert "'1'" in lens.grid.error and "NaN" in lens.grid.error
    lens.grid.set_state({"layer": "0"})
    assert lens.grid.error == "" and "data" in lens.grid.payload


def _big_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 512, 1),
        nn.AdaptiveAvgPool2d(7),
        nn.Flatten(),
        nn.Linear(512 * 49, 10),
    ).eval()


def test_payload_bytes_per_displayed_pixel_through_the_widget():
    """What get_state() sends for resnet18-like maps: 112x112 (downsampled, and said) and 512x7x7."""
    lens = Lens(_big_net(), torch.rand(2, 3, 224, 224))
    for layer, shown in [("0", 64 * 56 * 56), ("3", 512 * 7 * 7), ("4", 25088)]:
        lens.layer = layer
        p = lens.grid.get_state()["payload"]
        assert np.prod(p["shape"]) == shown
        assert payload_nbytes(p) / shown <= 1.1, (layer, payload_nbytes(p) / shown)
    lens.layer = "0"
    assert lens.grid.payload["downsample"] == 2 and lens.grid.payload["source_shape"] == [
        64,
        112,
        112,
    ]


def test_many_channels_page_and_sort_on_the_kernel():
    net = nn.Sequential(nn.Conv2d(3, 3000, 1)).eval()
    lens = Lens(net, torch.rand(2, 3, 8, 8))
    p = lens.grid.payload
    assert (p["pages"], p["shape"][0]) == (2, 2048)
    lens.grid.set_state({"sort": "max"})
    want = torch.argsort(
        lens.activations("0", 0)[0].reshape(3000, -1).amax(1), descending=True, stable=True
    )
    np.testing.assert_array_equal(channel_indices(lens.grid.payload), want[:2048].numpy())
    lens.grid.set_state({"page": 1})
    assert lens.grid.payload["page"] == 1 and lens.grid.payload["shape"][0] == 952


def test_upload_adds_an_image_and_selects_it(model, images):
    lens = Lens(model, images[:3])
    buf = io.BytesIO()
    Image.new("RGB", (32, 20), (200, 10, 10)).save(buf, format="PNG")
    item = {
        "name": "red.png",
        "type": "image/png",
        "size": len(buf.getvalue()),
        "content": memoryview(buf.getvalue()),
        "last_modified": 0,
    }
    lens.upload.set_state({"value": [item]})
    assert lens.picker.count == 4 and lens.image_index == 3 and lens.picker.error == ""
    assert lens.grid.payload["image_index"] == 3
    junk = dict(item, name="notes.txt", content=memoryview(b"not an image"))
    lens.upload.set_state({"value": [junk]})
    assert "upload failed" in lens.picker.error and lens.picker.count == 4


def test_precomputed_frames_for_kernel_less_pages(lens):
    total = lens.precompute(layers=["0", "4"], images=[0, 1])
    assert set(lens.grid.frames) == {"0|0", "4|0", "0|1", "4|1"}
    assert total == sum(payload_nbytes(p) for p in lens.grid.frames.values())
    np.testing.assert_allclose(
        decode(lens.grid.frames["4|1"]), lens.activations("4", 1)[0].numpy(), atol=0.05
    )
    with pytest.raises(ValueError, match="max_bytes"):
        lens.precompute(max_bytes=100)


def test_precompute_and_the_page_build_the_same_frames(lens):
    """One builder (cnnlens.views.grid.image_frames): the live precompute honours ``sort``
    as the exported page does (it used to ignore it)."""
    from cnnlens.export import lens_frames

    lens.grid.sort = "max"
    lens.precompute(layers=["0", "4"], images=[1])
    assert lens.grid.frames == lens_frames(lens, ["0", "4"], [1])
    assert {p["sort"] for p in lens.grid.frames.values()} == {"max"}


@pytest.mark.parametrize(
    "name", ["activation_grid", "layer_tree", "filter_grid", "neuron_detail", "image_picker"]
)
def test_each_widget_has_a_js_twin(name):
    """One class, one ESM entry, same name; the entry's first comment names its twin."""
    first = (JS / f"{name}.js").read_text().splitlines()[0]
    assert f"cnnlens/widgets/{name}.py" in first


KERNEL_CODE = r"""
import sys, torch
sys.path.insert(0, {tests!r})
from test_lens_widget import _gated
from cnnlens.widgets.lens import Lens
net, gate = _gated()
lens = Lens(net, torch.rand(6, 3, 16, 16), layer="2")
print(lens.grid.model_id)
"""


@pytest.mark.slow
def test_real_kernel_click_while_ranking():
    """ipykernel + ipywidgets 8: a browser click (a comm message) returns while the ranking is
    held, the kernel answers meanwhile, and the worker's result reaches iopub."""
    import os
    import sys

    manager = pytest.importorskip("jupyter_client.manager")
    env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"}
    km, kc = manager.start_new_kernel(kernel_name="python3", env=env)
    try:
        out, updates = [], []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            if msg["msg_type"] == "comm_msg" and msg["content"]["data"].get("method") == "update":
                updates.append(msg["content"]["data"]["state"])

        code = KERNEL_CODE.format(tests=str(pathlib.Path(__file__).parent))
        reply = kc.execute_interactive(code, timeout=120, output_hook=hook)
        assert reply["content"]["status"] == "ok"
        grid_id = "".join(out).split()[-1]
        data = {"method": "update", "state": {"neuron": 1}, "buffer_paths": []}
        kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": grid_id, "data": data}))
        out.clear()
        probe = "print(gate.entered.wait(15), lens.neuron, lens.detail.top_status)"
        kc.execute_interactive(probe, timeout=30, output_hook=hook)  # answered while held
        assert "".join(out).split() == ["True", "1", "pending"]
        out.clear(), updates.clear()
        done = "gate.release.set(); print(lens.wait(15), lens.detail.top_status, gate.timed_out)"
        kc.execute_interactive(done, timeout=60, output_hook=hook)
        assert "".join(out).split() == ["True", "ready", "False"]
        assert any(s.get("top_status") == "ready" and "top" in s for s in updates)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
