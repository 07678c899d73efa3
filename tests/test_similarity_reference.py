"""cnnlens.similarity against the outside truth in ../shared/reference (README table rows).

Each test reads the case files in place (never copied) through the
``reference_dir`` fixture and compares with the manifest's ``tol_abs``.
"""
import functools
import json

import numpy as np
import pytest

from cnnlens import similarity as sim
from cnnlens.similarity.cka import rbf_cka_grid
from cnnlens.similarity.result import threshold_index

CASES = ["mnist_lay04", "gauss_iid", "lowrank_shared", "invertible_transform", "dead_rankdef",
         "dead_neurons_fullrank", "n_lt_d", "conv_same_spatial", "float32_offset_scale",
         "svhn_lay06"]
FC = [c for c in CASES if c != "conv_same_spatial"]


@functools.cache
def _manifest(root):
    return json.loads((root / "manifest.json").read_text())


@functools.lru_cache(maxsize=2)
def _load(root, name):
    case = next(c for c in _manifest(root)["cases"] if c["name"] == name)
    with np.load(root / case["file"]) as z:
        arrays = {k: z[k] for k in z.files}
    return case, arrays


class Ref:
    """One case: inputs, expected scalars/arrays and their tolerances."""

    def __init__(self, root, name):
        self.case, self.z = _load(root, name)
        self.params = self.case["params"]

    def has(self, key):
        return key in self.case["expected"] or key in self.case.get("expected_arrays", {})

    def value(self, key):
        if key in self.case["expected"]:
            e = self.case["expected"][key]
            return e["value"], e["tol_abs"]
        return self.z["expected." + key], self.case["expected_arrays"][key]["tol_abs"]

    def check(self, key, got):
        want, tol = self.value(key)
        got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
        assert got.shape == want.shape, f"{key}: shape {got.shape} != {want.shape}"
        err = float(np.max(np.abs(got - want))) if got.size else 0.0
        assert err <= tol, f"{key}: |got - expected| = {err:.3g} > tol {tol}"

    def pairs(self):
        """(prefix, x, y, reduce) for the 2-D views of this case (conv: (N, C, H, W))."""
        X, Y = self.z["X"], self.z["Y"]
        if X.ndim == 2:
            return [("", X, Y, None)]
        xc, yc = np.transpose(X, (0, 3, 1, 2)), np.transpose(Y, (0, 3, 1, 2))
        return [("flat_spatial.", xc, yc, "positions"), ("flat_all.", xc, yc, "flatten")]


@pytest.fixture
def ref(reference_dir, request):
    return Ref(reference_dir, request.param)


def test_manifest_lists_these_cases(reference_dir):
    names = [c["name"] for c in _manifest(reference_dir)["cases"]]
    assert sorted(names) == sorted(CASES)


@pytest.mark.parametrize("ref", CASES, indirect=True)
def test_cca_coefficients(ref):
    for pre, x, y, how in ref.pairs():
        key = pre + "exact.cca_coefs" if ref.has(pre + "exact.cca_coefs") else \
            pre + "google.cca.eps0.coefs"
        if not ref.has(key):
            continue
        r = sim.cca(x, y, reduce=how)
        ref.check(key, r.rho)
        assert len(r.rho) == min(r.k_x, r.k_y) and np.isfinite(r.score)
        if ref.has(pre + "google.cca.eps0.mean_thr"):   # google's summary statistics
            ref.check(pre + "google.cca.eps0.mean_thr", r.mean_thr(0.98))
            ref.check(pre + "google.cca.eps0.mean_all", r.score)
            if ref.has(pre + "google.cca.eps0.n_thr"):
                ref.check(pre + "google.cca.eps0.n_thr", threshold_index(r.rho, 0.98))
        for eps in ("eps0", "eps1e-10"):   # neurons google keeps = our effective ranks here
            if ref.has(pre + f"google.cca.{eps}.kept_x"):
                ref.check(pre + f"google.cca.{eps}.kept_x", r.k_x)
                ref.check(pre + f"google.cca.{eps}.kept_y", r.k_y)
                break


def test_cca_invertible_transform_is_exactly_one(reference_dir):
    ref = Ref(reference_dir, "invertible_transform")
    r = sim.cca(ref.z["X"], ref.z["Y"])
    assert len(r.rho) == 40 and np.max(np.abs(r.rho - 1)) < 1e-8  # google: off by 7e-6
    assert abs(sim.pwcca(ref.z["X"], ref.z["Y"]).score - 1) < 1e-8


def test_cca_rank_revealing_on_dead_rankdef(reference_dir):
    ref = Ref(reference_dir, "dead_rankdef")
    x, y = ref.z["X"], ref.z["Y"]
    r = sim.cca(x, y)
    ref.check("exact.cca_coefs", r.rho)             # 10 ones, 6 small, no spurious tail
    assert (r.k_x, r.k_y, r.dropped_x, r.dropped_y) == (20, 16, 6, 4)
    for side in "xy":
        p = sim.pwcca(x, y, side=side)                # google crashes here (SVD did not converge)
        assert np.isfinite(p.score) and np.isclose(p.weights.sum(), 1) and len(p.weights) == 16


@pytest.mark.parametrize("ref", CASES, indirect=True)
def test_svcca(ref):
    for pre, x, y, how in ref.pairs():
        if not ref.has(pre + "google.svcca.var99.value"):
            continue
        r = sim.svcca(x, y, keep=0.99, reduce=how)
        ref.check(pre + "google.svcca.var99.value", r.score)
        ref.check(pre + "google.svcca.var99.k_x", r.k_x)
        ref.check(pre + "google.svcca.var99.k_y", r.k_y)
        ref.check(pre + "google.svcca.var99.coefs", r.rho)
        ref.check(pre + "google.svcca.var99.mean_thr", r.mean_thr())
        k = sim.svcca(x, y, keep=int(ref.params["svcca_k"]), reduce=how)
        ref.check(pre + "google.svcca.topk.value", k.score)
        ref.check(pre + "google.svcca.topk.coefs", k.rho)
        assert k.k_x == k.k_y == ref.params["svcca_k"]


@pytest.mark.parametrize("ref", CASES, indirect=True)
def test_pwcca_both_sides(ref):
    checked = 0
    for pre, x, y, how in ref.pairs():
        for side, key in (("x", "google.pwcca"), ("y", "google.pwcca_swapped")):
            eps = "eps0" if ref.has(f"{pre}{key}.eps0.value") else "eps1e-10"
            if not ref.has(f"{pre}{key}.{eps}.value"):
                continue
            r = sim.pwcca(x, y, side=side, reduce=how)
            ref.check(f"{pre}{key}.{eps}.value", r.score)
            if ref.has(f"{pre}{key}.{eps}.weights") and np.min(-np.diff(r.rho)) > 1e-6:
                ref.check(f"{pre}{key}.{eps}.weights", r.weights)  # unique only if rho distinct
            checked += 1
    if ref.case["name"] in ("n_lt_d", "dead_rankdef"):
        assert checked == 0
    else:
        assert checked >= 1


@pytest.mark.parametrize("ref", CASES, indirect=True)
def test_linear_and_debiased_cka(ref):
    for pre, x, y, how in ref.pairs():
        if ref.has(pre + "kornblith.linear_cka"):
            ref.check(pre + "kornblith.linear_cka", sim.linear_cka(x, y, reduce=how).score)
            ref.check(pre + "kornblith.linear_cka_debiased",
                      sim.linear_cka(x, y, debiased=True, reduce=how).score)


@pytest.mark.parametrize("ref", CASES, indirect=True)
def test_rbf_cka(ref):
    for pre, x, y, how in ref.pairs():
        if not ref.has(pre + "kornblith.rbf_cka_t0.5"):
            continue
        # one pass over the kernels for both bandwidths, biased and debiased
        for (t, d), r in rbf_cka_grid(x, y, (0.5, 1.0), reduce=how).items():
            ref.check(f"{pre}kornblith.rbf_cka_t{t}" + ("_debiased" if d else ""), r.score)


def test_rbf_cka_single_call(reference_dir):
    ref = Ref(reference_dir, "lowrank_shared")
    ref.check("kornblith.rbf_cka_t1.0_debiased",
              sim.rbf_cka(ref.z["X"], ref.z["Y"], sigma=1.0, debiased=True).score)


@pytest.mark.parametrize("ref", CASES, indirect=True)
def test_minibatch_cka(ref):
    for pre, x, y, how in ref.pairs():
        if ref.has(pre + "minibatch.minibatch_cka"):
            b = int(ref.value(pre + "minibatch.batch_size")[0])
            r = sim.minibatch_cka(x, y, batch_size=b, reduce=how)
            ref.check(pre + "minibatch.minibatch_cka", r.score)
            # the same from an iterable of batches
            xs = [x[i:i + b] for i in range(0, len(x), b)]
            ys = [y[i:i + b] for i in range(0, len(y), b)]
            assert abs(sim.minibatch_cka(xs, ys, reduce=how).score - r.score) < 1e-12


def test_dft_method_matches_complex128(reference_dir):
    ref = Ref(reference_dir, "conv_same_spatial")
    xc, yc = (np.transpose(ref.z[k], (0, 3, 1, 2)) for k in "XY")
    r = sim.cca(xc, yc, reduce="dft")
    ref.check("google.dft.c128.coefs", r.coefs)
    ref.check("google.dft.c128.loc_mean_thr", r.loc_mean_thr(0.98))
    ref.check("google.dft.c128.coefs_sorted_union", r.rho)
    ref.check("google.dft.c128.mean_all", r.score)
    ref.check("google.dft.c64.mean_all", r.score)   # the complex64 original, within 1e-6


def test_n_lt_d_refuses_cca_but_defines_svcca_and_cka(reference_dir):
    ref = Ref(reference_dir, "n_lt_d")
    x, y = ref.z["X"], ref.z["Y"]
    for f in (sim.cca, sim.pwcca):
        with pytest.raises(ValueError, match="svcca"):
            f(x, y)
    assert sim.svcca(x, y, keep=10).k_x == 10
    assert 0 < sim.linear_cka(x, y).score < 1
