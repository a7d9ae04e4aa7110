"""The ``timeseries`` family: 1D CNNs for time series (Wang, Yan & Oates 2017, "Time series classification
from scratch with deep neural networks: a strong baseline").

Input (N, C, L); any length L ≥ 1 works (global pooling). ``fcn`` is width 128, ``resnet1d`` width 64; any
other width by name (``fcn_w32``, ``resnet1d_w16``), resolved on demand.
"""

from __future__ import annotations

import functools
import re

import torch
from torch import nn

from kdviz.models.registry import ModelInfo, model_info, register_model, register_resolver

__all__ = ["FCN", "ResNet1D", "fcn", "resnet1d", "width_name"]

# Width-parameterised 1D names: ``fcn_w32`` → builder ``fcn`` with width 32.
WIDTH_NAME = re.compile(r"^(?P<base>fcn|resnet1d)_w(?P<width>[1-9][0-9]{0,3})$")

class ConvBlock1d(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, relu: bool = True):
        layers: list[nn.Module] = [nn.Conv1d(cin, cout, kernel, padding="same"), nn.BatchNorm1d(cout)]
        if relu:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class FCN(nn.Module):
    """Three conv blocks (kernels 8, 5, 3; filters w, 2w, w), global average pooling, linear."""

    def __init__(self, *, num_classes: int, in_channels: int, width: int = 128):
        super().__init__()
        self.features = nn.Sequential(
            ConvBlock1d(in_channels, width, 8), ConvBlock1d(width, 2 * width, 5), ConvBlock1d(2 * width, width, 3)
        )
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class ResidualBlock1d(nn.Module):
    """Three conv blocks (kernels 8, 5, 3) with a shortcut (1×1 conv + BN when channels change, else BN)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = ConvBlock1d(cin, cout, 8)
        self.conv2 = ConvBlock1d(cout, cout, 5)
        self.conv3 = ConvBlock1d(cout, cout, 3, relu=False)
        self.shortcut = (
            nn.Sequential(nn.Conv1d(cin, cout, 1), nn.BatchNorm1d(cout)) if cin != cout else nn.BatchNorm1d(cout)
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


class ResNet1D(nn.Module):
    """Three residual blocks with filters w, 2w, 2w; global average pooling, linear."""

    def __init__(self, *, num_classes: int, in_channels: int, width: int = 64):
        super().__init__()
        self.block1 = ResidualBlock1d(in_channels, width)
        self.block2 = ResidualBlock1d(width, 2 * width)
        self.block3 = ResidualBlock1d(2 * width, 2 * width)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


@register_model("fcn", family="timeseries", input_kind="series", default_in_channels=1)
def fcn(*, num_classes: int, in_channels: int, width: int = 128) -> nn.Module:
    return FCN(num_classes=num_classes, in_channels=in_channels, width=width)


@register_model("resnet1d", family="timeseries", input_kind="series", default_in_channels=1)
def resnet1d(*, num_classes: int, in_channels: int, width: int = 64) -> nn.Module:
    return ResNet1D(num_classes=num_classes, in_channels=in_channels, width=width)


def width_name(base: str, width: int) -> str:
    """Registry name of a 1D model at ``width`` (``fcn`` at 128 is plain ``fcn``)."""
    default = {"fcn": 128, "resnet1d": 64}[base]
    return base if width == default else f"{base}_w{width}"


@register_resolver
def resolve_width_name(arch: str) -> ModelInfo | None:
    """``fcn_w32`` → the ``fcn`` builder at width 32 (a ``width`` passed to ``create_model`` still wins)."""
    match = WIDTH_NAME.match(arch)
    if not match:
        return None
    base = model_info(match["base"])
    builder = functools.partial(base.builder, width=int(match["width"]))
    return ModelInfo(arch, base.family, base.input_kind, base.default_in_channels, builder)
