"""The wire format (cnnlens.encode): round trips, sizes, downsampling, pages, modes."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlens.encode import (
    MAX_PIXELS,
    channel_indices,
    decode,
    encode_images,
    encode_maps,
    encode_weights,
    payload_nbytes,
)


def _tolerance(x, p):
    """Half a step of the encoded scale, which is at most a hair wider than the true step."""
    flat = x.reshape(x.shape[0], -1) if x.dim() > 1 else x.reshape(1, -1)
    lo, hi = flat.amin(1).numpy(), flat.amax(1).numpy()
    dt = np.float16 if p["scale_dtype"] == "float16" else np.float32
    scale = np.frombuffer(p.get("scale"), dt).astype(np.float32)[: len(lo)]  # leading tiles
    slack = 1e-3 * np.abs(lo) / 255 + 1e-7 if dt is np.float16 else 1e-7
    assert (scale <= (hi - lo) / 255 * 1.002 + slack).all(), (
        "encoded scale much wider than the data"
    )
    return scale / 2 + 1e-6 * (1 + flat.abs().amax(1).numpy())


def _numbers_in_json(v):
    """Longest list of numbers anywhere in a payload (tensors must travel as bytes)."""
    if isinstance(v, dict):
        return max([_numbers_in_json(x) for x in v.values()] + [0])
    if isinstance(v, (list, tuple)):
        return max([len(v)] + [_numbers_in_json(x) for x in v])
    return 0


@pytest.mark.parametrize("shape", [(6, 20, 20), (40, 5, 5), (3, 64, 64)])
def test_maps_round_trip_within_half_a_step(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1)) * 3 + 1
    p = encode_maps(x, layer="l", image_index=4)
    assert p["layer"] == "l" and p["image_index"] == 4 and p["kind"] == "maps"
    err = np.abs(decode(p) - x.numpy()).reshape(shape[0], -1).max(1)
    assert (err <= _tolerance(x, p)).all()
    assert isinstance(p["data"], bytes) and len(p["data"]) == math.prod(shape)
    assert _numbers_in_json(p) <= 4, "only shapes may be JSON lists"


@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 12), h=st.integers(1, 9), w=st.integers(1, 9), scale=st.floats(1e-3, 1e3))
def test_maps_round_trip_any_shape(c, h, w, scale):
    x = torch.randn(c, h, w, generator=torch.Generator().manual_seed(c * 100 + h * 10 + w)) * scale
    p = encode_maps(x)
    got = decode(p).reshape(-1) if p["kind"] == "vector" else decode(p)
    want = x.reshape(-1).numpy() if p["kind"] == "vector" else x.numpy()
    tol = _tolerance(x.reshape(-1) if p["kind"] == "vector" else x, p)
    assert (np.abs(got - want).reshape(len(tol), -1) <= tol[:, None]).all()


def test_constant_channel_is_exact_and_scale_zero():
    x = torch.zeros(2, 4, 4)
    x[1] = 2.5
    p = encode_maps(x)
    np.testing.assert_array_equal(decode(p), x.numpy())


def test_vectors_and_pooled_outputs_share_one_scale():
    for act in (torch.randn(100), torch.randn(100, 1, 1)):
        p = encode_maps(act)
        assert p["kind"] == "vector" and p["shape"] == [100]
        assert len(p["offset"]) in (2, 4) and len(p["data"]) == 100  # one offset (fp16 or fp32)
        np.testing.assert_allclose(
            decode(p), act.reshape(-1).numpy(), atol=float(_tolerance(act.reshape(-1), p)[0])
        )


def test_large_maps_are_downsampled_and_keep_the_true_range():
    x = torch.rand(4, 112, 112)
    x[0, 0, 0] = 9.0  # a single hot pixel: pooled away, but still the channel's max
    p = encode_maps(x)
    assert p["downsample"] == 2 and p["shape"] == [4, 56, 56] and p["source_shape"] == [4, 112, 112]
    d = decode(p)
    assert d[0].max() < 9.0
    offset = np.frombuffer(p["offset"], np.float32)
    scale = np.frombuffer(p["scale"], np.float32)
    assert offset[0] + 255 * scale[0] == pytest.approx(9.0, rel=1e-5)
    pooled = torch.nn.functional.avg_pool2d(x[None], 2)[0].numpy()
    assert np.abs(d[1:] - pooled[1:]).max() <= (1 / 255) / 2 + 1e-6


def test_many_channels_are_paged_and_sorted_pages_hold_the_top_channels():
    x = torch.rand(3000, 8, 8, generator=torch.Generator().manual_seed(0))
    p0 = encode_maps(x)
    assert p0["pages"] == 2 and p0["shape"][0] == 2048 and p0["channels"] is None
    np.testing.assert_array_equal(channel_indices(encode_maps(x, page=1)), np.arange(2048, 3000))
    top = encode_maps(x, sort="max", page=0)
    want = torch.argsort(x.reshape(3000, -1).amax(1), descending=True, stable=True)[:2048].numpy()
    np.testing.assert_array_equal(channel_indices(top), want)
    np.testing.assert_allclose(decode(top), x[want].numpy(), atol=1 / 255)
    assert encode_maps(x, page=99)["page"] == 1, "out-of-range pages clamp to the last"
    with pytest.raises(ValueError, match="sort must be one of"):
        encode_maps(x, sort="median")


@pytest.mark.parametrize(
    "shape",
    [
        (64, 112, 112),
        (64, 56, 56),
        (128, 28, 28),
        (256, 14, 14),
        (512, 7, 7),
        (2048, 7, 7),
        (4096,),
        (25088,),
    ],
)
def test_bytes_per_displayed_pixel_at_most_1_1(shape):
    """resnet18/50/VGG-like layer shapes: buffers + JSON metadata per pixel actually sent and shown."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    p = encode_maps(x, layer="layer4.1.conv2", image_index=123)
    shown = math.prod(p["shape"])
    assert shown <= MAX_PIXELS
    assert payload_nbytes(p) / shown <= 1.1, (shape, payload_nbytes(p) / shown)


def test_small_payloads_have_a_small_fixed_header():
    """A 1000-unit classifier is 1000 bytes of data plus a header of well under 400 bytes."""
    p = encode_maps(torch.randn(1000), layer="fc", image_index=7)
    assert payload_nbytes(p) - 1000 < 400


def test_non_finite_values_are_counted_and_encoded_finite():
    x = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(3))
    x[1, 0, 0] = float("nan")
    x[2, 1, 1] = float("inf")
    p = encode_maps(x)
    assert p["nonfinite"] == 2
    d = decode(p)
    assert np.isfinite(d).all()
    np.testing.assert_allclose(d[0], x[0].numpy(), atol=float(_tolerance(x[:1], p)[0]))


def test_images_are_stretched_per_image_and_bounded():
    ims = torch.stack(
        [torch.linspace(-2, 2, 3 * 60 * 80).reshape(3, 60, 80), torch.zeros(3, 60, 80)]
    )
    p = encode_images(ims, size=40)
    assert p["shape"] == [2, 30, 40, 3] and len(p["data"]) == 2 * 30 * 40 * 3
    q = decode(p)
    assert q[0].min() == 0 and q[0].max() == 255 and q[1].max() == 0
    assert encode_images(torch.rand(1, 16, 16), size=48)["shape"] == [1, 16, 16, 1]


def test_weights_modes():
    g = torch.Generator().manual_seed(0)
    rgb = encode_weights(torch.randn(16, 3, 5, 5, generator=g), layer="conv1")
    assert rgb["mode"] == "rgb" and rgb["layer"] == "conv1"
    assert encode_weights(torch.randn(8, 1, 3, 3))["mode"] == "grey"
    w = torch.randn(32, 16, 3, 3, generator=g)
    k = encode_weights(w)
    assert k["mode"] == "kernels" and k["shape"] == [32, 16, 3, 3]
    err = np.abs(decode(k) - w.numpy()).reshape(32, -1).max(1)
    assert (err <= _tolerance(w, k)).all()
    big = torch.randn(512, 256, 3, 3, generator=g)
    n = encode_weights(big)
    assert n["mode"] == "norms" and n["shape"] == [512]
    np.testing.assert_allclose(
        np.frombuffer(n["norms"], np.float32), big.reshape(512, -1).norm(dim=1).numpy(), rtol=1e-5
    )
    assert encode_weights(torch.randn(10, 512))["mode"] == "norms"  # linear layers: a norm per unit
    with pytest.raises(ValueError, match="weights must be"):
        encode_weights(torch.randn(3, 3, 3))


def test_encode_imports_no_widget_library():
    code = (
        "import sys, cnnlens.encode; bad = [m for m in ('ipywidgets', 'anywidget', 'bqplot') "
        "if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ids_and_unit_images_travel_as_bytes():
    from cnnlens.encode import encode_ids, encode_unit_images

    idx = torch.tensor([[3, 1], [0, 7]])
    assert np.frombuffer(encode_ids(idx), np.int32).reshape(2, 2).tolist() == idx.tolist()
    assert encode_ids([5, 2]) == np.array([5, 2], np.int32).tobytes()
    flat = torch.full((1, 3, 4, 4), 0.5)  # a flat image stays flat (encode_images stretches it)
    p = encode_unit_images(flat)
    assert p["shape"] == [1, 4, 4, 3] and set(p["data"]) == {128}
    assert encode_unit_images(torch.rand(2, 1, 300, 150), size=128)["shape"] == [2, 128, 64, 1]
