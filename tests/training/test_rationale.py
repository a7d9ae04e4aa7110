"""The rationale-distillation loss and tags on hand-made batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kdviz.modalities.text import top_words
from kdviz.training.losses import kd_loss
from kdviz.training.rationale import TeacherCache, TokenTags, rationale_distill_loss, rationale_loss, rationale_tags


def _bce(logit: float, y: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_rationale_tags_mark_the_pieces_of_rationale_words():
    token_word = torch.tensor([[-1, 0, 1, 1, 2, -1, -1]])
    rationale = torch.tensor([[1, 2, -1]])
    assert rationale_tags(token_word, rationale).tolist() == [[0, 0, 1, 1, 1, 0, 0]]


def test_rationale_loss_by_hand():
    tag_logits = torch.tensor([[5.0, 2.0, -1.0, 0.5, 3.0], [0.0, -2.0, 1.0, 9.0, 9.0]])
    tags = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]])
    token_word = torch.tensor([[-1, 0, 1, 1, -1], [-1, 0, 1, -1, -1]])  # counted: (0,1) (0,2) (0,3) (1,1) (1,2)
    hand = (_bce(2.0, 1) + _bce(-1.0, 0) + _bce(0.5, 1) + _bce(-2.0, 0) + _bce(1.0, 1)) / 5
    assert rationale_loss(tag_logits, tags, token_word).item() == pytest.approx(hand, rel=1e-6)


def test_dual_objective_weights_kd_and_rationale():
    s, t, y = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.0, 2.0]]), torch.tensor([0])
    tag_logits, tags, tw = torch.tensor([[0.3, -0.2]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[0, 1]])
    kd = kd_loss(s, t, y, alpha=0.5, temperature=4.0)
    r = rationale_loss(tag_logits, tags, tw)
    got = rationale_distill_loss(s, t, y, TokenTags(tag_logits, tags, tw), alpha=0.5, temperature=4.0, beta=0.25)
    assert got.item() == pytest.approx(0.75 * kd.item() + 0.25 * r.item())
    with pytest.raises(ValueError, match="beta"):
        rationale_distill_loss(s, t, y, TokenTags(tag_logits, tags, tw), alpha=0.5, temperature=4.0, beta=1.5)


def test_top_words_and_cache_round_trip(tmp_path):
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.0, 0.2], [3.0, 1.0, 0, 0, 0, 0]])
    top = top_words(scores, np.array([6, 2]), 3)
    np.testing.assert_array_equal(top, [[1, 3, 2], [0, 1, -1]])  # ties to the earlier word; -1 pads
    cache = TeacherCache(np.zeros((2, 2), np.float32), top, np.array([6, 2]), 3)
    cache.save(tmp_path / "c.npz")
    back = TeacherCache.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(back.rationale, top)
    assert back.k == 3


def test_the_recipe_trains_on_the_words_the_comparison_measures():
    """The teacher's rationale in the training cache is the top-k the comparison measures on the same text."""
    from kdviz.analysis.compare import ComparedModel, CompareOptions, NullOptions, compare_models
    from kdviz.attribution.text import encode_words
    from kdviz.training.rationale import teacher_cache
    from tests.text_models import tiny_bert, tiny_tokenizer

    texts = ["The movie was great and the story is very good fun.", "a boring plot , dull acting but witty story .",
             "bad film", "fun fun fun fun fun fun"]
    tok, model = tiny_tokenizer(), tiny_bert(3)
    cache = teacher_cache(model, [encode_words(tok, texts)], k=3)
    teacher = ComparedModel("t", "bert-L2-H32", None, model, role="teacher", method="ce", tokenizer=tok)
    comp = compare_models(teacher, [], texts, method="grad_x_embedding", k=3,
                          options=CompareOptions(null=NullOptions(copies=0)))
    np.testing.assert_array_equal(comp.teacher_topk, cache.rationale)
    trained = [" ".join(comp.part_names[i][j] for j in row if j >= 0) for i, row in enumerate(cache.rationale)]
    assert trained == list(comp.frame["top_words"])
