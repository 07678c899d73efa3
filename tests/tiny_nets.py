"""The tiny seeded CNN the tests build, and what spawned ranks share (a module of its own:
worker processes import it by name, where ``conftest`` could resolve to
``tests/ui/conftest.py``)."""
import contextlib
import os
import socket

import torch
from torch import nn


def tiny_cnn(seed=0, in_channels=3, classes=10):
    """A small VGG-like CNN: conv-bn-relu-pool x2, then two linear layers."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, classes),
    ).eval()


class Counting(nn.Module):
    """Counts forward calls of the wrapped model (layer names gain a ``net.`` prefix), so a
    test can prove that something did not re-run the model."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x):
        self.calls += 1
        return self.net(x)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a test's process group."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gloo_rank(rank: int, world: int, port: int):
    """This spawned process as rank ``rank`` of a gloo group on 127.0.0.1, on one thread."""
    import torch.distributed as dist

    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        torch.set_num_threads(1)
        yield
    finally:
        dist.destroy_process_group()
