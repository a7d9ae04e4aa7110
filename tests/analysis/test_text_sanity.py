"""Teacher randomisation test for text: cascading copies and Spearman ρ against scipy called directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from kdviz.analysis.randomisation import verdict
from kdviz.analysis.text_sanity import cascade_copies, text_blocks, text_randomisation_test
from kdviz.attribution.engine import attribute_text
from kdviz.attribution.text import encode_words
from kdviz.models.hf_text import PromptedTokenizer, VerbalizedLM, Verbalizer, random_text_copy
from tests.generative_models import gpt2_tokenizer, tiny_gpt2
from tests.text_models import tiny_bert, tiny_tokenizer

TEXTS = ["The movie was unfunny, but the acting is witty!", "a boring plot and dull acts, not fun.",
         "it is very good and the story is great"]
SPECIAL = {"pad": 0, "mask": 4}


def _scipy_rho(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = []
    for x, y in zip(a, b, strict=True):
        ok = ~np.isnan(x) & ~np.isnan(y)
        out.append(spearmanr(x[ok], y[ok]).statistic)
    return np.array(out)


def test_blocks_top_first():
    blocks = text_blocks(tiny_bert(0))
    assert [b for b, _ in blocks] == ["head", "layer 1", "layer 0", "embeddings"]
    assert set(blocks[0][1]) == {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight",
                                 "classifier.bias"}
    n_params = len(list(tiny_bert(0).named_parameters()))
    assert sum(len(p) for _, p in blocks) == n_params
    gpt2 = VerbalizedLM(tiny_gpt2(0), Verbalizer.default(("fresh", "rotten"), "gpt2").resolve(gpt2_tokenizer()))
    assert [b for b, _ in text_blocks(gpt2)] == ["head", "layer 0", "embeddings"]


def test_cascade_matches_hand_made_copies_and_scipy():
    model = tiny_bert(1)
    result = text_randomisation_test(model, tiny_tokenizer(), TEXTS, method="grad_x_embedding", seeds=(20_000,),
                                     special_ids=SPECIAL)
    assert result.steps == ("trained", "head", "layer 1", "layer 0", "embeddings")
    enc = encode_words(tiny_tokenizer(), TEXTS)
    trained = attribute_text(model, enc, method="grad_x_embedding")
    np.testing.assert_allclose(result.rho[0], 1.0)
    # step "head": classifier and pooler from the seeded random copy, the rest trained (built by hand)
    fresh = random_text_copy(model.config, 20_000)
    state = model.state_dict()
    state.update({k: v for k, v in fresh.state_dict().items() if k.startswith(("classifier.", "bert.pooler."))})
    head_only = tiny_bert(1)
    head_only.load_state_dict(state)
    a_head = attribute_text(head_only, enc, method="grad_x_embedding", target=trained.target)
    np.testing.assert_allclose(result.rho[1], _scipy_rho(a_head.words, trained.words), rtol=1e-6)
    # last step: the fully random network is the random copy itself
    a_full = attribute_text(fresh, enc, method="grad_x_embedding", target=trained.target)
    np.testing.assert_allclose(result.rho[-1], _scipy_rho(a_full.words, trained.words), rtol=1e-6)
    # the correlation falls from 1.0; the verdict is the image test's rule on the last step's mean
    assert result.falls and result.passes  # mean ρ 1.0 -> 0.86 (head) -> 0.54 -> 0.47 -> 0.15 (fully random)
    assert result.verdict == verdict(result.full_rho)
    assert result.embeddings_kept_rho == pytest.approx(float(np.nanmean(result.rho[-2])))
    assert result.full_rho == pytest.approx(float(np.nanmean(result.rho[-1])))
    # the caller's model is untouched
    torch.testing.assert_close(model.classifier.weight, tiny_bert(1).classifier.weight)


def test_cascade_copies_are_cumulative():
    model = tiny_bert(2)
    copies = cascade_copies(model, 20_001)
    fresh = dict(random_text_copy(model.config, 20_001).named_parameters())
    names = dict(text_blocks(model))
    layer1 = dict(copies[1][1].named_parameters())  # head and layer 1 random, layer 0 trained
    trained = dict(model.named_parameters())
    assert all(torch.equal(layer1[n], fresh[n]) for n in names["head"] + names["layer 1"])
    assert all(torch.equal(layer1[n], trained[n]) for n in names["layer 0"] + names["embeddings"])
    full = dict(copies[-1][1].named_parameters())
    assert all(torch.equal(full[n], fresh[n]) for n in full)


def test_gpt2_through_its_verbalizer_and_two_seeds():
    tok = gpt2_tokenizer()
    verb = Verbalizer.default(("fresh", "rotten"), "gpt2").resolve(tok)
    model = VerbalizedLM(tiny_gpt2(3, layers=2), verb).eval()
    result = text_randomisation_test(model, PromptedTokenizer(tok, verb), TEXTS, method="attention_rollout")
    assert result.steps == ("trained", "head", "layer 1", "layer 0", "embeddings")
    assert result.rho.shape == (5, 3) and result.seeds == (20_000, 20_001)
    np.testing.assert_allclose(result.rho[0], 1.0)
    assert np.isfinite(result.rho).all() and (result.rho <= 1.0 + 1e-9).all()
    # rollout reads no weights of the head (ln_f): re-initialising it alone leaves the ranking as it was
    np.testing.assert_allclose(result.rho[1], 1.0)
