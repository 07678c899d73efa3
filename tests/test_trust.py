"""Issue 13, core: uncertainty per cell, chance level, under-sampling warnings, gap table.

The demo models (real, synthetic, real_seed1) load from the on-disk cache (trained
once, in seconds, when it is empty); everything else is tiny and seeded.
"""
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import cnnlens as cl
from cnnlens import similarity as sim
from cnnlens.similarity import jackknife, trust
from cnnlens.similarity.gram import center, ucenter


@pytest.fixture(scope="session")
def demo_gap():
    nets, digits = cl.demo.models(progress=False), cl.demo.data()
    return cl.gap_table(nets["real"], nets["synthetic"], digits.test.images,
                        reference=nets["real_seed1"], metric="linear_cka")


def features(seed: int, width: int = 8) -> nn.Module:
    """A small nonlinear map of (n, 6, 1, 1) inputs: layer "3" is its output."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, width), nn.Tanh(),
                         nn.Linear(width, width)).eval()


def identity() -> nn.Module:
    """Layer "1" is the input itself."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 6)).eval()
    with torch.no_grad():
        net[1].weight.copy_(torch.eye(6))
        net[1].bias.zero_()
    return net


class Channel(nn.Module):
    """Looks at one input channel only: two of these on different channels of
    independent noise give independent representations of the same images."""

    def __init__(self, channel: int, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.channel = channel
        self.fc = nn.Linear(16, 12)

    def forward(self, x):
        return torch.tanh(self.fc(x[:, self.channel].flatten(1)))


# --- the demo's gap table ------------------------------------------------------------------

def test_demo_fc_layers_show_a_significant_positive_gap(demo_gap):
    for layer in ("fc1", "fc2"):
        row = demo_gap[layer]
        assert row.gap > 0 and row.significant and row.low > 0, row
        assert row.score_c > row.score_b  # the other seed is closer than the synthetic model


def test_demo_conv1_gap_is_smaller_than_fc1_by_more_than_their_intervals(demo_gap):
    conv1, fc1 = demo_gap["conv1"], demo_gap["fc1"]
    assert conv1.high < fc1.low, (conv1, fc1)
    assert abs(conv1.gap) < 0.01  # early layers: as close as another seed


def test_gap_table_rows_columns_text_and_pandas(demo_gap):
    assert [r.layer for r in demo_gap] == ["conv1", "conv2", "conv3", "fc1", "fc2"]
    assert demo_gap.columns[:7] == ["layer", "score_b", "score_c", "gap", "low", "high",
                                    "significant"]
    for r in demo_gap:
        assert r.match_b == r.match_c == r.layer
        assert r.low <= r.gap <= r.high and r.se > 0
        assert r.gap == pytest.approx(r.score_c - r.score_b)
        assert 0 < r.chance_b < 0.05 and 0 < r.chance_c < 0.05  # 599 images: far above chance
    text = str(demo_gap)
    assert "fc1" in text and "jackknife" in text and repr(demo_gap) == text
    assert demo_gap.result.n == 599 and demo_gap.warnings == []
    pd = pytest.importorskip("pandas")
    df = demo_gap.to_pandas()
    assert isinstance(df, pd.DataFrame) and df.loc["fc1", "gap"] == demo_gap["fc1"].gap


def test_gap_table_matches_by_best_score_when_names_differ():
    a = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 4, 3), relu=nn.ReLU(), flat=nn.Flatten(),
                                  fc=nn.Linear(144, 5))).eval()
    torch.manual_seed(1)
    b = nn.Sequential(OrderedDict(stem=nn.Conv2d(1, 4, 3), act=nn.ReLU(), flat=nn.Flatten(),
                                  head=nn.Linear(144, 5))).eval()
    x = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    t = sim.gap_table(a, b, x, reference=a)
    assert [r.match_c for r in t] == ["conv", "fc"]          # by name
    assert {r.match_b for r in t} <= {"stem", "head"}         # by best score
    assert t["fc"].score_c == pytest.approx(1.0)
    assert any("most similar layer" in w and "'fc'" in w for w in t.warnings)
    assert "*" in str(t)
    with pytest.raises(ValueError, match="reference must be another model"):
        sim.gap_table(a, b, x, reference=b)


# --- uncertainty --------------------------------------------------------------------------

@pytest.mark.parametrize("rows", [1, 4])  # 4: several datapoints per image (positions)
@pytest.mark.parametrize("debiased", [False, True])
def test_group_jackknife_equals_recomputing_without_each_group(debiased, rows):
    rng = np.random.default_rng(0)
    n = 37 * rows
    x = torch.from_numpy(rng.normal(size=(n, 20)))
    y = torch.from_numpy(rng.normal(size=(n, 15))) + x[:, :15]
    lab, g = jackknife.labels(n, rows)
    assert (lab == (torch.arange(n) // rows) % 10).all() and g == 10
    a = jackknife.KernelSplit(center(x @ x.mT), lab, g, rows)
    b = jackknife.KernelSplit(center(y @ y.mT), lab, g, rows)
    fast = a.hsic(b, a.blocks(b), debiased)
    f = ucenter if debiased else center
    for k in range(g):
        xs, ys = x[lab != k], y[lab != k]
        assert fast[k] == pytest.approx(float((f(xs @ xs.mT) * f(ys @ ys.mT)).sum()), rel=1e-9)


def test_kept_cka_cells_carry_a_jackknife_error_stated_in_the_convention(model, model_b,
                                                                          images):
    res = sim.similarity_matrix(model, model_b, images, collect="requested",
                                metrics=("linear_cka", "debiased_cka", "rbf_cka", "svcca"))
    r = res.result("linear_cka", 1, 1)
    assert np.isfinite(r.se) and r.se > 0 and "jackknife over 10 groups" in r.convention
    reps = trust.jackknife(res, "linear_cka", 1, 1)
    x = res._c.entries["a", 1, "flatten"].data.double()
    y = res._c.entries["b", 1, "flatten"].data.double()
    lab = torch.arange(len(x)) % 10
    for k in (0, 7):  # a replicate is linear CKA of the images outside group k
        assert reps[k] == pytest.approx(sim.linear_cka(x[lab != k], y[lab != k]).score,
                                        rel=1e-9)
    assert np.isfinite(res.se("debiased_cka")).all() and np.isfinite(res.se("rbf_cka")).all()


@pytest.mark.parametrize("metric", ["cca", "svcca", "pwcca"])
def test_cca_family_jackknife_equals_recomputing_without_each_group(metric):
    a, b = identity(), features(1)
    x = torch.randn(200, 6, 1, 1, generator=torch.Generator().manual_seed(0))
    res = sim.similarity_matrix(a, b, x, layers_a=["1"], layers_b=["3"], metrics=(metric,),
                                collect="requested")
    r = res.result(metric, 0, 0)
    assert np.isfinite(r.se) and r.se > 0 and "jackknife over 10 groups" in r.convention
    reps = trust.jackknife(res, metric, 0, 0)
    with torch.no_grad():
        xa, xb = x.flatten(1).double(), b(x).double()
    lab = torch.arange(200) % 10
    fn = {"cca": sim.cca, "svcca": sim.svcca, "pwcca": sim.pwcca}[metric]
    for k in (0, 3):
        assert reps[k] == pytest.approx(fn(xa[lab != k], xb[lab != k]).score, abs=1e-9)


def test_wide_cca_layers_say_why_they_have_no_error(model, model_b, images):
    res = sim.similarity_matrix(model, model_b, images, layers_a=["8"], layers_b=["0"],
                                metrics=("svcca",), collect="requested", reduce="flatten")
    r = res.result("svcca", 0, 0)
    assert r.defined and np.isnan(r.se) and "no standard error" in r.convention


def test_uncertainty_shrinks_as_one_over_sqrt_n_and_matches_the_spread_over_samples():
    a, b = identity(), features(1)
    se, spread = {}, {}
    for n in (100, 900):
        scores, errors = [], []
        for seed in range(8):
            x = torch.randn(n, 6, 1, 1, generator=torch.Generator().manual_seed(seed))
            res = sim.similarity_matrix(a, b, x, layers_a=["1"], layers_b=["3"],
                                        metrics=("linear_cka",), collect="requested")
            scores.append(res.matrix("linear_cka")[0, 0])
            errors.append(res.se("linear_cka")[0, 0])
        se[n], spread[n] = np.mean(errors), np.std(scores, ddof=1)
    assert 2.0 < se[100] / se[900] < 4.5      # sqrt(9) = 3
    for n, err in se.items():                  # the error says how much a new sample moves it
        assert 0.5 < err / spread[n] < 2.0, (n, err, spread[n])


# --- chance -------------------------------------------------------------------------------

@pytest.mark.parametrize("rows", [1, 3])  # 3: several datapoints per image, shuffled whole
def test_exact_cka_chance_is_the_mean_over_shuffled_images(rows):
    rng = np.random.default_rng(0)
    N = 15
    x = torch.from_numpy(rng.normal(size=(N * rows, 6)))
    y = torch.from_numpy(rng.normal(size=(N * rows, 40))) + 0.5 * x[:, :1]
    A, B = center(x @ x.mT), center(y @ y.mT)
    g = torch.Generator().manual_seed(0)
    shuffled = []
    for _ in range(5000):
        p = torch.randperm(N, generator=g)
        p = (p[:, None] * rows + torch.arange(rows)).reshape(-1)
        shuffled.append(float((A * B[p][:, p]).sum() / (A.norm() * B.norm())))
    tol = 4 * np.std(shuffled) / np.sqrt(len(shuffled))
    assert trust.cka_chance(A, B, rows=rows) == pytest.approx(np.mean(shuffled), abs=tol)
    if rows == 1:  # from the feature scatters: same trace and norm as the n x n Grams
        xc, yc = x - x.mean(0), y - y.mean(0)
        assert trust.cka_chance(xc.mT @ xc, yc.mT @ yc, N) == pytest.approx(
            trust.cka_chance(A, B), rel=1e-12)
        assert trust.cka_chance(ucenter(x @ x.mT), ucenter(y @ y.mT)) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("metric", ["linear_cka", "rbf_cka", "svcca", "cca", "pwcca"])
def test_chance_on_independent_data_is_the_score_and_a_matched_pair_is_far_above(metric):
    x = torch.randn(300, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    a, other, same = Channel(0, 0), Channel(1, 1), Channel(0, 2)
    for b, matched in ((other, False), (same, True)):
        res = sim.similarity_matrix(a, b, x, layers_a=["fc"], layers_b=["fc"], metrics=(metric,),
                                    collect="requested")
        score, chance = res.matrix(metric)[0, 0], res.chance(metric, 0, 0)
        null = trust.null(res, metric, 0, 0)
        assert len(null) == trust.PERMUTATIONS and res.chance(metric).shape == (1, 1)
        spread = null.std(ddof=1)
        if matched:
            assert score > null.max() and score - chance > 10 * spread, (score, chance, spread)
            assert trust.p_value(res, metric, 0, 0) == pytest.approx(1 / 21)
        else:
            assert abs(score - chance) < 4 * spread + 1e-3, (score, chance, spread)
            assert trust.p_value(res, metric)[0, 0] > 0.05
        if metric in ("linear_cka", "rbf_cka"):  # exact mean vs 20 shuffles
            assert chance == pytest.approx(null.mean(), abs=4 * spread / np.sqrt(len(null)))


def test_debiased_chance_is_zero_and_moments_form_gives_linear_chance(model, model_b):
    x = torch.rand(1100, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    res = sim.similarity_matrix(model, model_b, x, layers_a=["8", "10"], layers_b=["8", "10"],
                                metrics=("linear_cka", "debiased_cka"), collect="requested",
                                batch_size=275)
    assert [r.form for r in res.plan.rows] == ["moments"]  # 1100 images > the kept form's 1024
    c = res.chance("linear_cka")
    assert np.isfinite(c).all() and (c < res.matrix("linear_cka")).all()
    with torch.no_grad():  # layer "8" of model a against layer "10" of model b, by hand
        xa, xb = model[:9](x).double(), model_b(x).double()
    xa, xb = xa - xa.mean(0), xb - xb.mean(0)
    assert c[0, 1] == pytest.approx(trust.cka_chance(xa.mT @ xa, xb.mT @ xb, 1100), rel=1e-6)
    assert (res.chance("debiased_cka") == 0).all()
    assert np.isnan(res.se("linear_cka")).all()
    assert any("No error bars for debiased_cka, linear_cka" in w for w in res.warnings)


# --- warnings -----------------------------------------------------------------------------

def test_resnet18_vs_vgg11_on_64_images_is_flagged_under_sampled():
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    resnet, vgg = tv.models.resnet18(weights=None).eval(), tv.models.vgg11(weights=None).eval()
    x = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    res = sim.similarity_matrix(resnet, vgg, x, metrics=("linear_cka", "svcca"),
                                collect="requested")
    text = " ".join(res.warnings)
    assert "Under-sampled" in text and "64 images" in text
    assert "chance level of linear_cka" in text and "model_b" in text
    score, chance = res.matrix("linear_cka"), res.chance("linear_cka")
    assert np.nanmedian(chance) > 0.6            # scores near 1 mean little here
    assert np.nanmax(np.abs(score - chance)) < 0.1


def test_a_well_sampled_pair_has_no_warnings(model, model_b):
    x = torch.rand(400, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    res = sim.similarity_matrix(model, model_b, x, layers_a=["8", "10"], layers_b=["8", "10"],
                                metrics=("linear_cka", "svcca"))
    assert res.warnings == []
