"""Class names of well-known label spaces, and folder names matched onto a model's classes by name."""

from __future__ import annotations

import numpy as np
import pytest

from kdviz.io.class_names import CIFAR10, CIFAR100, guess_class_names, imagenet_categories, match_labels


def test_known_label_spaces() -> None:
    assert len(CIFAR100) == len(set(CIFAR100)) == 100 and list(CIFAR100) == sorted(CIFAR100)
    assert CIFAR100[28] == "cup" and CIFAR10[3] == "cat"
    names = imagenet_categories()  # torchvision's weights metadata, nothing downloaded
    assert len(names) == 1000 and names[953] == "pineapple" and names[0] == "tench"
    assert guess_class_names(1000)[1] == "ImageNet-1k"
    assert guess_class_names(100)[0] is CIFAR100 and guess_class_names(10)[0] is CIFAR10
    assert guess_class_names(7) is None


def test_folder_names_map_by_name_or_are_not_comparable() -> None:
    match = match_labels(["Cup", "aquarium-fish"], CIFAR100)
    assert match.comparable and list(match.model_labels(np.array([0, 1, 0]))) == [28, 1, 28]
    match = match_labels(["cat", "cup", "person"], CIFAR100)
    assert not match.comparable and match.missing == ("cat", "person")
    with pytest.raises(ValueError, match="not classes"):
        match.model_labels(np.array([0]))
