"""Tier 1 for Compare's canonical maps (issue 14, items 2 and 4): ``cmp.canonical_maps``,
the per-(pair, metric) cache, an image switch without a new pass, the view's payloads
and states, a spectrum click selecting a direction, and the export frames."""
import numpy as np
import pytest
import torch
from torch import nn

from cnnlens.encode import decode, encode_canonical_image, encode_canonical_pair
from cnnlens.similarity.canonical import canonical_maps
from cnnlens.widgets.canonical_view import CanonicalView
from cnnlens.widgets.compare import Compare


def small_net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()


class Counted(nn.Module):
    """Counts the images it forwards (a pass over the data is len(data) of them)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.images = inner, 0

    def forward(self, x):
        self.images += x.shape[0]
        return self.inner(x)


def _compare(**options):
    g = torch.Generator().manual_seed(0)
    data = torch.rand(40, 3, 10, 10, generator=g)
    a, b = Counted(small_net(0)), Counted(small_net(1))
    c = Compare(a, b, data, metric="svcca", layers_a=["inner.0", "inner.2"],
                layers_b=["inner.0", "inner.2"], names=("left", "right"), **options)
    assert c.wait(60)
    return c


@pytest.fixture()
def cmp():
    c = _compare()  # the maps' statistics come from the matrix pass
    yield c
    c.close()


@pytest.fixture()
def cmp_pass():
    c = _compare(maps=False)  # the fallback: one extra pass per pair (and metric)
    yield c
    c.close()


def test_canonical_maps_matches_the_core_function_and_caches_per_pair_and_metric(cmp_pass):
    cmp = cmp_pass
    a, b = cmp._models
    res = cmp.canonical_maps(1, 1, image=2, k=3)
    ref = canonical_maps(a, b, cmp._data, "inner.2", "inner.2", image=2, k=3, metric="svcca")
    np.testing.assert_allclose(res.rho, ref.rho, atol=1e-10)
    np.testing.assert_allclose(res.maps_a, ref.maps_a, atol=1e-4)  # float32 forwards, other batches
    np.testing.assert_allclose(res.maps_b, ref.maps_b, atol=1e-4)
    assert res.maps_a.shape == (3, 10, 10) and res.image == 2
    assert cmp.maps_job.passes == 1
    cmp.canonical_maps(1, 1, image=5, k=2)        # same pair and metric: cached directions
    assert cmp.maps_job.passes == 1
    cmp.metric = "pwcca"                          # another metric: its own directions
    cmp.canonical_maps(1, 1, image=5, k=2)
    assert cmp.maps_job.passes == 2
    cmp.metric = "linear_cka"                     # CKA: SVCCA's, cached already
    assert cmp.canonical_maps(1, 1, k=2).metric == "svcca"
    assert cmp.maps_job.passes == 2
    with pytest.raises(IndexError):
        cmp.canonical_maps(5, 0)


def test_image_switch_reuses_the_directions_without_a_pass(cmp):
    a, b = cmp._models
    first = cmp.canonical_maps(0, 1, image=0, k=2)
    n = len(cmp._data)
    before = (a.images, b.images)
    other = cmp.canonical_maps(0, 1, image=7, k=2)
    # only image 7's activations (one forward each at most; none if the panes cached it)
    assert a.images - before[0] <= 1 and b.images - before[1] <= 1 < n
    np.testing.assert_array_equal(other.dirs_a, first.dirs_a)
    x = cmp.lens_a.inspector.activations("inner.0", images=7)[0].double()
    expect = np.einsum("chw,ck->khw", x.numpy() - first.mean_a[:, None, None], first.dirs_a)
    np.testing.assert_allclose(other.maps_a, expect, atol=1e-6)


def test_selecting_a_cell_fills_the_view_off_the_kernel_thread_and_the_picker_repaints(cmp):
    view = cmp.maps
    assert view.status == "empty" and view.pair_data == {}
    cmp.heatmap.set_state({"selected": [[1, 0]]})   # what a click sends
    assert view.pair == [1, 0]
    assert cmp.maps_job.wait(60)
    assert view.status == "ready", view.error
    pd, im = view.pair_data, view.image_data
    assert pd["pair"] == [1, 0] and pd["k"] == 4 and pd["layer_a"] == "inner.2"
    assert im["image"] == 0 and im["maps_a"]["shape"] == [4, 10, 10]
    assert "no extra pass over the data" in view.cost  # from the matrix pass's statistics
    passes = cmp.maps_job.passes
    cmp.lens_a.grid.set_state({"image_index": 3})   # the pane's image picker
    assert cmp.maps_job.wait(60)
    assert view.image_data["image"] == 3 and view.pair_data["pair"] == [1, 0]
    assert cmp.maps_job.passes == passes
    cmp.lens_b.grid.set_state({"image_index": 5})   # either pane's picker
    assert cmp.maps_job.wait(60) and view.image_data["image"] == 5
    cmp.picker.value = "linear_cka"                 # CKA: the view says where the maps come from
    assert cmp.maps_job.wait(60)
    assert "SVCCA of the same pair" in view.note and view.status == "ready"
    cmp.picker.value = "svcca"
    assert cmp.maps_job.wait(60) and view.note == ""
    # binary payloads survive the widget state (no JSON lists)
    state = view.get_state()
    assert isinstance(state["image_data"]["maps_a"]["data"], (bytes, memoryview))


def test_spectrum_points_follow_the_curve_and_a_click_selects_a_direction(cmp):
    cmp.pair = (1, 1)
    dots = cmp.maps.dots
    assert dots in cmp.spectrum.marks
    np.testing.assert_array_equal(dots.y, cmp.spectrum.curve.y)
    dots.set_state({"selected": [2]})               # a click on the third point (bqplot JSON)
    assert list(dots.selected) == [2]
    cmp.maps.set_state({"direction": 2})            # the view's JS mirrors it to the trait
    assert cmp.maps.direction == 2


def test_errors_show_in_place(cmp):
    cmp.maps_job.request((0, 0), "inner.0", "nope", 0, "svcca")
    assert cmp.maps_job.wait(60)
    assert cmp.maps.status == "error" and "nope" in cmp.maps.error


def test_payloads_decode_to_the_maps():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 3, 8, 8, generator=g)
    net = small_net(0)
    cm = canonical_maps(net, net, x, "0", "2", image=4, k=3, metric="cca")
    p = encode_canonical_image(cm, x[4])
    back = decode(p["maps_a"])
    span = cm.maps_a.max((1, 2)) - cm.maps_a.min((1, 2))
    assert np.all(np.abs(back - cm.maps_a).max((1, 2)) <= span / 255 * 0.51 + 1e-6)
    np.testing.assert_allclose(np.frombuffer(p["corr"], np.float32), cm.corr, rtol=1e-6)
    q = encode_canonical_pair(cm, x, n=3, pair=(0, 1), labels=("A", "B"))
    top = np.frombuffer(q["top_a"], np.int32).reshape(3, 3)
    order = np.frombuffer(q["thumb_index"], np.int32)
    for d in range(3):
        np.testing.assert_array_equal(order[top[d]], cm.top_images(d, "a", n=3))
    assert q["thumbs"]["shape"][0] == len(order) and len(set(order.tolist())) == len(order)


def test_view_defaults_and_state():
    v = CanonicalView()
    assert v.get_state()["status"] == "empty" and v.overlay is True
    v.set_state({"overlay": False, "direction": 1})
    assert v.overlay is False and v.direction == 1


def test_export_frames_hold_the_exported_pairs_and_images_and_say_what_was_left_out(cmp):
    from cnnlens.export.maps import maps_for_page

    cmp.pair = (1, 1)
    assert cmp.maps_job.wait(60)
    layers = cmp.heatmap.layers_a
    frames, text, left = maps_for_page(cmp, layers, layers, [0, 4], maps="cached")
    assert list(frames) == ["1,1"] and set(frames["1,1"]["images"]) == {"0", "4"}
    assert len(left) == 3 and "not computed" in text and "maps=True" in text
    assert frames["1,1"]["images"]["4"]["image"] == 4
    frames, text, left = maps_for_page(cmp, layers, layers, [0], maps=True, seconds=None)
    assert sorted(frames) == ["0,0", "0,1", "1,0", "1,1"] and left == []
    assert text == "canonical maps: 4 of 4 pairs x 1 images"
    frames, _, left = maps_for_page(cmp, layers, layers, [0], max_bytes=0)  # page budget
    assert len(frames) == 1 and all("page budget" in line for line in left)
    assert maps_for_page(cmp, layers, layers, [0], maps=False) == ({}, "", [])


def test_to_html_embeds_the_maps(cmp, tmp_path):
    cmp.pair = (0, 1)
    report = cmp.to_html(tmp_path / "page.html", images=[0, 2], featvis=False)
    html = (tmp_path / "page.html").read_text()
    assert "canonical maps: 4 of 4 pairs x 2 images" in html
    assert report.left_out == []
    assert cmp.maps.frames == {}  # the page's frames are not left on the live widget


def test_another_pair_cancels_a_running_pass_another_image_does_not(cmp_pass, monkeypatch):
    cmp = cmp_pass
    import threading
    import time

    from cnnlens.widgets import maps_job

    job, started = cmp.maps_job, threading.Event()
    real = maps_job.iter_batches

    def slow(data, batch_size):  # a pass long enough to ask for something else meanwhile
        for batch in real(data, 4):
            started.set()
            time.sleep(0.05)
            yield batch

    monkeypatch.setattr(maps_job, "iter_batches", slow)
    la, lb = cmp.heatmap.layers_a, cmp.heatmap.layers_b
    job.request((1, 1), la[1], lb[1], 0, "svcca")
    assert started.wait(10)
    job.request((1, 1), la[1], lb[1], 3, "svcca")   # same pair, another image: keep the pass
    assert job.wait(60)
    assert job.passes == 1 and cmp.maps.image_data["image"] == 3
    started.clear()
    job.request((0, 0), la[0], lb[0], 0, "svcca")
    assert started.wait(10)
    job.request((1, 0), la[1], lb[0], 0, "svcca")   # another pair: the running pass stops
    assert job.wait(60)
    assert job.passes == 2 and not job.cached(la[0], lb[0], "svcca")
    assert cmp.maps.pair_data["pair"] == [1, 0] and cmp.maps.status == "ready"


def test_cancel_stops_the_pass_and_clears_the_progress(cmp_pass, monkeypatch):
    cmp = cmp_pass
    import threading
    import time

    from cnnlens.widgets import maps_job

    real, started = maps_job.iter_batches, threading.Event()

    def slow(data, batch_size):
        for batch in real(data, 4):
            started.set()
            time.sleep(0.05)
            yield batch

    monkeypatch.setattr(maps_job, "iter_batches", slow)
    job = cmp.maps_job
    job.request((0, 0), "inner.0", "inner.0", 0, "svcca")
    assert started.wait(10) and cmp.maps.status == "running"
    job.cancel()
    assert job.wait(60)
    assert job.passes == 0 and cmp.maps.status == "empty"
