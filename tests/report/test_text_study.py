"""kdviz.report.text_study on a tiny text zoo's evaluation: the views' numbers are the summary's, the rationale
student gets its own group, the table and the HTML report; and the Report page draws a text zoo's results."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from kdviz.evaluation.evaluate import save_results
from kdviz.evaluation.text import evaluate_text_zoo
from kdviz.report import text_study as ts
from kdviz.ui import sets
from tests.evaluation.tiny_text_zoo import SENTENCES, build_tiny_text_zoo

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "report.py")


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = build_tiny_text_zoo(tmp_path_factory.mktemp("tiny-text"))
    return evaluate_text_zoo(root, texts=SENTENCES, labels=np.array([1, 0, 0, 1, 0, 0]), null_copies=3,
                             progress_bar=False)


def _with_rationale(summary: pd.DataFrame) -> pd.DataFrame:
    extra = summary[summary["model_id"] == "l1_a1"].assign(model_id="l1_a1_rationale", method="rationale",
                                                           attention_rho=0.123)
    return pd.concat([summary, extra], ignore_index=True)


def test_the_views_draw_the_summary_numbers(result):
    s = result.summary.set_index("model_id")
    figs = ts.text_report_figures(result.summary, k=5)
    assert list(figs) == list(ts.TEXT_FIGURES)
    assert figs["focus"].layout.title.text == "(b) Focus on the teacher's top-5 words"
    att = figs["attention"]
    bars = {t.name: dict(zip(t.x, t.y, strict=True)) for t in att.data if t.type == "bar"}
    assert bars["α=0.5 (mild KD)"]["bert-L1-H32"] == pytest.approx(s.loc["l1_a0.5", "attention_rho"])
    assert bars["α=0.5 (mild KD)"]["bert-L2-H16"] == pytest.approx(s.loc["l2h16_a0.5", "attention_rho"])
    null = next(t for t in att.data if t.type == "scatter")
    l1 = [m for m in ("l1_a1", "l1_a0.5", "l1_a0.1")]
    assert dict(zip(null.x, null.y, strict=True))["bert-L1-H32"] == pytest.approx(
        s.loc[l1, "attention_rho_null"].mean())
    overlap = {t.name: dict(zip(t.x, t.y, strict=True)) for t in figs["overlap"].data if t.type == "bar"}
    assert overlap["α=0.1 (strong KD)"]["bert-L1-H32"] == pytest.approx(s.loc["l1_a0.1", "topk_overlap"])
    vader = {t.name: dict(zip(t.x, t.y, strict=True)) for t in figs["vader"].data if t.type == "bar"}
    assert vader["α=1.0 (no KD)"]["bert-L1-H32"] == pytest.approx(s.loc["l1_a1", "vader"])
    assert "margin" in figs["logit_table"].layout.title.text  # two classes: output alignment over snippets


def test_a_rationale_student_is_its_own_group(result):
    summary = _with_rationale(result.summary)
    figs = ts.text_report_figures(summary, k=5)
    bars = {t.name: dict(zip(t.x, t.y, strict=True)) for t in figs["attention"].data if t.type == "bar"}
    assert bars["α=1.0 (no KD)"]["bert-L1-H32 + rationale"] == pytest.approx(0.123)
    assert bars["α=1.0 (no KD)"]["bert-L1-H32"] == pytest.approx(
        result.summary.set_index("model_id").loc["l1_a1", "attention_rho"])
    assert len(ts.text_findings(summary)) == 4


def test_the_zoo_table_and_the_html_report(result):
    table = ts.text_zoo_table(result.summary, result.run, result.settings).set_index("model")
    s = result.summary.set_index("model_id")
    assert table.loc["l1_a0.1", "layers"] == 1 and table.loc["teacher", "hidden"] == 32
    for col in ("accuracy", "topk_overlap", "topk_overlap_excess", "topk_overlap_p", "vader", "vader_null"):
        assert table.loc["l1_a0.1", col] == pytest.approx(s.loc["l1_a0.1", col], nan_ok=True)
    assert table.loc["l1_a0.1", "attribution"] == "grad_x_embedding"
    assert table.loc["l1_a0.1", "test_accuracy"] == 0.5  # the manifest's, on its whole split
    assert 1 / 4 <= table.loc["l1_a0.1", "topk_overlap_p"] <= 1
    page = ts.text_report_html(result.summary, settings=result.settings.to_dict(), run=result.run)
    for key in ts.TEXT_FIGURES:
        assert f"id=\"kdviz-{key}\"" in page or f"id='kdviz-{key}'" in page
    assert "words" in page and "<script src=" not in page


def test_the_report_page_draws_a_text_zoo(result, tmp_path, monkeypatch):
    (tmp_path / "rotten-tomatoes").mkdir()
    save_results(result, tmp_path / "rotten-tomatoes" / "results.parquet")
    monkeypatch.setenv(sets.ZOO_ROOT_ENV, str(tmp_path))
    managers: list[MediaFileManager] = []

    class Recording(MediaFileManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            managers.append(self)

    monkeypatch.setattr("streamlit.testing.v1.app_test.MediaFileManager", Recording)
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["rp_kind"] = "Text zoo (Rotten Tomatoes)"  # bookmarkable: opened from a link
    at.run()
    assert not at.exception, at.exception
    assert at.radio(key="rp_kind").value == "Text zoo (Rotten Tomatoes)"
    assert at.radio(key="rp_source").value == "Shipped demo results"
    assert len(at.get("plotly_chart")) == len(ts.TEXT_FIGURES)
    assert "tiny-text" in at.info[0].value and "6 given snippets" in at.info[0].value  # texts=, not the split
    buttons = {b.proto.label: b.proto for b in at.get("download_button")}
    proto = buttons["text_zoo_table (CSV)"]
    mgr = managers[-1]
    url = mgr.execute_deferred(proto.deferred_file_id) if proto.deferred_file_id else proto.url
    table = pd.read_csv(io.BytesIO(mgr._storage.get_file(url.rsplit("/", 1)[-1]).content))
    assert len(table) == 5 and table.set_index("model").loc["teacher", "topk_overlap"] == 1.0
    assert "Download report (HTML)" in buttons
