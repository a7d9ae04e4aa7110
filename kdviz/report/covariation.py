"""Do outputs and explanations co-vary? (e) of the Report: output alignment against attention alignment across
students, with Spearman ρ and its p-value (exact over every ordering when there are few students).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import scipy.stats

from kdviz.analysis.metrics import format_metric, pearson_rows
from kdviz.report.style import TEMPLATE, legend_name, rho_range
from kdviz.report.summary import (
    error_bars,
    output_alignment_column,
    student_archs,
    student_rows,
    variant_colour,
    variant_order,
)

__all__ = ["COVARIATION_TITLE", "across_students", "covariation_figure", "exact_spearman_p", "p_text"]

COVARIATION_TITLE = "(e) Logit vs attention alignment"
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "star", "x", "hexagon")


def p_text(p: float) -> str:
    """A p-value as the Report writes it: two significant digits, ``<0.001``, or ``undefined``."""
    return "undefined" if not np.isfinite(p) else (f"{p:.2g}" if p >= 1e-3 else "<0.001")


def exact_spearman_p(x: np.ndarray, y: np.ndarray, rho: float) -> float:
    """Two-sided exact permutation p-value of Spearman ρ: every ordering of ``y`` against ``x`` (n ≤ 8, so at
    most 40,320; scipy's permutation_test vectorises spearmanr into an n!×n! matrix, hence our own)."""
    rx, ry = scipy.stats.rankdata(x), scipy.stats.rankdata(y)
    perms = np.array(list(itertools.permutations(range(len(ry)))))
    null = pearson_rows(np.broadcast_to(rx, perms.shape), ry[perms])
    return float(np.mean(np.abs(null) >= abs(rho) - 1e-12))


def across_students(students: pd.DataFrame) -> tuple[float, float]:
    """Spearman ρ across students of output alignment and attention alignment, and its two-sided p (NaN, NaN
    with fewer than 3 students or a constant column)."""
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
        return float(res.statistic), exact_spearman_p(x[ok], y[ok], float(res.statistic))
    return float(res.statistic), float(res.pvalue)


def _trend_line(fig: go.Figure, x: np.ndarray, y: np.ndarray) -> None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() >= 2 and np.ptp(x[ok]) > 0:
        slope, intercept = np.polyfit(x[ok], y[ok], 1)
        xs = np.array([x[ok].min(), x[ok].max()])
        fig.add_trace(go.Scatter(x=xs, y=slope * xs + intercept, mode="lines", name="least-squares trend",
                                 line={"dash": "dot", "color": "#616161"}, hoverinfo="skip"))


def covariation_figure(summary: pd.DataFrame) -> go.Figure:
    """(e) One point per student: logit alignment (x) vs attention alignment (y), both with intervals.

    The title gives Spearman ρ across students; a least-squares line shows the trend. With 2 classes the x axis
    is margin alignment (logit alignment is undefined).
    """
    students = student_rows(summary)
    out = output_alignment_column(students)  # margin ρ where logit ρ is undefined (2 classes)
    out_name = "logit alignment" if out == "logit_rho" else "output (margin) alignment"
    symbols = {a: _SYMBOLS[i % len(_SYMBOLS)] for i, a in enumerate(student_archs(summary))}
    fig = go.Figure()
    for variant in variant_order(students):
        rows = students[students["variant"] == variant]
        fig.add_trace(go.Scatter(
            x=rows[out], y=rows["attention_rho"], mode="markers", name=legend_name(variant),
            text=rows["arch"], legendgroup="alpha", legendgrouptitle_text="distillation",
            marker={"size": 12, "color": variant_colour(students, variant), "line": {"width": 1, "color": "white"},
                    "symbol": [symbols[a] for a in rows["arch"].astype(str)]},
            error_x=error_bars(rows, out), error_y=error_bars(rows, "attention_rho"),
            hovertemplate="%{text} " + variant + f"<br>{out_name} ρ " + "%{x:.3f}<br>attention ρ %{y:.3f}<extra></extra>",
        ))
    for arch, symbol in symbols.items():  # legend entries for the marker shapes
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=arch, legendgroup="arch",
                                 legendgrouptitle_text="architecture",
                                 marker={"size": 10, "symbol": symbol, "color": "#616161"}))
    rho, p = across_students(students)
    x = students[out].to_numpy(dtype=float)
    y = students["attention_rho"].to_numpy(dtype=float)
    _trend_line(fig, x, y)
    fig.update_layout(
        title=f"{COVARIATION_TITLE} — Spearman ρ across students {format_metric(rho)} (p = {p_text(p)})",
        template=TEMPLATE, xaxis_title=f"{out_name} (Spearman ρ)" + ("" if out == "logit_rho" else " over inputs"),
        yaxis_title="attention rank alignment (Spearman ρ)",
    )
    fig.update_xaxes(range=rho_range(x))
    fig.update_yaxes(range=rho_range(y))
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0, "xanchor": "left"},
                      margin={"r": 20})  # below, as in the bar views: the plot keeps the column's width
    return fig
