"""torch.distributed: two CPU ranks (gloo, 127.0.0.1) give the single-process result."""

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from tiny_nets import free_port, gloo_rank, tiny_cnn

from cnnlens import similarity as sim

EXACT = ("cca", "svcca", "pwcca", "linear_cka", "debiased_cka", "rbf_cka")
# every form: kept activations; kept + minibatch; moments + minibatch (n unknown: a generator)
# and moments for debiased CKA too (reduce="mean": its fourth-order sums are merged as well)
CASES = {"kept": (1 << 30, False, None), "minibatch": (1_000_000, False, None),
         "moments": (1_000_000, True, None), "moments_cka": (1 << 30, True, "mean")}
N, BATCH = 192, 32


def _images():
    return torch.rand(N, 3, 16, 16, generator=torch.Generator().manual_seed(11))


def _run(images, case):
    memory, streamed, reduce = CASES[case]
    data = (images[i:i + BATCH] for i in range(0, len(images), BATCH)) if streamed else images
    return sim.similarity_matrix(tiny_cnn(0), tiny_cnn(1), data, metrics=EXACT,
                                 batch_size=BATCH, memory=memory, reduce=reduce)


def _single(case):
    """One process over all the images, on one thread like each rank: the minibatch
    estimator's float32 batch Grams round with the BLAS blocking, which the thread count
    changes (~1e-7 of CKA); the same arithmetic shows that the merge itself is exact."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(_images(), case)
    finally:
        torch.set_num_threads(threads)


def _rank(rank: int, world: int, port: int, out: str) -> None:
    with gloo_rank(rank, world, port):
        shard = _images().chunk(world)[rank]   # each rank: its own contiguous shard
        arrays = {}
        for name in CASES:
            res = _run(shard, name)
            if name == "minibatch" and rank == 0:  # what a torchrun job keeps
                res.save(f"{out}/run.npz")
            arrays[f"{name}.n"] = np.array(res.n)
            arrays[f"{name}.forms"] = np.array(repr(res.plan))
            for m in EXACT:
                arrays[f"{name}.{m}"] = res.matrix(m)
            arrays[f"{name}.spectrum"] = res.spectrum(1, 1)
        np.savez(f"{out}/rank{rank}.npz", **arrays)


@pytest.fixture(scope="module")
def ranks_out(tmp_path_factory):
    """What two gloo ranks wrote (each case's matrices; rank 0 also a saved result)."""
    out = tmp_path_factory.mktemp("ranks")
    mp.spawn(_rank, args=(2, free_port(), str(out)), nprocs=2, join=True)
    return out


def test_two_ranks_equal_one_process_over_the_concatenated_data(ranks_out):
    tmp_path = ranks_out
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    for name in CASES:
        single = _single(name)
        assert repr(single.plan).split("\n")[1:] == str(ranks[0][f"{name}.forms"]).split("\n")[1:]
        for r in ranks:
            assert int(r[f"{name}.n"]) == N
            for m in EXACT:
                # exact metrics: merged statistics equal those of one pass; minibatch CKA
                # (the streamed budget's CKA): the same estimator over the same batches
                np.testing.assert_allclose(r[f"{name}.{m}"], single.matrix(m), atol=1e-9,
                                           rtol=0, err_msg=f"{name} {m}")
            np.testing.assert_allclose(r[f"{name}.spectrum"], single.spectrum(1, 1), atol=1e-9)
    assert "minibatch" in str(ranks[0]["minibatch.forms"])
    assert "moments" in str(ranks[0]["moments.forms"])
    assert "debiased_cka" in str(ranks[0]["moments_cka.forms"]).split("moments")[1]


def test_a_result_saved_by_a_rank_opens_in_compare_without_a_pass(ranks_out):
    import cnnlens as cl
    saved = cl.load_result(ranks_out / "run.npz")
    single = _single("minibatch")
    calls = []
    a, b = tiny_cnn(0), tiny_cnn(1)
    a.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    cmp = cl.Compare(a, b, _images()[:8], result=saved, metric="linear_cka")
    assert cmp.wait() and all(n == 1 for n in calls)   # the panes' dry runs only: no pass
    for m in EXACT[1:]:  # the picker's metrics
        cmp.metric = m
        np.testing.assert_allclose(cmp.matrix, single.matrix(m), atol=1e-9, err_msg=m)
    cmp.close()
