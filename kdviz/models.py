"""One registry of architectures and one factory, ``create_model``.

Five families:

* ``torchvision``: every torchvision classification model, by its torchvision name;
* ``cifar_resnet``: the CIFAR-style ResNets of the distillation literature (resnet8 … resnet110, resnet8x4,
  resnet32x4), with parameter names in the RepDistiller/mdistiller layout so their checkpoints load;
* ``cifar_kd``: the rest of the CIFAR distillation-benchmark zoo (wide ResNets, VGG, MobileNetV2, ShuffleNet
  V1/V2, CIFAR ResNet-18/50; ``kdviz.archs.cifar_kd``);
* ``timm``: timm models by their timm names, ViT and DeiT registered outright, any other on demand
  (``kdviz.archs.timm_models``);
* ``timeseries``: 1D CNNs for time series: FCN and ResNet1D (Wang et al., 2017), at configurable width
  (``fcn`` is width 128, ``fcn_w32`` is width 32; ``resnet1d`` is width 64, ``resnet1d_w16`` width 16).

Like timm's registry: ``@register_model`` adds a builder, ``create_model(name, …)`` builds it, and an
unknown name raises an error that lists the closest valid names.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Literal

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = [
    "ModelInfo",
    "UnknownModelError",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
]

Family = Literal["torchvision", "cifar_resnet", "cifar_kd", "timm", "timeseries"]
InputKind = Literal["image", "series"]


class UnknownModelError(ValueError):
    """Raised for an architecture name that is not in the registry."""


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one architecture."""

    name: str
    family: Family
    input_kind: InputKind
    default_in_channels: int
    builder: Callable[..., nn.Module]


_REGISTRY: dict[str, ModelInfo] = {}

# Width-parameterised 1D names: ``fcn_w32`` → builder ``fcn`` with width 32.
_WIDTH_NAME = re.compile(r"^(?P<base>fcn|resnet1d)_w(?P<width>[1-9][0-9]{0,3})$")


def register_model(
    name: str, *, family: Family, input_kind: InputKind, default_in_channels: int
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a builder ``fn(*, num_classes, in_channels, **kwargs) -> nn.Module``."""

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelInfo(name, family, input_kind, default_in_channels, fn)
        return fn

    return decorate


def list_models(family: Family | None = None) -> list[str]:
    """Registered architecture names, sorted; optionally one family only."""
    if family in (None, "torchvision"):
        _register_torchvision()
    return sorted(n for n, info in _REGISTRY.items() if family is None or info.family == family)


def model_info(arch: str) -> ModelInfo:
    """Registry entry for ``arch`` (width variants like ``fcn_w32`` included)."""
    if arch in _REGISTRY:
        return _REGISTRY[arch]
    _register_torchvision()
    if arch in _REGISTRY:
        return _REGISTRY[arch]
    match = _WIDTH_NAME.match(arch)
    if match:
        base = _REGISTRY[match["base"]]
        return ModelInfo(arch, base.family, base.input_kind, base.default_in_channels, base.builder)
    if _is_timm_model(arch):
        from kdviz.archs.timm_models import timm_builder

        return ModelInfo(arch, "timm", "image", 3, timm_builder(arch))
    close = difflib.get_close_matches(arch, list(_REGISTRY), n=6, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"valid names include {', '.join(list_models()[:12])} …"
    raise UnknownModelError(f"unknown architecture {arch!r}: {hint} (kdviz.models.list_models() lists all)")


def _is_timm_model(name: str) -> bool:
    import timm

    return bool(timm.is_model(name))


def create_model(
    arch: str, *, num_classes: int, in_channels: int | None = None, **kwargs: object
) -> nn.Module:
    """Build architecture ``arch`` with random weights, in train mode.

    Parameters
    ----------
    arch : registry name (``resnet18``, ``resnet56``, ``fcn_w32`` …).
    num_classes : size of the output layer.
    in_channels : input channels; defaults to the family's (3 for images, 1 for series).
    **kwargs : passed to the builder (for example ``width`` for the 1D models).
    """
    info = model_info(arch)
    if num_classes < 1:
        raise ValueError(f"num_classes must be ≥ 1, got {num_classes}")
    channels = info.default_in_channels if in_channels is None else int(in_channels)
    if channels < 1:
        raise ValueError(f"in_channels must be ≥ 1, got {in_channels}")
    match = _WIDTH_NAME.match(arch)
    if match and "width" not in kwargs:
        kwargs["width"] = int(match["width"])
    return info.builder(num_classes=num_classes, in_channels=channels, **kwargs)


# --------------------------------------------------------------------------------------------------
# torchvision: every classification model, first conv adapted to in_channels.


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    """Swap the first Conv2d for one taking ``in_channels`` (same hyper-parameters, fresh weights)."""
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                new = nn.Conv2d(
                    in_channels,
                    child.out_channels,
                    kernel_size=child.kernel_size,
                    stride=child.stride,
                    padding=child.padding,
                    dilation=child.dilation,
                    groups=1 if child.groups == child.in_channels else child.groups,
                    bias=child.bias is not None,
                    padding_mode=child.padding_mode,
                )
                setattr(parent, child_name, new)
                return
    raise ValueError(f"{type(model).__name__} has no Conv2d to adapt to in_channels={in_channels}")


def _torchvision_builder(name: str) -> Callable[..., nn.Module]:
    def build(*, num_classes: int, in_channels: int, **kwargs: object) -> nn.Module:
        if name in ("googlenet", "inception_v3"):
            kwargs.setdefault("aux_logits", False)
            kwargs.setdefault("init_weights", True)
        import torchvision

        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
        if in_channels != 3:
            _replace_first_conv(model, in_channels)
            if name == "inception_v3":
                model.transform_input = False  # it assumes 3 ImageNet channels
        return model

    return build


_torchvision_registered = False


def _register_torchvision() -> None:
    """Register every torchvision classification model, on first need.

    Importing torchvision pulls in torch._dynamo (~2.6 s on the 2-core box): the dashboard's demo zoos never
    need it, so the first grid no longer waits for it. ``list_models`` and ``model_info`` call this first.
    """
    global _torchvision_registered
    if _torchvision_registered:
        return
    _torchvision_registered = True
    import torchvision

    for name in torchvision.models.list_models(module=torchvision.models):
        register_model(name, family="torchvision", input_kind="image", default_in_channels=3)(
            _torchvision_builder(name)
        )


# --------------------------------------------------------------------------------------------------
# CIFAR-style ResNets (He et al. 2016, §4.2) in RepDistiller's parameter layout: conv1, bn1,
# layer1..3 of BasicBlocks (conv1, bn1, conv2, bn2, downsample.0/.1), fc. Differences that do not
# change parameter names: adaptive average pooling (so 28×28 and 32×32 inputs both work), and one
# ReLU module per use, not in-place, so DeepLift and hooks see every non-linearity.


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
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
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


# --------------------------------------------------------------------------------------------------
# 1D CNNs for time series (Wang, Yan & Oates 2017, "Time series classification from scratch with deep
# neural networks: a strong baseline"). Input (N, C, L); any length L ≥ 1 works (global pooling).


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


@cache
def state_dict_signature(arch: str, num_classes: int = 10, in_channels: int | None = None) -> dict[str, tuple[int, ...]]:
    """Parameter and buffer names with shapes, built with empty weights (no memory, fast)."""
    with _empty_weights():
        model = create_model(arch, num_classes=num_classes, in_channels=in_channels)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


class _FactoriesOnMeta(TorchFunctionMode):
    """Tensor factories that layers use for their weights (empty, zeros, ones …) allocate on meta.

    ``with torch.device("meta")`` would also move the tensors some constructors compute with
    (torchvision's RegNet rounds its widths with ``torch.arange``/``torch.round`` and ``.tolist()``),
    so only the factories are redirected. A function mode is thread-local: other threads building
    real models at the same time are unaffected (a patched ``nn.Module`` method would not be).
    """

    FACTORIES = frozenset({torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn})

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = dict(kwargs or {})
        if func in self.FACTORIES and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


@contextmanager
def _empty_weights() -> Iterator[None]:
    """Build modules whose parameters and buffers live on the meta device (no memory, no init cost)."""
    with _FactoriesOnMeta():
        yield


def infer_dims_from_state_dict(state: dict[str, torch.Tensor]) -> tuple[int | None, int | None]:
    """(num_classes, in_channels): the classifier is the last weight of rank ≥ 2 (a Linear, or a 1×1
    conv as in SqueezeNet); the input layer is the first convolution weight."""
    weights = [v for k, v in state.items() if k.endswith("weight")]
    first_conv = next((v for v in weights if v.ndim in (3, 4, 5)), None)
    classifier = next((v for v in reversed(weights) if v.ndim >= 2), None)
    in_channels = None if first_conv is None else int(first_conv.shape[1])
    num_classes = None if classifier is None else int(classifier.shape[0])
    return num_classes, in_channels



def key_fingerprint(arch: str) -> tuple[str, int]:
    """(SHA-1 of the sorted parameter/buffer names, their count) for ``arch``, optional buffers left out.

    Names do not depend on num_classes or in_channels, so one fingerprint per architecture finds every
    architecture whose key set equals a checkpoint's (``kdviz.archs.key_index`` ships them precomputed).
    """
    import hashlib

    keys = sorted(k for k in state_dict_signature(arch, 10, None) if not k.endswith(OPTIONAL_KEY_SUFFIXES))
    return hashlib.sha1("\n".join(keys).encode()).hexdigest(), len(keys)


# Buffers some codebases never saved (PyTorch 0.4.0 had no num_batches_tracked); not used at inference.
OPTIONAL_KEY_SUFFIXES = ("num_batches_tracked",)


# The other families register themselves on import (they use register_model above).
from kdviz.archs import cifar_kd as _cifar_kd  # noqa: E402,F401
from kdviz.archs import timm_models as _timm_models  # noqa: E402,F401
