"""Layer tree and selectors (cnnlens.probe) on tiny models and torchvision architectures."""
import pytest
import torch
import torchvision
from torch import nn

from cnnlens.capture import capture
from cnnlens.probe import LayerNotFound, kind_of, layer_tree


def no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


class Twice(nn.Module):
    """Calls the same ReLU twice and the same conv twice (weight sharing)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)

    def forward(self, x):
        x = self.act(self.conv(x))
        x = self.act(self.conv(x) - 1.0)
        return self.pool(x)


class Detector(nn.Module):
    """Detector-style: returns a dict of heads, and a block returning a tuple."""

    def __init__(self, as_tuple=False):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.split = Split()
        self.as_tuple = as_tuple

    def forward(self, x):
        a, b = self.split(self.backbone(x))
        return (a, b) if self.as_tuple else {"boxes": a, "scores": b}


class Split(nn.Module):
    def __init__(self):
        super().__init__()
        self.box = nn.Conv2d(4, 8, 1)
        self.cls = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.box(x), self.cls(x).mean((2, 3))


def test_tree_of_tiny_cnn(model, images):
    tree = layer_tree(model, images[:2])
    assert tree.names == [n for n, _ in model.named_modules() if n]
    assert [x.kind for x in tree] == ["conv", "norm", "activation", "pool", "conv", "activation",
                                      "pool", "other", "linear", "activation", "linear"]
    assert tree["0"].shape == (8, 16, 16) and tree["3"].shape == (8, 8, 8)
    assert tree["8"].shape == (32,) and tree["10"].shape == (10,)
    assert tree["0"].params == 3 * 8 * 9 + 8 and tree["2"].params == 0
    assert tree["0"].type == "Conv2d" and tree["0"].depth == 1
    assert no_hooks(model)


def test_block_kind_depth_and_params_include_children():
    net = nn.Sequential(nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2)), nn.Flatten())
    tree = layer_tree(net, torch.rand(1, 3, 4, 4))
    assert tree["0"].kind == "block" and tree["0"].params == 3 * 2 + 2 + 2 * 2
    assert tree["0.1"].depth == 2 and tree["0.1"].kind == "norm"
    assert kind_of(nn.MultiheadAttention(4, 1)) == "block"
    assert kind_of(nn.AdaptiveAvgPool2d(1)) == "pool" and kind_of(nn.GELU()) == "activation"
    assert kind_of(torchvision.ops.FrozenBatchNorm2d(3)) == "norm"


def test_no_example_means_no_shapes(model):
    tree = layer_tree(model)
    assert len(tree) == 11 and all(x.shape is None for x in tree)


def test_dry_run_restores_flags_and_removes_hooks_on_error():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(5, 2))
    net.train()
    net[1].eval()  # a frozen BN inside a training model must stay frozen
    with pytest.raises(Exception, match="mat1 and mat2"):
        layer_tree(net, torch.rand(1, 3, 8, 8))
    assert no_hooks(net)
    assert net.training and net[0].training and not net[1].training


def test_selectors(model, images):
    tree = layer_tree(model, images[:1])
    assert [x.name for x in tree.select("4")] == ["4"]
    assert [x.name for x in tree.select(model[8])] == ["8"]
    assert [x.name for x in tree.select(["8", model[0], "8", tree["2"]])] == ["8", "0", "2"]
    assert [x.name for x in tree.select(lambda x: x.kind == "pool")] == ["3", "6"]
    assert [x.name for x in tree.select(None)] == ["0", "4", "8", "10"]
    assert "4" in tree and model[4] in tree and "nope" not in tree
    assert isinstance(tree[0], type(tree["0"])) and len(tree[2:4]) == 2
    with pytest.raises(TypeError, match="layer selector"):
        tree.select(3.5)


def test_unknown_name_lists_closest_names():
    net = torchvision.models.resnet18()
    tree = layer_tree(net)
    with pytest.raises(KeyError) as info:
        tree["layer1.O.conv1"]
    msg = str(info.value)
    assert isinstance(info.value, LayerNotFound)
    assert "unknown layer 'layer1.O.conv1'" in msg and "'layer1.0.conv1'" in msg
    with pytest.raises(KeyError, match="not a submodule"):
        tree.select(nn.ReLU())


def test_repeated_calls_get_indexed_names():
    net = Twice()
    tree = layer_tree(net, torch.rand(2, 3, 8, 8))
    assert tree.names == ["conv", "conv:1", "act", "act:1", "pool"]
    assert tree["act:1"].module is net.act and tree["act:1"].module_name == "act"
    assert tree["act:1"].call == 1 and tree["act"].call == 0
    assert tree.select(net.act)[0].name == "act"  # a module selects its first call
    with pytest.raises(KeyError, match="ran 2 time"):
        tree["act:2"]


@pytest.mark.parametrize("as_tuple", [False, True])
def test_tuple_and_dict_outputs(as_tuple):
    net = Detector(as_tuple)
    tree = layer_tree(net, torch.rand(1, 3, 8, 8))
    assert tree["split"].shape == (8, 8, 8)  # default: the first tensor of the tuple
    assert tree["split.cls"].shape == (2, 8, 8)
    assert layer_tree(net, torch.rand(1, 3, 8, 8), pick=1)["split"].shape == (2,)
    assert no_hooks(net)


ARCHS = ["resnet18", "vgg11", "mobilenet_v3_small", "densenet121", "efficientnet_b0"]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_torchvision_architectures(arch):
    torch.manual_seed(0)
    net = getattr(torchvision.models, arch)(weights=None).train()
    tree = layer_tree(net, torch.rand(1, 3, 64, 64))
    assert no_hooks(net) and net.training and all(m.training for m in net.modules())
    convs = tree.select(lambda x: x.kind == "conv")
    assert convs and all(x.shape is not None and len(x.shape) == 3 for x in convs)
    assert tree.select(None)[-1].kind == "linear" and tree.select(None)[-1].shape == (1000,)
    kinds = {x.kind for x in tree}
    assert {"conv", "linear", "activation", "block"} <= kinds
    assert ("norm" in kinds) == (arch != "vgg11")  # plain VGG has no normalisation
    # every module that ran appears once per call, right after its first call
    for i, x in enumerate(tree):
        if x.call:
            assert tree[i - 1].module is x.module
    picked = [convs[0], convs[-1], tree.select(None)[-1]]
    acts = capture(net, torch.rand(2, 3, 64, 64), picked)
    assert [tuple(t.shape[1:]) for t in acts.values()] == [x.shape for x in picked]
    assert no_hooks(net) and net.training
