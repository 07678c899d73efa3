"""Shared fixtures: tiny seeded CPU CNNs and images (session scoped, built once)."""
import os
import pathlib

import pytest
import torch
from torch import nn

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REFERENCE = pathlib.Path(__file__).resolve().parents[2] / "shared" / "reference"


def tiny_cnn(seed=0, in_channels=3, classes=10):
    """A small VGG-like CNN: conv-bn-relu-pool x2, then two linear layers."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, classes),
    ).eval()


@pytest.fixture(scope="session")
def model():
    return tiny_cnn(0)


@pytest.fixture(scope="session")
def model_b():
    return tiny_cnn(1)


@pytest.fixture(scope="session")
def images():
    """24 seeded RGB images, 16x16."""
    g = torch.Generator().manual_seed(0)
    return torch.rand(24, 3, 16, 16, generator=g)


@pytest.fixture(scope="session")
def reference_dir():
    """../shared/reference: outside truth. Skips in a user's clone; a failure in CI."""
    if not (REFERENCE / "manifest.json").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"reference cases missing at {REFERENCE} (required in CI)")
        pytest.skip(f"reference cases not found at {REFERENCE}")
    return REFERENCE
