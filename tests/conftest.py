"""Shared fixtures: tiny seeded CPU CNNs and images (session scoped, built once)."""
import os
import pathlib

import pytest
import torch
from tiny_nets import tiny_cnn  # a plain module: spawned test processes import it by name

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


REFERENCE = pathlib.Path(__file__).resolve().parents[2] / "shared" / "reference"


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
