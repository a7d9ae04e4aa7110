"""Tiny models with known answers, shared by the attribution tests."""

from __future__ import annotations

import torch
from torch import nn


class TinyCNN(nn.Module):
    """Two convs (separate ReLU modules, as DeepLIFT wants), global pooling, linear head."""

    def __init__(self, in_channels: int = 2, n_classes: int = 3, dims: int = 2) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        pool = nn.AdaptiveAvgPool2d(1) if dims == 2 else nn.AdaptiveAvgPool1d(1)
        self.features = nn.Sequential(
            conv(in_channels, 4, 3, padding=1), nn.ReLU(), conv(4, 5, 3, padding=1), nn.ReLU(), pool, nn.Flatten()
        )
        self.head = nn.Linear(5, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class LinearModel(nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.fill_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


def no_hooks(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
        and not getattr(m, "_backward_pre_hooks", {})
        for m in model.modules()
    )
