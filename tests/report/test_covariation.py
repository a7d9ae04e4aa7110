"""kdviz.report.covariation: view (e), output vs attention alignment across students, and its exact p-value."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from kdviz.report.covariation import across_students, covariation_figure, exact_spearman_p
from kdviz.report.findings import findings
from kdviz.report.summary import student_rows
from tests.report.summaries import make_summary, trend_summary


def test_covariation_scatter() -> None:
    s = make_summary()
    fig = covariation_figure(s)
    points = [t for t in fig.data if t.mode == "markers" and t.x is not None and t.x[0] is not None]
    assert sum(len(t.x) for t in points) == 13  # every student, teacher left out
    assert "Spearman ρ across students" in fig.layout.title.text


def test_covariation_over_three_students_is_not_evidence() -> None:
    s = trend_summary({"a": (0.5, 0.6, 0.7)})
    s["logit_rho"] = [1.0, 0.2, 0.4, 0.6]
    rho, p = across_students(student_rows(s))
    assert rho == pytest.approx(1.0) and p == pytest.approx(1 / 3)  # exact: 2 of 6 orderings are as extreme
    assert findings(s)[3].verdict == "not enough evidence"


def test_exact_spearman_p_equals_scipys_permutation_test() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.random(6), rng.random(6)
    rho = scipy.stats.spearmanr(x, y).statistic
    ref = scipy.stats.permutation_test(
        (y,), lambda b: scipy.stats.spearmanr(x, b).statistic, permutation_type="pairings", n_resamples=np.inf,
        vectorized=False, alternative="two-sided").pvalue
    assert exact_spearman_p(x, y, rho) == pytest.approx(ref)


def test_two_class_covariation_uses_margins() -> None:
    """On a 2-class task (logit ρ undefined) view (e) plots margin alignment and says so on its axis."""
    s = make_summary()
    s["logit_rho"] = np.nan
    s["margin_rho"] = np.linspace(0.1, 0.9, len(s))
    s["margin_rho_low"], s["margin_rho_high"] = s["margin_rho"] - 0.05, s["margin_rho"] + 0.05
    fig = covariation_figure(s)
    points = [t for t in fig.data if t.x is not None and any(v is not None for v in t.x) and t.mode == "markers"]
    assert points and all(np.isfinite(np.asarray(t.x, dtype=float)).all() for t in points)
    assert "margin" in fig.layout.xaxis.title.text
    assert list(fig.layout.xaxis.range) == [0.0, 1.05]
