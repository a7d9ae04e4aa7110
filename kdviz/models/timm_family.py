"""timm models by their timm names (``deit_tiny_distilled_patch16_224``, ``vit_tiny_patch16_224`` …).

A handful of Vision Transformers and DeiTs are registered outright, so the registry tests and the shipped
key index cover them; any other timm name is resolved by :func:`resolve_timm_name` on demand. Weights are
never downloaded: ``timm.create_model(…, pretrained=False)`` only, the user brings the checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from torch import nn

from kdviz.models.registry import ModelInfo, register_model, register_resolver

__all__ = ["REGISTERED", "is_timm_name", "resolve_timm_name", "timm_builder", "timm_vit_candidates"]

REGISTERED = (
    "deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224",
    "deit_tiny_distilled_patch16_224", "deit_small_distilled_patch16_224", "deit_base_distilled_patch16_224",
    "vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224",
)


def timm_builder(name: str) -> Callable[..., nn.Module]:
    """``build(*, num_classes, in_channels, **kwargs)`` for timm model ``name``, random weights."""

    def build(*, num_classes: int, in_channels: int, **kwargs: object) -> nn.Module:
        import timm  # noqa: PLC0415 - heavy optional dependency: imported on first use, `import kdviz` stays fast

        return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels, **kwargs)

    return build


for _name in REGISTERED:
    register_model(_name, family="timm", input_kind="image", default_in_channels=3)(timm_builder(_name))


@register_resolver
def resolve_timm_name(arch: str) -> ModelInfo | None:
    """Any other timm model name, built on demand (asked last: importing timm costs time).

    ``timm/<name>`` (the prefix timm's own hub ids use) always means timm's model, also where another family
    registered the same name (``timm/efficientnet_b0`` vs torchvision's ``efficientnet_b0``).
    """
    name = arch.removeprefix("timm/")
    return ModelInfo(arch, "timm", "image", 3, timm_builder(name)) if is_timm_name(name) else None


def is_timm_name(name: str) -> bool:
    """Whether timm builds a model of exactly this name (``mobilenetv3_small_100``; no ``timm/`` prefix)."""
    import timm  # noqa: PLC0415 - heavy dependency: imported only when a name is checked

    return bool(timm.is_model(name))


_VIT_NAME = re.compile(
    r"^(?:vit|deit3?)_(?P<width>[a-z]+)(?:_distilled)?_patch(?P<patch>\d+)_(?:[a-z0-9]+_)*?(?P<size>\d+)$")
# timm's ViT size words and their embedding widths (timm/models/vision_transformer.py, deit.py).
EMBED_DIMS = {"tiny": 192, "small": 384, "medium": 512, "base": 768, "large": 1024, "huge": 1280, "giant": 1408}


def timm_vit_candidates(*, embed_dim: int, patch: int, tokens: int) -> list[str]:
    """timm ViT/DeiT names whose width, patch size and image size fit the weights.

    ``tokens`` is the length of ``pos_embed``: the patch grid plus 0–2 prefix tokens (class, distillation).
    Only names that can hold these weights are returned, so the caller builds a handful of models rather
    than all ~200 ViTs.
    """
    import timm  # noqa: PLC0415 - heavy optional dependency: only when ViT weights are being matched

    found = []
    for name in timm.list_models(["vit_*", "deit_*", "deit3_*"]):
        m = _VIT_NAME.match(name)
        if not m or int(m["patch"]) != patch or EMBED_DIMS.get(m["width"]) != embed_dim:
            continue
        grid = (int(m["size"]) // patch) ** 2
        if tokens - grid in (0, 1, 2):
            found.append(name)
    return found
