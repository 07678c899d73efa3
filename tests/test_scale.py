"""The engine at scale: memory budget and plan, streamed estimators, saved results, GPU."""
import numpy as np
import pytest
import torch
from torch import nn

import cnnlens as cl
from cnnlens import similarity as sim
from cnnlens.similarity.budget import BudgetError

PICKER = ("svcca", "pwcca", "linear_cka", "debiased_cka", "rbf_cka")


class Counting(nn.Module):
    """Counts forwards over more than one image (the probe's dry run uses one)."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x):
        self.calls += len(x) > 1
        return self.net(x)


@pytest.fixture(scope="module")
def many_images():
    return torch.rand(160, 3, 16, 16, generator=torch.Generator().manual_seed(3))


def _cka_bytes(plan):
    return sum(r.bytes for r in plan.rows if r.form == "kept")


def test_small_budget_switches_cka_to_the_streamed_estimator_and_keeps_within_it(
        model, model_b, many_images):
    big = sim.similarity_matrix(model, model_b, many_images, metrics=PICKER, dry_run=True,
                                memory=1 << 30)
    assert {r.form for r in big.rows} == {"kept"} and big.form("linear_cka") == "exact"
    budget = 1_000_000  # below the kept activations (flattened conv maps), above the moments
    plan = sim.similarity_matrix(model, model_b, many_images, metrics=PICKER, memory=budget,
                                 batch_size=32, dry_run=True)
    assert plan.total <= budget < _cka_bytes(big)
    assert plan.form("svcca") == "exact" and plan.form("linear_cka") == "minibatch"
    res = sim.similarity_matrix(model, model_b, many_images, metrics=PICKER, memory=budget,
                                batch_size=32)
    assert res.plan.total <= budget
    for m in PICKER:  # every metric of the picker from the one pass
        assert np.isfinite(res.matrix(m)).all(), m
    r = res.result("linear_cka", 1, 1)
    assert "minibatch (unbiased HSIC" in r.convention and "32 x 32 batches" in r.convention
    assert np.isfinite(res.se("linear_cka")).all() and (res.se("linear_cka") > 0).all()
    assert "minibatch" in res.convention("rbf_cka")
    # the memory the engine holds: the planned forms only (no activations kept for CKA)
    kept = sum(p.numel() * p.element_size() for g in res._c.groups.values()
               for e in g.entries for p in e.parts)
    assert kept <= budget


def test_minibatch_estimate_agrees_with_exact_cka_within_its_error(model, model_b):
    x = torch.rand(512, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    exact = sim.similarity_matrix(model, model_b, x, metrics=("debiased_cka",), memory=1 << 30)
    est = sim.similarity_matrix(model, model_b, x, metrics=("debiased_cka",), memory=400_000,
                                batch_size=32)
    assert est.plan.form("debiased_cka") == "minibatch"
    diff = np.abs(est.matrix("debiased_cka") - exact.matrix("debiased_cka"))
    se = est.se("debiased_cka")
    assert np.isfinite(se).all()
    # both estimate the same population CKA: within 4 standard errors in every cell
    assert (diff <= 4 * se + 1e-3).all(), (diff / se).max()


def test_budget_too_small_names_the_layer_and_bytes_and_runs_nothing(model_b, images):
    counted = Counting(model_b)
    with pytest.raises(BudgetError, match=r"need .*[KM]iB.* layer '.*' of model_a, \d+ features"
                                          ".*Nothing was run"):
        sim.similarity_matrix(counted, model_b, images, metrics=("svcca",), memory=1000)
    assert counted.calls == 0


def test_dry_run_plan_is_readable_and_auto_budget_is_a_fraction_of_free_memory(
        model, model_b, images):
    from cnnlens.similarity.budget import AUTO_FRACTION, available_bytes
    plan = sim.similarity_matrix(model, model_b, images, metrics=PICKER, dry_run=True)
    assert 0 < plan.budget <= AUTO_FRACTION * available_bytes() * 1.1
    text = repr(plan)
    assert "kept" in text and "svcca" in text and "budget" in text
    assert "budget" in plan.summary()
    with pytest.raises(ValueError, match="memory must be"):
        sim.similarity_matrix(model, model_b, images, memory=-5)


def test_progress_reports_rate_and_eta(model, model_b, many_images):
    seen = []
    sim.similarity_matrix(model, model_b, many_images, metrics=("svcca",), batch_size=40,
                          progress=seen.append)
    fwd = [s for s in seen if s["stage"] == "forward"]
    assert fwd[-1]["done"] == 160 and fwd[0]["rate"] > 0
    assert fwd[0]["eta"] is not None and fwd[-1]["eta"] == 0
    from cnnlens.similarity.engine import progress_text
    assert "images/s" in progress_text(fwd[0]) and "ETA" in progress_text(fwd[0])


def test_saved_result_round_trips_without_pickle(model, model_b, many_images, tmp_path):
    res = sim.similarity_matrix(model, model_b, many_images, metrics=PICKER, memory=1_000_000,
                                batch_size=32)
    path = tmp_path / "run.npz"
    res.save(path)
    back = cl.load_result(path)
    assert back.layers_a == res.layers_a and back.n == res.n == 160
    for m in sim.METRICS:
        np.testing.assert_array_equal(back.matrix(m), res.matrix(m))
        np.testing.assert_array_equal(back.se(m), res.se(m))
    np.testing.assert_array_equal(back.spectrum(1, 2), res.spectrum(1, 2))
    np.testing.assert_allclose(back.baseline(1, 2).shape, res.baseline(1, 2).shape)
    assert back.result("linear_cka", 0, 0).convention == res.result("linear_cka", 0, 0).convention
    assert back.reason("minibatch_cka", 0, 0) == res.reason("minibatch_cka", 0, 0)
    assert back.plan.total == res.plan.total and back.versions["torch"]
    assert back.warnings == res.warnings
    np.testing.assert_array_equal(back.chance("debiased_cka"), res.chance("debiased_cka"))
    assert np.isnan(back.chance("svcca")).all()
    # a newer format is refused with a clear message
    import json
    with np.load(path) as z:
        arrays = dict(z)
    meta = json.loads(str(arrays.pop("meta")))
    meta["format"] = 99
    newer = tmp_path / "newer.npz"
    np.savez(newer, meta=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(ValueError, match="format 99.*upgrade cnnlens"):
        cl.load_result(newer)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_gpu_pass_equals_cpu_pass(model, model_b, many_images):
    import copy
    cpu = sim.similarity_matrix(model, model_b, many_images, metrics=PICKER, memory=1_000_000)
    ga, gb = copy.deepcopy(model).cuda(), copy.deepcopy(model_b).cuda()
    gpu = sim.similarity_matrix(ga, gb, many_images, metrics=PICKER, memory=1_000_000,
                                device="cuda")
    for m in PICKER:
        np.testing.assert_allclose(gpu.matrix(m), cpu.matrix(m), atol=1e-6, err_msg=m)


def test_compare_fills_every_picker_metric_and_opens_a_saved_run_without_a_pass(
        model, model_b, many_images, tmp_path):
    counted = Counting(model)
    cmp = cl.Compare(counted, model_b, many_images, metric="linear_cka", memory=1_000_000,
                     batch_size=32)
    assert cmp.wait()
    assert "minibatch" in cmp.status.value and "budget" in cmp.status.value
    for m in PICKER:  # no cell "not collected" after any switch
        cmp.metric = m
        assert np.isfinite(cmp.matrix).all(), m
    cmp.result.save(tmp_path / "run.npz")
    calls = counted.calls
    back = cl.Compare(counted, model_b, many_images, result=cl.load_result(tmp_path / "run.npz"))
    assert back.wait() and counted.calls == calls   # the panes show images; no pass ran
    back.metric = "rbf_cka"
    np.testing.assert_array_equal(back.matrix, cmp.result.matrix("rbf_cka"))
    back.pair = (1, 2)
    assert len(back.spectrum.curve.y) > 0
    cmp.close()
    back.close()


def test_kept_rows_fill_one_buffer_and_survive_a_wrong_count():
    from cnnlens.similarity.plan import Entry
    batches = [torch.randn(4, 3), torch.randn(4, 3), torch.randn(2, 3)]
    want = torch.cat(batches)
    for capacity in (10, 12, 6, None):  # exact, fewer rows than announced, more, unknown
        e = Entry("a", 0, "conv", "mean", 1, 3, capacity=capacity)
        for b in batches:
            e.keep(b)
        assert torch.equal(e.data, want), capacity
    e = Entry("a", 0, "conv", "mean", 1, 3, capacity=10)
    for b in batches:
        e.keep(b)
    assert len(e.parts) == 1 and e.parts[0].data_ptr() == e.data.data_ptr()  # no copy at the end
