"""The shipped text zoo: accuracy re-measured outside kdviz, manifest, size; one tiny text distillation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kdviz.io.text import read_rotten_tomatoes, rotten_tomatoes_path
from kdviz.models.hf_text import StudentSpec
from kdviz.training.rationale import TeacherCache
from kdviz.training.text_zoo import (
    StudentRun,
    TextData,
    TextZooConfig,
    distill_text_student,
    load_text_data,
    student_command,
)

ZOO = Path(__file__).resolve().parents[2] / "assets" / "zoo" / "rotten-tomatoes"


def _manifest() -> dict:
    return json.loads((ZOO / "zoo.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("model_id", [m["id"] for m in json.loads((ZOO / "zoo.json").read_text())["models"]])
def test_accuracy_remeasured_with_pandas_and_transformers(model_id):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    df = pd.read_csv(rotten_tomatoes_path())
    df = df[df["category"].isin(["fresh", "rotten"])].drop_duplicates("text").reset_index(drop=True)
    with np.load(ZOO / "split.npz") as z:
        test = df.iloc[z["test"]]
    folder = ZOO / next(m for m in _manifest()["models"] if m["id"] == model_id)["checkpoint"]
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    preds = []
    with torch.no_grad():
        for s in range(0, len(test), 100):
            enc = tok(list(test["text"].iloc[s:s + 100]), truncation=True, max_length=64, padding=True,
                      return_tensors="pt")
            preds.append(model(**enc).logits.argmax(1).numpy())
    labels = (test["category"] == "fresh").to_numpy().astype(int)
    accuracy = float((np.concatenate(preds) == labels).mean())
    recorded = next(m for m in _manifest()["models"] if m["id"] == model_id)["test_accuracy"]
    assert accuracy == pytest.approx(recorded, abs=0.002)
    assert model.config.id2label[1] == "fresh"


def test_zoo_manifest_folders_and_size():
    manifest = _manifest()
    assert manifest["task"] == "text" and manifest["class_names"] == ["rotten", "fresh"]
    size = sum(p.stat().st_size for p in ZOO.rglob("*") if p.is_file())
    assert size <= 80 * 1024**2
    for m in manifest["models"]:
        weights = ZOO / m["checkpoint"] / "model.safetensors"
        assert hashlib.sha256(weights.read_bytes()).hexdigest() == m["sha256"], m["id"]
        assert 0.5 < m["test_accuracy"] <= 1.0 and m["command"]
    assert {m["method"] for m in manifest["models"]} == {"ce", "kd", "rationale"}
    for m in manifest["models"]:
        if m["role"] == "student":  # the recorded command trains it as the zoo did
            assert f"--epochs {m['epochs']} --lr {m['lr']:g} " in m["command"], m["id"]


def test_each_student_run_records_its_learning_rate():
    config = TextZooConfig()
    runs = {r.id: r for r in config.students}
    assert "--lr 0.0003 " in student_command(runs["bert-l4-h128_a1"], config, "T")
    assert "--lr 0.001 " in student_command(runs["bert-l2-h256_a0.1"], config, "T")
    assert "--lr 0.002 " in student_command(runs["bert-l2-h256_a0.1"], TextZooConfig(student_lr=2e-3), "T")


def test_distill_text_student_rationale_end_to_end(tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ZOO / "teacher_minilm")
    full = load_text_data(tok)
    rows = np.arange(64)
    data = TextData(full.train.rows(rows), full.test.rows(np.arange(32)), full.y_train[rows], full.y_test[:32],
                    full.split, tok, full.train_texts[:64])
    cache = TeacherCache.load(ZOO / "teacher_rationales.npz")
    cache = TeacherCache(cache.logits[rows], cache.rationale[rows], cache.n_words[rows], cache.k)
    assert (cache.n_words == full.train.n_words[rows]).all()
    run = StudentRun(StudentSpec(1, 64), 0.5, "rationale", beta=0.5)
    info = distill_text_student(run, data, cache, tmp_path / run.id, tmp_path,
                                config=TextZooConfig(student_epochs=1, batch_size=16))
    assert (tmp_path / run.id / "model.safetensors").is_file()
    assert (tmp_path / run.id / "rationale_head.safetensors").is_file()
    assert 0.0 <= info["accuracy"] <= 1.0 and info["seconds"] > 0
    assert len(read_rotten_tomatoes()) == len(full.split.train) + len(full.split.test)
