"""Text students by name: ``bert-``/``t5-``/``gpt2-L<n>-H<d>``, T5 / GPT-2 students on the teacher's vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer, BertTokenizerFast

from kdviz.io.text import CLASS_NAMES
from kdviz.models.hf_text import (
    StudentSpec,
    VerbalizedLM,
    parse_text_arch,
    student_model,
    student_tokenizer,
    text_arch_name,
)

TEACHER = Path(__file__).resolve().parents[2] / "assets" / "zoo" / "rotten-tomatoes" / "teacher_minilm"


@pytest.fixture(scope="module")
def teacher_tokenizer() -> BertTokenizerFast:
    return AutoTokenizer.from_pretrained(TEACHER)


@pytest.mark.parametrize("name", ["bert-L2-H256", "t5-L2-H128", "gpt2-L3-H64"])
def test_parse_text_arch_round_trips_through_the_built_model(name, teacher_tokenizer):
    spec = parse_text_arch(name)
    assert spec.arch == name and parse_text_arch(name.upper()) == spec
    tok = student_tokenizer(teacher_tokenizer, spec.family)
    model = student_model(spec, vocab_size=len(tok), num_labels=2, seed=0, tokenizer=tok, labels=CLASS_NAMES)
    assert text_arch_name(model.config) == name  # what kdviz inspect reports for the saved folder
    assert isinstance(model, VerbalizedLM) == (spec.family != "bert")


@pytest.mark.parametrize("bad", ["llama-L2-H128", "t5-L2", "gpt2-Lx-H64", "t5-L0-H128", "bert_L2_H256"])
def test_unknown_or_malformed_arch_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="'bert-L2-H256', 't5-L2-H128' or 'gpt2-L2-H128'"):
        parse_text_arch(bad)


def test_student_model_refuses_an_unknown_family_and_a_missing_tokenizer(teacher_tokenizer):
    with pytest.raises(ValueError, match="family must be one of bert, t5, gpt2"):
        student_model(StudentSpec(1, 32, family="llama"), vocab_size=10, num_labels=2, seed=0)
    with pytest.raises(ValueError, match="needs its tokenizer"):
        student_model(StudentSpec(1, 32, family="t5"), vocab_size=10, num_labels=2, seed=0)
    with pytest.raises(ValueError, match="family must be one of"):
        student_tokenizer(teacher_tokenizer, "llama")


def test_t5_and_gpt2_students_reuse_the_teacher_wordpiece_vocabulary(teacher_tokenizer):
    tok = teacher_tokenizer
    for word in CLASS_NAMES:  # the verbalizer tokens are single pieces of the pruned vocabulary
        assert len(tok(word, add_special_tokens=False)["input_ids"]) == 1
        assert tok(" " + word, add_special_tokens=False)["input_ids"] == tok(word, add_special_tokens=False)["input_ids"]
    t5, gpt2 = student_tokenizer(tok, "t5"), student_tokenizer(tok, "gpt2")
    assert t5.get_vocab() == gpt2.get_vocab() == tok.get_vocab()
    text = "A witty, fresh film -- not rotten at all."
    assert t5(text)["input_ids"] == tok(text)["input_ids"]  # [CLS] ... [SEP] around encoder inputs
    assert gpt2(text)["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]  # nothing added
    for s in (t5, gpt2):
        assert (s.pad_token, s.eos_token, s.bos_token) == ("[PAD]", "[SEP]", "[CLS]")
    class_ids = tuple(tok.convert_tokens_to_ids(list(CLASS_NAMES)))
    m5 = student_model(StudentSpec(1, 32, family="t5"), vocab_size=len(t5), num_labels=2, seed=0, tokenizer=t5,
                       labels=CLASS_NAMES)
    assert m5.verbalizer.tokens == CLASS_NAMES and m5.verbalizer.ids == class_ids
    assert (m5.config.pad_token_id, m5.config.eos_token_id, m5.config.decoder_start_token_id) == (
        tok.pad_token_id, tok.sep_token_id, tok.pad_token_id)
    assert m5.config.vocab_size == len(tok) and m5.config.d_ff == 128 and m5.config.num_decoder_layers == 1
    mg = student_model(StudentSpec(2, 128, family="gpt2"), vocab_size=len(gpt2), num_labels=2, seed=0,
                       tokenizer=gpt2, labels=CLASS_NAMES)
    assert mg.verbalizer.tokens == (" rotten", " fresh") and mg.verbalizer.ids == class_ids
    assert (mg.config.bos_token_id, mg.config.eos_token_id, mg.config.pad_token_id) == (
        tok.cls_token_id, tok.sep_token_id, tok.pad_token_id)
    assert (mg.config.n_head, mg.config.n_positions) == (2, 128)
