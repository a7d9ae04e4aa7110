"""kdviz.attribution.text (words, encodings) and ``attribute_text`` with the registered text methods, against
captum called directly, on tiny random BERTs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

from kdviz.attribution.engine import attribute_text
from kdviz.attribution.methods import method_names
from kdviz.attribution.text import encode_words, token_to_word, word_importance, word_spans
from kdviz.vocab import Modality
from tests.text_models import tiny_bert, tiny_tokenizer

TEXTS = ["The movie was unfunny, but the acting is witty!", "a boring plot and dull acts."]


@pytest.fixture(scope="module")
def enc():
    return encode_words(tiny_tokenizer(), TEXTS)


def test_words_and_pieces_map_through_offsets(enc):
    assert word_spans("it's un-funny, ok") == [(0, 4), (5, 13), (15, 17)]
    assert enc.words[0] == ("The", "movie", "was", "unfunny", "but", "the", "acting", "is", "witty")
    tok = tiny_tokenizer()
    pieces = tok.convert_ids_to_tokens(enc.input_ids[0])
    # "unfunny" -> un ##fun ##ny: three pieces of word 3; "," and [CLS] belong to no word
    assert [w for p, w in zip(pieces, enc.token_word[0].tolist(), strict=True) if p in ("un", "##fun", "##ny")] == [3, 3, 3]
    assert enc.token_word[0, 0] == -1 and enc.token_word[0][pieces.index(",")] == -1
    assert token_to_word([(0, 0), (0, 2), (2, 4)], [(0, 4)], 4) == [-1, 0, 0]


def test_word_importance_is_the_sum_of_its_pieces():
    scores = torch.tensor([[9.0, 1.0, 2.0, 4.0, 8.0, 16.0, 0.5]])
    token_word = torch.tensor([[-1, 0, 0, 1, -1, 2, -1]])
    assert word_importance(scores, token_word).tolist() == [[3.0, 4.0, 16.0]]


def test_ig_equals_captum_layer_integrated_gradients(enc):
    model = tiny_bert(1)
    got = attribute_text(model, enc, method="integrated_gradients", n_steps=16, target=[1, 0])
    lig = LayerIntegratedGradients(lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits,
                                   model.bert.embeddings.word_embeddings)
    pad = tiny_tokenizer().pad_token_id
    base = torch.where(enc.token_word >= 0, torch.full_like(enc.input_ids, pad), enc.input_ids)
    raw = lig.attribute(enc.input_ids, baselines=base, additional_forward_args=(enc.attention_mask,),
                        target=torch.tensor([1, 0]), n_steps=16)
    np.testing.assert_allclose(got.signed_tokens, (raw.sum(-1) * enc.attention_mask).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.tokens, (raw.abs().sum(-1) * enc.attention_mask).detach().numpy(), rtol=1e-5, atol=1e-6)
    # words = sum of pieces; NaN beyond each text's words
    assert np.isnan(got.words[1, enc.n_words[1]:]).all()
    w = word_importance(torch.as_tensor(got.tokens), enc.token_word, got.words.shape[1]).numpy()
    np.testing.assert_allclose(got.words[0], w[0], rtol=1e-6)


def test_grad_x_embedding_equals_captum_layer_gradient_x_activation(enc):
    model = tiny_bert(2)
    got = attribute_text(model, enc, method="grad_x_embedding", target=[0, 1])
    layer = LayerGradientXActivation(lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits,
                                     model.bert.embeddings.word_embeddings)
    ref = layer.attribute(enc.input_ids, additional_forward_args=(enc.attention_mask,), target=torch.tensor([0, 1]))
    np.testing.assert_allclose(got.tokens, (ref.norm(dim=-1) * enc.attention_mask).detach().numpy(), rtol=1e-5, atol=1e-7)
    grad_only = LayerGradientXActivation(lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits,
                                         model.bert.embeddings.word_embeddings, multiply_by_inputs=False)
    ref_g = grad_only.attribute(enc.input_ids, additional_forward_args=(enc.attention_mask,), target=torch.tensor([0, 1]))
    got_g = attribute_text(model, enc, method="gradient_norm", target=[0, 1])
    np.testing.assert_allclose(got_g.tokens, (ref_g.norm(dim=-1) * enc.attention_mask).detach().numpy(), rtol=1e-5, atol=1e-7)


def test_word_occlusion_is_the_logit_drop_of_masking_the_word(enc):
    model = tiny_bert(3)
    got = attribute_text(model, enc, method="word_occlusion", special_ids={"mask": 4}, target=[1, 1])
    one = enc.rows([0])
    with torch.no_grad():
        full = model(input_ids=one.input_ids, attention_mask=one.attention_mask).logits[0, 1]
        ids = one.input_ids.clone()
        ids[one.token_word == 3] = 4  # the pieces of "unfunny"
        drop = full - model(input_ids=ids, attention_mask=one.attention_mask).logits[0, 1]
    assert got.signed_words[0, 3] == pytest.approx(float(drop), abs=1e-5)


def test_no_hook_left_and_mode_restored(enc):
    model = tiny_bert(4)
    model.train()
    for method in method_names(Modality.TEXT):
        attribute_text(model, enc, method=method, special_ids={"pad": 0, "mask": 4}, **({"n_steps": 4} if method == "integrated_gradients" else {}))
    assert model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in model.modules())


def test_unknown_method_and_parameter_are_named(enc):
    with pytest.raises(ValueError, match="'lime' is not a text method"):
        attribute_text(tiny_bert(), enc, method="lime")
    with pytest.raises(ValueError, match="n_steps"):
        attribute_text(tiny_bert(), enc, method="integrated_gradients", n_steps=1)


def test_aliases_name_the_same_text_method(enc):
    model = tiny_bert(2)
    by_name = attribute_text(model, enc, method="grad_x_embedding", target=[0, 1])
    for alias in ("gxe", "saliency", "GXE"):
        got = attribute_text(model, enc, method=alias, target=[0, 1])
        assert got.method == "grad_x_embedding"
        np.testing.assert_array_equal(got.tokens, by_name.tokens)
