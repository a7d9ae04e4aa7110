"""``kdviz evaluate`` on a text zoo (tiny saved BERTs): files, settings, numbers, refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdviz.cli import main
from kdviz.evaluation.evaluate import load_results, read_settings, summary_path
from tests.evaluation.tiny_text_zoo import build_tiny_text_zoo


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return build_tiny_text_zoo(tmp_path_factory.mktemp("tiny-text"))


def test_evaluate_a_text_zoo_writes_results_and_summary(zoo, tmp_path, capsys):
    out = tmp_path / "r.parquet"
    rc = main(["evaluate", "--zoo", str(zoo), "--out", str(out), "--limit", "5", "--batch-size", "3",
               "--null-copies", "2", "--quiet"])
    assert rc == 0
    settings, run = read_settings(out)
    assert settings.method == "grad_x_embedding" and settings.parts == "words" and settings.n_inputs == 5
    assert settings.null_copies == 2 and settings.k == 5 and run["task"] == "text"
    assert not out.with_name(out.name + ".partial").exists()  # removed after success
    summary = pd.read_csv(summary_path(out)).set_index("model_id")
    res = load_results(out)
    frame = res.frame
    assert len(frame) == 5 * 5 and set(frame["input_id"]) == set(range(5))
    for mid, g in frame.groupby("model_id"):
        assert summary.loc[mid, "attention_rho"] == pytest.approx(np.nanmean(g["attention_rho"].to_numpy(float)))
        assert summary.loc[mid, "accuracy"] == pytest.approx(g["correct"].astype(float).mean())
    assert summary.loc["teacher", "topk_overlap"] == 1.0
    assert summary.loc["l1_a0.5", "attention_rho_p"] in (1 / 3, 2 / 3, 1.0)
    assert "l1_a0.5" in capsys.readouterr().out


def test_ig_steps_and_refusals(zoo, tmp_path, capsys):
    out = tmp_path / "ig.parquet"
    assert main(["evaluate", "--zoo", str(zoo), "--out", str(out), "--limit", "2", "--method", "ig", "--steps", "4",
                 "--null-copies", "0", "--quiet"]) == 0
    s, _ = read_settings(out)
    assert s.method == "integrated_gradients" and s.method_params["n_steps"] == 4
    for extra in (["--parts", "slic:50"], ["--method", "grad_cam"], ["--precision", "bf16"],
                  ["--steps", "8"]):  # --steps without IG
        assert main(["evaluate", "--zoo", str(zoo), "--out", str(tmp_path / "x.parquet"), "--limit", "1",
                     "--quiet", *extra]) == 2, extra
    assert "not a text method" in capsys.readouterr().err


def test_a_labs_own_csv_of_snippets(zoo, tmp_path, capsys):
    """--data: a CSV with text and label columns (class names in any case, or indices) is what is evaluated,
    recorded under its own fingerprinted name; a .txt has no labels, so no accuracy."""
    from tests.evaluation.tiny_text_zoo import SENTENCES

    labels = ["fresh", "ROTTEN", "0", "fresh", "rotten", "1"]
    pd.DataFrame({"review": SENTENCES, "Label": labels}).to_csv(tmp_path / "mine.csv", index=False)
    out = tmp_path / "mine.parquet"
    assert main(["evaluate", "--zoo", str(zoo), "--data", str(tmp_path / "mine.csv"), "--text-column", "review",
                 "--out", str(out), "--null-copies", "0", "--quiet"]) == 0
    assert "6 snippets from" in capsys.readouterr().err
    s, _ = read_settings(out)
    assert s.n_inputs == 6 and s.dataset.startswith("mine.csv#")
    frame = load_results(out).frame
    want = np.array([1, 0, 0, 1, 0, 1])  # zoo class names: rotten = 0, fresh = 1
    for _mid, g in frame.groupby("model_id"):
        g = g.sort_values("input_id")
        assert (g["correct"].astype(bool).to_numpy() == (g["pred"].to_numpy() == want)).all()
    (tmp_path / "mine.txt").write_text("\n".join(SENTENCES[:3]) + "\n\n")
    out2 = tmp_path / "txt.parquet"
    assert main(["evaluate", "--zoo", str(zoo), "--data", str(tmp_path / "mine.txt"), "--out", str(out2),
                 "--null-copies", "0", "--quiet"]) == 0
    s2, _ = read_settings(out2)
    assert s2.n_inputs == 3 and s2.dataset.startswith("mine.txt#") and s2.key() != s.key()
    assert load_results(out2).summary["accuracy"].isna().all()
    pd.DataFrame({"text": SENTENCES[:2], "label": ["fresh", "meh"]}).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["evaluate", "--zoo", str(zoo), "--data", str(tmp_path / "bad.csv"), "--out", str(out2),
                 "--quiet"]) == 2
    assert "neither a class name (rotten, fresh) nor an index below 2: meh" in capsys.readouterr().err
