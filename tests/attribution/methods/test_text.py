"""kdviz.attribution.methods.text: the IG baseline and its memory bound, on tiny random BERTs."""

from __future__ import annotations

import numpy as np
import torch

from kdviz.attribution.engine import attribute_text
from kdviz.attribution.methods import text as text_methods
from kdviz.attribution.methods.text import baseline_ids
from kdviz.attribution.text import encode_words
from tests.text_models import tiny_bert, tiny_tokenizer

TEXTS = ["The movie was unfunny, but the acting is witty!", "a boring plot and dull acts."]


def test_baseline_replaces_word_pieces_only():
    enc = encode_words(tiny_tokenizer(), TEXTS)
    pad = tiny_tokenizer().pad_token_id
    base = baseline_ids(enc.input_ids, enc.token_word, pad)
    words = enc.token_word >= 0
    assert (base[words] == pad).all()
    assert torch.equal(base[~words], enc.input_ids[~words])  # [CLS], [SEP], punctuation and padding kept


def test_ig_in_passes_of_a_few_tokens_equals_one_pass(monkeypatch):
    """The memory bound (``IG_TOKENS_PER_PASS``) splits the steps into several passes: same attributions."""
    enc = encode_words(tiny_tokenizer(), TEXTS)
    model = tiny_bert(1)
    whole = attribute_text(model, enc, method="integrated_gradients", n_steps=16, target=[1, 0])
    monkeypatch.setattr(text_methods, "IG_TOKENS_PER_PASS", 3 * enc.input_ids.shape[1])  # 3 sequences: 2 texts × 1 step
    assert text_methods._ig_chunk(enc.input_ids) == 3
    chunked = attribute_text(model, enc, method="integrated_gradients", n_steps=16, target=[1, 0])
    np.testing.assert_allclose(chunked.signed_tokens, whole.signed_tokens, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(chunked.words, whole.words, rtol=1e-5, atol=1e-6)
