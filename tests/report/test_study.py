"""kdviz.report.study: the Report's bundles: all figures, CSV tables, per-model display, one HTML file."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd

from kdviz.report import study as report
from kdviz.report.study_bars import accuracy_figure
from tests.report.summaries import ARCHS, REFERENCE_TEXT, make_summary, trend_summary


def test_summary_display_shows_z_and_p_beside_the_excess():
    s = trend_summary({"a": (0.5, 0.6, 0.7)})
    s["attention_rho_excess"], s["attention_rho_z"], s["attention_rho_p"] = 0.3, 2.5, 0.05
    s["null_copies"] = 3
    s.loc[0, ["attention_rho_p", "null_copies"]] = np.nan
    shown = report.summary_display(s)
    cols = list(shown.columns)
    assert cols.index("attention_rho_excess") < cols.index("attention_rho_z") < cols.index("attention_rho_p")
    assert shown["attention_rho_z"].iloc[1] == "2.50"
    assert shown["attention_rho_p"].iloc[1] == "0.05"  # R = 3 cannot give 0.05: shown as it is, it is not a floor
    s["attention_rho_p"] = 0.25
    assert report.summary_display(s)["attention_rho_p"].iloc[1].startswith("≥ 0.25")  # the floor of R = 3


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_report_html_is_self_contained_and_complete():
    s = make_summary()
    settings = {"zoo": "demo", "method": "integrated_gradients", "method_params": {"n_steps": 32},
                "parts": "slic:50", "k": 5, "limit": 200, "models": [["teacher", "abc"]]}
    text = report.report_html(s, settings=settings, run={"elapsed_s": 12.5, "device": "cpu"})
    parser = _Collect()
    parser.feed(text)
    scripts = [a for t, a in parser.tags if t == "script"]
    assert not any("src" in a for a in scripts)  # plotly.js inlined, nothing fetched
    assert text.count("plotly.js v") == 1 or text.count("* plotly.js") == 1  # inlined once
    ids = {a.get("id") for t, a in parser.tags if t == "div"}
    assert {f"kdviz-{k}" for k in report.FIGURES} <= ids
    for needle in ("slic:50", "n_steps", "Evaluation settings", REFERENCE_TEXT.split(" · ")[0][:5], "Findings",
                   "How a finding is judged"):
        assert needle in text
    single = report.figure_html(accuracy_figure(s))
    assert "<html>" in single and "src=\"http" not in single


def test_report_tables_export_as_csv(tmp_path):
    tables = report.report_tables(make_summary())
    assert set(tables) == {"summary", "logit_alignment", "findings"}
    for name, t in tables.items():
        path = tmp_path / f"{name}.csv"
        t.to_csv(path, index=False)
        back = pd.read_csv(path)
        assert len(back) == len(t) and len(back.columns) == len(t.columns)
    assert list(tables["logit_alignment"].columns) == ["α", *ARCHS]
