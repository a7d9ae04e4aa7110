"""GPT-2 / T5 read as classifiers: kdviz's text methods against captum and numpy called directly; rollout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerIntegratedGradients

from kdviz.attribution.engine import attribute_text
from kdviz.attribution.methods import method_names
from kdviz.attribution.text import encode_words, word_importance
from kdviz.models.hf_text import PromptedTokenizer, VerbalizedLM, Verbalizer
from tests.generative_models import gpt2_tokenizer, t5_tokenizer, tiny_gpt2, tiny_t5
from tests.text_models import tiny_bert, tiny_tokenizer

TEXTS = ["The movie was unfunny, but witty!", "a boring plot and dull acting."]


def _wrapped(kind: str, seed: int):
    lm = tiny_gpt2(seed) if kind == "gpt2" else tiny_t5(seed)
    tok = gpt2_tokenizer() if kind == "gpt2" else t5_tokenizer()
    verb = Verbalizer.default(("fresh", "rotten"), kind).resolve(tok)
    return lm, VerbalizedLM(lm, verb).eval(), PromptedTokenizer(tok, verb), verb


def test_prompted_encoding_keeps_the_words_of_the_text():
    _, _, ptok, verb = _wrapped("gpt2", 0)
    enc = encode_words(ptok, TEXTS)
    assert enc.words == (("The", "movie", "was", "unfunny", "but", "witty"), ("a", "boring", "plot", "and", "dull", "acting"))
    for i, text in enumerate(TEXTS):  # ids = the tokenizer's on the prompted text, right-padded
        ids = gpt2_tokenizer()(verb.template.replace("{text}", text))["input_ids"]
        assert enc.input_ids[i, : len(ids)].tolist() == ids and int(enc.attention_mask[i].sum()) == len(ids)
    pieces = gpt2_tokenizer().convert_ids_to_tokens(enc.input_ids[0])
    owner = dict(zip(pieces, enc.token_word[0].tolist(), strict=False))
    assert owner["predict"] == -1 and owner["Ġmovie"] == 1 and owner["Ġwitty"] == 5  # prompt: no word; "Ġ" pieces: theirs
    short = encode_words(ptok, TEXTS, max_length=12)  # truncation drops text pieces, keeps the prompt's suffix
    assert short.input_ids.shape[1] == 12 and short.input_ids[0, -3:].tolist() == enc.input_ids[0, int(enc.attention_mask[0].sum()) - 3:int(enc.attention_mask[0].sum())].tolist()
    assert short.n_words[0] < enc.n_words[0]


def _reference_forward(kind: str, lm, verb: Verbalizer):
    ids_v = list(verb.ids)
    if kind == "gpt2":
        def forward(ids, mask):
            last = mask.sum(1) - 1
            return lm(input_ids=ids, attention_mask=mask).logits[torch.arange(len(ids)), last][:, ids_v]
        return forward, lm.transformer.wte

    def forward(ids, mask):
        dec = torch.zeros(len(ids), 1, dtype=torch.long)
        return lm(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits[:, 0, ids_v]
    return forward, lm.encoder.embed_tokens


@pytest.mark.parametrize("kind", ["gpt2", "t5"])
def test_ig_equals_captum_called_directly(kind):
    lm, model, ptok, verb = _wrapped(kind, 3)
    enc = encode_words(ptok, TEXTS)
    got = attribute_text(model, enc, method="integrated_gradients", n_steps=16, target=[0, 1],
                         special_ids={"pad": ptok.pad_token_id})
    forward, layer = _reference_forward(kind, lm, verb)
    with torch.no_grad():
        np.testing.assert_allclose(got.logits, forward(enc.input_ids, enc.attention_mask).numpy(), rtol=1e-5, atol=1e-6)
    pad = ptok.pad_token_id
    base = torch.where(enc.token_word >= 0, torch.full_like(enc.input_ids, pad), enc.input_ids)
    raw = LayerIntegratedGradients(forward, layer).attribute(
        enc.input_ids, baselines=base, additional_forward_args=(enc.attention_mask,), target=torch.tensor([0, 1]),
        n_steps=16)
    ref = (raw.sum(-1) * enc.attention_mask).detach().numpy()
    np.testing.assert_allclose(got.signed_tokens, ref, rtol=1e-4, atol=1e-6)
    # word importance = the sum of the word's pieces, by hand
    for i in range(len(TEXTS)):
        for w in range(int(enc.n_words[i])):
            pieces = (enc.token_word[i] == w).numpy()
            assert pieces.any()
            np.testing.assert_allclose(got.signed_words[i, w], ref[i][pieces].sum(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["gpt2", "t5"])
def test_every_text_method_runs_and_words_sum_pieces(kind):
    _, model, ptok, _ = _wrapped(kind, 4)
    enc = encode_words(ptok, TEXTS)
    for method in method_names("text"):
        params = {"n_steps": 4} if method == "integrated_gradients" else {}
        got = attribute_text(model, enc, method=method, special_ids={"pad": ptok.pad_token_id,
                                                                     "mask": ptok.mask_token_id}, **params)
        w = word_importance(torch.as_tensor(got.tokens), enc.token_word, got.words.shape[1]).numpy()
        valid = ~np.isnan(got.words)
        np.testing.assert_allclose(got.words[valid], w[valid], rtol=1e-6)
        assert np.isfinite(got.words[valid]).all() and (got.words[valid] >= 0).all()


def _rollout_numpy(attentions: list[np.ndarray], residual: float = 0.5) -> np.ndarray:
    """Abnar & Zuidema by hand: heads averaged, identity added, rows normalised, multiplied across layers."""
    rollout = None
    for a in attentions:
        m = a.mean(axis=1)  # (N, L, L)
        m = (1 - residual) * m + residual * np.eye(m.shape[-1])[None]
        m = m / m.sum(-1, keepdims=True)
        rollout = m if rollout is None else np.einsum("nij,njk->nik", m, rollout)
    return rollout


def test_rollout_of_bert_is_the_cls_row_by_hand():
    model = tiny_bert(5)
    before = model.config._attn_implementation
    enc = encode_words(tiny_tokenizer(), ["the movie was great", "a boring plot and dull acting , not fun"])
    got = attribute_text(model, enc, method="attention_rollout")
    ref_model = tiny_bert(5)
    ref_model.set_attn_implementation("eager")
    with torch.no_grad():
        att = ref_model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, output_attentions=True).attentions
    assert len(att) == 2
    roll = _rollout_numpy([a.numpy().astype(np.float64) for a in att])
    ref = roll[:, 0, :] * enc.attention_mask.numpy()
    np.testing.assert_allclose(got.tokens, ref, rtol=1e-5, atol=1e-7)
    assert model.config._attn_implementation == before  # the caller's model is not switched to eager
    assert not any(m._forward_hooks for m in model.modules())
    # half the flow stays on [CLS] after two layers at least a quarter: (1/2)^2 from the identity
    assert (got.tokens[:, 0] >= 0.25 - 1e-6).all()


def test_rollout_of_gpt2_is_the_last_position_row_by_hand():
    lm, model, ptok, _ = _wrapped("gpt2", 6)
    lm_ref = tiny_gpt2(6, layers=1)
    enc = encode_words(ptok, TEXTS)
    got = attribute_text(model, enc, method="attention_rollout")
    lm_ref.set_attn_implementation("eager")
    with torch.no_grad():
        att = lm_ref(input_ids=enc.input_ids, attention_mask=enc.attention_mask, output_attentions=True).attentions
    roll = _rollout_numpy([a.numpy().astype(np.float64) for a in att])
    last = enc.attention_mask.sum(1).numpy() - 1
    ref = roll[np.arange(len(TEXTS)), last] * enc.attention_mask.numpy()
    np.testing.assert_allclose(got.tokens, ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.tokens.sum(1), 1.0, rtol=1e-5)  # a rollout row is a distribution


def test_rollout_of_t5_is_cross_attention_times_encoder_rollout():
    lm, model, ptok, _ = _wrapped("t5", 7)
    enc = encode_words(ptok, TEXTS)
    got = attribute_text(model, enc, method="attention_rollout")
    ref_lm = tiny_t5(7)
    ref_lm.set_attn_implementation("eager")
    with torch.no_grad():
        out = ref_lm(input_ids=enc.input_ids, attention_mask=enc.attention_mask,
                     decoder_input_ids=torch.zeros(2, 1, dtype=torch.long), output_attentions=True)
    roll = _rollout_numpy([a.numpy().astype(np.float64) for a in out.encoder_attentions])
    cross = np.mean([a.numpy().mean(1)[:, 0] for a in out.cross_attentions], axis=0)
    ref = np.einsum("nl,nlm->nm", cross, roll) * enc.attention_mask.numpy()
    np.testing.assert_allclose(got.tokens, ref, rtol=1e-5, atol=1e-7)
