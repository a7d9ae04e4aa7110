"""``kdviz inspect`` on GPT-2 / T5 folders read as classifiers through verbalizers; ``kdviz distill`` of T5 students."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.attribution.text import encode_words
from kdviz.cli import main
from kdviz.io.hf_text import load_hf_text
from kdviz.io.text import read_rotten_tomatoes, split_indices
from tests.generative_models import save_generative


def test_inspect_reports_gpt2_and_t5_folders_and_zips(tmp_path, capsys):
    for kind, token in (("gpt2", " fresh"), ("t5", "fresh")):
        folder = save_generative(tmp_path / kind, kind)
        assert main(["inspect", str(folder)]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["model_type"] == kind and out["num_classes"] == 2 and out["verbalizer"]["fresh"] == token
        archive = shutil.make_archive(str(tmp_path / kind), "zip", tmp_path, kind)
        assert main(["inspect", archive, "--num-classes", "2"]) == 0
        assert json.loads(capsys.readouterr().out)["sha256"] == out["sha256"]


def test_inspect_takes_verbalizer_and_prompt(tmp_path, capsys):
    folder = save_generative(tmp_path / "g", "gpt2", labels=False)
    assert main(["inspect", str(folder)]) == 2
    assert "verbalizer" in capsys.readouterr().err
    assert main(["inspect", str(folder), "--verbalizer", "pos= great", "--verbalizer", "neg= bad",
                 "--prompt", "Review: {text} Sentiment:"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verbalizer"] == {"pos": " great", "neg": " bad"} and out["prompt"] == "Review: {text} Sentiment:"
    assert main(["inspect", str(folder), "--verbalizer", "pos"]) == 2
    assert "CLASS=TOKEN" in capsys.readouterr().err


TEACHER = Path(__file__).resolve().parents[2] / "assets" / "zoo" / "rotten-tomatoes" / "teacher_minilm"


def test_distill_trains_a_t5_rationale_student_on_a_subset(tmp_path, capsys):
    out = tmp_path / "t5"
    assert main(["distill", "--data", "rotten_tomatoes", "--teacher", str(TEACHER), "--arch", "t5-L1-H32",
                 "--method", "rationale", "--alpha", "0.5", "--epochs", "1", "--max-train", "64", "--max-test", "32",
                 "--out", str(out)]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["arch"] == "t5-L1-H32" and line["method"] == "rationale" and line["beta"] == 0.5
    model = load_hf_text(out)  # the folder reads back as a classifier through the verbalizer in its config
    assert model.kind == "encoder-decoder" and model.verbalizer.tokens == ("rotten", "fresh")
    enc = encode_words(model.tokenizer, read_test_texts(32), max_length=72)
    with torch.no_grad():
        pred = model.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits.argmax(1).numpy()
    assert line["test_accuracy"] == round(float((pred == read_test_labels(32)).mean()), 4)


def test_distill_refuses_an_unknown_text_family(tmp_path):
    with pytest.raises(SystemExit, match="'t5-L2-H128' or 'gpt2-L2-H128'"):
        main(["distill", "--data", "rotten_tomatoes", "--teacher", str(TEACHER), "--arch", "llama-L2-H128",
              "--method", "rationale", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def read_test_texts(n: int) -> list[str]:
    df = read_rotten_tomatoes()
    return [df["text"].iloc[i] for i in split_indices(len(df), n_test=1000, seed=0).test[:n]]


def read_test_labels(n: int) -> np.ndarray:
    df = read_rotten_tomatoes()
    return df["label"].to_numpy()[split_indices(len(df), n_test=1000, seed=0).test[:n]]
