"""Activation capture (cnnlens.capture): hooks, flags, outputs, errors."""
import threading

import pytest
import torch
from test_probe import Detector, Twice, no_hooks
from torch import nn

from cnnlens.capture import (
    ForwardError,
    NonFiniteError,
    capture,
    pick_tensor,
    recording,
    stream,
)
from cnnlens.inputs import eval_mode


def test_capture_matches_manual_forward(model, images):
    acts = capture(model, images, ["0", "4", "8"])
    assert list(acts) == ["0", "4", "8"]
    with torch.no_grad():
        x0 = model[0](images)
        x8 = model[:9](images)
    torch.testing.assert_close(acts["0"], x0)
    torch.testing.assert_close(acts["8"], x8)
    assert acts["4"].shape == (24, 16, 8, 8)
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" and not t.requires_grad
               for t in acts.values())
    assert no_hooks(model)


def test_inplace_relu_does_not_rewrite_earlier_outputs(model, images):
    # model[1] (BatchNorm) feeds ReLU(inplace=True): without a copy in the hook the
    # recorded BN output would be rectified after the fact.
    acts = capture(model, images, ["1", "2"])
    with torch.no_grad():
        bn = model[1](model[0](images))
    assert (acts["1"] < 0).any()
    torch.testing.assert_close(acts["1"], bn)
    torch.testing.assert_close(acts["2"], bn.clamp(min=0))


def test_batches_give_the_same_result(model, images):
    whole = capture(model, images, ["4", "10"], batch_size=64)
    parts = capture(model, images, ["4", "10"], batch_size=5)
    for k in whole:
        torch.testing.assert_close(whole[k], parts[k])
    outs = list(stream(model, (images[i:i + 10] for i in range(0, 24, 10)), "10"))
    assert [len(o["10"]) for o in outs] == [10, 10, 4]


def test_eval_no_grad_and_flags_restored():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten())
    net.train()
    net[2].eval()
    before = net[1].running_mean.clone()
    x = torch.rand(6, 3, 8, 8)
    a = capture(net, x, ["2"])["2"]
    b = capture(net, x, ["2"])["2"]
    torch.testing.assert_close(a, b)  # dropout off: eval mode during capture
    torch.testing.assert_close(net[1].running_mean, before)  # BN statistics untouched
    assert net.training and net[1].training and not net[2].training
    assert no_hooks(net) and torch.is_grad_enabled()


def test_stream_does_not_leak_grad_mode_or_hooks_between_batches(model, images):
    gen = stream(model, [images[:4], images[4:8]], "0")
    next(gen)
    assert torch.is_grad_enabled()  # no_grad only around the forward, not across yields
    gen.close()  # abandoning the generator removes the hooks
    assert no_hooks(model)


class Boom(nn.Module):
    def forward(self, x):
        raise ZeroDivisionError("custom failure inside forward")


def test_forward_error_chains_and_cleans_up():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), Boom())
    net.train()
    with pytest.raises(ForwardError, match="raised ZeroDivisionError.*custom failure") as info:
        capture(net, torch.rand(2, 3, 8, 8), ["0", "1"])
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert isinstance(info.value, RuntimeError)
    assert no_hooks(net) and net.training and net[1].training


def test_recording_context_removes_hooks_on_user_exception(model, images):
    with pytest.raises(KeyError), recording(model, ["0", "8"]) as rec:
        model(images[:3])
        assert rec.take()["8"].shape == (3, 32)
        assert model[0]._forward_hooks  # hooks live inside the block
        raise KeyError("user code failed")
    assert no_hooks(model)


def test_wrong_channel_count_and_shape(model):
    with pytest.raises(ValueError, match=r"expects 3 input channel\(s\) \(first conv '0' has "
                                         r"in_channels=3\), got 1 channel") as info:
        capture(model, torch.rand(2, 1, 16, 16), ["0"])
    assert "repeat" in str(info.value)
    with pytest.raises(ValueError, match=r"4 dimensions \(N, C, H, W\), got shape \(2, 3, 8, 8, 1\)"):
        list(stream(model, [torch.rand(2, 3, 8, 8, 1)], "0"))
    with pytest.raises(ValueError, match="NaN/Inf"):
        capture(model, torch.full((1, 3, 16, 16), float("nan")), ["0"])
    with pytest.raises(ForwardError, match="mat1 and mat2.*check the input size") as info:
        capture(model, torch.rand(2, 3, 32, 32), ["0"])  # built for 16x16: the Linear fails
    assert isinstance(info.value.__cause__, RuntimeError)
    assert no_hooks(model)


class LogNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.shift = nn.Conv2d(3, 2, 1)
        self.log = Log()
        self.after = nn.Conv2d(2, 2, 1)

    def forward(self, x):
        return self.after(self.log(self.shift(x) - 10.0))


class Log(nn.Module):
    def forward(self, x):
        return torch.log(x)  # NaN for the negative inputs it gets


def test_non_finite_activation_names_the_first_layer():
    net = LogNet()
    with pytest.raises(NonFiniteError, match=r"layer 'log' contain \d+ NaN"):
        capture(net, torch.rand(2, 3, 4, 4), ["after", "shift", "log"])
    assert no_hooks(net)
    out = capture(net, torch.rand(2, 3, 4, 4), ["after"], check_finite=False)
    assert torch.isnan(out["after"]).any()


def test_tuple_and_dict_outputs_with_pick():
    x = torch.rand(2, 3, 8, 8)
    for as_tuple in (False, True):
        net = Detector(as_tuple)
        assert capture(net, x, ["split"])["split"].shape == (2, 8, 8, 8)
        assert capture(net, x, ["split"], pick=1)["split"].shape == (2, 2)
        assert capture(net, x, ["split"], pick=lambda o: o[1] * 0)["split"].abs().sum() == 0
        assert capture(net, x, ["split"], pick={"split": 1})["split"].shape == (2, 2)
    assert pick_tensor({"boxes": 1, "x": [None, torch.ones(1)]}).shape == (1,)
    assert pick_tensor({"a": torch.zeros(1), "b": torch.ones(2)}, "b").shape == (2,)
    with pytest.raises(TypeError, match=r"layer 'split' returned tuple with no tensor for pick=5"):
        capture(Detector(True), x, ["split"], pick=5)


def test_repeated_module_calls_are_recorded_per_call():
    net = Twice()
    x = torch.rand(3, 3, 8, 8)
    acts = capture(net, x, ["act", "act:1", "conv:1"])
    with torch.no_grad():
        first = net.act(net.conv(x))
        second = net.act(net.conv(first) - 1.0)
    torch.testing.assert_close(acts["act"], first)
    torch.testing.assert_close(acts["act:1"], second)
    with pytest.raises(ValueError, match=r"\['act:2'\] did not run"):
        capture(net, x, ["act:2"])
    assert no_hooks(net)


def test_two_streams_over_one_model_stay_apart(model, images):
    # e.g. comparing a model with itself: both streams hook the same modules
    a = stream(model, [images[:4], images[4:10]], ["0", "4"])
    b = stream(model, [images[10:13], images[13:20]], ["4"])
    for (oa, ob), na, nb in zip(zip(a, b), (4, 6), (3, 7)):
        assert oa["0"].shape[0] == oa["4"].shape[0] == na and ob["4"].shape[0] == nb
    torch.testing.assert_close(ob["4"], capture(model, images[13:20], ["4"])["4"])
    assert no_hooks(model)


def test_other_threads_are_not_recorded(model, images):
    with recording(model, ["0"]) as rec:
        t = threading.Thread(target=lambda: model(images[:2]))
        t.start()
        t.join()
        model(images[:3])
        assert rec.take()["0"].shape[0] == 3


def test_float64_model_and_integer_input():
    net = nn.Sequential(nn.Conv2d(3, 2, 3)).double()
    out = capture(net, (torch.rand(2, 3, 5, 5) * 255).to(torch.uint8), ["0"])["0"]
    assert out.dtype == torch.float32 and out.shape == (2, 2, 3, 3)


def test_flags_restored_only_when_the_last_concurrent_user_leaves(model, images):
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Dropout()).train()
    with eval_mode(net):
        t = threading.Thread(target=lambda: capture(net, images[:2], ["0"]))
        t.start()
        t.join()
        assert not net.training and not net[1].training  # the thread must not restore early
    assert net.training and net[1].training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_on_gpu_gives_cpu_float32(model, images):
    import copy

    net = copy.deepcopy(model).cuda().half()
    acts = capture(net, images, ["0", "8"], batch_size=10)  # CPU images go to the model
    assert acts["0"].device.type == "cpu" and acts["0"].dtype == torch.float32
    torch.testing.assert_close(acts["8"], capture(model, images, ["8"])["8"], atol=0.05, rtol=0.05)


def test_consume_sees_outputs_before_a_later_inplace_relu(model, images):
    # model[1] (BatchNorm) feeds ReLU(inplace=True): consume runs inside the hook, so
    # statistics taken there equal those of the copying path, with no copy made.
    batches = [images[:10], images[10:]]
    stats: dict[str, list] = {}

    def consume(name, t):
        stats.setdefault(name, []).append((t.sum((0, 2, 3)), t.flatten(1) @ t.flatten(1).mT))

    shapes = list(stream(model, batches, ["1", "2"], consume=consume))
    assert [s["1"] for s in shapes] == [(10, 8, 16, 16), (14, 8, 16, 16)]
    copied = list(stream(model, batches, ["1", "2"]))
    for k, out in enumerate(copied):
        assert (out["1"] < 0).any()
        for name in ("1", "2"):
            x = out[name]
            torch.testing.assert_close(stats[name][k][0], x.sum((0, 2, 3)))
            torch.testing.assert_close(stats[name][k][1], x.flatten(1) @ x.flatten(1).mT)
    assert no_hooks(model)


def test_consume_errors_propagate_as_is_and_remove_hooks(model, images):
    seen = []

    def consume(name, t):
        seen.append(name)
        raise KeyError(f"consumer failed on {name}")

    model.train()
    try:
        with pytest.raises(KeyError, match="consumer failed on 0"):
            list(stream(model, [images[:4], images[4:8]], ["0", "4"], consume=consume))
        assert seen == ["0"]  # the rest of the batch's hooks are skipped
        assert no_hooks(model) and model.training and torch.is_grad_enabled()
    finally:
        model.eval()
    with pytest.raises(NonFiniteError, match=r"layer 'log' contain \d+ NaN"):
        list(stream(LogNet(), torch.rand(2, 3, 4, 4), ["shift", "log"],
                    consume=lambda n, t: None))
