"""Verbalizers, VerbalizedLM and random copies of GPT-2 / T5 classifiers, against transformers called directly."""

from __future__ import annotations

import pytest
import torch

from kdviz.models.hf_text import VerbalizedLM, Verbalizer, random_text_copy
from tests.generative_models import gpt2_tokenizer, t5_tokenizer, tiny_gpt2, tiny_t5


def test_verbalizer_defaults_and_checks():
    v = Verbalizer.default(("fresh", "rotten"), "gpt2")
    assert v.tokens == (" fresh", " rotten") and v.template == "predict: {text}\nlabel:"
    assert v.prefix == "predict: " and v.suffix == "\nlabel:"
    t5 = Verbalizer.default(("fresh", "rotten"), "t5").resolve(t5_tokenizer())
    assert t5.tokens == ("fresh", "rotten") and t5.ids == tuple(t5_tokenizer().convert_tokens_to_ids(["▁fresh", "▁rotten"]))
    assert Verbalizer.from_dict(t5.to_dict()) == Verbalizer(t5.labels, t5.tokens, t5.template)
    for bad in [dict(labels=("a",), tokens=("a",)), dict(labels=("a", "a"), tokens=("x", "y")),
                dict(labels=("a", "b"), tokens=("x",))]:
        with pytest.raises(ValueError):
            Verbalizer(template="{text}", **bad)


def test_gpt2_logits_are_the_next_token_logits_at_the_last_real_position():
    tok = gpt2_tokenizer()
    verb = Verbalizer.default(("fresh", "rotten"), "gpt2").resolve(tok)
    lm = tiny_gpt2(2)
    model = VerbalizedLM(lm, verb)
    a, b = tok("predict: a witty film\nlabel:")["input_ids"], tok("predict: bad\nlabel:")["input_ids"]
    pad = tok.eos_token_id
    ids = torch.tensor([a, b + [pad] * (len(a) - len(b))])
    mask = torch.tensor([[1] * len(a), [1] * len(b) + [0] * (len(a) - len(b))])
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask).logits
        ref_b = lm(input_ids=torch.tensor([b])).logits[0, -1, list(verb.ids)]
        ref_a = lm(input_ids=torch.tensor([a])).logits[0, -1, list(verb.ids)]
    torch.testing.assert_close(got, torch.stack([ref_a, ref_b]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["gpt2", "t5"])
def test_random_copy_keeps_the_verbalizer(kind):
    tok = gpt2_tokenizer() if kind == "gpt2" else t5_tokenizer()
    verb = Verbalizer.default(("fresh", "rotten"), kind).resolve(tok)
    model = VerbalizedLM(tiny_gpt2(0) if kind == "gpt2" else tiny_t5(0), verb)
    a, b = random_text_copy(model.config, 10_000), random_text_copy(model.config, 10_000)
    c = random_text_copy(model.config, 10_001)
    assert isinstance(a, VerbalizedLM) and a.verbalizer == verb and not a.training
    ids = torch.tensor([tok("predict: a witty film")["input_ids"]])
    with torch.no_grad():
        la, lb, lc = (m(input_ids=ids).logits for m in (a, b, c))
    torch.testing.assert_close(la, lb)
    assert not torch.allclose(la, lc)


def test_too_long_input_is_named_not_an_index_error():
    tok = gpt2_tokenizer()
    model = VerbalizedLM(tiny_gpt2(0), Verbalizer.default(("fresh", "rotten"), "gpt2").resolve(tok))
    with pytest.raises(ValueError, match="exceed this gpt2's 96 positions"):
        model(input_ids=torch.zeros(1, 97, dtype=torch.long))
