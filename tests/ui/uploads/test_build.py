"""The label space of an uploaded set: folder names are the truth, mapped onto the model's classes by name, else
kept under their own names and marked not comparable."""

from __future__ import annotations

import numpy as np

from kdviz.ui.sets import InputPool
from kdviz.ui.uploads.build import label_space


def _pool(labels):
    return InputPool(np.zeros((len(labels), 3, 8, 8), np.float32), np.asarray(labels), tuple("abc"[: len(labels)]))


def test_folders_not_among_cifar100_classes_are_not_comparable() -> None:
    names, pool, note = label_space(100, 3, _pool([0, 1, 2]), ("cat", "cup", "person"))
    assert names[28] == "cup" and len(names) == 100  # the model's classes by their CIFAR-100 names
    assert not pool.comparable and pool.label_names == ("cat", "cup", "person")
    assert "labels not comparable" in note and "'person'" in note


def test_folders_named_like_the_models_classes_become_its_labels() -> None:
    names, pool, note = label_space(100, 3, _pool([0, 1]), ("cup", "apple"))
    assert pool.comparable and list(pool.labels) == [28, 0] and note is None
    names, pool, note = label_space(1000, 3, _pool([0]), ("pineapple",))
    assert list(pool.labels) == [953] and names[953] == "pineapple"


def test_unknown_label_space_takes_as_many_folders_as_classes() -> None:
    names, pool, note = label_space(3, 3, _pool([2, 0]), ("cat", "cup", "person"))
    assert names == ("cat", "cup", "person") and pool.comparable and list(pool.labels) == [2, 0]
    names, pool, note = label_space(5, 3, _pool([0]), ("cat", "cup"))
    assert names == ("0", "1", "2", "3", "4") and not pool.comparable
