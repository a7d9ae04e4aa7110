"""The Report: the reference study's views for any zoo, as Plotly figures, tables and one HTML file.

Pure builders over an evaluation's per-model summary (``kdviz.evaluation.evaluate.summarize``): data in, ``go.Figure``
or DataFrame out. Error bars are the summary's 95% bootstrap intervals.

(a) ``accuracy_figure``     accuracy by architecture × α
(b) ``focus_figure``        focus on the teacher's top-k parts (teacher's own value as the reference line)
(c) ``attention_figure``    attention rank alignment (Spearman ρ of part-importance vectors)
(d) ``logit_table``         logit alignment, rows α, columns architecture, as in DESIGN.md's reference table
(e) ``covariation_figure``  logit alignment vs attention alignment, one point per student

``findings`` checks the reference study's four claims on the summary; ``report_html`` puts everything and
the evaluation settings into one self-contained HTML file (plotly.js inlined once, so it opens offline).
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import scipy.stats

from kdviz.analysis.metrics import format_metric, pearson_rows
from kdviz.analysis.nulls import NULL_ALPHA, format_p, holm
from kdviz.report.figures import alpha_colour, rho_range
from kdviz.report.figures import arch_order as _plots_arch_order

__all__ = [
    "FIGURES",
    "Finding",
    "accuracy_figure",
    "arch_order",
    "attention_figure",
    "covariation_figure",
    "figure_html",
    "findings",
    "findings_table",
    "judge",
    "VERDICT_RULE",
    "VERDICTS",
    "focus_figure",
    "format_reference_table",
    "logit_table",
    "logit_table_figure",
    "output_alignment_column",
    "report_figures",
    "report_html",
    "report_tables",
    "variant_label",
]

ALPHA_MEANING = {1.0: "no KD", 0.5: "mild KD", 0.1: "strong KD"}
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "star", "x", "hexagon")
TEMPLATE = "plotly_white"

FIGURES: dict[str, str] = {
    "accuracy": "(a) Accuracy by architecture × α",
    "focus": "(b) Focus on the teacher's top-k parts",
    "attention": "(c) Attention rank alignment",
    "logit_table": "(d) Logit alignment (architecture × α)",
    "covariation": "(e) Logit vs attention alignment",
}


# --------------------------------------------------------------------------------------------------
# Grouping helpers
# --------------------------------------------------------------------------------------------------


def variant_label(alpha: Any, method: Any = "kd") -> str:
    """Row label of a student: ``α=0.5``, ``α=0.1 + SD`` (saliency distillation), ``α=0.5 + KED`` (knowledge
    explaining distillation), ``CE`` without α."""
    suffix = {"kd+sd": " + SD", "ked": " + KED", "ked-blackbox": " + KED (black-box)"}.get(str(method), "")
    if alpha is None or (isinstance(alpha, float) and math.isnan(alpha)):
        return "CE" + suffix
    a = float(alpha)
    text = f"{a:.1f}" if round(a, 1) == a else f"{a:g}"
    return f"α={text}" + suffix


def arch_order(summary: pd.DataFrame) -> list[str]:
    """Architectures of the summary: the teacher's first, then the rest largest first (``kdviz.report.figures.arch_order``)."""
    order = _plots_arch_order(summary["arch"].astype(str).tolist())
    t = _teacher(summary)
    if t is not None and str(t["arch"]) in order:
        order.remove(str(t["arch"]))
        order.insert(0, str(t["arch"]))
    return order


def _students(summary: pd.DataFrame) -> pd.DataFrame:
    s = summary[summary["role"].astype(str) != "teacher"].copy()
    s["variant"] = [variant_label(a, m) for a, m in zip(s["alpha"], s["method"], strict=True)]
    return s


def _variant_order(students: pd.DataFrame) -> list[str]:
    """Variants by descending α (no KD first), plain KD before KD+SD."""
    keys = {}
    for a, m, v in zip(students["alpha"], students["method"], students["variant"], strict=True):
        alpha = -1.0 if pd.isna(a) else float(a)
        keys[v] = ({"kd+sd": 1, "ked": 2, "ked-blackbox": 3}.get(str(m), 0), -alpha)
    return sorted(keys, key=keys.get)


def _colour(students: pd.DataFrame, variant: str) -> str:
    """The dashboard's colour for a variant (``kdviz.report.figures.alpha_colour``: by α, SD students green)."""
    row = students[students["variant"] == variant].iloc[0]
    alpha = None if pd.isna(row["alpha"]) else float(row["alpha"])
    return alpha_colour(alpha, method=str(row["method"]))


def _legend_name(variant: str) -> str:
    m = re.fullmatch(r"α=([\d.]+)", variant)
    meaning = ALPHA_MEANING.get(float(m.group(1))) if m else None
    return f"{variant} ({meaning})" if meaning else variant


def _teacher(summary: pd.DataFrame) -> pd.Series | None:
    t = summary[summary["role"].astype(str) == "teacher"]
    return None if t.empty else t.iloc[0]


def _err(frame: pd.DataFrame, col: str) -> dict[str, Any]:
    mean = frame[col].to_numpy(dtype=float)
    lo = frame[f"{col}_low"].to_numpy(dtype=float) if f"{col}_low" in frame else mean
    hi = frame[f"{col}_high"].to_numpy(dtype=float) if f"{col}_high" in frame else mean
    return {"type": "data", "array": np.nan_to_num(hi - mean), "arrayminus": np.nan_to_num(mean - lo),
            "visible": True, "thickness": 1.2}


def _grouped_bars(
    summary: pd.DataFrame, col: str, *, title: str, yaxis: str, reference: float | None = None,
    reference_label: str = "teacher", percent: bool = False,
) -> go.Figure:
    students = _students(summary)
    archs = [a for a in arch_order(summary) if a in set(students["arch"].astype(str))]
    fig = go.Figure()
    scale = 100.0 if percent else 1.0
    for variant in _variant_order(students):
        rows = students[students["variant"] == variant].set_index("arch").reindex(archs)
        err = _err(rows, col)
        err["array"] = err["array"] * scale
        err["arrayminus"] = err["arrayminus"] * scale
        y = rows[col].to_numpy(dtype=float) * scale
        fig.add_trace(go.Bar(
            x=archs, y=y, name=_legend_name(variant), marker_color=_colour(students, variant), error_y=err,
            customdata=np.stack([y - err["arrayminus"], y + err["array"]], axis=-1),
            hovertemplate="%{x} " + variant + ": %{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}]<extra></extra>",
        ))
    if reference is not None and np.isfinite(reference):
        ref = reference * scale
        fig.add_hline(y=ref, line_dash="dash", line_color="#424242",
                      annotation_text=f"{reference_label}: {format_metric(ref, digits=1 if percent else 2)}",
                      annotation_position="top right")
    # The legend goes below the plot: on the right, a long entry (the null's) took most of a half-width column.
    fig.update_layout(
        title=title, barmode="group", template=TEMPLATE, xaxis_title="architecture", yaxis_title=yaxis,
        legend={"title": {"text": "distillation"}, "orientation": "h", "yanchor": "top", "y": -0.26, "x": 0,
                "xanchor": "left"},
        margin={"t": 60, "b": 40, "r": 20},
    )
    return fig


# --------------------------------------------------------------------------------------------------
# The five views
# --------------------------------------------------------------------------------------------------


def accuracy_figure(summary: pd.DataFrame) -> go.Figure:
    """(a) Student accuracy (%) on the evaluated inputs, grouped by architecture, one bar per α."""
    t = _teacher(summary)
    fig = _grouped_bars(
        summary, "accuracy", title=FIGURES["accuracy"], yaxis="test accuracy (%)",
        reference=None if t is None else float(t["accuracy"]), reference_label=f"teacher {t['arch'] if t is not None else ''}",
        percent=True,
    )
    lows = summary["accuracy_low"].to_numpy(dtype=float) * 100 if "accuracy_low" in summary else [0.0]
    floor = np.nanmin(lows) if np.isfinite(np.nanmin(lows)) else 0.0
    fig.update_yaxes(range=[max(0.0, floor - 5.0), 101.0])
    return fig


def focus_figure(summary: pd.DataFrame, *, metric: str = "focus_ratio", k: int = 5) -> go.Figure:
    """(b) Focus on the teacher's top-k parts: ``focus_ratio`` (M_in/M_out) or ``focus_fraction``."""
    if metric not in ("focus_ratio", "focus_fraction"):
        raise ValueError(f"metric={metric!r} must be 'focus_ratio' or 'focus_fraction'")
    t = _teacher(summary)
    label = "M_in / M_out" if metric == "focus_ratio" else "M_in / (M_in + M_out)"
    fig = _grouped_bars(
        summary, metric, title=f"(b) Focus on the teacher's top-{k} parts", yaxis=f"focus ({label})",
        reference=None if t is None else float(t[metric]), reference_label="teacher's own focus",
    )
    if metric == "focus_ratio":
        _add_null(fig, summary, "focus_ratio")
    return fig


def _add_null(fig: go.Figure, summary: pd.DataFrame, col: str) -> None:
    """The random-weights null per architecture (mean over its students' inputs) as a wide black tick."""
    null = f"{col}_null"
    if null not in summary:
        return
    students = _students(summary)
    archs = [a for a in arch_order(summary) if a in set(students["arch"].astype(str))]
    values = [float(np.nanmean(v)) if np.isfinite(v := students.loc[students["arch"].astype(str) == a, null]
                                                   .to_numpy(dtype=float)).any() else np.nan for a in archs]
    if not np.isfinite(values).any():
        return
    fig.add_trace(go.Scatter(
        x=archs, y=values, mode="markers", name="untrained network of the same architecture (null)",
        marker={"symbol": "line-ew-open", "size": 56, "line": {"width": 3, "color": "#212121"}},
        hovertemplate="%{x}: random-weights null %{y:.3f}<extra></extra>",
    ))


def attention_figure(summary: pd.DataFrame) -> go.Figure:
    """(c) Attention rank alignment: mean Spearman ρ between student and teacher part importance, with the
    random-weights null per architecture (what an untrained network of that architecture scores)."""
    fig = _grouped_bars(summary, "attention_rho", title=FIGURES["attention"],
                        yaxis="attention rank alignment (Spearman ρ)")
    _add_null(fig, summary, "attention_rho")
    fig.update_yaxes(range=rho_range(summary.get("attention_rho_low", [0.0]), summary["attention_rho"]))  # [0, 1], or [−1, 1] with a negative ρ
    return fig


def _finite_min(frame: pd.DataFrame, col: str) -> float:
    v = frame[col].to_numpy(dtype=float) if col in frame else np.array([0.0])
    v = v[np.isfinite(v)]
    return float(v.min()) if v.size else 0.0


def output_alignment_column(summary: pd.DataFrame) -> str:
    """``logit_rho``, or ``margin_rho`` when logit alignment is undefined for every student (2-class tasks:
    ``kdviz.analysis.metrics.undefined_reason``)."""
    students = _students(summary)
    if "logit_rho" in students and np.isfinite(students["logit_rho"].to_numpy(dtype=float)).any():
        return "logit_rho"
    return "margin_rho" if "margin_rho" in summary else "logit_rho"


def logit_table(summary: pd.DataFrame, *, column: str = "logit_rho") -> pd.DataFrame:
    """(d) Mean logit alignment, rows α (no KD first, KD+SD last), columns architecture (largest first).

    Combinations absent from the zoo are NaN. The reference study's table has the same layout.
    """
    students = _students(summary)
    archs = [a for a in arch_order(summary) if a in set(students["arch"].astype(str))]
    table = students.pivot_table(index="variant", columns="arch", values=column, aggfunc="mean", dropna=False)
    table = table.reindex(index=_variant_order(students), columns=archs)
    table.index.name, table.columns.name = "α", "architecture"
    return table


def format_reference_table(table: pd.DataFrame, *, digits: int = 2) -> str:
    """The table as DESIGN.md writes the reference one: ``α=1.0: 1.00 0.52 0.28 0.26 · α=0.5: …``."""
    head = "rows α, columns " + "/".join(map(str, table.columns))
    rows = [f"{idx}: " + " ".join("—" if pd.isna(v) else format_metric(v, digits=digits) for v in row)
            for idx, row in zip(table.index, table.to_numpy(), strict=True)]
    return head + "\n" + " · ".join(rows)


def logit_table_figure(summary: pd.DataFrame) -> go.Figure:
    """(d) The logit alignment table drawn as a Plotly table, cells "mean [low, high]"."""
    col = output_alignment_column(summary)
    mean = logit_table(summary, column=col)
    low = logit_table(summary, column=f"{col}_low") if f"{col}_low" in summary else mean
    high = logit_table(summary, column=f"{col}_high") if f"{col}_high" in summary else mean

    def cell(m: float, lo: float, hi: float) -> str:
        if pd.isna(m):
            return "—"
        return f"<b>{format_metric(m)}</b> [{format_metric(lo)}, {format_metric(hi)}]"

    columns = [list(mean.index)] + [
        [cell(m, lo, hi) for m, lo, hi in zip(mean[c], low[c], high[c], strict=True)] for c in mean.columns
    ]
    fig = go.Figure(go.Table(
        header={"values": ["<b>α</b>"] + [f"<b>{c}</b>" for c in mean.columns], "fill_color": "#e3f2fd",
                "align": "center"},
        cells={"values": columns, "align": "center", "height": 28},
    ))
    title = (FIGURES["logit_table"] + " — mean Spearman ρ [95% CI]" if col == "logit_rho" else
             "(d) Output (margin) alignment (architecture × α) — Spearman ρ over inputs [95% CI]; logit alignment "
             "is undefined with 2 classes")
    fig.update_layout(title=title, template=TEMPLATE,
                      margin={"t": 60, "b": 10}, height=120 + 32 * len(mean))
    return fig


def covariation_figure(summary: pd.DataFrame) -> go.Figure:
    """(e) One point per student: logit alignment (x) vs attention alignment (y), both with intervals.

    The title gives Spearman ρ across students; a least-squares line shows the trend.
    """
    students = _students(summary)
    out = output_alignment_column(students)  # margin ρ where logit ρ is undefined (2 classes)
    out_name = "logit alignment" if out == "logit_rho" else "output (margin) alignment"
    archs = [a for a in arch_order(summary) if a in set(students["arch"].astype(str))]
    symbols = {a: _SYMBOLS[i % len(_SYMBOLS)] for i, a in enumerate(archs)}
    fig = go.Figure()
    for variant in _variant_order(students):
        rows = students[students["variant"] == variant]
        fig.add_trace(go.Scatter(
            x=rows[out], y=rows["attention_rho"], mode="markers", name=_legend_name(variant),
            text=rows["arch"], legendgroup="alpha", legendgrouptitle_text="distillation",
            marker={"size": 12, "color": _colour(students, variant), "line": {"width": 1, "color": "white"},
                    "symbol": [symbols[a] for a in rows["arch"].astype(str)]},
            error_x=_err(rows, out), error_y=_err(rows, "attention_rho"),
            hovertemplate="%{text} " + variant + f"<br>{out_name} ρ " + "%{x:.3f}<br>attention ρ %{y:.3f}<extra></extra>",
        ))
    for arch, symbol in symbols.items():  # legend entries for the marker shapes
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=arch, legendgroup="arch",
                                 legendgrouptitle_text="architecture",
                                 marker={"size": 10, "symbol": symbol, "color": "#616161"}))
    rho, p = _across_models(students)
    x = students[out].to_numpy(dtype=float)
    y = students["attention_rho"].to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() >= 2 and np.ptp(x[ok]) > 0:
        slope, intercept = np.polyfit(x[ok], y[ok], 1)
        xs = np.array([x[ok].min(), x[ok].max()])
        fig.add_trace(go.Scatter(x=xs, y=slope * xs + intercept, mode="lines", name="least-squares trend",
                                 line={"dash": "dot", "color": "#616161"}, hoverinfo="skip"))
    fig.update_layout(
        title=f"{FIGURES['covariation']} — Spearman ρ across students {format_metric(rho)} (p = {_p(p)})",
        template=TEMPLATE, xaxis_title=f"{out_name} (Spearman ρ)" + ("" if out == "logit_rho" else " over inputs"),
        yaxis_title="attention rank alignment (Spearman ρ)",
    )
    fig.update_xaxes(range=rho_range(x))
    fig.update_yaxes(range=rho_range(y))
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0, "xanchor": "left"},
                      margin={"r": 20})  # below, as in the bar views: the plot keeps the column's width
    return fig


def _p(p: float) -> str:
    return "undefined" if not np.isfinite(p) else (f"{p:.2g}" if p >= 1e-3 else "<0.001")


def _exact_spearman_p(x: np.ndarray, y: np.ndarray, rho: float) -> float:
    """Two-sided exact permutation p-value of Spearman ρ: every ordering of ``y`` against ``x`` (n ≤ 8, so at
    most 40,320; scipy's permutation_test vectorises spearmanr into an n!×n! matrix, hence our own)."""
    rx, ry = scipy.stats.rankdata(x), scipy.stats.rankdata(y)
    perms = np.array(list(itertools.permutations(range(len(ry)))))
    null = pearson_rows(np.broadcast_to(rx, perms.shape), ry[perms])
    return float(np.mean(np.abs(null) >= abs(rho) - 1e-12))


def _across_models(students: pd.DataFrame) -> tuple[float, float]:
    col = output_alignment_column(students)
    if col not in students or "attention_rho" not in students:
        return math.nan, math.nan
    x = students[col].to_numpy(dtype=float)
    y = students["attention_rho"].to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return math.nan, math.nan
    res = scipy.stats.spearmanr(x[ok], y[ok])
    if ok.sum() <= 8:
        # spearmanr's p comes from a t approximation that calls ρ = 1 over 3 points "p < 0.001"; with few
        # students the exact permutation p-value (all orderings) is the honest one
        return float(res.statistic), _exact_spearman_p(x[ok], y[ok], float(res.statistic))
    return float(res.statistic), float(res.pvalue)


# --------------------------------------------------------------------------------------------------
# Findings of the reference study, checked on a zoo
# --------------------------------------------------------------------------------------------------


VERDICTS = ("holds", "partly", "does not hold", "not enough evidence")
VERDICT_RULE = (
    "How a finding is judged. Per architecture, the plain-KD students are ordered by α from 1.0 (no KD) to the "
    "smallest α. An architecture SUPPORTS the claim when every step towards smaller α moves the mean the claimed "
    "way, the 95% intervals of α = 1.0 and the smallest α do not overlap (intervals resample training seeds, "
    "then inputs, when the zoo has seed replicates), and — for alignment and focus — the smallest-α student is "
    "above the random-weights null: its one-sided rank p against R untrained copies of its architecture, "
    "p = (1 + #{copies whose mean ≥ the student's}) / (R + 1), is ≤ 0.05 after Holm correction over the students "
    "compared (the smallest-α student of every architecture judged; R = 19 copies give p ≥ 0.05, so R grows "
    "with the number of architectures). Summaries without per-copy values use the excess interval (above 0) "
    "and the focus interval (above the null's focus) instead. It CONTRADICTS the claim when the two intervals "
    "separate the other way. The claim "
    "HOLDS when every architecture supports it; PARTLY when more than half do; it DOES NOT HOLD when at least "
    "half contradict it, or none supports it and one contradicts it; otherwise there is NOT ENOUGH EVIDENCE. "
    "Co-variation holds when Spearman ρ across students is positive with p < 0.05, does not hold when it is "
    "negative with p < 0.05, and otherwise there is not enough evidence."
)


@dataclass(frozen=True)
class Finding:
    """One claim of the reference study and whether the evaluated zoo bears it out (``VERDICTS``)."""

    claim: str
    verdict: str
    evidence: str


def _number(row: pd.Series, col: str) -> float:
    v = row.get(col, np.nan)
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _above_null(row: pd.Series, col: str, p_holm: float = math.nan) -> bool | None:
    """Whether ``row`` clears the random-weights null for ``col``: its Holm-adjusted rank p ≤ ``NULL_ALPHA`` when
    the summary has the null as a distribution, else the older interval test (None when there is no null)."""
    if np.isfinite(p_holm):
        return bool(p_holm <= NULL_ALPHA + 1e-12)
    if col == "attention_rho":
        low = _number(row, "attention_rho_excess_low")
        return None if not np.isfinite(low) else low > 0
    if col == "focus_ratio":
        null, low = _number(row, "focus_ratio_null"), _number(row, "focus_ratio_low")
        return None if not (np.isfinite(null) and np.isfinite(low)) else low > null
    return None


@dataclass(frozen=True)
class _ArchTrend:
    arch: str
    supports: bool
    contradicts: bool
    text: str


def _arch_trends(students: pd.DataFrame, col: str, archs: list[str]) -> list[_ArchTrend]:
    """Per architecture: plain-KD students from α = 1.0 to the smallest α, judged by ``VERDICT_RULE``."""
    out = []
    if col not in students:
        return out
    kd = students[(students["method"].astype(str).isin(["kd", "ce"])) & students["alpha"].notna()]
    judged = []
    for arch in archs:
        rows = kd[kd["arch"].astype(str) == arch].sort_values("alpha", ascending=False)
        if len(rows) < 2 or float(rows["alpha"].iloc[0]) != 1.0:
            continue
        if np.isfinite(rows[col].to_numpy(dtype=float)).all():
            judged.append((arch, rows))
    # Holm over the students compared: the smallest-α student of every architecture judged
    p_raw = [_number(rows.iloc[-1], f"{col}_p") for _arch, rows in judged]
    p_adj = holm(p_raw) if col in ("attention_rho", "focus_ratio") else np.full(len(judged), np.nan)
    for (arch, rows), p, p_h in zip(judged, p_raw, p_adj, strict=True):
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
        out.append(_ArchTrend(arch, supports, down_separated, f"{arch} (α {alphas}): {trend} ({', '.join(notes)})"))
    return out


def judge(trends: list[_ArchTrend]) -> str:
    """The verdict of ``VERDICT_RULE`` from per-architecture trends."""
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


def findings(summary: pd.DataFrame) -> list[Finding]:
    """The reference study's four findings, judged on this summary by ``VERDICT_RULE``.

    ``summary`` is a per-model or per-variant summary (``kdviz.analysis.aggregate``); with seed replicates pass the
    per-variant one, so intervals carry training-seed variation.
    """
    students = _students(summary)
    t = _teacher(summary)
    archs = [a for a in arch_order(summary) if a in set(students["arch"].astype(str))]
    small = [a for a in archs if t is None or a != str(t["arch"])]  # students smaller than the teacher
    out = []
    for claim, col, pool in (
        ("Stronger KD (lower α) raises the accuracy of small students", "accuracy", small),
        ("Stronger KD raises explanation (attention rank) alignment to the teacher", "attention_rho", archs),
        ("Stronger KD concentrates student attribution on the teacher's top parts", "focus_ratio", archs),
    ):
        trends = _arch_trends(students, col, pool)
        support = sum(tr.supports for tr in trends)
        against = sum(tr.contradicts for tr in trends)
        head = (f"supported by {support} of {len(trends)} architectures, contradicted by {against}"
                if trends else "no architecture has students at α = 1.0 and a smaller α")
        out.append(Finding(claim, judge(trends), head + ("; " + "; ".join(tr.text for tr in trends) if trends else "")))
    rho, p = _across_models(students)
    if not np.isfinite(rho):
        verdict = "not enough evidence"
    elif p < 0.05:
        verdict = "holds" if rho > 0 else "does not hold"
    else:
        verdict = "not enough evidence"  # a trend that could be chance is not one
    out.append(Finding(
        "Outputs and explanations co-vary (logit vs attention alignment across students)", verdict,
        f"Spearman ρ across {len(students)} students = {format_metric(rho)} (p = {_p(p)})",
    ))
    return out


def findings_table(summary: pd.DataFrame) -> pd.DataFrame:
    """``findings`` as a DataFrame (claim, verdict, evidence)."""
    return pd.DataFrame([f.__dict__ for f in findings(summary)])


# --------------------------------------------------------------------------------------------------
# Bundles: all figures, all tables, one HTML file
# --------------------------------------------------------------------------------------------------


def report_figures(summary: pd.DataFrame, *, k: int = 5, focus_metric: str = "focus_ratio") -> dict[str, go.Figure]:
    """The five views keyed as ``FIGURES``."""
    return {
        "accuracy": accuracy_figure(summary),
        "focus": focus_figure(summary, metric=focus_metric, k=k),
        "attention": attention_figure(summary),
        "logit_table": logit_table_figure(summary),
        "covariation": covariation_figure(summary),
    }


_SUMMARY_COLUMNS = ("model_id", "role", "arch", "alpha", "method", "n_seeds", "n", "accuracy", "attention_rho",
                    "attention_rho_null", "attention_rho_null_sd", "attention_rho_excess", "attention_rho_z",
                    "attention_rho_p", "logit_rho", "margin_rho", "focus_ratio", "focus_ratio_null", "focus_ratio_z",
                    "focus_ratio_p", "focus_fraction", "topk_overlap", "topk_overlap_null", "topk_overlap_excess",
                    "topk_overlap_z", "topk_overlap_p", "null_copies", "agree", "kl_to_teacher", "ssim", "pearson")


def summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """Per-model numbers as strings ``mean [low, high]`` for display (NaN -> "undefined")."""
    out = pd.DataFrame(index=summary.index)
    for col in _SUMMARY_COLUMNS:
        if col not in summary:
            continue
        if col.endswith("_p"):  # rank p: its floor 1/(R + 1) shown as "≥" where R is too small to decide
            copies = summary["null_copies"] if "null_copies" in summary else pd.Series(0, index=summary.index)
            out[col] = [format_p(float(p), int(r) if np.isfinite(r) else 0) for p, r in
                        zip(summary[col].astype(float), copies.astype(float), strict=True)]
        elif col.endswith(("_z", "_sd")) or col == "null_copies":
            out[col] = [format_metric(v, digits=0 if col == "null_copies" else 2) for v in summary[col].astype(float)]
        elif f"{col}_low" in summary:
            out[col] = [f"{format_metric(m, digits=3)} [{format_metric(lo, digits=3)}, {format_metric(hi, digits=3)}]"
                        for m, lo, hi in zip(summary[col], summary[f"{col}_low"], summary[f"{col}_high"], strict=True)]
        else:
            out[col] = summary[col].astype(str)
    return out


def report_tables(summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Tables for CSV export: the per-model summary, the logit alignment table and the findings."""
    return {
        "summary": summary,
        "logit_alignment": logit_table(summary).round(4).reset_index(),
        "findings": findings_table(summary),
    }


def figure_html(fig: go.Figure) -> str:
    """One figure as a standalone HTML page with plotly.js inlined (opens offline)."""
    return pio.to_html(fig, include_plotlyjs=True, full_html=True)


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#212121}table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ddd;
padding:4px 8px;text-align:left}th{background:#e3f2fd}pre{background:#f5f5f5;padding:8px}h2{margin-top:2em}"""


def report_html(
    summary: pd.DataFrame, *, settings: dict[str, Any] | None = None, run: dict[str, Any] | None = None,
    title: str = "kdviz report",
) -> str:
    """Every figure, table and the evaluation settings in one self-contained HTML document."""
    settings = dict(settings or {})
    figs = report_figures(summary, k=int(settings.get("k", 5) or 5))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append(_settings_html(settings, run or {}))
    parts.append("<h2>Findings of the reference study on this zoo</h2>")
    parts.append(findings_table(summary).to_html(index=False, escape=True))
    parts.append(f"<p><small>{html.escape(VERDICT_RULE)}</small></p>")
    for i, (key, fig) in enumerate(figs.items()):
        parts.append(f"<h2>{html.escape(FIGURES[key])}</h2>")
        parts.append(pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False, div_id=f"kdviz-{key}"))
        if key == "logit_table":
            parts.append(f"<pre>{html.escape(format_reference_table(logit_table(summary)))}</pre>")
    parts.append("<h2>Per-model numbers (mean [95% bootstrap interval])</h2>")
    parts.append(summary_display(summary).to_html(index=False, escape=True))
    parts.append("</body></html>")
    return "\n".join(parts)


def _settings_html(settings: dict[str, Any], run: dict[str, Any]) -> str:
    rows = []
    for key in ("zoo", "dataset", "method", "method_params", "parts", "k", "limit", "n_inputs", "batch_size",
                "target", "kdviz_version", "models"):
        if key in settings:
            value = settings[key]
            text = json.dumps(value, default=str) if isinstance(value, (dict, list, tuple)) else str(value)
            rows.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(text)}</td></tr>")
    for key in ("elapsed_s", "device", "created"):
        if key in run:
            rows.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(str(run[key]))}</td></tr>")
    return "<h2>Evaluation settings</h2><table>" + "".join(rows) + "</table>" if rows else ""
