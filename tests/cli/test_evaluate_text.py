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
