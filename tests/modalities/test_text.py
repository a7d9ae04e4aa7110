"""kdviz.modalities.text: the one ranking of words, part labels, part removal, the null's copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz.errors import InvalidInputError
from kdviz.modalities import get_modality
from kdviz.modalities.text import TextBatch, top_words
from tests.text_models import tiny_bert, tiny_tokenizer


def test_top_words_ranks_within_each_texts_words_ties_first_nan_last():
    v = np.array([[1.0, np.nan, 3.0, 9.0], [2.0, 2.0, 5.0, np.nan], [np.nan, np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(top_words(v, np.array([3, 4, 2]), 3), [[2, 0, 1], [2, 0, 1], [0, 1, -1]])
    np.testing.assert_array_equal(top_words(np.array([[1.0, 3, np.nan]]), np.array([2]), 5), [[1, 0, -1, -1, -1]])


def test_word_labels_follow_the_teachers_tokenizer_and_words_are_removed():
    plugin = get_modality("text")
    teacher = type("M", (), {"tokenizer": tiny_tokenizer()})()
    batch = plugin.read(["the movie was great", "bad film"], max_length=64)
    labels = plugin.label_parts(plugin.parse_parts(None), batch, teacher=teacher)
    np.testing.assert_array_equal(labels, [[0, 1, 2, 3], [0, 1, -1, -1]])
    assert plugin.part_names(batch, labels) == (("the", "movie", "was", "great"), ("bad", "film"))
    removed = np.array([[False, True, False, True], [True, False, False, False]])
    assert plugin.remove_parts(batch, labels, removed, "mask").texts == ("the [MASK] was [MASK]", "[MASK] film")
    assert plugin.remove_parts(batch, labels, removed, "unk").texts == ("the [UNK] was [UNK]", "[UNK] film")
    assert plugin.remove_parts(batch, labels, removed, "delete").texts == ("the was", "film")
    with pytest.raises(InvalidInputError, match="baseline"):
        plugin.remove_parts(batch, labels, removed, "zero")
    with pytest.raises(InvalidInputError, match="empty"):
        plugin.read([])


def test_null_copies_are_kept_within_a_byte_budget(monkeypatch):
    """The text null's copies stay built while they fit the budget (every batch of an evaluation reuses them);
    past it, the oldest go first."""
    import kdviz.modalities.text as text

    config = tiny_bert(0).config
    monkeypatch.setattr(text, "_COPIES", {})
    size = text._nbytes(text._random_copy("tiny", config, 1))
    monkeypatch.setattr(text, "_COPIES_MAX_BYTES", 2 * size)
    first = text._random_copy("tiny", config, 1)
    assert text._random_copy("tiny", config, 1) is first  # built once
    text._random_copy("tiny", config, 2)
    text._random_copy("tiny", config, 3)
    assert sorted(seed for _key, seed in text._COPIES) == [2, 3]
    assert text._random_copy("tiny", config, 1) is not first  # rebuilt, with the same weights
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                 text._random_copy("tiny", config, 1).state_dict().values(),
                                                 strict=True))


def test_a_text_batch_encodes_once_per_tokenizer():
    tok = tiny_tokenizer()
    batch = TextBatch(("bad film",))
    assert batch.encoded(tok) is batch.encoded(tok)
