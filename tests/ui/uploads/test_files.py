"""The inputs uploader's classification: sentences vs series CSVs, CIFAR batches with their class-name files, and
an unknown format refused with every accepted one named."""

from __future__ import annotations

import pytest

from kdviz.io.untrusted import UploadError
from kdviz.ui.uploads.files import ACCEPTED_INPUTS, load_data_files
from kdviz.ui.uploads.text import text_inputs


def test_text_csv_and_txt_are_sentences_not_series() -> None:
    csv = b'text,label\n"A gorgeous, witty film.",fresh\nThe ending drags on and on.,rotten\n'
    upload = load_data_files([("reviews.csv", csv)])
    assert upload.kind == "text"
    assert text_inputs(upload) == ["A gorgeous, witty film.", "The ending drags on and on."]
    unnamed = b"review,score\nwhat a lovely day out,1\nnot my cup of tea at all,0\n"
    assert load_data_files([("r.csv", unnamed)]).kind == "text"
    assert load_data_files([("lines.txt", b"one line\nanother line\n")]).kind == "text"
    series = b"label,t0,t1,t2\na,0.1,0.2,0.3\nb,0.3,0.2,0.1\n"
    assert load_data_files([("s.csv", series)]).kind == "series"
    with pytest.raises(UploadError, match="on their own"):
        load_data_files([("reviews.csv", csv), ("s.csv", series)])


def test_unknown_formats_name_every_accepted_one() -> None:
    with pytest.raises(UploadError, match=r"\.npz.*\.arff.*\.bin.*test_batch.*batches\.meta"):
        load_data_files([("sheet.xlsx", b"PK\x03\x04")])
    with pytest.raises(UploadError, match="one CIFAR batch"):
        load_data_files([("test_batch", b"x"), ("test_batch.bin", b"y")])
    for fmt in (".npz", ".arff", ".bin", ".ts", ".csv", ".npy", ".zip", "png", "test_batch", "batches.meta", ".txt"):
        assert fmt in ACCEPTED_INPUTS, fmt
