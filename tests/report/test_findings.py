"""kdviz.report.findings: the reference study's findings judged by one written rule."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kdviz.analysis.nulls import DEFAULT_NULL_COPIES
from kdviz.report.findings import VERDICT_RULE, findings
from tests.report.summaries import make_summary, trend_summary


def test_findings_on_the_reference_summary() -> None:
    s = make_summary()
    verdicts = [f.verdict for f in findings(s)]
    # accuracy: resnet50 rises 0.70 -> 0.72 with touching intervals (0.71 | 0.71), so 2 of 3 small students
    # support the claim: "partly"; the teacher's arch (resnet101) is not a "small student"
    assert verdicts == ["partly", "holds", "holds", "holds"]
    assert "supported by 2 of 3 architectures" in findings(s)[0].evidence
    reverse = [f.verdict for f in findings(make_summary(trend=-1.0))]
    assert reverse[1:3] == ["does not hold", "does not hold"]


def _attention_verdict(s: pd.DataFrame) -> str:
    return findings(s)[1].verdict


def test_verdict_rule_one_rise_in_four_is_not_partly():
    falls = (0.8, 0.7, 0.6)
    s = trend_summary({"resnet50": (0.5, 0.6, 0.7), "resnet34": falls, "resnet18": falls, "resnet8": falls})
    assert _attention_verdict(s) == "does not hold"
    # one clean rise, three level (overlapping intervals): no architecture contradicts, yet 1 of 4 is no majority
    level = (0.7, 0.7, 0.705)
    s = trend_summary({"resnet50": (0.5, 0.6, 0.7), "resnet34": level, "resnet18": level, "resnet8": level})
    assert _attention_verdict(s) == "not enough evidence"


def test_verdict_rule_clean_monotone_separated_trend_holds_and_majority_is_partly():
    rise = (0.5, 0.6, 0.7)
    assert _attention_verdict(trend_summary({"a": rise, "b": rise, "c": rise})) == "holds"
    # separated endpoints but not monotone: does not support
    assert _attention_verdict(trend_summary({"a": rise, "b": rise, "c": (0.5, 0.8, 0.7)})) == "partly"
    # wide intervals (seed variation) make the same means inconclusive
    assert _attention_verdict(trend_summary({"a": rise, "b": rise}, half_width=0.2)) == "not enough evidence"


def test_verdict_rule_needs_the_strong_student_above_the_null():
    rise = (0.5, 0.6, 0.7)
    assert _attention_verdict(trend_summary({"a": rise, "b": rise}, excess_low=0.05)) == "holds"
    assert _attention_verdict(trend_summary({"a": rise, "b": rise}, excess_low=-0.02)) == "not enough evidence"
    assert "Co-variation" in VERDICT_RULE and "null" in VERDICT_RULE


def test_above_the_null_is_a_holm_corrected_rank_p():
    """Strong-KD students' rank p 0.02 and 0.03 over two architectures: Holm (by hand) 2·0.02 = 0.04 and
    max(0.04, 0.03) = 0.04, both ≤ 0.05: above the null. With 0.03 and 0.04: 0.06 and 0.06, neither."""
    rise = (0.5, 0.6, 0.7)

    def with_p(pa: float, pb: float) -> pd.DataFrame:
        s = trend_summary({"a": rise, "b": rise}, excess_low=-0.5)  # the interval alone would say "within"
        s["attention_rho_p"] = np.nan
        s.loc[s["model_id"] == "a0.1", "attention_rho_p"] = pa
        s.loc[s["model_id"] == "b0.1", "attention_rho_p"] = pb
        s["null_copies"] = 39
        return s

    assert _attention_verdict(with_p(0.02, 0.03)) == "holds"
    evidence = findings(with_p(0.03, 0.04))[1]
    assert evidence.verdict == "not enough evidence" and "Holm 0.06" in evidence.evidence
    assert "Holm" in VERDICT_RULE and "(R + 1)" in VERDICT_RULE


def test_the_rule_names_the_default_number_of_null_copies() -> None:
    assert f"R = {DEFAULT_NULL_COPIES} copies give p ≥ 0.05" in VERDICT_RULE
