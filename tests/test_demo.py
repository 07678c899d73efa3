"""cnnlens.demo: data, generator, model, training and the on-disk cache.

Training runs on tiny budgets (a few dozen steps) in a per-test cache folder;
the full-budget models are exercised by tests/test_notebooks.py.
"""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from cnnlens import demo
from cnnlens.demo import CONFIGS, cache, synth
from cnnlens.demo.digits import SIZE, real_digits, stratified_split, upsample
from cnnlens.demo.net import DigitNet
from cnnlens.demo.strokes import skeleton
from cnnlens.demo.train import accuracy, train


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """A fresh cache folder and tiny budgets for all three models."""
    monkeypatch.setenv("CNNLENS_CACHE", str(tmp_path / "cache"))
    for name, cfg in CONFIGS.items():
        monkeypatch.setitem(CONFIGS, name, cfg.replace(steps=30, n_synthetic=200))
    return tmp_path / "cache"


class Counter:
    """A progress callback that counts training runs (it is only called while training)."""

    def __init__(self):
        self.runs = []

    def __call__(self, name, done, total):
        if done == 0:
            self.runs.append(name)


# --- real digits -------------------------------------------------------------------------

def test_real_digits_shapes_ranges_and_split():
    train_set, test_set = real_digits()
    assert len(train_set) + len(test_set) == 1797
    assert train_set.images.shape[1:] == (1, SIZE, SIZE)
    assert train_set.images.dtype == torch.float32 and train_set.labels.dtype == torch.int64
    for ds in (train_set, test_set):
        assert float(ds.images.min()) == 0.0 and float(ds.images.max()) == 1.0
        counts = torch.bincount(ds.labels, minlength=10)
        assert counts.min() > 0
    # Stratified: every class holds out a third (+-1 for rounding).
    share = torch.bincount(test_set.labels) / (torch.bincount(test_set.labels)
                                               + torch.bincount(train_set.labels))
    assert torch.allclose(share, torch.full((10,), 1 / 3), atol=0.01)
    image, label = test_set[0]
    assert image.shape == (1, SIZE, SIZE) and isinstance(label, int)


def test_split_is_fixed_and_disjoint():
    labels = np.repeat(np.arange(10), 30)
    a = stratified_split(labels, 1 / 3, 0)
    b = stratified_split(labels, 1 / 3, 0)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not set(a[0]) & set(a[1]) and len(a[0]) + len(a[1]) == len(labels)
    c = stratified_split(labels, 1 / 3, 1)
    assert not np.array_equal(a[1], c[1])


def test_real_digits_are_not_shared_mutable_state():
    test_set = real_digits()[1]
    test_set.images.zero_()
    assert float(real_digits()[1].images.max()) == 1.0


def test_upsample_keeps_counts_scale():
    counts = np.zeros((1, 8, 8), np.float32)
    counts[0, 2:6, 3:5] = 16
    x = upsample(counts, 16)
    assert x.shape == (1, 1, 16, 16) and float(x.max()) == 1.0 and float(x.min()) == 0.0
    assert upsample(counts, 8)[0, 0, 2, 3] == 1.0


def test_digits_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        demo.Digits(torch.zeros(3, 1, 4, 4), torch.zeros(2, dtype=torch.long), "x")


def test_subset_is_deterministic():
    test_set = real_digits()[1]
    a, b = test_set.subset(50, seed=1), test_set.subset(50, seed=1)
    assert torch.equal(a.images, b.images) and len(a) == 50
    with pytest.raises(ValueError, match="n must be in"):
        test_set.subset(10_000)


# --- synthetic digits --------------------------------------------------------------------

def test_synthetic_is_deterministic_by_seed():
    a = demo.synthetic_digits(40, seed=7)
    b = demo.synthetic_digits(40, seed=7)
    c = demo.synthetic_digits(40, seed=8)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
    # sample i depends only on (seed, i): a shorter set is a prefix
    assert torch.equal(demo.synthetic_digits(15, seed=7).images, a.images[:15])


@pytest.mark.parametrize("realism", [0.0, 0.5, 1.0])
def test_synthetic_value_ranges_and_labels(realism):
    ds = demo.synthetic_digits(60, seed=0, realism=realism)
    assert ds.images.shape == (60, 1, SIZE, SIZE) and ds.images.dtype == torch.float32
    assert float(ds.images.min()) >= 0.0 and float(ds.images.max()) <= 1.0
    assert torch.isfinite(ds.images).all()
    assert torch.equal(torch.bincount(ds.labels), torch.full((10,), 6))
    ink = ds.images.flatten(1).sum(1)
    assert (ink > 3).all(), "every sample must show a digit"
    # Like the real scans (tall, narrow digits), the side columns are nearly background.
    assert float(ds.images[..., :, 0].mean()) < 0.05
    assert float(ds.images[..., :, -1].mean()) < 0.05


def test_realism_changes_the_images():
    clean = demo.synthetic_digits(30, seed=0, realism=0.0)
    real_like = demo.synthetic_digits(30, seed=0, realism=1.0)
    assert not torch.equal(clean.images, real_like.images)
    # realism=0 is the clean, centred template: the images of one digit spread less.
    def spread(ds):
        return float(ds.images[ds.labels == 1].std(0).mean())

    assert spread(clean) < spread(real_like)


def test_synthetic_rejects_bad_arguments():
    with pytest.raises(ValueError, match="realism"):
        demo.synthetic_digits(5, realism=1.5)
    with pytest.raises(ValueError, match="n must be positive"):
        demo.synthetic_digits(0)
    with pytest.raises(ValueError, match="digit must be 0..9"):
        synth.render(10, np.random.default_rng(0))


def test_skeletons_stay_in_the_unit_box():
    rng = np.random.default_rng(0)
    for d in range(10):
        for _ in range(5):
            pts = np.concatenate([np.asarray(s) for s in skeleton(d, rng, wobble=0.2)])
            assert pts.min() >= 0 and pts.max() <= 1


def test_font_list_always_includes_pillows_own():
    assert synth.font_names()[0] == "pillow-default"
    assert len(synth.font_names()) == 1 + len(synth.font_files())


# --- model and training ------------------------------------------------------------------

def test_model_layers_and_shapes():
    net = DigitNet()
    names = [n for n, _ in net.named_children()]
    assert [n for n in names if n.startswith(("conv", "fc"))] == [
        "conv1", "conv2", "conv3", "fc1", "fc2"]
    assert net(torch.zeros(3, 1, SIZE, SIZE)).shape == (3, 10)
    with pytest.raises(ValueError, match="multiple of 8"):
        DigitNet(size=12)


def test_training_smoke_learns_and_is_deterministic():
    cfg = CONFIGS["real"].replace(steps=60)
    a, info = train(cfg)
    b, _ = train(cfg)
    assert not a.training
    assert info["test_accuracy"] > 0.5, "60 steps on real digits beat chance by far"
    assert info["test_accuracy"] == accuracy(a, real_digits()[1])
    for (k, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-5), k
    assert info["config"]["seed"] == 0 and "realism" not in info["config"]


def test_training_leaves_global_rng_and_threads_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    train(CONFIGS["real"].replace(steps=2))
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_seeds_and_data_make_different_models():
    a, _ = train(CONFIGS["real"].replace(steps=3))
    b, _ = train(CONFIGS["real_seed1"].replace(steps=3))
    assert not torch.equal(a.conv1.weight, b.conv1.weight)


def test_synthetic_key_includes_generator_settings():
    fields = CONFIGS["synthetic"].key_fields()
    assert fields["fonts"] == list(synth.font_names()) and fields["realism"] == 1.0
    assert cache.cache_key(fields) != cache.cache_key(CONFIGS["real"].key_fields())


# --- cache -------------------------------------------------------------------------------

def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLENS_CACHE", str(tmp_path / "a"))
    assert cache.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("CNNLENS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "cnnlens"


def test_code_version_ignores_prose_but_not_code():
    base = cache._code_only("x = 1\ndef f():\n    return 2\n")
    prose = '"""Module."""\nx = 1  # why\ndef f():\n    """Doc."""\n    return 2\n'
    assert cache._code_only(prose) == base
    assert cache._code_only("x = 1\ndef f():\n    return 3\n") != base
    assert len(cache.code_version()) == 16


def test_cache_miss_then_hit(tiny):
    count = Counter()
    first = demo.models(progress=count)
    assert count.runs == list(demo.NAMES)
    assert sorted(p.name.split("-")[1] for p in tiny.glob("demo-*.pt")) == sorted(demo.NAMES)
    assert not list(tiny.glob(".*tmp")), "no temporary file left behind"

    second = demo.models(progress=count)
    assert count.runs == list(demo.NAMES), "a cache hit must not train"
    for name in demo.NAMES:
        assert demo.info(name)["cached"] and demo.info(name)["load_seconds"] < 1.0
        for pa, pb in zip(first[name].parameters(), second[name].parameters()):
            assert torch.equal(pa, pb)
        assert not second[name].training


def test_stale_entry_is_replaced(tiny, monkeypatch):
    count = Counter()
    demo.model("real", progress=count)
    old = list(tiny.glob("demo-real-*.pt"))
    monkeypatch.setitem(CONFIGS, "real", CONFIGS["real"].replace(steps=31))
    demo.model("real", progress=count)
    assert count.runs == ["real", "real"], "a changed config is a miss"
    new = list(tiny.glob("demo-real-*.pt"))
    assert len(new) == 1 and new != old, "the stale entry is dropped"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other_key", "nan"])
def test_corrupt_entry_is_rebuilt(tiny, damage):
    count = Counter()
    demo.model("real", progress=count)
    (path,) = tiny.glob("demo-real-*.pt")
    if damage == "garbage":
        path.write_bytes(os.urandom(2048))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "other_key":
        demo.model("real_seed1", progress=count)
        (other,) = tiny.glob("demo-real_seed1-*.pt")
        path.write_bytes(other.read_bytes())
    else:
        blob = torch.load(path, weights_only=True)
        blob["state_dict"]["conv1.weight"][0, 0, 0, 0] = float("nan")
        torch.save(blob, path)
    runs = len(count.runs)
    with pytest.warns(RuntimeWarning, match="unusable"):
        net = demo.model("real", progress=count)
    assert len(count.runs) == runs + 1, "the damaged entry was retrained"
    assert all(torch.isfinite(p).all() for p in net.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and the rebuilt file is good again
        demo.model("real", progress=count)
    assert len(count.runs) == runs + 1


def test_unwritable_cache_warns_and_still_returns_a_model(monkeypatch, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    monkeypatch.setenv("CNNLENS_CACHE", str(blocker / "cache"))
    monkeypatch.setitem(CONFIGS, "real", CONFIGS["real"].replace(steps=5))
    with pytest.warns(RuntimeWarning, match="cannot write"):
        net = demo.model("real", progress=False)
    assert isinstance(net, DigitNet) and demo.info("real")["path"] is None


def test_unknown_model_name_lists_the_valid_ones():
    with pytest.raises(KeyError, match="real_seed1"):
        demo.model("reel")


def test_cli_reports_accuracy(tiny, capsys):
    from cnnlens.demo.__main__ import main

    assert main(["real", "synthetic"]) == 0
    out = capsys.readouterr()
    assert "real-test acc" in out.out and "trained" in out.out
    assert "training real" in out.err  # the text progress bar
    assert main(["real"]) == 0
    assert "cache" in capsys.readouterr().out.splitlines()[-2]
    with pytest.raises(SystemExit):
        main(["nope"])


def test_text_progress_bar_format():
    import io

    buf = io.StringIO()
    bar = demo.text_progress(buf)
    bar("real", 0, 10)
    bar("real", 10, 10)
    assert "[" + "#" * 30 + "]" in buf.getvalue() and buf.getvalue().endswith("\n")


def test_demo_data_bundle():
    d = demo.data()
    assert len(d.train) == 1198 and len(d.test) == 599
    assert "synthetic" not in vars(d), "the synthetic set is drawn only on first access"


def test_demo_is_core_no_widget_imports():
    code = ("import sys, cnnlens.demo, cnnlens.demo.__main__; "
            "bad = [m for m in ('ipywidgets', 'anywidget', 'bqplot') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
