"""Invariants, streaming == in-memory, rank handling and bad input for cnnlens.similarity."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlens import similarity as sim
from cnnlens.similarity.baseline import random_spectrum


def data(seed=0, n=300, dx=12, dy=9, shared=4, noise=0.5, offset=0.0):
    """Two representations sharing a latent, with offsets (rows = datapoints)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, shared))
    x = z @ rng.normal(size=(shared, dx)) + noise * rng.normal(size=(n, dx)) + offset
    y = z @ rng.normal(size=(shared, dy)) + noise * rng.normal(size=(n, dy)) - offset
    return x, y


def orthogonal(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


METRICS = {
    "cca": lambda x, y: sim.cca(x, y),
    "svcca99": lambda x, y: sim.svcca(x, y, keep=0.99),
    "svcca_k": lambda x, y: sim.svcca(x, y, keep=5),
    "pwcca": lambda x, y: sim.pwcca(x, y),
    "linear_cka": lambda x, y: sim.linear_cka(x, y),
    "debiased_cka": lambda x, y: sim.linear_cka(x, y, debiased=True),
    "rbf_cka": lambda x, y: sim.rbf_cka(x, y, sigma=0.8),
    "rbf_cka_debiased": lambda x, y: sim.rbf_cka(x, y, sigma=0.5, debiased=True),
}
SYMMETRIC = [m for m in METRICS if m != "pwcca"]


@pytest.mark.parametrize("metric", METRICS)
def test_self_similarity_is_one(metric):
    x, _ = data(1)
    assert METRICS[metric](x, x).score == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("metric", SYMMETRIC)
def test_symmetric(metric):
    x, y = data(2)
    assert METRICS[metric](x, y).score == pytest.approx(METRICS[metric](y, x).score, abs=1e-12)


def test_pwcca_is_asymmetric_with_sides():
    x, y = data(3)
    assert sim.pwcca(x, y, side="x").score == pytest.approx(sim.pwcca(y, x, side="y").score,
                                                            abs=1e-12)
    assert abs(sim.pwcca(x, y, side="x").score - sim.pwcca(x, y, side="y").score) > 1e-4


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3), shift=st.floats(-1e3, 1e3))
def test_orthogonal_scaling_translation_invariance(seed, scale, shift):
    x, y = data(seed, n=120, dx=7, dy=6)
    xt = scale * x @ orthogonal(7, seed + 1) + shift
    yt = y @ orthogonal(6, seed + 2) / scale
    for m in ("cca", "svcca99", "svcca_k", "linear_cka", "debiased_cka", "rbf_cka"):
        assert METRICS[m](xt, yt).score == pytest.approx(METRICS[m](x, y).score, abs=1e-9), m
    # PWCCA weighs by uncentred neurons: invariant to isotropic scaling only
    assert sim.pwcca(scale * x, y).score == pytest.approx(sim.pwcca(x, y).score, abs=1e-9)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_cca_invariant_to_invertible_linear_maps(seed):
    rng = np.random.default_rng(seed)
    x, y = data(seed, n=200, dx=8, dy=6)
    a = rng.normal(size=(8, 8)) + 3 * np.eye(8)
    b = rng.normal(size=(6, 6)) + 3 * np.eye(6)
    r0, r1 = sim.cca(x, y), sim.cca(x @ a + rng.normal(size=8), y @ b)
    np.testing.assert_allclose(r1.rho, r0.rho, atol=1e-9)
    assert sim.pwcca(x @ a, y @ b).score == pytest.approx(sim.pwcca(x, y).score, abs=0.5)


def test_cca_of_a_map_of_itself_is_one():
    x, _ = data(4, dx=10)
    m = np.random.default_rng(0).normal(size=(10, 10))
    r = sim.cca(x, x @ m + 5)
    assert np.max(np.abs(r.rho - 1)) < 1e-10 and r.k_x == r.k_y == 10


def _uneven(n, seed):
    """Batch boundaries with sizes 1 .. ~n/3, including a single-row batch."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(2, n - 1), size=6, replace=False))
    return np.split(np.arange(n), np.concatenate([[1], cuts]))


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_streamed_over_uneven_batches_equals_in_memory(offset):
    x, y = data(5, n=400, dx=11, dy=8, offset=offset)
    x, y = x.astype(np.float32), y.astype(np.float32)   # float32 batches, float64 inside
    m = sim.Moments()
    for idx in _uneven(len(x), 0):
        m.update(x[idx], torch.from_numpy(y[idx]))       # numpy and torch mixed
    assert m.n == len(x)
    pairs = [(m.cca(), sim.cca(x, y)), (m.svcca(0.99), sim.svcca(x, y, 0.99)),
             (m.svcca(4), sim.svcca(x, y, 4)), (m.pwcca("x"), sim.pwcca(x, y, "x")),
             (m.pwcca("y"), sim.pwcca(x, y, "y")), (m.linear_cka(), sim.linear_cka(x, y)),
             (m.linear_cka(True), sim.linear_cka(x, y, debiased=True))]
    for streamed, memory in pairs:
        assert streamed.score == pytest.approx(memory.score, abs=1e-10), memory.metric
        np.testing.assert_allclose(streamed.rho, memory.rho, atol=1e-10)
        assert (streamed.k_x, streamed.k_y) == (memory.k_x, memory.k_y)


def test_inputs_are_never_modified():
    x, y = data(14, n=50, offset=3.0)
    xt = torch.from_numpy(y.copy())
    x0, y0 = x.copy(), xt.clone()
    sim.Moments().update(x, xt).update(x, xt)
    sim.cca(x, xt), sim.linear_cka(x, xt, debiased=True), sim.rbf_cka(x, xt)
    np.testing.assert_array_equal(x, x0)
    torch.testing.assert_close(xt, y0, rtol=0, atol=0)
    # batches fed in several chunks, row slices and conv views of float64 data included
    big = np.random.default_rng(0).normal(size=(4000, 300)) + 2.0
    conv = torch.rand(70, 3, 70, 70, dtype=torch.float64)
    b0, c0 = big.copy(), conv.clone()
    sim.Moments().update(big, big[:, ::-1])
    for how in ("positions", "flatten", "mean"):
        sim.Moments(reduce=how).update(conv, conv.flip(1))
    np.testing.assert_array_equal(big, b0)
    torch.testing.assert_close(conv, c0, rtol=0, atol=0)


def test_moments_merge_equals_one_stream():
    x, y = data(6, n=300, offset=50.0)
    a, b, whole = sim.Moments(), sim.Moments(), sim.Moments()
    for idx in _uneven(300, 1):
        whole.update(x[idx], y[idx])
        (a if idx[0] < 150 else b).update(x[idx], y[idx])
    a.merge(b)
    for f in ("cca", "svcca", "pwcca", "linear_cka"):
        assert getattr(a, f)().score == pytest.approx(getattr(whole, f)().score, abs=1e-11)
    assert a.linear_cka(True).score == pytest.approx(whole.linear_cka(True).score, abs=1e-11)


def test_moments_with_conv_batches_and_positions():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3, 5, 5)), rng.normal(size=(40, 4, 5, 5))
    m = sim.Moments(reduce="positions")
    for i in range(0, 40, 7):
        m.update(x[i:i + 7], y[i:i + 7])
    assert m.n == 40 * 25
    assert m.cca().score == pytest.approx(sim.cca(x, y, reduce="positions").score, abs=1e-12)
    with pytest.raises(ValueError, match="reduce"):
        sim.Moments().update(x, y)


def test_dead_and_dependent_neurons_are_handled_rank_revealingly():
    x, y = data(7, n=500, dx=6, dy=5)
    xd = np.hstack([x, np.zeros((500, 2)), np.full((500, 1), 3.25), x[:, :2] @ [[1], [2]]])
    r = sim.cca(xd, y)
    assert (r.k_x, r.dropped_x) == (6, 3) and np.all(np.isfinite(r.rho))
    np.testing.assert_allclose(r.rho, sim.cca(x, y).rho, atol=1e-10)
    for f in (sim.pwcca, sim.svcca, sim.linear_cka):
        assert np.isfinite(f(xd, y).score)


def test_all_constant_input_gives_a_result_with_a_reason():
    x = np.ones((50, 4)) * [1, 2, 3, 4]
    _, y = data(8, n=50)
    for r in (sim.cca(x, y), sim.pwcca(x, y), sim.svcca(x, y), sim.linear_cka(x, y),
              sim.linear_cka(x, y, debiased=True), sim.rbf_cka(x, y)):
        assert np.isnan(r.score) and not r.defined and "x" in r.reason, r
    assert sim.cca(x, y).k_x == 0 and sim.cca(x, y).dropped_x == 4


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_names_the_input(bad):
    x, y = data(9, n=30)
    y[4, 2] = bad
    for f in (sim.cca, sim.svcca, sim.linear_cka, sim.rbf_cka):
        with pytest.raises(ValueError, match=r"^y contains 1 non-finite.*\(4, 2\)"):
            f(x, y)
    with pytest.raises(ValueError, match="x batch 0 contains"):
        sim.Moments().update(y, x)


def test_shape_errors():
    x, y = data(10, n=30)
    with pytest.raises(ValueError, match="x has 30 datapoints.*y has 29"):
        sim.cca(x, y[:-1])
    with pytest.raises(ValueError, match=r"must be 2-D.*x\[:, None\]"):
        sim.linear_cka(x[:, 0], y)
    with pytest.raises(ValueError, match="empty"):
        sim.svcca(x[:0], y[:0])
    with pytest.raises(ValueError, match="empty"):
        sim.linear_cka(x[:, :0], y)
    # the streaming accumulator names the empty or shapeless batch too (conv ones included)
    for bx, by, what in ((x[:0], y[:0], "x batch 0 is empty"), (x, y[:0], "y batch 0 is empty"),
                         (torch.zeros(0, 3, 4, 4), torch.zeros(0, 3, 4, 4), "x batch 0 is empty"),
                         (torch.tensor(1.0), torch.tensor(2.0), "must be 2-D")):
        with pytest.raises(ValueError, match=what):
            sim.Moments(reduce="mean").update(bx, by)
    with pytest.raises(ValueError, match="reshape"):
        sim.cca(x.reshape(30, 3, 4), y)
    with pytest.raises(TypeError, match="complex"):
        sim.cca(x.astype(complex), y)
    with pytest.raises(ValueError, match="more datapoints than neurons.*svcca"):
        sim.cca(x[:10], y[:10])
    with pytest.raises(ValueError, match="keep"):
        sim.svcca(x, y, keep=1.5)
    with pytest.raises(ValueError, match="side"):
        sim.pwcca(x, y, side="z")


def test_conv_reductions_and_their_errors():
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=(30, 3, 4, 4)), rng.normal(size=(30, 5, 4, 4)), \
        rng.normal(size=(30, 2, 2, 2))
    assert sim.reduce_conv(a, "positions").shape == (480, 3)
    assert sim.reduce_conv(a, "flatten").shape == (30, 48)
    torch.testing.assert_close(sim.reduce_conv(a, "mean"), torch.from_numpy(a.mean((2, 3))))
    assert sim.svcca(a, b).n == 480                          # default for CCA: positions
    assert sim.linear_cka(a, b).n == 30                       # default for CKA: flatten
    with pytest.raises(ValueError, match="same spatial size.*resize"):
        sim.cca(a, c)
    r = sim.svcca(a, c, reduce="resize")                     # area-resized to 2x2
    assert r.n == 120 and r.defined
    with pytest.raises(ValueError, match="unknown reduce"):
        sim.cca(a, b, reduce="max")
    with pytest.raises(ValueError, match="dft"):
        sim.svcca(a, b, reduce="dft")


def test_dtypes_and_array_kinds_agree():
    x, y = data(11, n=80)
    ref = sim.linear_cka(x, y).score
    assert sim.linear_cka(torch.from_numpy(x), torch.from_numpy(y)).score == ref
    assert sim.linear_cka(x.tolist(), y).score == pytest.approx(ref, abs=1e-15)
    assert sim.linear_cka(x.astype(np.float16), y).score == pytest.approx(ref, abs=1e-3)
    assert sim.cca(np.round(x * 10).astype(int), y).defined


def test_gram_form_for_wide_inputs_matches_feature_form():
    x, y = data(12, n=40, dx=90, dy=70)      # d > n: Gram (n x n) form
    xs, ys = x[:, :30], y[:, :30]
    for keep in (0.99, 5):
        a = sim.svcca(x, y, keep=keep)
        assert a.defined and "Gram" in a.convention
    # same data through both forms: SVCCA/CKA agree when d < n forces the feature form
    assert sim.svcca(xs, ys, keep=5).score == pytest.approx(
        sim.svcca(np.hstack([xs, np.zeros((40, 50))]), ys, keep=5).score, abs=1e-9)
    k = sim.linear_cka(x, y)
    from cnnlens.similarity.cka import linear_from_pair
    from cnnlens.similarity.joint import pair_from_data
    p = pair_from_data(torch.from_numpy(x), torch.from_numpy(y))
    assert k.score == pytest.approx(linear_from_pair(p).score, abs=1e-12)
    assert sim.linear_cka(x, y, debiased=True).score == pytest.approx(
        linear_from_pair(p, debiased=True).score, abs=1e-12)


def test_random_baseline_matches_direct_simulation():
    n, kx, ky = 60, 4, 7
    rng = np.random.default_rng(0)
    direct = np.mean([sim.cca(rng.normal(size=(n, kx)), rng.normal(size=(n, ky))).rho
                      for _ in range(300)], axis=0)
    wishart = np.mean([random_spectrum(n + k, kx, ky, draws=20) for k in range(1)], axis=0)
    np.testing.assert_allclose(wishart, direct, atol=0.03)
    assert np.all(np.diff(random_spectrum(n, kx, ky)) <= 0) and len(random_spectrum(n, 3, 9)) == 3
    np.testing.assert_array_equal(random_spectrum(n, kx, ky), random_spectrum(n, ky, kx))


def test_minibatch_cka_errors():
    x, y = data(13, n=30)
    with pytest.raises(ValueError, match=">= 4"):
        sim.minibatch_cka(x, y, batch_size=3)
    with pytest.raises(ValueError, match="batch 1 has 2 rows"):
        sim.minibatch_cka([x[:10], x[10:12]], [y[:10], y[10:12]])
    with pytest.raises(TypeError, match="batch_size"):
        sim.minibatch_cka(x, y)


@pytest.mark.parametrize("kx, ky", [(55, 50), (59, 59), (40, 45), (58, 2)])
def test_svcca_correlations_from_complements_equal_principal_angles(kx, ky):
    # wide full-rank data: keeping most directions takes the complement route
    from scipy.linalg import subspace_angles

    from cnnlens.similarity.gram import centred_gram
    from cnnlens.similarity.linalg import gram_basis, svcca_rho
    x, y = data(13, n=60, dx=150, dy=120, shared=20)
    bx, by = gram_basis(centred_gram(torch.from_numpy(x))), gram_basis(centred_gram(
        torch.from_numpy(y)))
    assert bx.rank == by.rank == 59
    want = np.sort(np.cos(subspace_angles(bx.vecs[:, :kx].numpy(), by.vecs[:, :ky].numpy())))
    got = svcca_rho(bx, kx, by, ky).numpy()
    assert got.shape == (min(kx, ky),)
    np.testing.assert_allclose(np.sort(got), want, atol=1e-10)
    same = svcca_rho(bx, 50, bx, 57).numpy()   # nested subspaces: all correlations 1
    np.testing.assert_allclose(same, 1.0, atol=1e-10)


def test_scatter_and_correlation_whitening_routes_agree():
    # well conditioned: the SVCCA basis whitens (no second eigendecomposition, no polar
    # SVD); scaled by 1e4 on one neuron, or with a dead one: the correlation route
    from cnnlens.similarity.cca import cca_from_pair, pwcca_from_pair
    from cnnlens.similarity.joint import pair_from_data
    from cnnlens.similarity.linalg import feature_basis, whitener
    x, y = data(14, n=500, dx=12, dy=9)
    p = pair_from_data(torch.from_numpy(x), torch.from_numpy(y), higher=False)

    def both(side):
        fast = whitener(side.S, side.mean, p.n, basis=lambda: feature_basis(side.S))
        return fast, whitener(side.S, side.mean, p.n)
    (fx, rx), (fy, ry) = both(p.x), both(p.y)
    assert fx.O is not None and rx.O is None   # which route each took
    for f in (cca_from_pair, pwcca_from_pair):
        a, b = f(p, wx=fx, wy=fy), f(p, wx=rx, wy=ry)
        assert a.score == pytest.approx(b.score, abs=1e-12)
        np.testing.assert_allclose(a.rho, b.rho, atol=1e-12)
    scaled = x * np.r_[1e4, np.ones(11)]
    dead = np.c_[x, np.full(500, 2.0)]
    for bad in (scaled, dead):
        q = pair_from_data(torch.from_numpy(bad), torch.from_numpy(y), higher=False)
        w = whitener(q.x.S, q.x.mean, q.n, basis=lambda q=q: feature_basis(q.x.S))
        assert w.O is None and w.rank == 12
