"""Canonical maps: CCA directions of two layers as maps over an image (issue 14, item 1)."""
import numpy as np
import pytest
import torch
from torch import nn

import cnnlens as cl
from cnnlens.capture import capture
from cnnlens.probe import LayerNotFound
from cnnlens.similarity import CanonicalMaps, canonical_maps
from cnnlens.similarity import cca as cca_score
from cnnlens.similarity import svcca as svcca_score


def _mix(channels: int, seed: int) -> nn.Conv2d:
    """A fixed, well-conditioned invertible 1x1 conv (a channel mix plus a bias)."""
    g = torch.Generator().manual_seed(seed)
    mix = nn.Conv2d(channels, channels, 1)
    with torch.no_grad():
        mix.weight.copy_((torch.eye(channels) + 0.3 * torch.randn(channels, channels,
                                                                   generator=g))[..., None, None])
        mix.bias.copy_(torch.randn(channels, generator=g))
    return mix


@pytest.fixture(scope="module")
def pair():
    """A and B = A followed by an invertible channel mix: the same spatial maps at "2"/"3"."""
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1),
                      nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 5 * 5, 5)).eval()
    b = nn.Sequential(*list(a)[:3], _mix(6, 1)).eval()
    images = torch.rand(30, 3, 10, 10, generator=torch.Generator().manual_seed(2))
    return a, b, images


@pytest.mark.parametrize("metric, keep", [("cca", 0.99), ("pwcca", 0.99), ("svcca", 1.0)])
def test_invertible_channel_mix_gives_identical_maps(pair, metric, keep):
    a, b, images = pair
    res = canonical_maps(a, b, images, "2", "3", image=3, k=4, metric=metric, keep=keep)
    assert isinstance(res, CanonicalMaps) and res.rho.shape == (4,)
    assert abs(res.rho[0] - 1) < 1e-6
    assert res.maps_a.shape == res.maps_b.shape == (4, 10, 10)
    assert (res.corr > 0.999).all()
    # equal up to B's own float32 forward (the mix is applied in float32, ~1e-7 relative)
    np.testing.assert_allclose(res.maps_a, res.maps_b, atol=1e-5)
    assert "positions" in res.convention and res.image == 3


def test_rho_matches_in_memory_cca_and_does_not_depend_on_batching(pair):
    # conv1 of A vs B's mixed conv2: distinct rho, so each direction is well defined (under
    # the mix's rho = 1 x 6 any rotation of the paired directions is as good)
    a, b, images = pair
    xa, xb = capture(a, images, ["0"])["0"], capture(b, images, ["3"])["3"]
    res = canonical_maps(a, b, images, "0", "3", image=5, k=3, metric="svcca", batch_size=7)
    assert (np.diff(res.rho) < -1e-3).all()
    np.testing.assert_allclose(res.rho, svcca_score(xa, xb).rho[:3], atol=1e-10)
    same = canonical_maps(a, b, images, "0", "3", image=5, k=3, metric="svcca", batch_size=64)
    np.testing.assert_allclose(res.maps_a, same.maps_a, atol=1e-8)
    np.testing.assert_allclose(res.maps_b, same.maps_b, atol=1e-8)
    one = canonical_maps(a, a, images, "0", "2", image=5, k=3, metric="cca")  # one forward
    np.testing.assert_allclose(one.rho, cca_score(xa, capture(a, images, ["2"])["2"]).rho[:3],
                               atol=1e-10)


def test_another_image_needs_no_new_cca(pair):
    a, b, images = pair
    xa, xb = capture(a, images, ["2"])["2"], capture(b, images, ["3"])["3"]
    r0 = canonical_maps(a, b, images, "2", "3", image=0, k=3, metric="cca")
    r7 = canonical_maps(a, b, images, "2", "3", image=7, k=3, metric="cca")
    moved = r0.for_image(xa[7], xb[7], image=7)
    np.testing.assert_allclose(moved.maps_a, r7.maps_a, atol=1e-10)
    np.testing.assert_allclose(moved.corr, r7.corr, atol=1e-10)
    # the directions have unit variance over the datapoints (every position of every image)
    ma = np.stack([r0.project(xa[i], xb[i])[0] for i in range(len(images))])
    np.testing.assert_allclose(ma.transpose(1, 0, 2, 3).reshape(3, -1).std(1), 1, atol=1e-8)


def test_top_images_score_the_mean_projection(pair):
    a, b, images = pair
    res = canonical_maps(a, b, images, "2", "3", image=4, k=2, metric="cca")
    scores = res.image_scores(0, "a")
    assert scores.shape == (30,)
    assert scores[4] == pytest.approx(res.maps_a[0].mean(), abs=1e-10)
    top = res.top_images(0, "a", n=5)
    assert len(top) == 5 and (np.diff(scores[top]) <= 0).all() and scores[top[0]] == scores.max()
    np.testing.assert_array_equal(top, res.top_images(0, "b", n=5))  # same variate both sides
    with pytest.raises(IndexError, match="direction"):
        res.image_scores(2, "a")
    with pytest.raises(ValueError, match="side"):
        res.top_images(0, "c")


def test_demo_real_vs_real_seed1_conv2():
    nets = cl.demo.models(["real", "real_seed1"], progress=False)
    images = cl.demo.data().test.images
    res = cl.canonical_maps(nets["real"], nets["real_seed1"], images, "conv2", "conv2",
                            image=0, k=4)
    assert res.rho[0] > 0.9
    assert res.corr[0] > 0.8
    assert res.maps_a.shape == res.maps_b.shape == (4, 8, 8)
    assert "kept" in res.convention and "0.99" in res.convention  # SVCCA's subspaces stated


def test_different_spatial_sizes_go_through_resize(pair):
    a, _, images = pair
    small = nn.Sequential(*list(a)[:3], nn.AvgPool2d(2), _mix(6, 3)).eval()  # 10x10 -> 5x5
    res = canonical_maps(a, small, images, "2", "4", image=2, k=3, metric="cca")
    assert "resize" in res.convention and "5x5" in res.convention
    assert res.maps_a.shape == (3, 10, 10) and res.maps_b.shape == (3, 5, 5)
    assert abs(res.rho[0] - 1) < 1e-6 and (res.corr > 0.999).all()
    with pytest.raises(ValueError, match="resize"):
        canonical_maps(a, small, images, "2", "4", reduce="positions")


def test_fully_connected_side_gives_one_value_per_direction(pair):
    a, _, images = pair
    res = canonical_maps(a, a, images, "2", "6", image=1, k=2)
    assert res.maps_a.shape == (2, 10, 10) and res.maps_b.shape == (2, 1, 1)
    assert "fully connected" in res.convention and np.isnan(res.corr).all()
    assert res.image_scores(0, "b")[1] == pytest.approx(res.maps_b[0, 0, 0], abs=1e-10)
    with pytest.raises(ValueError, match="two conv layers"):
        canonical_maps(a, a, images, "2", "6", reduce="positions")


def test_bad_inputs_raise_clear_errors(pair):
    a, b, images = pair
    with pytest.raises(LayerNotFound, match="conv2"):
        canonical_maps(a, b, images, "conv2", "3")
    with pytest.raises(IndexError, match="30 images"):
        canonical_maps(a, b, images, "2", "3", image=30)
    with pytest.raises(IndexError, match=">= 0"):
        canonical_maps(a, b, images, "2", "3", image=-1)
    with pytest.raises(IndexError, match="held 30"):  # length known only after the pass
        canonical_maps(a, b, iter(images.split(8)), "2", "3", image=40)
    with pytest.raises(ValueError, match="CCA-family"):
        canonical_maps(a, b, images, "2", "3", metric="linear_cka")
    with pytest.raises(ValueError, match="k must be"):
        canonical_maps(a, b, images, "2", "3", k=0)
    with pytest.raises(ValueError, match="reduce"):
        canonical_maps(a, b, images, "2", "3", reduce="flatten")
    with pytest.raises(ValueError, match="exactly one layer"):
        canonical_maps(a, b, images, ["0", "2"], "3")


def test_no_hook_is_left_after_an_error(pair):
    a, _, images = pair
    small = nn.Sequential(*list(a)[:3], nn.AvgPool2d(2)).eval()
    with pytest.raises(ValueError):
        canonical_maps(a, small, images, "2", "3", reduce="positions")
    for m in (*a.modules(), *small.modules()):
        assert not m._forward_hooks and not m._forward_pre_hooks


def test_flat_api():
    assert cl.canonical_maps is cl.similarity.canonical_maps
    assert "canonical_maps" in cl.__all__


def test_direction_helpers_whiten_and_pair(pair):
    """linalg.canonical_directions / svcca_directions: A^T Sxx A = I, A^T Sxy B = diag(rho)."""
    from cnnlens.similarity.joint import pair_from_data
    from cnnlens.similarity.linalg import (
        canonical_directions,
        feature_basis,
        n_keep,
        svcca_directions,
        svcca_rho,
        whitened_cross,
        whitener,
    )

    g = torch.Generator().manual_seed(4)
    x = torch.randn(500, 5, generator=g, dtype=torch.float64)
    x[:, 2] = 3.0  # a constant neuron: dropped by the whitening, weight 0 in every direction
    y = x[:, [0, 1, 3]] @ torch.randn(3, 4, generator=g, dtype=torch.float64)
    y += 0.5 * torch.randn(500, 4, generator=g, dtype=torch.float64)
    p = pair_from_data(x, y, higher=False)
    wx, wy = (whitener(s.S, s.mean, p.n) for s in (p.x, p.y))
    A, B, rho = canonical_directions(wx, wy, p.M)
    assert A.shape == (5, 4) and B.shape == (4, 4) and (A[2] == 0).all()
    torch.testing.assert_close(A.mT @ p.x.S @ A, torch.eye(4, dtype=torch.float64))
    torch.testing.assert_close(A.mT @ p.M @ B, torch.diag(rho))
    torch.testing.assert_close(rho, torch.linalg.svdvals(whitened_cross(wx, wy, p.M)))
    bx, by = feature_basis(p.x.S), feature_basis(p.y.S)
    A, B, rho = svcca_directions(bx, 2, by, 3, p.M)
    torch.testing.assert_close(A.mT @ p.M @ B, torch.diag(rho))
    torch.testing.assert_close(rho, svcca_rho(bx, 2, by, 3, p.M))
    assert n_keep(bx, 2) == 2


def test_int_keep_is_stated(pair):
    a, b, images = pair
    res = canonical_maps(a, b, images, "0", "3", k=2, keep=3)
    assert "keep=3" in res.convention and "kept 3 of 8 (A) and 3 of 6 (B)" in res.convention


@pytest.mark.parametrize("metric", ["svcca", "cca"])
def test_a_dead_layer_raises(pair, metric):
    a, _, images = pair
    dead = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    with torch.no_grad():
        dead[0].weight.zero_()
        dead[0].bias.fill_(-1.0)  # ReLU output 0 everywhere
    with pytest.raises(ValueError, match="constant"):
        canonical_maps(a, dead, images, "2", "1", metric=metric)
