"""The reference study's four findings, judged on any zoo's summary by one written rule (:data:`VERDICT_RULE`).

Three trends along α (accuracy of small students, attention alignment, focus) are judged per architecture on
the plain-KD students, against the random-weights null where the summary has it; the fourth, co-variation of
outputs and explanations, by Spearman ρ across students (:func:`kdviz.report.covariation.across_students`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kdviz.analysis.metrics import format_metric
from kdviz.analysis.nulls import DEFAULT_NULL_COPIES, NULL_ALPHA, format_p, holm
from kdviz.report.covariation import across_students, p_text
from kdviz.report.style import variant_label
from kdviz.report.summary import student_archs, student_rows, teacher_row
from kdviz.vocab import TrainingMethod

__all__ = ["VERDICTS", "VERDICT_RULE", "ArchTrend", "Finding", "findings", "findings_table", "judge"]

VERDICTS = ("holds", "partly", "does not hold", "not enough evidence")
VERDICT_RULE = (
    "How a finding is judged. Per architecture, the plain-KD students are ordered by α from 1.0 (no KD) to the "
    "smallest α. An architecture SUPPORTS the claim when every step towards smaller α moves the mean the claimed "
    "way, the 95% intervals of α = 1.0 and the smallest α do not overlap (intervals resample training seeds, "
    "then inputs, when the zoo has seed replicates), and — for alignment and focus — the smallest-α student is "
    "above the random-weights null: its one-sided rank p against R untrained copies of its architecture, "
    f"p = (1 + #{{copies whose mean ≥ the student's}}) / (R + 1), is ≤ {NULL_ALPHA:g} after Holm correction over "
    f"the students compared (the smallest-α student of every architecture judged; R = {DEFAULT_NULL_COPIES} copies "
    f"give p ≥ {1 / (DEFAULT_NULL_COPIES + 1):g}, so R grows "
    "with the number of architectures). Summaries without per-copy values use the excess interval (above 0) "
    "and the focus interval (above the null's focus) instead. It CONTRADICTS the claim when the two intervals "
    "separate the other way. The claim "
    "HOLDS when every architecture supports it; PARTLY when more than half do; it DOES NOT HOLD when at least "
    "half contradict it, or none supports it and one contradicts it; otherwise there is NOT ENOUGH EVIDENCE. "
    "Co-variation holds when Spearman ρ across students is positive with p < 0.05, does not hold when it is "
    "negative with p < 0.05, and otherwise there is not enough evidence."
)
_PLAIN = (TrainingMethod.KD, TrainingMethod.CE)  # the students whose α trend is judged


@dataclass(frozen=True)
class Finding:
    """One claim of the reference study and whether the evaluated zoo bears it out (``VERDICTS``)."""

    claim: str
    verdict: str
    evidence: str


@dataclass(frozen=True)
class ArchTrend:
    """One architecture's plain-KD students along α, judged by :data:`VERDICT_RULE`."""

    arch: str
    supports: bool
    contradicts: bool
    text: str


def _number(row: pd.Series, col: str) -> float:
    v = row.get(col, np.nan)
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _above_null(row: pd.Series, col: str, p_holm: float = math.nan) -> bool | None:
    """Whether ``row`` clears the random-weights null for ``col``: its Holm-adjusted rank p ≤ ``NULL_ALPHA`` when
    the summary has the null as a distribution, else the interval test (None when there is no null)."""
    if np.isfinite(p_holm):
        return bool(p_holm <= NULL_ALPHA + 1e-12)
    if col == "attention_rho":
        low = _number(row, "attention_rho_excess_low")
        return None if not np.isfinite(low) else low > 0
    if col == "focus_ratio":
        null, low = _number(row, "focus_ratio_null"), _number(row, "focus_ratio_low")
        return None if not (np.isfinite(null) and np.isfinite(low)) else low > null
    return None


def _judged(students: pd.DataFrame, col: str, archs: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """Per architecture, its plain-KD students by descending α, when they start at α = 1.0 and ``col`` is known."""
    kd = students[(students["method"].astype(str).isin(_PLAIN)) & students["alpha"].notna()]
    judged = []
    for arch in archs:
        rows = kd[kd["arch"].astype(str) == arch].sort_values("alpha", ascending=False)
        if len(rows) < 2 or float(rows["alpha"].iloc[0]) != 1.0:
            continue
        if np.isfinite(rows[col].to_numpy(dtype=float)).all():
            judged.append((arch, rows))
    return judged


def _trend(arch: str, rows: pd.DataFrame, col: str, p: float, p_h: float) -> ArchTrend:
    """One architecture's trend from α = 1.0 to its smallest α (raw rank p ``p``, Holm-adjusted ``p_h``)."""
    means = rows[col].to_numpy(dtype=float)
    base, strong = rows.iloc[0], rows.iloc[-1]
    monotone = bool(np.all(np.diff(means) > 0))
    up_separated = _number(strong, f"{col}_low") > _number(base, f"{col}_high")
    down_separated = _number(strong, f"{col}_high") < _number(base, f"{col}_low")
    null_ok = _above_null(strong, col, p_h)
    supports = monotone and up_separated and null_ok is not False
    trend = " → ".join(format_metric(v, digits=3) for v in means)
    alphas = "/".join(variant_label(a).removeprefix("α=") for a in rows["alpha"])
    notes = ["intervals separate" if up_separated or down_separated else "intervals overlap"]
    if not monotone and not down_separated:
        notes.append("not monotone")
    if np.isfinite(p_h):
        copies = int(_number(strong, "null_copies")) if np.isfinite(_number(strong, "null_copies")) else 0
        notes.append(f"p {format_p(p, copies)}, Holm {format_p(p_h, copies)}")
    if null_ok is False:
        notes.append("within the null")
    seeds = int(_number(strong, "n_seeds")) if np.isfinite(_number(strong, "n_seeds")) else 1
    if seeds > 1:
        notes.append(f"{seeds} seeds")
    return ArchTrend(arch, supports, down_separated, f"{arch} (α {alphas}): {trend} ({', '.join(notes)})")


def arch_trends(students: pd.DataFrame, col: str, archs: list[str]) -> list[ArchTrend]:
    """Per architecture: plain-KD students from α = 1.0 to the smallest α, judged by :data:`VERDICT_RULE`."""
    if col not in students:
        return []
    judged = _judged(students, col, archs)
    # Holm over the students compared: the smallest-α student of every architecture judged
    p_raw = [_number(rows.iloc[-1], f"{col}_p") for _arch, rows in judged]
    p_adj = holm(p_raw) if col in ("attention_rho", "focus_ratio") else np.full(len(judged), np.nan)
    return [_trend(arch, rows, col, p, p_h) for (arch, rows), p, p_h in zip(judged, p_raw, p_adj, strict=True)]


def judge(trends: list[ArchTrend]) -> str:
    """The verdict of :data:`VERDICT_RULE` from per-architecture trends."""
    n = len(trends)
    if n == 0:
        return "not enough evidence"
    support = sum(t.supports for t in trends)
    against = sum(t.contradicts for t in trends)
    if support == n:
        return "holds"
    if support > n / 2:
        return "partly"
    if against >= n / 2 or (support == 0 and against > 0):
        return "does not hold"
    return "not enough evidence"


def _covariation(students: pd.DataFrame) -> Finding:
    rho, p = across_students(students)
    if not np.isfinite(rho):
        verdict = "not enough evidence"
    elif p < 0.05:
        verdict = "holds" if rho > 0 else "does not hold"
    else:
        verdict = "not enough evidence"  # a trend that could be chance is not one
    return Finding(
        "Outputs and explanations co-vary (logit vs attention alignment across students)", verdict,
        f"Spearman ρ across {len(students)} students = {format_metric(rho)} (p = {p_text(p)})",
    )


def findings(summary: pd.DataFrame) -> list[Finding]:
    """The reference study's four findings, judged on this summary by :data:`VERDICT_RULE`.

    ``summary`` is a per-model or per-variant summary (``kdviz.analysis.aggregate``); with seed replicates pass the
    per-variant one, so intervals carry training-seed variation.
    """
    students = student_rows(summary)
    t = teacher_row(summary)
    archs = student_archs(summary)
    small = [a for a in archs if t is None or a != str(t["arch"])]  # students smaller than the teacher
    out = []
    for claim, col, pool in (
        ("Stronger KD (lower α) raises the accuracy of small students", "accuracy", small),
        ("Stronger KD raises explanation (attention rank) alignment to the teacher", "attention_rho", archs),
        ("Stronger KD concentrates student attribution on the teacher's top parts", "focus_ratio", archs),
    ):
        trends = arch_trends(students, col, pool)
        support = sum(tr.supports for tr in trends)
        against = sum(tr.contradicts for tr in trends)
        head = (f"supported by {support} of {len(trends)} architectures, contradicted by {against}"
                if trends else "no architecture has students at α = 1.0 and a smaller α")
        out.append(Finding(claim, judge(trends), head + ("; " + "; ".join(tr.text for tr in trends) if trends else "")))
    out.append(_covariation(students))
    return out


def findings_table(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`findings` as a DataFrame (claim, verdict, evidence)."""
    return pd.DataFrame([f.__dict__ for f in findings(summary)])
