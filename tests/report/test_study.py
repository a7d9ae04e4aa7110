"""Report builders: the five views, the reference-table layout, findings, the self-contained HTML."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from kdviz.report import study as report

# DESIGN.md's reference study: rows α, columns ResNet101/50/34/18 (teacher ResNet101 at α=1.0).
REFERENCE = {1.0: (1.00, 0.52, 0.28, 0.26), 0.5: (0.76, 0.70, 0.48, 0.38), 0.1: (0.81, 0.76, 0.56, 0.50)}
REFERENCE_TEXT = "α=1.0: 1.00 0.52 0.28 0.26 · α=0.5: 0.76 0.70 0.48 0.38 · α=0.1: 0.81 0.76 0.56 0.50"
ARCHS = ("resnet101", "resnet50", "resnet34", "resnet18")


def make_summary(*, trend: float = 1.0, sd: bool = True) -> pd.DataFrame:
    """A per-model summary like ``evaluate.summarize`` gives: the reference logit table, and attention/focus
    /accuracy that rise with KD strength when ``trend`` > 0 (fall when < 0)."""
    rows = [{"model_id": "teacher", "role": "teacher", "arch": "resnet101", "alpha": np.nan, "method": "ce",
             "accuracy": 0.80, "attention_rho": 1.0, "logit_rho": 1.0, "focus_ratio": 2.0, "focus_fraction": 0.6}]
    for alpha, values in REFERENCE.items():
        strength = {1.0: 0.0, 0.5: 0.5, 0.1: 1.0}[alpha]
        for j, (arch, logit) in enumerate(zip(ARCHS, values, strict=True)):
            rows.append({
                "model_id": f"{arch}_a{alpha}", "role": "student", "arch": arch, "alpha": alpha, "method": "kd",
                "accuracy": 0.70 + 0.02 * j * trend * strength, "attention_rho": 0.3 + 0.2 * trend * strength + 0.4 * logit,
                "logit_rho": logit, "focus_ratio": 1.0 + trend * strength, "focus_fraction": 0.5 + 0.1 * trend * strength,
            })
    if sd:
        rows.append({"model_id": "resnet18_sd", "role": "student", "arch": "resnet18", "alpha": 0.1,
                     "method": "kd+sd", "accuracy": 0.75, "attention_rho": 0.8, "logit_rho": 0.55,
                     "focus_ratio": 2.2, "focus_fraction": 0.7})
    s = pd.DataFrame(rows)
    for col in ("accuracy", "attention_rho", "logit_rho", "focus_ratio", "focus_fraction"):
        s[f"{col}_low"], s[f"{col}_high"] = s[col] - 0.01, s[col] + 0.01
    s["n"] = 200
    return s


def test_logit_table_has_the_reference_layout():
    table = report.logit_table(make_summary())
    assert list(table.columns) == list(ARCHS)  # largest first
    assert list(table.index) == ["α=1.0", "α=0.5", "α=0.1", "α=0.1 + SD"]  # no KD first, SD last
    np.testing.assert_allclose(table.loc["α=0.5"].to_numpy(), REFERENCE[0.5])
    assert table.loc["α=0.1 + SD"].isna().sum() == 3 and table.loc["α=0.1 + SD", "resnet18"] == 0.55
    text = report.format_reference_table(report.logit_table(make_summary(sd=False)))
    assert text.splitlines()[1] == REFERENCE_TEXT
    assert "— — — 0.55" in report.format_reference_table(table)


@pytest.mark.parametrize("name", ["accuracy", "focus", "attention"])
def test_bar_views_group_by_arch_with_bootstrap_error_bars(name):
    fig = report.report_figures(make_summary())[name]
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert [t.name.split(" ")[0] for t in bars] == ["α=1.0", "α=0.5", "α=0.1", "α=0.1"]
    assert bars[-1].name.startswith("α=0.1 + SD")
    assert list(bars[0].x) == list(ARCHS)
    scale = 100 if name == "accuracy" else 1
    np.testing.assert_allclose(bars[0].error_y.array, 0.01 * scale, rtol=1e-6)
    np.testing.assert_allclose(bars[0].error_y.arrayminus, 0.01 * scale, rtol=1e-6)
    if name != "attention":  # the teacher's own value is the reference line
        assert any(s.type == "line" for s in fig.layout.shapes)


def test_focus_view_bounded_form_and_bad_metric():
    s = make_summary()
    fig = report.focus_figure(s, metric="focus_fraction", k=3)
    assert "top-3" in fig.layout.title.text
    assert fig.data[2].y[0] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="metric"):
        report.focus_figure(s, metric="ssim")


def test_covariation_scatter_and_findings():
    s = make_summary()
    fig = report.covariation_figure(s)
    points = [t for t in fig.data if t.mode == "markers" and t.x is not None and t.x[0] is not None]
    assert sum(len(t.x) for t in points) == 13  # every student, teacher left out
    assert "Spearman ρ across students" in fig.layout.title.text

    verdicts = [f.verdict for f in report.findings(s)]
    # accuracy: resnet50 rises 0.70 -> 0.72 with touching intervals (0.71 | 0.71), so 2 of 3 small students
    # support the claim: "partly"; the teacher's arch (resnet101) is not a "small student"
    assert verdicts == ["partly", "holds", "holds", "holds"]
    assert "supported by 2 of 3 architectures" in report.findings(s)[0].evidence
    reverse = [f.verdict for f in report.findings(make_summary(trend=-1.0))]
    assert reverse[1:3] == ["does not hold", "does not hold"]


def _trend_summary(deltas: dict[str, tuple[float, float, float]], *, half_width: float = 0.01,
                   excess_low: float | None = None) -> pd.DataFrame:
    """Students of each arch at α 1.0/0.5/0.1 with the given attention ρ means and ± half_width intervals."""
    rows = [{"model_id": "t", "role": "teacher", "arch": "resnet101", "alpha": np.nan, "method": "ce",
             "attention_rho": 1.0}]
    for arch, values in deltas.items():
        for alpha, v in zip((1.0, 0.5, 0.1), values, strict=True):
            rows.append({"model_id": f"{arch}{alpha}", "role": "student", "arch": arch, "alpha": alpha,
                         "method": "ce" if alpha == 1.0 else "kd", "attention_rho": v})
    s = pd.DataFrame(rows)
    s["attention_rho_low"], s["attention_rho_high"] = s["attention_rho"] - half_width, s["attention_rho"] + half_width
    if excess_low is not None:
        s["attention_rho_excess_low"] = excess_low
    return s


def _attention_verdict(s: pd.DataFrame) -> str:
    return report.findings(s)[1].verdict


def test_verdict_rule_one_rise_in_four_is_not_partly():
    falls = (0.8, 0.7, 0.6)
    s = _trend_summary({"resnet50": (0.5, 0.6, 0.7), "resnet34": falls, "resnet18": falls, "resnet8": falls})
    assert _attention_verdict(s) == "does not hold"
    # one clean rise, three level (overlapping intervals): no architecture contradicts, yet 1 of 4 is no majority
    level = (0.7, 0.7, 0.705)
    s = _trend_summary({"resnet50": (0.5, 0.6, 0.7), "resnet34": level, "resnet18": level, "resnet8": level})
    assert _attention_verdict(s) == "not enough evidence"


def test_verdict_rule_clean_monotone_separated_trend_holds_and_majority_is_partly():
    rise = (0.5, 0.6, 0.7)
    assert _attention_verdict(_trend_summary({"a": rise, "b": rise, "c": rise})) == "holds"
    # separated endpoints but not monotone: does not support
    assert _attention_verdict(_trend_summary({"a": rise, "b": rise, "c": (0.5, 0.8, 0.7)})) == "partly"
    # wide intervals (seed variation) make the same means inconclusive
    assert _attention_verdict(_trend_summary({"a": rise, "b": rise}, half_width=0.2)) == "not enough evidence"


def test_verdict_rule_needs_the_strong_student_above_the_null():
    rise = (0.5, 0.6, 0.7)
    assert _attention_verdict(_trend_summary({"a": rise, "b": rise}, excess_low=0.05)) == "holds"
    assert _attention_verdict(_trend_summary({"a": rise, "b": rise}, excess_low=-0.02)) == "not enough evidence"
    assert "Co-variation" in report.VERDICT_RULE and "null" in report.VERDICT_RULE


def test_above_the_null_is_a_holm_corrected_rank_p():
    """Strong-KD students' rank p 0.02 and 0.03 over two architectures: Holm (by hand) 2·0.02 = 0.04 and
    max(0.04, 0.03) = 0.04, both ≤ 0.05: above the null. With 0.03 and 0.04: 0.06 and 0.06, neither."""
    rise = (0.5, 0.6, 0.7)

    def with_p(pa: float, pb: float) -> pd.DataFrame:
        s = _trend_summary({"a": rise, "b": rise}, excess_low=-0.5)  # the interval alone would say "within"
        s["attention_rho_p"] = np.nan
        s.loc[s["model_id"] == "a0.1", "attention_rho_p"] = pa
        s.loc[s["model_id"] == "b0.1", "attention_rho_p"] = pb
        s["null_copies"] = 39
        return s

    assert _attention_verdict(with_p(0.02, 0.03)) == "holds"
    evidence = report.findings(with_p(0.03, 0.04))[1]
    assert evidence.verdict == "not enough evidence" and "Holm 0.06" in evidence.evidence
    assert "Holm" in report.VERDICT_RULE and "(R + 1)" in report.VERDICT_RULE


def test_summary_display_shows_z_and_p_beside_the_excess():
    s = _trend_summary({"a": (0.5, 0.6, 0.7)})
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
    single = report.figure_html(report.accuracy_figure(s))
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


def test_covariation_over_three_students_is_not_evidence() -> None:
    s = _trend_summary({"a": (0.5, 0.6, 0.7)})
    s["logit_rho"] = [1.0, 0.2, 0.4, 0.6]
    rho, p = report._across_models(report._students(s))
    assert rho == pytest.approx(1.0) and p == pytest.approx(1 / 3)  # exact: 2 of 6 orderings are as extreme
    assert report.findings(s)[3].verdict == "not enough evidence"


def test_exact_spearman_p_equals_scipys_permutation_test() -> None:
    import scipy.stats

    rng = np.random.default_rng(1)
    x, y = rng.random(6), rng.random(6)
    rho = scipy.stats.spearmanr(x, y).statistic
    ref = scipy.stats.permutation_test(
        (y,), lambda b: scipy.stats.spearmanr(x, b).statistic, permutation_type="pairings", n_resamples=np.inf,
        vectorized=False, alternative="two-sided").pvalue
    assert report._exact_spearman_p(x, y, rho) == pytest.approx(ref)


def test_bar_views_keep_their_plot_area_wide_and_two_class_covariation_uses_margins():
    """Issue 23 items 3–4: the legend (with the long null entry) goes below the bars, not beside them; on a
    2-class task (logit ρ undefined) view (e) plots margin alignment and says so on its axis."""
    s = make_summary()
    s["attention_rho_null"] = 0.2
    for name in ("accuracy", "focus", "attention"):
        legend = report.report_figures(s)[name].layout.legend
        assert legend.orientation == "h" and legend.y < 0, name
    s["logit_rho"] = np.nan
    s["margin_rho"] = np.linspace(0.1, 0.9, len(s))
    s["margin_rho_low"], s["margin_rho_high"] = s["margin_rho"] - 0.05, s["margin_rho"] + 0.05
    fig = report.covariation_figure(s)
    points = [t for t in fig.data if t.x is not None and any(v is not None for v in t.x) and t.mode == "markers"]
    assert points and all(np.isfinite(np.asarray(t.x, dtype=float)).all() for t in points)
    assert "margin" in fig.layout.xaxis.title.text
    assert list(fig.layout.xaxis.range) == [0.0, 1.05]
