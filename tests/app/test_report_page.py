"""The Report page through AppTest: figures drawn, CSV and HTML downloads non-empty and parseable."""

from __future__ import annotations

import io
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from kdviz.evaluation import evaluate as ev
from kdviz.ui import sets

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "report.py")


def synthetic_results(folder: Path) -> Path:
    """A small results file (teacher + 4 students, 30 inputs) written by ``save_results``."""
    rng = np.random.default_rng(0)
    models = [("t", "teacher", "resnet20", None, "ce")] + [
        (f"{arch}_{a}", "student", arch, a, "kd") for arch in ("resnet20", "resnet8") for a in (1.0, 0.1)
    ]
    rows = []
    for mid, role, arch, alpha, method in models:
        n, base = 30, (1.0 if role == "teacher" else 0.9 - 0.4 * alpha)
        rows.append(pd.DataFrame({
            "model_id": mid, "role": role, "arch": arch, "alpha": np.nan if alpha is None else alpha,
            "method": method, "attr_method": "integrated_gradients", "input_id": np.arange(n),
            "label": pd.array(rng.integers(0, 10, n), dtype="Int64"), "pred": rng.integers(0, 10, n),
            "correct": pd.array(rng.random(n) < 0.9, dtype="boolean"), "confidence": rng.random(n),
            "attention_rho": np.clip(base + 0.1 * rng.standard_normal(n), -1, 1),
            "logit_rho": np.clip(base + 0.1 * rng.standard_normal(n), -1, 1),
            "focus_ratio": rng.gamma(2.0, 1.0, n), "focus_fraction": rng.random(n), "topk_overlap": rng.random(n),
            "kl_to_teacher": rng.random(n), "agree": rng.random(n) < 0.9, "ssim": rng.random(n),
            "pearson": rng.random(n),
        }))
    frame = pd.concat(rows, ignore_index=True)
    settings = ev.EvalSettings(
        zoo="synthetic", dataset="mnist", method="integrated_gradients", method_params={"n_steps": 32},
        parts="slic:50", k=5, limit=30, n_inputs=30, batch_size=10, models=tuple((m[0], "0" * 64) for m in models),
    )
    result = ev.EvalResult(frame, ev.summarize(frame, n_resamples=200), settings, {"elapsed_s": 1.0, "device": "cpu"})
    return ev.save_results(result, folder / "results.parquet")


@pytest.fixture()
def media(monkeypatch):
    """Capture the MediaFileManager AppTest creates, to read the downloads back."""
    managers: list[MediaFileManager] = []

    class Recording(MediaFileManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            managers.append(self)

    monkeypatch.setattr("streamlit.testing.v1.app_test.MediaFileManager", Recording)
    return managers


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.divs: set[str] = set()

    def handle_starttag(self, tag, attrs):
        if tag == "div" and dict(attrs).get("id"):
            self.divs.add(dict(attrs)["id"])


def _download(mgr: MediaFileManager, proto) -> bytes:
    url = mgr.execute_deferred(proto.deferred_file_id) if proto.deferred_file_id else proto.url
    return mgr._storage.get_file(url.rsplit("/", 1)[-1]).content


def test_report_page_draws_shipped_results_and_downloads(tmp_path, monkeypatch, media):
    (tmp_path / "mnist").mkdir()
    synthetic_results(tmp_path / "mnist")
    monkeypatch.setenv(sets.ZOO_ROOT_ENV, str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.radio(key="rp_source").value == "Shipped demo results"
    charts = at.get("plotly_chart")
    assert len(charts) == 5
    assert "first 30 test inputs" in at.info[0].value and "synthetic" in at.info[0].value
    assert "α=1.0" in at.code[0].value

    buttons = {b.proto.label: b.proto for b in at.get("download_button")}
    assert {"summary (CSV)", "logit_alignment (CSV)", "findings (CSV)", "Download report (HTML)"} <= set(buttons)
    assert sum(label.endswith("as HTML") for label in buttons) == 5
    mgr = media[-1]
    summary = pd.read_csv(io.BytesIO(_download(mgr, buttons["summary (CSV)"])))
    assert len(summary) == 5 and "attention_rho_low" in summary
    table = pd.read_csv(io.BytesIO(_download(mgr, buttons["logit_alignment (CSV)"])))
    assert list(table.columns) == ["α", "resnet20", "resnet8"]
    page = _download(mgr, buttons["Download report (HTML)"]).decode()
    tags = _Tags()
    tags.feed(page)
    assert {"kdviz-accuracy", "kdviz-focus", "kdviz-attention", "kdviz-logit_table", "kdviz-covariation"} <= tags.divs
    assert "slic:50" in page and "<script src=" not in page
    one = _download(mgr, buttons["(a) as HTML"]).decode()
    assert "<html>" in one and "plotly" in one.lower()


def test_report_page_without_shipped_results_offers_the_other_sources(tmp_path, monkeypatch):
    monkeypatch.setenv(sets.ZOO_ROOT_ENV, str(tmp_path))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.radio(key="rp_source").options == ["Open a results file", "Run an evaluation"]
    assert not at.get("plotly_chart")


def test_report_page_runs_an_evaluation_with_a_progress_bar(tmp_path, monkeypatch):
    if not (ROOT / "assets" / "zoo" / "gunpoint" / "zoo.json").exists():
        pytest.skip("GunPoint demo zoo not built")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the resume cache goes under the temp dir
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.selectbox(key="kdviz_set").set_value("demo-series").run()
    at.radio(key="rp_source").set_value("Run an evaluation").run()
    assert not at.exception, at.exception
    at.number_input(key="rp_n").set_value(3)
    at.button(key="rp_run").click().run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 5
    assert "the first 3 test inputs × 9 models" in at.info[0].value
    assert any(p.proto.value == 100 for p in at.get("progress"))


def test_report_page_text_zoo_view(monkeypatch):
    """The text zoo's shipped results: the study's views over words, no error, and the sidebar says that its image
    settings do not apply (above them); a bookmarked address opens the same view."""
    if not (ROOT / "assets" / "zoo" / "rotten-tomatoes" / "results.parquet").exists():
        pytest.skip("the text zoo's results are not built")
    for how in ("radio", "address"):
        at = AppTest.from_file(PAGE, default_timeout=120)
        if how == "address":
            at.query_params["rp_kind"] = "Text zoo (Rotten Tomatoes)"
            at.run()
        else:
            at.run()
            assert not any("Text zoo view" in i.value for i in at.sidebar.info)  # image sets: no note
            at.radio(key="rp_kind").set_value("Text zoo (Rotten Tomatoes)").run()
        assert not at.exception, at.exception
        assert at.radio(key="rp_source").value == "Shipped demo results"
        assert "rotten-tomatoes** (text): the first 1000 test snippets × 8 models" in at.main.info[0].value
        notes = [i.value for i in at.sidebar.info if "Text zoo view" in i.value]
        assert len(notes) == 1 and "are for image and series sets" in notes[0]
        assert len(at.get("plotly_chart")) >= 4, how


def test_report_page_text_zoo_on_snippets_uploaded_on_the_models_page(tmp_path, monkeypatch):
    """Sentences uploaded on the Models page (a .csv with labels) are a source of the text zoo's evaluation here:
    the run says so, and its accuracy is counted against those labels."""
    if not (ROOT / "assets" / "zoo" / "rotten-tomatoes" / "zoo.json").exists():
        pytest.skip("the text zoo is not built")
    from kdviz.ui.uploads import DataUpload
    from kdviz.ui.widgets import UPLOADED_DATA

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the resume cache goes under the temp dir
    csv = b"text,label\nA witty and wonderful film.,fresh\nDull and lifeless.,rotten\nA mess.,fresh\n"
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state[UPLOADED_DATA] = DataUpload("text", (("mine.csv", csv),))
    at.query_params["rp_kind"] = "Text zoo (Rotten Tomatoes)"
    at.run()
    at.radio(key="rp_source").set_value("Run an evaluation").run()
    at.radio(key="rp_text_source").set_value("Uploaded on the Models page").run()
    assert not at.exception, at.exception
    assert "3 uploaded snippet(s): labels from column 'label'" in " ".join(c.value for c in at.caption)
    at.number_input(key="rp_text_copies").set_value(0)
    at.button(key="rp_text_run").click().run()
    assert not at.exception, at.exception
    assert "the first 3 snippets of mine.csv × 8 models" in at.main.info[0].value
    result = at.session_state["rp_text_result"]
    frame = result.frame
    teacher = frame[frame["role"] == "teacher"].sort_values("input_id")
    assert (teacher["correct"].astype(bool).to_numpy() == (teacher["pred"].to_numpy() == [1, 0, 1])).all()


def test_report_page_text_zoo_with_bad_uploaded_labels_keeps_the_split(monkeypatch):
    """Uploaded sentences whose labels are not the zoo's classes: a warning says why, the split stays usable."""
    if not (ROOT / "assets" / "zoo" / "rotten-tomatoes" / "zoo.json").exists():
        pytest.skip("the text zoo is not built")
    from kdviz.ui.uploads import DataUpload
    from kdviz.ui.widgets import UPLOADED_DATA

    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state[UPLOADED_DATA] = DataUpload("text", (("bad.csv", b"text,label\nGood.,positive\n"),))
    at.query_params["rp_kind"] = "Text zoo (Rotten Tomatoes)"
    at.run()
    at.radio(key="rp_source").set_value("Run an evaluation").run()
    assert not at.exception, at.exception
    assert any("cannot be evaluated here" in w.value and "positive" in w.value for w in at.warning)
    assert all(r.key != "rp_text_source" for r in at.radio)  # no uploaded source offered
    assert at.button(key="rp_text_run").proto.label == "Run evaluation"
