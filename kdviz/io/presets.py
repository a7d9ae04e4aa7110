"""Input presets: the size and normalisation a checkpoint was trained with, guessed from its family.

A CIFAR-benchmark checkpoint (RepDistiller, mdistiller, torchdistill) expects 32×32 inputs normalised with
its dataset's channel statistics; a timm or torchvision checkpoint expects ImageNet's 224×224 and statistics.
The guess is a starting point: the UI shows it and lets the user edit every number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdviz import models
from kdviz.errors import InvalidInputError

__all__ = ["PRESETS", "InputPreset", "display_scale", "guess_preset", "preset_names", "preview_strip"]


@dataclass(frozen=True)
class InputPreset:
    """Input size (H, W) and per-channel mean / std of a training set (RGB)."""

    name: str
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def for_channels(self, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and std for ``channels`` input channels (the RGB average repeated when not 3)."""
        if channels == 3:
            return self.mean, self.std
        return (round(sum(self.mean) / 3, 4),) * channels, (round(sum(self.std) / 3, 4),) * channels


PRESETS: dict[str, InputPreset] = {
    p.name: p
    for p in (
        # torchdistill's CIFAR-10 configs (configs/sample/cifar10/…: Normalize kwargs).
        InputPreset("CIFAR-10", (32, 32), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        # RepDistiller dataset/cifar100.py and mdistiller dataset/cifar100.py: transforms.Normalize(...).
        InputPreset("CIFAR-100", (32, 32), (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
        # torchvision / timm IMAGENET_DEFAULT_MEAN / _STD.
        InputPreset("ImageNet", (224, 224), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    )
}


def guess_preset(arch: str, num_classes: int) -> InputPreset | None:
    """The preset a checkpoint of ``arch`` with ``num_classes`` outputs was most likely trained with.

    CIFAR families: CIFAR-10 for 10 classes, else CIFAR-100 (the benchmark's dataset); torchvision: ImageNet;
    timm: what timm records for the model (ImageNet for DeiT, mean = std = 0.5 for ViT). None for time-series
    models and architectures outside the registry (trusted programs).
    """
    try:
        family = models.model_info(arch).family
    except models.UnknownModelError:
        return None
    if family in ("cifar_resnet", "cifar_kd"):
        return PRESETS["CIFAR-10" if num_classes == 10 else "CIFAR-100"]
    if family == "timm":
        return _timm_preset(arch)
    if family == "torchvision":
        return PRESETS["ImageNet"]
    return None


def _timm_preset(arch: str) -> InputPreset:
    """The input size and statistics timm records for ``arch`` (its pretrained config, read offline); timm's
    train.py normalises with these by default, so a model trained from scratch with timm expects them too.
    ``vit_*`` models use mean = std = 0.5, DeiT uses ImageNet's; ``*_384`` models take 384×384."""
    from timm.models import get_pretrained_cfg  # noqa: PLC0415 - timm is heavy: only for a timm architecture

    cfg = get_pretrained_cfg(arch)
    if cfg is None:
        return PRESETS["ImageNet"]
    size = (int(cfg.input_size[1]), int(cfg.input_size[2]))
    preset = InputPreset(f"timm {arch}", size, tuple(cfg.mean), tuple(cfg.std))
    imagenet = PRESETS["ImageNet"]
    same = (size, preset.mean, preset.std) == (imagenet.size, imagenet.mean, imagenet.std)
    return imagenet if same else preset


def display_scale(height: int, width: int, *, min_side: int = 160) -> int:
    """Integer zoom so a small input (MNIST 28×28, CIFAR 32×32) is drawn at least ``min_side`` pixels wide
    (nearest-neighbour, so every input pixel stays a sharp square); 1 for inputs already that large."""
    side = min(height, width)
    return max(1, -(-min_side // side)) if side < min_side else 1


def preset_names(arch: str, num_classes: int) -> list[str]:
    """Preset names with the guessed one first; [] for models that take series (no image preset applies)."""
    try:
        if models.model_info(arch).input_kind == "series":
            return []
    except models.UnknownModelError:
        pass
    guessed = guess_preset(arch, num_classes)
    first = [guessed.name] if guessed else []
    return first + [n for n in PRESETS if n not in first]


def preview_strip(images: np.ndarray, *, n: int = 8, min_side: int = 96) -> np.ndarray:
    """The first ``n`` images (N, C, H, W) side by side as one uint8 (H·s, n·W·s[, 3]) picture, each pixel an
    s×s square so 28×28 and 32×32 inputs are large enough to read. Each image is min–max scaled on its own."""
    x = np.asarray(images[:n], dtype=np.float32)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InvalidInputError(f"preview_strip needs images (N, 1|3, H, W), got shape {x.shape}")
    lo = x.min(axis=(1, 2, 3), keepdims=True)
    span = np.maximum(x.max(axis=(1, 2, 3), keepdims=True) - lo, 1e-12)
    x = np.round((x - lo) / span * 255).astype(np.uint8)
    s = display_scale(x.shape[2], x.shape[3], min_side=min_side)
    x = x.repeat(s, axis=2).repeat(s, axis=3)
    strip = np.concatenate(list(x.transpose(0, 2, 3, 1)), axis=1)  # (H·s, n·W·s, C)
    return strip[..., 0] if strip.shape[-1] == 1 else strip
