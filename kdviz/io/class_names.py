"""Class names a model's outputs stand for, and matching a data set's label names onto them by name.

Uploaded checkpoints say how many classes they predict, not what the classes are called. kdviz knows the
names of the label spaces its users meet most: ImageNet-1k (the 1,000 categories torchvision ships in its
weights' ``meta["categories"]``; nothing is downloaded), CIFAR-10 and CIFAR-100 (written out below, in the
order of the data sets' label indices) and MNIST digits. An ImageFolder's folder names are the *true*
classes of its images; :func:`match_labels` maps them onto the model's classes by name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kdviz.errors import InvalidInputError

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "DIGITS",
    "LabelMatch",
    "guess_class_names",
    "imagenet_categories",
    "match_labels",
    "normalise_name",
]

CIFAR10: tuple[str, ...] = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The CIFAR-100 fine labels in label-index order (alphabetical, as in the data set's meta file).
CIFAR100: tuple[str, ...] = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
    "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)
DIGITS: tuple[str, ...] = tuple(str(d) for d in range(10))


@functools.lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k category names in output order, from torchvision's weights metadata (shipped with
    torchvision; no weights are downloaded)."""
    from torchvision.models import ResNet18_Weights  # noqa: PLC0415 - torchvision is heavy: only for 1,000-class models

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def guess_class_names(num_classes: int, *, in_channels: int = 3) -> tuple[tuple[str, ...], str] | None:
    """``(names, source)`` for a model's outputs when its class count identifies a well-known label space:
    1,000 → ImageNet-1k, 100 → CIFAR-100, 10 → CIFAR-10 (RGB) or MNIST digits (grey); else None."""
    if num_classes == 1000:
        return imagenet_categories(), "ImageNet-1k"
    if num_classes == 100:
        return CIFAR100, "CIFAR-100"
    if num_classes == 10:
        return (DIGITS, "MNIST digits") if in_channels == 1 else (CIFAR10, "CIFAR-10")
    return None


def normalise_name(name: str) -> str:
    """A class name for matching: lower case, ``_``/``-``/spaces collapsed (``Aquarium-Fish`` = ``aquarium fish``)."""
    return re.sub(r"[\s_\-]+", " ", str(name)).strip().lower()


@dataclass(frozen=True)
class LabelMatch:
    """How a data set's label names map onto a model's classes.

    ``mapping[i]`` is the model class of data label ``i`` (−1: no class of that name). ``comparable`` when every
    label name found its class: predictions can then be scored against the labels. ``missing``: the names
    that did not.
    """

    mapping: np.ndarray
    comparable: bool
    missing: tuple[str, ...]

    def model_labels(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` (data label indices) as model class indices; ValueError when not comparable."""
        if not self.comparable:
            raise InvalidInputError(f"the labels {list(self.missing)} are not classes of the model")
        return self.mapping[np.asarray(labels, dtype=np.int64)]


def match_labels(label_names: Sequence[str], model_names: Sequence[str]) -> LabelMatch:
    """Map each data label name onto the model class of the same (normalised) name."""
    index = {}
    for j, name in enumerate(model_names):
        index.setdefault(normalise_name(name), j)
    mapping = np.array([index.get(normalise_name(n), -1) for n in label_names], dtype=np.int64)
    missing = tuple(n for n, m in zip(label_names, mapping, strict=True) if m < 0)
    return LabelMatch(mapping=mapping, comparable=bool(len(label_names)) and not missing, missing=missing)
