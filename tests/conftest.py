"""Shared test fixtures."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # helper modules (hf_reference, checkpoint_writers, ...)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small models run fastest on one torch thread (and the test machine may be shared)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
