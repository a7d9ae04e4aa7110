"""The ``torchvision`` family: every torchvision classification model by its torchvision name.

Registered on first need (:func:`kdviz.models.registry.register_lazy_family`): importing torchvision pulls in
torch._dynamo, which takes seconds, and the dashboard's demo zoos never need it. The first convolution
is adapted to the input's channel count (1-channel MNIST, for instance).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from kdviz.errors import UnsupportedModelError
from kdviz.models.registry import register_lazy_family, register_model

__all__ = ["replace_first_conv", "torchvision_builder"]


def replace_first_conv(model: nn.Module, in_channels: int) -> None:
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
    raise UnsupportedModelError(f"{type(model).__name__} has no Conv2d to adapt to in_channels={in_channels}")


def torchvision_builder(name: str) -> Callable[..., nn.Module]:
    """``build(*, num_classes, in_channels, **kwargs)`` for torchvision model ``name``, random weights."""

    def build(*, num_classes: int, in_channels: int, **kwargs: object) -> nn.Module:
        if name in ("googlenet", "inception_v3"):
            kwargs.setdefault("aux_logits", False)
            kwargs.setdefault("init_weights", True)
        import torchvision  # noqa: PLC0415 - heavy (imports torch._dynamo): only when a torchvision model is built

        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
        if in_channels != 3:
            replace_first_conv(model, in_channels)
            if name == "inception_v3":
                model.transform_input = False  # it assumes 3 ImageNet channels
        return model

    return build


def _register_all() -> None:
    import torchvision  # noqa: PLC0415 - heavy: only on the first lookup that needs the family

    for name in torchvision.models.list_models(module=torchvision.models):
        register_model(name, family="torchvision", input_kind="image", default_in_channels=3)(torchvision_builder(name))


register_lazy_family("torchvision", _register_all)
