"""The T5 / GPT-2 step-by-step recipe: batches and loss by hand, and a few steps that lower it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdviz.training.rationale import fit_step_by_step, rationale_strings, step_by_step_batch, step_by_step_loss
from tests.generative_models import gpt2_tokenizer, t5_tokenizer, tiny_gpt2, tiny_t5

TEXTS = ["the movie was great and fun", "a boring plot and dull acting"]
WORDS = [("the", "movie", "was", "great", "and", "fun"), ("a", "boring", "plot", "and", "dull", "acting")]


def _nll(logits: torch.Tensor, target: int) -> float:
    return float(-torch.log_softmax(logits.double(), -1)[target])


def test_rationale_strings_keep_text_order():
    rationale = np.array([[3, 5, 1], [4, 1, -1]])  # best first, -1 padded
    assert rationale_strings(WORDS, rationale) == ["movie great fun", "boring dull"]


def test_t5_batch_and_loss_by_hand():
    tok = t5_tokenizer()
    batch = step_by_step_batch(tok, TEXTS, ["fresh", "rotten"], ["great fun", "boring dull"], model_type="t5")
    eos, pad = tok.eos_token_id, tok.pad_token_id
    assert batch.predict_ids[0, : int(batch.predict_mask[0].sum())].tolist() == tok("predict: " + TEXTS[0])["input_ids"]
    assert batch.explain_ids[1, : int(batch.explain_mask[1].sum())].tolist() == tok("explain: " + TEXTS[1])["input_ids"]
    assert batch.label_ids.tolist() == [[tok.convert_tokens_to_ids("▁fresh"), eos],
                                        [tok.convert_tokens_to_ids("▁rotten"), eos]]
    r0 = tok("great fun", add_special_tokens=False)["input_ids"] + [eos]
    assert batch.rationale_ids[0, : len(r0)].tolist() == r0
    model = tiny_t5(1)
    with torch.no_grad():
        got = step_by_step_loss(model, batch, beta=0.3)

    def hand(ids, mask, targets):  # decoder inputs: start token, then the targets shifted right
        dec = torch.cat([torch.zeros(len(ids), 1, dtype=torch.long), targets[:, :-1].clamp_min(0)], 1)
        dec[dec == -100] = pad
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        terms = [_nll(logits[i, t], int(targets[i, t])) for i in range(len(ids)) for t in range(targets.shape[1])
                 if targets[i, t] != -100]
        return sum(terms) / len(terms)

    label = hand(batch.predict_ids, batch.predict_mask, batch.label_ids)
    rationale = hand(batch.explain_ids, batch.explain_mask, batch.rationale_ids)
    assert float(got.label) == pytest.approx(label, rel=1e-5)
    assert float(got.rationale) == pytest.approx(rationale, rel=1e-5)
    assert float(got.total) == pytest.approx(0.7 * label + 0.3 * rationale, rel=1e-5)


def test_gpt2_batch_and_loss_by_hand_with_kd():
    tok = gpt2_tokenizer()
    batch = step_by_step_batch(tok, TEXTS, [" fresh", " rotten"], ["great fun", "boring dull"], model_type="gpt2")
    prompt = tok("predict: " + TEXTS[0] + "\nlabel:")["input_ids"]
    fresh, eot = tok(" fresh")["input_ids"][0], tok.eos_token_id
    n0 = int(batch.predict_mask[0].sum())
    assert batch.predict_ids[0, :n0].tolist() == prompt + [fresh, eot]
    assert batch.label_ids[0, :n0].tolist() == [-100] * len(prompt) + [fresh, eot]
    assert int(batch.answer_pos[0]) == len(prompt) - 1
    model = tiny_gpt2(2)
    ids = [fresh, tok(" rotten")["input_ids"][0]]
    teacher = torch.tensor([[2.0, -1.0], [0.5, 1.5]])
    with torch.no_grad():
        got = step_by_step_loss(model, batch, beta=0.5, teacher_logits=teacher, verbalizer_ids=ids,
                                targets=torch.tensor([0, 1]), alpha=0.25, temperature=2.0)

    def hand(ids_, mask, targets):
        with torch.no_grad():
            logits = model(input_ids=ids_, attention_mask=mask).logits
        terms = [_nll(logits[i, t - 1], int(targets[i, t])) for i in range(len(ids_))
                 for t in range(1, targets.shape[1]) if targets[i, t] != -100]
        return sum(terms) / len(terms), logits

    ce, logits = hand(batch.predict_ids, batch.predict_mask, batch.label_ids)
    answer = logits[torch.arange(2), batch.answer_pos][:, ids].double()
    kl = F.kl_div(F.log_softmax(answer / 2.0, -1), F.softmax(teacher.double() / 2.0, -1), reduction="batchmean")
    label = 0.25 * ce + 0.75 * 4.0 * float(kl)
    rationale, _ = hand(batch.explain_ids, batch.explain_mask, batch.rationale_ids)
    assert float(got.label) == pytest.approx(label, rel=1e-5)
    assert float(got.total) == pytest.approx(0.5 * label + 0.5 * rationale, rel=1e-5)
    with pytest.raises(ValueError, match="teacher_logits"):
        step_by_step_loss(model, batch, alpha=0.5)


def test_a_few_steps_lower_the_t5_loss():
    tok = t5_tokenizer()
    batch = step_by_step_batch(tok, TEXTS, ["fresh", "rotten"], ["great fun", "boring dull"], model_type="t5")
    model = tiny_t5(3)
    with torch.no_grad():
        before = step_by_step_loss(model, batch)
    losses = fit_step_by_step(model, [batch], epochs=20, lr=3e-3)
    with torch.no_grad():
        after = step_by_step_loss(model, batch)
    assert len(losses) == 20 and not model.training
    assert float(after.total) < 0.8 * float(before.total)
    assert float(after.label) < float(before.label) and float(after.rationale) < float(before.rationale)


def test_gpt2_truncation_keeps_the_template_suffix():
    tok = gpt2_tokenizer()
    long = " ".join(["the movie was great and fun"] * 8)
    batch = step_by_step_batch(tok, [long, "bad"], [" fresh", " rotten"], ["great", "bad"], model_type="gpt2",
                               max_length=12)
    suffix = tok("\nlabel:", add_special_tokens=False)["input_ids"]
    full = tok("predict: " + long + "\nlabel:", add_special_tokens=False)["input_ids"]
    fresh, eot = tok(" fresh")["input_ids"][0], tok.eos_token_id
    n0 = int(batch.predict_mask[0].sum())
    assert batch.predict_ids[0, :n0].tolist() == full[: 12 - len(suffix)] + suffix + [fresh, eot]
    assert int(batch.answer_pos[0]) == 11 and batch.label_ids[0, 12].item() == fresh
    short = tok("predict: bad\nlabel:", add_special_tokens=False)["input_ids"]
    assert batch.predict_ids[1, : len(short)].tolist() == short  # short prompts untouched
