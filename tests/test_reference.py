"""Tier 1 for a reference model (issue 13): ``similarity_matrix(..., reference=C)`` and
``Compare(..., reference=C)``: one pass, A~B and A~C as the plain passes give them, the
difference mode's matrices, tooltips with both scores and the error, cells not above
chance dimmed with a reason, warnings shown, and the gap chart linked to the heatmap.
Front-end messages are played with ``set_state`` (what a click sends)."""
import numpy as np
import pytest
import torch
from tiny_nets import tiny_cnn

from cnnlens import similarity as sim
from cnnlens.similarity.readout import below_chance, cell_notes, gap_series
from cnnlens.widgets.compare import Compare
from cnnlens.widgets.trust_link import TrustLink

METRIC = "linear_cka"


@pytest.fixture(scope="module")
def three():
    return tiny_cnn(0), tiny_cnn(1), tiny_cnn(2)


@pytest.fixture(scope="module")
def ref_result(three, images):
    a, b, c = three
    return sim.similarity_matrix(a, b, images, reference=c, metrics=(METRIC,))


def test_reference_is_one_pass_with_the_plain_scores(three, images, ref_result):
    a, b, c = three
    calls = {"a": 0, "b": 0, "c": 0}
    hooks = [m.register_forward_hook(lambda *_, k=k: calls.__setitem__(k, calls[k] + 1))
             for k, m in (("a", a), ("b", b), ("c", c))]
    try:
        res = sim.similarity_matrix(a, b, images, reference=c, metrics=(METRIC,), batch_size=8)
    finally:
        for h in hooks:
            h.remove()
    # 24 images in batches of 8; every model runs once per batch (plus the layer dry runs)
    assert calls["b"] == calls["c"] and 3 <= calls["a"] <= calls["b"] + 1
    plain_b = sim.similarity_matrix(a, b, images, metrics=(METRIC,))
    plain_c = sim.similarity_matrix(a, c, images, metrics=(METRIC,))
    np.testing.assert_allclose(res.matrix(METRIC), plain_b.matrix(METRIC), rtol=1e-6)
    np.testing.assert_allclose(res.reference.matrix(METRIC), plain_c.matrix(METRIC), rtol=1e-6)
    assert res.layers_b == plain_b.layers_b and res.reference.layers_b == plain_c.layers_b
    np.testing.assert_allclose(res.difference(METRIC),
                               plain_b.matrix(METRIC) - plain_c.matrix(METRIC), atol=1e-6)
    assert np.isfinite(res.se(METRIC)).all()
    assert res.chance(METRIC, 0, 0) == pytest.approx(plain_b.chance(METRIC, 0, 0))


def test_reference_progress_reads_as_a_vs_b(three, images):
    a, b, c = three
    seen = []
    res = sim.similarity_matrix(a, b, images, reference=c, metrics=(METRIC,),
                                progress=lambda info: seen.append(info))
    pairs = [i for i in seen if i["stage"] == "pairs"]
    assert pairs[-1]["done"] == pairs[-1]["total"] == len(res.layers_a) * len(res.layers_b)
    assert all(type(i["result"]).__name__ == "ReferenceResult" for i in seen)
    assert [p["done"] for p in pairs] == sorted(p["done"] for p in pairs)


def test_reference_gap_table_is_gap_tables(three, images, ref_result):
    a, b, c = three
    direct = sim.gap_table(a, b, images, reference=c, metric=METRIC)
    via = ref_result.gap_table(METRIC)
    assert [r.layer for r in via] == [r.layer for r in direct]
    np.testing.assert_allclose([r.gap for r in via], [r.gap for r in direct], rtol=1e-6)
    series = gap_series(via, ref_result.layers_b)
    assert series["layers"] == [r.layer for r in via]
    assert series["column"] == [ref_result.layers_b.index(r.match_b) for r in via]
    assert all(lo <= s <= hi for lo, s, hi in zip(series["low_b"], series["score_b"],
                                                  series["high_b"], strict=True))


def test_reference_rejects_b_as_its_own_reference(three, images):
    a, b, _ = three
    with pytest.raises(ValueError, match="another model"):
        sim.similarity_matrix(a, b, images, reference=b)


def test_noise_cells_are_not_above_chance_and_say_why():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8))
    b = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8))
    noise = torch.rand(30, 1, 8, 8)
    res = sim.similarity_matrix(a, b, noise, reference=a, metrics=(METRIC,))
    below = below_chance(res, METRIC)
    assert (0, 0) in below and "chance" in below[0, 0]
    notes = cell_notes(res, METRIC, below)
    assert "reference 1.000" in notes[0, 0] and "±" in notes[0, 0]
    assert below_chance(res.reference, METRIC) == {}  # A against itself: far above chance


@pytest.fixture(scope="module")
def cmp(three, images):
    a, b, c = three
    w = Compare(a, b, images, metric=METRIC, reference=c, names=("real", "synthetic", "seed1"))
    assert w.wait(120)
    yield w
    w.close()


def test_compare_reference_fills_the_trust_views(cmp):
    link = cmp.trust.link
    assert type(cmp.result).__name__ == "ReferenceResult"
    assert link.difference_reason == ""
    assert set(link.per_metric) >= {METRIC, "svcca"}  # small matrix: every metric, for export
    assert link.shape == [len(cmp.heatmap.layers_a), len(cmp.heatmap.layers_b)]
    la, lb = link.shape
    diff = np.frombuffer(link.differences, np.float32).reshape(-1, la, lb)
    k = link.matrix_metrics.index(METRIC)
    np.testing.assert_allclose(diff[k], cmp.result.difference(METRIC), atol=1e-6)
    tip = cmp.heatmap.tooltip_text(0, 0)
    assert "synthetic" in tip and "seed1" in tip and "±" in tip and "chance" in tip
    # the gap chart: A's layers by depth, both scores
    chart = cmp.trust.chart
    assert list(chart.points_b.x) == cmp.heatmap.layers_a
    np.testing.assert_allclose(chart.points_b.y, np.diag(cmp.result.matrix(METRIC)), rtol=1e-6)
    assert "real by depth: synthetic vs seed1" in chart.title


def test_compare_reference_metric_switch_and_mode(cmp):
    cmp.metric = "svcca"
    try:
        assert cmp.trust.chart.axes[1].label == "SVCCA"
        assert "SVCCA" in cmp.heatmap.tooltip_text(1, 1)
        cmp.trust.link.set_state({"mode": "difference"})  # what the button sends
        assert cmp.trust.mode == "difference"
        # the heatmap's own colours stay A~B: the difference is a view of the browser
        np.testing.assert_allclose(cmp.matrix, cmp.result.matrix("svcca"))
    finally:
        cmp.trust.link.set_state({"mode": "scores"})
        cmp.metric = METRIC


def test_gap_chart_point_click_reaches_python(cmp):
    # bqplot Scatter selection: a click sends a JSON list of indices
    cmp.trust.chart.points_b.set_state({"selected": [2]})
    assert list(cmp.trust.chart.points_b.selected) == [2]


def test_compare_without_reference_has_no_chart_but_warnings(three, images):
    a, b, _ = three
    w = Compare(a, b, images[:8], metric=METRIC, precompute=False)
    try:
        assert w.wait(120)
        assert w.trust.chart is None
        assert w.trust.link.difference_reason.startswith("no reference")
        assert any("Under-sampled" in s for s in w.trust.link.warnings)  # 8 images
        assert METRIC in w.trust.link.per_metric and "svcca" not in w.trust.link.per_metric
        w.metric = "svcca"  # computed on the switch
        assert "svcca" in w.trust.link.per_metric
    finally:
        w.close()


def test_trust_link_state_round_trips():
    link = TrustLink(warnings=["few images"], per_metric={"svcca": {"notes": {"0,0": "x"},
                                                                  "faint": {}, "gap": None}})
    state = link.get_state()
    assert state["warnings"] == ["few images"] and state["mode"] == "scores"
    with pytest.raises(Exception):  # noqa: B017 - traitlets' TraitError
        link.set_state({"mode": "sideways"})


def test_cell_text_note_mirrors_js():
    from cnnlens.widgets.heatmap import cell_text

    # the same strings as js/tests/trust.test.js (cellTitle)
    assert cell_text("conv1", "fc", "linear CKA", 0.5, None, ("real", "synthetic"),
                     "chance 0.100") == "real: conv1\nsynthetic: fc\nlinear CKA = 0.500\nchance 0.100"
    assert cell_text("a", "b", "svcca", float("nan"), "constant", ("A", "B"),
                     "ignored") == "A: a\nB: b\nsvcca undefined: constant"


# -- one matrix per dataset (issue 13, item 5) ------------------------------------------
@pytest.fixture(scope="module")
def two_sets(images):
    return {"real": images, "dark": images[:16] ** 3}


def test_a_dict_of_datasets_gives_one_matrix_each(three, two_sets):
    a, b, c = three
    res = sim.similarity_matrix(a, b, two_sets, reference=c, metrics=(METRIC,))
    assert res.names == ["real", "dark"] and res.selected == "real"
    for name, images in two_sets.items():
        plain = sim.similarity_matrix(a, b, images, metrics=(METRIC,))
        np.testing.assert_allclose(res[name].matrix(METRIC), plain.matrix(METRIC), rtol=1e-6)
    res.selected = "dark"
    assert res.n == 16 and res.reference.n == 16  # reads as the selected dataset's
    with pytest.raises(KeyError, match="datasets are"):
        res.selected = "nope"
    tables = sim.gap_table(a, b, two_sets, reference=c, metric=METRIC)
    assert list(tables) == ["real", "dark"] and tables["dark"].result.n == 16


def test_compare_switches_dataset(three, two_sets):
    a, b, c = three
    w = Compare(a, b, two_sets, metric=METRIC, reference=c)
    try:
        assert w.wait(120)
        link = w.trust.link
        assert link.datasets == ["real", "dark"] and w.dataset == "real"
        assert {f"{d}|{METRIC}" for d in two_sets} <= set(link.per_metric)
        assert f"dark|{METRIC}" in link.matrix_metrics
        first = w.matrix.copy()
        link.set_state({"dataset": "dark"})  # what the button sends
        np.testing.assert_allclose(w.matrix, w.result["dark"].matrix(METRIC))
        assert not np.allclose(first, w.matrix)
        np.testing.assert_allclose(np.asarray(w.heatmap.color), w.result["dark"].matrix(METRIC))
        assert link.spectra_dataset == "dark" and w.link.error == ""
        assert w.trust.chart.points_b.y.tolist() == pytest.approx(
            [r.score_b for r in w.result["dark"].gap_table(METRIC)])
        with pytest.raises(KeyError):
            w.dataset = "nope"
    finally:
        w.close()


def test_cca_chance_is_left_out_of_large_matrices(three, images, monkeypatch):
    from cnnlens.widgets import compare_trust

    monkeypatch.setattr(compare_trust, "CCA_CHANCE_UP_TO", 1)  # as if the matrix were large
    a, b, c = three
    w = Compare(a, b, images, metric="svcca", reference=c)
    try:
        assert w.wait(120)
        per = w.trust.link.per_metric
        assert "svcca" in per and "pwcca" not in per  # the current one, not the other CCAs
        assert METRIC in per and "chance" in next(iter(per[METRIC]["notes"].values()))
        assert not any("chance" in n for n in per["svcca"]["notes"].values())
        assert per["svcca"]["faint"] == {} and per["svcca"]["gap"] is None
        assert "cl.gap_table" in w.trust.chart.title
        assert "±" in w.heatmap.tooltip_text(0, 0) or "reference" in w.heatmap.tooltip_text(0, 0)
    finally:
        w.close()
