"""kdviz.analysis.text: word metrics by hand, the teacher against itself, the null's statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz.analysis.metrics import topk_overlap
from kdviz.analysis.text import TextEntry, compare_text_models, null_stats, top_words
from kdviz.io.text import vader_lexicon
from tests.text_models import tiny_bert, tiny_tokenizer

TEXTS = ["The movie was great and the story is very good fun.", "a boring plot , dull acting but witty story .",
         "bad film"]


def test_topk_overlap_equals_a_hand_count():
    v_t = np.array([[9.0, 8, 7, 6, 5, 4, 3, 2]])  # teacher top-5: words 0..4
    v_s = np.array([[9.0, 0, 7, 0, 5, 4, 3, 0]])  # student top-5: words 0, 2, 4, 5, 6
    assert topk_overlap(v_s, v_t, k=5)[0] == pytest.approx(3 / 5)  # shared: 0, 2, 4
    np.testing.assert_array_equal(top_words(v_s, np.array([8]), 5), [[0, 2, 4, 5, 6]])
    np.testing.assert_array_equal(top_words(np.array([[1.0, 3, np.nan]]), np.array([2]), 5), [[1, 0, -1, -1, -1]])


def test_null_stats_rank_p_and_z():
    s = null_stats(0.8, [0.1, 0.2, 0.3, 0.9])
    assert s.p == pytest.approx((1 + 1) / 5)
    assert s.null_mean == pytest.approx(0.375)
    assert s.z == pytest.approx((0.8 - 0.375) / np.std([0.1, 0.2, 0.3, 0.9], ddof=1))
    assert null_stats(1.0, [0.0, 0.5]).p == pytest.approx(1 / 3)


def test_teacher_against_itself_and_a_student_with_its_null():
    tok = tiny_tokenizer()
    teacher = TextEntry("t", "teacher", "bert-L2-H32", 1.0, "ce", tiny_bert(0), tok)
    twin = TextEntry("twin", "student", "bert-L2-H32", 0.5, "kd", tiny_bert(0), tok)
    other = TextEntry("s", "student", "bert-L1-H32", 0.1, "kd", tiny_bert(5, layers=1), tok)
    comp = compare_text_models(teacher, [twin, other], TEXTS, method="grad_x_embedding", null_copies=3,
                               lexicon=vader_lexicon())
    s = comp.summary.set_index("id")
    assert s.loc["twin", "topk_overlap"] == pytest.approx(1.0) and s.loc["twin", "rho"] == pytest.approx(1.0)
    assert s.loc["t", "agreement"] == 1.0
    f = comp.frame.set_index(["id", "text"])
    assert np.isnan(f.loc[("s", 2), "topk_overlap"])  # "bad film": at most k words -> undefined
    for col in ("topk_overlap_null", "rho_null", "rho_excess", "rho_p", "vader_null", "vader_p"):
        assert np.isfinite(s.loc["s", col]), col
    assert 1 / 4 <= s.loc["s", "rho_p"] <= 1.0
    # the VADER share is the share of a model's top-5 words in the lexicon, counted by hand for the teacher
    lex = vader_lexicon()
    top = comp.teacher_top[0]
    hand = np.mean([comp.words[0][j].lower() in lex for j in top if j >= 0])
    assert f.loc[("t", 0), "vader"] == pytest.approx(hand)
    assert np.isnan(f.loc[("t", 0), "logit_rho"])  # two classes: Spearman over logits is undefined


def test_null_copies_are_kept_within_a_byte_budget(monkeypatch):
    """The text null's copies stay built while they fit the budget (a 1,000-snippet run reuses them in every
    batch); past it, the oldest go first."""
    import kdviz.analysis.text as text
    from tests.text_models import tiny_bert

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
