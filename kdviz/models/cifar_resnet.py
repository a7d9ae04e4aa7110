"""The ``cifar_resnet`` family: CIFAR-style ResNets (He et al. 2016, §4.2) in RepDistiller's parameter layout.

resnet8 … resnet110 (filters 16/16/32/64) and resnet8x4, resnet32x4 (32/64/128/256): conv1, bn1, layer1..3 of
BasicBlocks (conv1, bn1, conv2, bn2, downsample.0/.1), fc, so RepDistiller/mdistiller checkpoints load.
Differences that do not change parameter names: adaptive average pooling (so 28×28 and 32×32 inputs both work),
and one ReLU module per use, not in-place, so DeepLift and hooks see every non-linearity.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kdviz.errors import InvalidInputError
from kdviz.models.registry import register_model

__all__ = ["BasicBlock", "CifarResNet"]

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu2(out + residual)


class CifarResNet(nn.Module):
    """ResNet with 3 stages of n BasicBlocks each; depth = 6n + 2."""

    def __init__(self, depth: int, num_filters: tuple[int, int, int, int], *, num_classes: int, in_channels: int):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise InvalidInputError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.inplanes = num_filters[0]
        self.conv1 = nn.Conv2d(in_channels, num_filters[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(num_filters[0])
        self.relu = nn.ReLU()
        self.layer1 = self._make_layer(num_filters[1], n)
        self.layer2 = self._make_layer(num_filters[2], n, stride=2)
        self.layer3 = self._make_layer(num_filters[3], n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(num_filters[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _cifar_builder(depth: int, filters: tuple[int, int, int, int]) -> Callable[..., nn.Module]:
    def build(*, num_classes: int, in_channels: int) -> nn.Module:
        return CifarResNet(depth, filters, num_classes=num_classes, in_channels=in_channels)

    return build


for _depth in (8, 14, 20, 32, 44, 56, 110):
    register_model(f"resnet{_depth}", family="cifar_resnet", input_kind="image", default_in_channels=3)(
        _cifar_builder(_depth, (16, 16, 32, 64))
    )
for _depth in (8, 32):
    register_model(f"resnet{_depth}x4", family="cifar_resnet", input_kind="image", default_in_channels=3)(
        _cifar_builder(_depth, (32, 64, 128, 256))
    )
