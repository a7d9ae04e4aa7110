"""T5 / GPT-2 text students trained with distilling step-by-step through ``distill_text_student``, read back by
``load_hf_text`` and checked against transformers called directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, GPT2LMHeadModel, T5ForConditionalGeneration

from kdviz.attribution.text import encode_words
from kdviz.io.hf_text import load_hf_text
from kdviz.io.text import CLASS_NAMES, read_rotten_tomatoes, split_indices
from kdviz.models.hf_text import StudentSpec, student_model, student_tokenizer
from kdviz.training.rationale import TeacherCache
from kdviz.training.text_zoo import PROMPT_EXTRA, StudentRun, TextData, TextZooConfig, distill_text_student

ZOO = Path(__file__).resolve().parents[2] / "assets" / "zoo" / "rotten-tomatoes"
CONFIG = TextZooConfig(student_epochs=1, batch_size=16)


@pytest.fixture(scope="module")
def subset() -> tuple[TextData, TeacherCache]:
    """The zoo's first 64 training and 32 test snippets (its split), with their rows of the teacher cache."""
    tok = AutoTokenizer.from_pretrained(ZOO / "teacher_minilm")
    df = read_rotten_tomatoes()
    split = split_indices(len(df), n_test=CONFIG.n_test, seed=CONFIG.seed)
    train, test = split.train[:64], split.test[:32]
    texts, labels = df["text"].tolist(), df["label"].to_numpy()
    train_texts, test_texts = tuple(texts[i] for i in train), tuple(texts[i] for i in test)
    data = TextData(encode_words(tok, train_texts, max_length=CONFIG.max_length),
                    encode_words(tok, test_texts, max_length=CONFIG.max_length), labels[train], labels[test], split,
                    tok, train_texts, test_texts)
    cache = TeacherCache.load(ZOO / "teacher_rationales.npz")
    cache = TeacherCache(cache.logits[:64], cache.rationale[:64], cache.n_words[:64], cache.k)
    assert (cache.n_words == data.train.n_words).all()  # the cache's rows are these snippets
    return data, cache


def _direct_logits(folder: Path, kind: str, texts: tuple[str, ...]) -> torch.Tensor:
    """Verbalizer logits (N, C) with transformers alone: T5 at the decoder's first step after "predict: {text}",
    GPT-2 at the last position of "predict: {text}\\nlabel:"."""
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok.convert_tokens_to_ids(list(CLASS_NAMES))
    rows = []
    with torch.no_grad():
        if kind == "t5":
            lm = T5ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
            for text in texts:
                enc = tok("predict: " + text, return_tensors="pt")
                start = torch.tensor([[lm.config.decoder_start_token_id]])
                rows.append(lm(**enc, decoder_input_ids=start).logits[0, 0, ids])
        else:
            lm = GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()
            for text in texts:
                enc = tok("predict: " + text + "\nlabel:", return_tensors="pt")
                rows.append(lm(**enc).logits[0, -1, ids])
    return torch.stack(rows)


@pytest.mark.parametrize("kind", ["t5", "gpt2"])
def test_generative_student_trains_saves_and_reads_back(kind, subset, tmp_path):
    data, cache = subset
    run = StudentRun(StudentSpec(1, 32, family=kind), 0.5, "rationale", beta=0.5)
    info = distill_text_student(run, data, cache, tmp_path / run.id, tmp_path / "work", config=CONFIG)
    model = load_hf_text(tmp_path / run.id)
    assert model.kind == ("encoder-decoder" if kind == "t5" else "decoder") and model.arch == f"{kind}-L1-H32"
    assert model.labels == CLASS_NAMES and model.verbalizer.mapping() == {
        c: ("" if kind == "t5" else " ") + c for c in CLASS_NAMES}
    enc = encode_words(model.tokenizer, data.test_texts, max_length=CONFIG.max_length + PROMPT_EXTRA)
    with torch.no_grad():
        got = model.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
    ref = _direct_logits(tmp_path / run.id, kind, data.test_texts)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    assert info["accuracy"] == pytest.approx(float((ref.argmax(1).numpy() == data.y_test).mean()))
    assert info["seconds"] > 0 and (tmp_path / "work" / f"{run.id}_state.pt").is_file()
    # it trained: the saved decoder weights moved from the seeded initialisation by more than float16 rounding
    tok = student_tokenizer(data.tokenizer, kind)
    init = student_model(run.spec, vocab_size=len(tok), num_labels=2, seed=CONFIG.student_seed, tokenizer=tok,
                         labels=CLASS_NAMES).lm.state_dict()
    trained = model.model.lm.state_dict()
    moved = max(float((trained[k] - init[k]).abs().max()) for k in init if k.endswith("weight") and "norm" not in k
                and "ln_" not in k and "layer_norm" not in k)
    assert moved > 1e-3


def test_generative_student_needs_the_test_texts(subset, tmp_path):
    data, cache = subset
    bare = TextData(data.train, data.test, data.y_train, data.y_test, data.split, data.tokenizer, data.train_texts)
    run = StudentRun(StudentSpec(1, 32, family="t5"), 1.0, "ce")
    with pytest.raises(ValueError, match="test_texts"):
        distill_text_student(run, bare, cache, tmp_path / "s", tmp_path / "w", config=CONFIG)
    assert np.array_equal(bare.y_test, data.y_test)
