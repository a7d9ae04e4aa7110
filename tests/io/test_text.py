"""Rotten Tomatoes reader, its split, uploaded sentences and VADER's lexicon."""

from __future__ import annotations

import numpy as np
import pytest

from kdviz.io.text import read_rotten_tomatoes, read_text_upload, split_indices, vader_lexicon, vader_share
from kdviz.io.untrusted import UploadError


def test_rotten_tomatoes_fresh_and_rotten_without_duplicates():
    df = read_rotten_tomatoes()
    assert set(df["label"]) == {0, 1}
    assert not df["text"].duplicated().any()
    assert 12_700 < len(df) < 12_808  # 7,403 fresh + 5,405 rotten, minus repeated snippets


def test_split_is_seeded_and_disjoint():
    a, b = split_indices(100, n_test=10, seed=0), split_indices(100, n_test=10, seed=0)
    np.testing.assert_array_equal(a.test, b.test)
    assert len(set(a.train) | set(a.test)) == 100 and not set(a.train) & set(a.test)
    assert not np.array_equal(a.test, split_indices(100, n_test=10, seed=1).test)


def test_text_uploads():
    assert read_text_upload(b"one\n\n two \n", "s.txt") == ["one", "two"]
    assert read_text_upload(b"id,text\n1,good film\n2,bad\n", "s.csv") == ["good film", "bad"]
    with pytest.raises(UploadError, match="name the text column"):
        read_text_upload(b"a,b\n1,2\n", "s.csv")
    with pytest.raises(UploadError, match=".txt"):
        read_text_upload(b"x", "s.pdf")


def test_vader_lexicon():
    lex = vader_lexicon()
    assert len(lex) > 7000 and {"good", "bad", "boring"} <= lex and "movie" not in lex
    assert vader_share(["Good", "movie"], lex) == 0.5


def test_read_labelled_texts(tmp_path):
    import pandas as pd

    from kdviz.io.text import read_labelled_texts

    pd.DataFrame({"category": ["Fresh", "rotten", "1"], "text": [" Witty. ", "Dull.", "Fine"]}).to_csv(
        tmp_path / "a.csv", index=False)
    got = read_labelled_texts(tmp_path / "a.csv", ("rotten", "fresh"))
    assert got.texts == ("Witty.", "Dull.", "Fine") and got.labels.tolist() == [1, 0, 1]
    assert got.name.startswith("a.csv#") and "labels from column 'category'" in got.notes[0]
    pd.DataFrame({"category": ["Fresh", "rotten", "0"], "text": ["Witty.", "Dull.", "Fine"]}).to_csv(
        tmp_path / "a.csv", index=False)  # one label changed: another fingerprint
    assert read_labelled_texts(tmp_path / "a.csv", ("rotten", "fresh")).name != got.name
    pd.DataFrame({"a": ["x"], "b": ["y"]}).to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(ValueError, match="name the text column"):
        read_labelled_texts(tmp_path / "two.csv", ("rotten", "fresh"))
    only = read_labelled_texts(tmp_path / "two.csv", ("rotten", "fresh"), column="b")
    assert only.texts == ("y",) and only.labels is None
    (tmp_path / "e.txt").write_text("\n \n")
    with pytest.raises(ValueError, match="holds no text"):
        read_labelled_texts(tmp_path / "e.txt", ("rotten", "fresh"))
    (tmp_path / "t.json").write_text("{}")
    with pytest.raises(ValueError, match="a .csv with a text column or a .txt"):
        read_labelled_texts(tmp_path / "t.json", ("rotten", "fresh"))
