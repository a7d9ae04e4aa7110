"""Sentences uploaded as inputs: several files joined, labels kept only when every file has them."""

from __future__ import annotations

import pytest

from kdviz.io.untrusted import UploadError
from kdviz.ui.uploads.files import DataUpload
from kdviz.ui.uploads.text import labelled_text_inputs


def test_labelled_text_inputs_join_files_and_keep_labels_only_when_every_file_has_them():
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
