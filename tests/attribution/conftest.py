"""Fixtures of the attribution tests: a tiny CNN on a batch of images and one on a batch of series."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.attribution.helpers import TinyCNN


@pytest.fixture
def image_case() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return TinyCNN(dims=2), torch.randn(3, 2, 8, 8), torch.tensor([0, 2, 1])


@pytest.fixture
def series_case() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return TinyCNN(dims=1), torch.randn(3, 2, 16), torch.tensor([1, 0, 2])
