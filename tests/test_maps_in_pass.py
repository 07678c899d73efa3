"""Tier 1 for canonical maps from the engine's own pass (issue 14: "no extra forward pass
over the data when a MatrixResult or Compare already holds the statistics"):
``similarity_matrix(..., maps=True)`` equals ``cl.canonical_maps`` pair by pair (positions,
resize and a fully connected side), the plan drops the optional group within a tiny
budget (and Compare falls back to one extra pass per pair), two ranks merge exactly, and
Compare on the demo shows a cell's maps with no forward over the data."""

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from tiny_nets import Counting, free_port, gloo_rank, tiny_cnn

import cnnlens as cl
from cnnlens.capture import recording
from cnnlens.similarity import similarity_matrix
from cnnlens.similarity.positions import maps_source
from cnnlens.widgets.compare import Compare

N, BATCH = 96, 32


def _images():
    return torch.rand(N, 3, 16, 16, generator=torch.Generator().manual_seed(3))


def _acts(model, layer, images, index):
    """One image's activation of ``layer`` (C, H, W) or (C,), forwarded in its batch of the
    pass (float32 convolutions of another batch shape differ by ~1e-6)."""
    start = index - index % BATCH
    with recording(model, [layer]) as rec:
        model(images[start:start + BATCH])
    return rec.take()[layer][index - start]


@pytest.fixture(scope="module")
def pair():
    a, b, images = tiny_cnn(0), tiny_cnn(1), _images()
    res = similarity_matrix(a, b, images, metrics=("svcca",), batch_size=BATCH, maps=True)
    return a, b, images, res


# conv 16x16 with itself (positions), 16x16 with 8x8 both ways (resize), conv with a fully
# connected layer and two fully connected layers (one datapoint per image)
PAIRS = [(0, 0), (0, 1), (1, 0), (1, 2), (2, 3)]


@pytest.mark.parametrize("metric", ["svcca", "cca", "pwcca"])
def test_maps_from_the_pass_equal_canonical_maps(pair, metric):
    a, b, images, res = pair
    for i, j in PAIRS:
        la, lb = res.layers_a[i], res.layers_b[j]
        ref = cl.canonical_maps(a, b, images, la, lb, image=5, k=4, metric=metric,
                                batch_size=BATCH)
        got = res.canonical_maps(i, j, _acts(a, la, images, 5), _acts(b, lb, images, 5),
                                 k=4, metric=metric, image=5)
        where = f"{la} x {lb}"
        np.testing.assert_allclose(got.rho, ref.rho, atol=1e-6, err_msg=where)
        np.testing.assert_allclose(got.maps_a, ref.maps_a, atol=1e-6, err_msg=where)
        np.testing.assert_allclose(got.maps_b, ref.maps_b, atol=1e-6, err_msg=where)
        assert got.convention == ref.convention, where
        for side in "ab":
            np.testing.assert_array_equal(got.top_images(0, side, n=5),
                                          ref.top_images(0, side, n=5))


def test_resize_and_fully_connected_pairs_follow_canonical_maps_rules(pair):
    a, b, images, res = pair
    conv1, conv2, fc = res.layers_a[0], res.layers_b[1], res.layers_b[2]
    sizes = res.canonical_maps(conv1, conv2, k=2)   # 16x16 vs 8x8: A area-resized to 8x8
    assert "reduce='resize'" in sizes.convention and "8x8" in sizes.convention
    moved = sizes.for_image(_acts(a, conv1, images, 2), _acts(b, conv2, images, 2), image=2)
    assert moved.maps_a.shape == (2, 16, 16) and moved.maps_b.shape == (2, 8, 8)
    fc_side = res.canonical_maps(conv1, fc, k=2)
    assert "reduce='mean'" in fc_side.convention and fc_side.maps_b.shape == (2, 1, 1)
    assert res.plan.rows[-1].metrics == ("maps",) and res.plan.rows[-1].form == "moments"


def test_without_maps_the_result_says_how_to_get_them():
    res = similarity_matrix(tiny_cnn(0), tiny_cnn(1), _images()[:40], metrics=("svcca",))
    with pytest.raises(ValueError, match="maps=True"):
        res.canonical_maps(0, 0)
    assert maps_source(res) is None


def _budget(a, b, images, **kw):
    """Bytes of the metrics' plan without maps: a budget that fits them and nothing more."""
    plan = similarity_matrix(a, b, images, metrics=("svcca",), batch_size=BATCH,
                             dry_run=True, memory=1 << 34, **kw)
    return plan.total + 1


def test_a_tiny_budget_drops_the_maps_group_with_a_reason():
    a, b, images = tiny_cnn(0), tiny_cnn(1), _images()
    res = similarity_matrix(a, b, images, metrics=("svcca",), batch_size=BATCH,
                            memory=_budget(a, b, images), maps=True)
    row = res.plan.rows[-1]
    assert row.metrics == ("maps",) and row.form == "none" and row.bytes == 0
    assert "canonical maps dropped" in row.why and "extra pass" in row.why
    assert any("canonical maps dropped" in w for w in res.warnings)
    assert np.isfinite(res.matrix("svcca")).all()   # the metrics kept their forms
    with pytest.raises(ValueError, match="canonical maps dropped"):
        res.canonical_maps(0, 0)


def test_maps_too_costly_per_image_are_dropped_whatever_the_budget(monkeypatch):
    from cnnlens.similarity import positions

    monkeypatch.setattr(positions, "MAX_FLOPS_PER_IMAGE", 1e3)
    res = similarity_matrix(tiny_cnn(0), tiny_cnn(1), _images()[:40], metrics=("svcca",),
                            maps=True)
    assert "flops per image" in res.plan.rows[-1].why and maps_source(res) is None


def test_saved_results_skip_the_statistics(pair, tmp_path):
    *_, res = pair
    res.save(tmp_path / "run.npz")
    loaded = cl.load_result(tmp_path / "run.npz")
    assert maps_source(loaded) is None   # Compare(result=loaded) falls back to a pass


def test_compare_falls_back_to_one_pass_per_pair_when_the_plan_drops_the_maps():
    a, b, images = tiny_cnn(0), tiny_cnn(1), _images()
    cmp = Compare(a, b, images, metric="svcca", batch_size=BATCH,
                  memory=_budget(a, b, images))
    try:
        assert cmp.wait(60)
        assert "canonical maps dropped" in repr(cmp.result.plan)
        cm = cmp.canonical_maps(0, 1, image=3, k=2)
        job = cmp.maps_job
        assert job.passes == 1 and job.in_pass == 0
        ref = cl.canonical_maps(a, b, images, cm.layer_a, cm.layer_b, image=3, k=2,
                                batch_size=BATCH)
        np.testing.assert_allclose(cm.rho, ref.rho, atol=1e-6)
    finally:
        cmp.close()


def test_compare_on_the_demo_shows_a_cells_maps_without_a_forward_over_the_data():
    nets = cl.demo.models(["real", "real_seed1"], progress=False)
    images = cl.demo.data().test.images
    a, b = Counting(nets["real"]), Counting(nets["real_seed1"])
    cmp = Compare(a, b, images, metric="svcca")
    try:
        assert cmp.wait(120)
        counts = (a.calls, b.calls)
        i = cmp.heatmap.layers_a.index("net.conv2")
        cmp.heatmap.set_state({"selected": [[i, i]]})   # what a click sends
        assert cmp.maps_job.wait(60)
        view = cmp.maps
        assert view.status == "ready", view.error
        assert view.pair_data["layer_a"] == "net.conv2"
        assert "no extra pass" in view.cost
        assert cmp.maps_job.passes == 0 and cmp.maps_job.batches == 0
        before = (a.calls, b.calls)
        res = cmp.canonical_maps(i, i, image=7, k=4)    # directions cached: one image at most
        assert a.calls - before[0] <= 1 and b.calls - before[1] <= 1
        assert res.rho[0] > 0.9 and res.corr[0] > 0.8   # the demo figures
        # the panes forward single images; the data (599 images) never went through again
        assert a.calls - counts[0] < 5 and b.calls - counts[1] < 5
    finally:
        cmp.close()


# -- two ranks ---------------------------------------------------------------------------
def _rank(rank: int, world: int, port: int, out: str) -> None:
    with gloo_rank(rank, world, port):
        a, b, images = tiny_cnn(0), tiny_cnn(1), _images()
        shard = images.chunk(world)[rank]
        res = similarity_matrix(a, b, shard, metrics=("svcca",), batch_size=BATCH, maps=True)
        arrays = {}
        for i in range(len(res.layers_a)):
            for j in range(len(res.layers_b)):
                cm = res.canonical_maps(i, j, k=4, metric="cca")
                arrays[f"{i}.{j}.rho"] = cm.rho
                arrays[f"{i}.{j}.dirs"] = cm.dirs_a
                arrays[f"{i}.{j}.means"] = cm.image_means_b
        np.savez(f"{out}/rank{rank}.npz", **arrays)


def test_two_ranks_merge_the_maps_statistics_exactly(tmp_path):
    mp.spawn(_rank, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b, images = tiny_cnn(0), tiny_cnn(1), _images()
    single = similarity_matrix(a, b, images, metrics=("svcca",), batch_size=BATCH, maps=True)
    for rank in range(2):
        got = np.load(tmp_path / f"rank{rank}.npz")
        for i in range(len(single.layers_a)):
            for j in range(len(single.layers_b)):
                cm = single.canonical_maps(i, j, k=4, metric="cca")
                np.testing.assert_allclose(got[f"{i}.{j}.rho"], cm.rho, atol=1e-9)
                np.testing.assert_allclose(got[f"{i}.{j}.dirs"], cm.dirs_a, atol=1e-6)
                np.testing.assert_allclose(got[f"{i}.{j}.means"], cm.image_means_b,
                                           atol=1e-12)
