"""The label space of an uploaded set (issue 23, item 5): folder names are the truth, mapped onto the model's
classes by name, else kept under their own names and marked not comparable."""

from __future__ import annotations

import numpy as np
import pytest

from kdviz.io.untrusted import UploadError
from kdviz.ui.sets import InputPool
from kdviz.ui.uploads import label_space


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


def test_labelled_text_inputs_join_files_and_keep_labels_only_when_every_file_has_them():
    from kdviz.ui.uploads import DataUpload, labelled_text_inputs

    a = ("a.csv", b"text,label\nGood.,fresh\nBad.,0\n")
    b = ("b.csv", b"review,category\nFine.,ROTTEN\n")
    both = labelled_text_inputs(DataUpload("text", (a, b)), ("rotten", "fresh"))
    assert both.texts == ("Good.", "Bad.", "Fine.") and both.labels.tolist() == [1, 0, 0]
    assert both.name.startswith("uploads#")
    mixed = labelled_text_inputs(DataUpload("text", (a, ("c.txt", b"Plain.\n"))), ("rotten", "fresh"))
    assert mixed.texts == ("Good.", "Bad.", "Plain.") and mixed.labels is None
    assert "some files have no labels: accuracy is not computed" in mixed.notes
    with pytest.raises(UploadError, match="neither a class name"):
        labelled_text_inputs(DataUpload("text", (("d.csv", b"text,label\nX.,maybe\n"),)), ("rotten", "fresh"))
