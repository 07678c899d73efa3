"""The all-pairs engine (similarity_matrix / MatrixResult) on tiny seeded CNNs."""
import threading

import numpy as np
import pytest
import torch
from tiny_nets import Counting
from torch import nn

from cnnlens import similarity as sim
from cnnlens.capture import capture
from cnnlens.similarity.joint import Joint

ALL = sim.METRICS


def no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.fixture(scope="module")
def more_images():
    # n - 1 > d_x + d_y for every pair: no canonical correlation is 1 by construction (which
    # would leave PWCCA's directions, hence weights, undetermined)
    return torch.rand(120, 3, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def result(model, model_b, images):
    return sim.similarity_matrix(model, model_b, images, metrics=ALL)


def test_engine_equals_pure_functions_on_captured_activations(result, model, model_b, images):
    assert result.layers_a == ["0", "4", "8", "10"] == result.layers_b   # probe default
    assert result.complete and result.n == 24
    acts_a = capture(model, images, result.layers_a)
    acts_b = capture(model_b, images, result.layers_b)
    pure = {
        "cca": lambda x, y: sim.cca(x, y, reduce="mean"),
        "svcca": lambda x, y: sim.svcca(x, y, reduce="mean"),
        "pwcca": lambda x, y: sim.pwcca(x, y, reduce="mean"),
        "linear_cka": lambda x, y: sim.linear_cka(x, y),
        "debiased_cka": lambda x, y: sim.linear_cka(x, y, debiased=True),
        "rbf_cka": lambda x, y: sim.rbf_cka(x, y, sigma=0.8),
    }
    for metric, f in pure.items():
        want = np.full((4, 4), np.nan)
        for i, a in enumerate(result.layers_a):
            for j, b in enumerate(result.layers_b):
                try:
                    r = f(acts_a[a], acts_b[b])
                except ValueError:      # CCA with n <= d: the engine says why instead
                    assert "more datapoints than neurons" in result.reason(metric, i, j)
                    continue
                if metric == "pwcca" and r.reason and "by construction" in r.reason:
                    # k_x + k_y > n - 1: some correlations are 1 whatever the data, so PWCCA's
                    # directions in that span (hence its weights) are not determined: a
                    # last-bit difference in the cross-scatter may pick others. Both say so.
                    assert "by construction" in result.result(metric, i, j).reason
                    continue
                want[i, j] = r.score
        got = np.where(np.isnan(want), np.nan, result.matrix(metric))
        np.testing.assert_allclose(got, want, atol=1e-10, err_msg=metric)
    assert result.reason("cca", 2, 2) is not None and result.reason("svcca", 2, 2) is None


def test_streamed_pass_equals_in_memory_pass(model, model_b, more_images):
    mets = ("cca", "svcca", "pwcca", "linear_cka", "debiased_cka")
    batches = (more_images[i:i + 7] for i in range(0, 120, 7))   # a generator: n unknown
    streamed = sim.similarity_matrix(model, model_b, batches, metrics=mets, reduce="mean")
    memory = sim.similarity_matrix(model, model_b, more_images, metrics=mets, reduce="mean",
                                   batch_size=7)
    assert {g.mode for g in streamed._c.groups.values()} == {"stream"}
    assert {g.mode for g in memory._c.groups.values()} == {"memory"}
    for m in mets:
        np.testing.assert_allclose(streamed.matrix(m), memory.matrix(m), atol=1e-10, err_msg=m)
    # no n x n kernels without a known n: RBF CKA comes from per-batch kernels, with its error
    rbf = streamed.result("rbf_cka", 0, 0)
    assert "minibatch" in rbf.convention and rbf.defined and np.isfinite(rbf.se)


def test_grouped_joint_equals_separate_pairs():
    rng = np.random.default_rng(0)
    n, dx, dy = 90, [3, 5], [4, 2, 6]
    X = [rng.normal(size=(n, d)) + 100 for d in dx]
    Y = [rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) - 7 for d in dy]
    j = Joint(dx, dy)
    for lo, hi in ((0, 1), (1, 30), (30, 31), (31, 90)):
        j.update([torch.from_numpy(x[lo:hi]) for x in X], [torch.from_numpy(y[lo:hi]) for y in Y])
    for a in range(2):
        for b in range(3):
            m = sim.Moments().update(X[a], Y[b])
            p, q = j.pair(a, b), m.pair()
            assert abs(p.G - q.G) <= 1e-10 * abs(q.G)
            assert abs(p.x.H - q.x.H) <= 1e-10 * q.x.H and abs(p.y.H - q.y.H) <= 1e-10 * q.y.H
            torch.testing.assert_close(p.M, q.M, rtol=1e-10, atol=1e-10)
            from cnnlens.similarity.cka import linear_from_pair
            assert linear_from_pair(p, True).score == pytest.approx(
                m.linear_cka(True).score, abs=1e-12)


def test_progress_reports_both_stages_and_partial_matrices(model, model_b, images):
    seen = []

    def progress(info):
        finite = int(np.isfinite(info["result"].matrix("svcca")).sum())
        seen.append((info["stage"], info["done"], info["total"], finite))

    res = sim.similarity_matrix(model, model_b, images, metrics=("svcca",), batch_size=10,
                                progress=progress)
    forward = [s for s in seen if s[0] == "forward"]
    pairs = [s for s in seen if s[0] == "pairs"]
    assert [s[1] for s in forward] == [10, 20, 24] and {s[2] for s in forward} == {24}
    assert all(s[3] == 0 for s in forward)           # nothing is shown before the pass ends
    assert pairs[-1][1:3] == (16, 16) and pairs[-1][3] == 16
    assert [s[3] for s in pairs] == sorted(s[3] for s in pairs)
    assert isinstance(res, sim.MatrixResult)


def test_cancel_raises_and_leaves_no_hooks(model, model_b, images):
    stop = threading.Event()

    def progress(info):
        stop.set()

    with pytest.raises(sim.Cancelled):
        sim.similarity_matrix(model, model_b, images, batch_size=8, progress=progress,
                              cancel=stop)
    assert no_hooks(model) and no_hooks(model_b)
    stop.clear()
    fired = []

    def late(info):   # cancel while cells fill
        if info["stage"] == "pairs":
            fired.append(1)
            stop.set()
    with pytest.raises(sim.Cancelled, match="filling"):
        sim.similarity_matrix(model, model_b, images, progress=late, cancel=stop)
    assert fired


def test_switching_metric_never_reruns_the_models(model, model_b, images):
    a, b = Counting(model), Counting(model_b)
    res = sim.similarity_matrix(a, b, images, metrics=("svcca",), batch_size=10)
    calls = (a.calls, b.calls)
    assert calls == (4, 4)                            # 3 batches + the probe's dry run
    for m in ALL:
        assert res.matrix(m).shape == (4, 4)
    res.spectrum("net.0", "net.4"), res.baseline(0, 1), res.result("pwcca", 1, 1)
    assert (a.calls, b.calls) == calls


def test_same_model_runs_once_and_is_self_similar(model, images):
    a = Counting(model)
    res = sim.similarity_matrix(a, a, images, metrics=ALL)
    assert a.calls == 2                               # dry run + one batch
    for m in ALL:
        d = np.diag(res.matrix(m))
        assert np.allclose(d[np.isfinite(d)], 1, atol=1e-10), m
    assert np.isfinite(np.diag(res.matrix("svcca"))).all()


def test_spectrum_baseline_and_conventions(result):
    rho, base = result.spectrum(0, 1), result.baseline(0, 1)
    r = result.result("svcca", 0, 1)
    assert len(rho) == len(base) == min(r.k_x, r.k_y) and np.all(np.diff(rho) <= 0)
    np.testing.assert_array_equal(result.spectrum("0", "4"), rho)
    assert "SVCCA" in result.convention("svcca") and "mean" in result.convention("svcca")
    assert "flattened" in result.convention("linear_cka")
    assert "weights from 'x'" in result.convention("pwcca")
    with pytest.raises(ValueError, match="unknown metric"):
        result.matrix("cka")
    with pytest.raises(KeyError, match="unknown layer"):
        result.spectrum("nope", 0)


def test_positions_pairs_only_equal_sizes(model, model_b, images):
    res = sim.similarity_matrix(model, model_b, images, metrics=("svcca", "linear_cka"),
                                reduce="positions")
    m = res.matrix("svcca")
    assert np.isfinite(m[0, 0]) and np.isnan(m[0, 1])
    assert "cannot be paired" in res.reason("svcca", 0, 1)
    rs = sim.similarity_matrix(model, model_b, images, metrics=("svcca",), reduce="resize")
    assert np.isfinite(rs.matrix("svcca")[:2, :2]).all()


def test_dataloader_and_layer_selectors(model, model_b, images):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images), batch_size=5)
    res = sim.similarity_matrix(model, model_b, loader, layers_a=["0", "8"],
                                layers_b=lambda layer: layer.kind == "linear",
                                metrics=("linear_cka",))
    assert res.layers_a == ["0", "8"] and res.layers_b == ["8", "10"] and res.n == 24
    assert np.isfinite(res.matrix("linear_cka")).all()


def test_engine_errors(model, model_b, images, monkeypatch):
    with pytest.raises(ValueError, match="unknown metric"):
        sim.similarity_matrix(model, model_b, images, metrics=("cka",))
    with pytest.raises(ValueError, match="dft"):
        sim.similarity_matrix(model, model_b, images, reduce="dft")
    with pytest.raises(ValueError, match="families"):
        sim.similarity_matrix(model, model_b, images, reduce={"svcca": "mean"})
    with pytest.raises(ValueError, match="no layers selected in model_b"):
        sim.similarity_matrix(model, model_b, images, layers_b=lambda layer: False)
    with pytest.raises(ValueError, match="no data"):
        sim.similarity_matrix(model, model_b, iter([]))
    assert no_hooks(model) and no_hooks(model_b)


def test_minibatch_cka_matches_the_pure_function(model, model_b, more_images):
    res = sim.similarity_matrix(model, model_b, more_images, metrics=("minibatch_cka",),
                                batch_size=25)
    acts_a = capture(model, more_images, res.layers_a, batch_size=25)
    acts_b = capture(model_b, more_images, res.layers_b, batch_size=25)
    for i, a in enumerate(res.layers_a):
        for j, b in enumerate(res.layers_b):
            want = sim.minibatch_cka(acts_a[a], acts_b[b], batch_size=25).score
            # float32 batch Grams in the engine (documented), float64 in the function
            assert res.matrix("minibatch_cka")[i, j] == pytest.approx(want, abs=1e-6)
    other = sim.similarity_matrix(model, model_b, more_images, metrics=("svcca",))
    assert "when requested" in other.reason("minibatch_cka", 0, 0)


def test_non_finite_activations_name_the_layer(model_b, images):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 14 * 14, 5)).eval()
    with torch.no_grad():
        net[2].weight[0, 0] = float("inf")
    from cnnlens.capture import NonFiniteError
    with pytest.raises(NonFiniteError, match="layer '2' of model_a"):
        sim.similarity_matrix(net, model_b, images)
    # minibatch-only pass: the check rides on the Gram's trace
    with pytest.raises(NonFiniteError, match="layer '2' of model_a"):
        sim.similarity_matrix(net, model_b, images, metrics=("minibatch_cka",),
                              collect="requested")
    assert no_hooks(net) and no_hooks(model_b)


@pytest.mark.parametrize("same", [False, True])
def test_outputs_rewritten_by_a_later_inplace_relu(model, model_b, more_images, same):
    # "1" (BatchNorm) feeds ReLU(inplace=True): the engine reduces it inside the hook
    # (no copy), so it must match the copying capture path, streamed and in memory.
    other = model if same else model_b
    layers = ["1", "2", "4"]
    acts_a = capture(model, more_images, layers)
    acts_b = capture(other, more_images, layers)
    assert (acts_a["1"] < 0).any()
    mets = ("svcca", "linear_cka", "minibatch_cka")
    for data in (more_images, (more_images[i:i + 30] for i in range(0, 120, 30))):
        res = sim.similarity_matrix(model, other, data, layers_a=layers, layers_b=layers,
                                    metrics=mets, batch_size=30)
        for i, a in enumerate(layers):
            for j, b in enumerate(layers):
                x, y = acts_a[a], acts_b[b]
                assert res.matrix("svcca")[i, j] == pytest.approx(
                    sim.svcca(x, y, reduce="mean").score, abs=1e-10)
                assert res.matrix("linear_cka")[i, j] == pytest.approx(
                    sim.linear_cka(x, y).score, abs=1e-10)
                assert res.matrix("minibatch_cka")[i, j] == pytest.approx(
                    sim.minibatch_cka(x, y, batch_size=30).score, abs=1e-6)
    assert no_hooks(model) and no_hooks(model_b)


def test_collect_requested_gives_the_same_numbers_and_explains_the_rest(model, model_b,
                                                                       more_images):
    kw = {"metrics": ("minibatch_cka",), "batch_size": 25}
    full = sim.similarity_matrix(model, model_b, more_images, **kw)
    only = sim.similarity_matrix(model, model_b, more_images, collect="requested", **kw)
    np.testing.assert_array_equal(only.matrix("minibatch_cka"), full.matrix("minibatch_cka"))
    assert not np.isnan(full.matrix("svcca")).all()       # "all" (default) kept the rest
    for metric in ("svcca", "linear_cka", "cca"):
        assert np.isnan(only.matrix(metric)).all()
        assert "collect='requested'" in only.reason(metric, 0, 0)
    lin = sim.similarity_matrix(model, model_b, more_images, metrics=("linear_cka",),
                                collect="requested")
    ref = sim.similarity_matrix(model, model_b, more_images, metrics=("linear_cka",))
    np.testing.assert_allclose(lin.matrix("linear_cka"), ref.matrix("linear_cka"), rtol=1e-12)
    with pytest.raises(ValueError, match="collect"):
        sim.similarity_matrix(model, model_b, more_images, collect="some")


@pytest.mark.parametrize("offset", [0.0, 3.0, 1e4])
def test_minibatch_gram_is_the_centred_gram_whatever_the_offset(offset):
    from cnnlens.similarity.minibatch import MinibatchCKA
    g = torch.Generator().manual_seed(0)
    mb = MinibatchCKA(1, 1)
    # a smaller layer reuses the scratch buffer; a layer's later batches reuse its route,
    # also when its offset changes
    for d, layer, shift in ((3000, "a", offset), (1000, "b", offset), (3000, "a", offset),
                            (3000, "a", 5e3 - offset)):
        x = (torch.rand(64, d, generator=g) * torch.rand(d, generator=g) + shift).float()
        x64 = x.double() - x.double().mean(0)
        want = x64 @ x64.mT
        scale = want.norm()
        want.fill_diagonal_(0)
        assert (mb.kernels(x, layer)["linear"] - want).norm() <= 1e-6 * scale


def test_minibatch_gram_flags_non_finite_but_survives_overflow():
    from cnnlens.similarity.minibatch import MinibatchCKA
    x = torch.rand(8, 50)
    x[3, 7] = float("nan")
    mb = MinibatchCKA(1, 1)
    assert mb.gram(x) is None
    big = torch.rand(8, 50) * 1e30  # finite, but the squares overflow float32
    K = mb.gram(big)
    assert K is not None and bool(torch.isfinite(K).all())


@pytest.mark.parametrize("failing", ["a", "b"])
def test_a_model_failing_mid_pass_leaves_both_clean(model, model_b, more_images, failing):
    # the two models run side by side on two threads: an error on either surfaces
    # here, hooks go from both, and the thread count is restored
    from cnnlens.capture import ForwardError

    class FailsOnSecondBatch(Counting):
        def forward(self, x):
            if self.calls == 2:  # the dry run and the first batch went through
                raise RuntimeError("boom")
            return super().forward(x)

    threads = torch.get_num_threads()
    a, b = (FailsOnSecondBatch(model), model_b) if failing == "a" else (
        model, FailsOnSecondBatch(model_b))
    with pytest.raises(ForwardError, match="boom"):
        sim.similarity_matrix(a, b, more_images, batch_size=10)
    assert no_hooks(a) and no_hooks(b) and torch.get_num_threads() == threads
    res = sim.similarity_matrix(model, model_b, more_images, batch_size=10)
    assert res.complete and np.isfinite(res.matrix("linear_cka")).all()
