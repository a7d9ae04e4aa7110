"""The Report's bar views: (a) accuracy, (b) focus on the teacher's top-k parts, (c) attention rank alignment.

One group of bars per student architecture, one bar per variant (α, recipe), error bars from the summary's 95%
bootstrap intervals; the teacher's own value as a reference line, and the random-weights null per architecture
(what an untrained network of that architecture scores) as a wide tick where the summary has it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from kdviz.analysis.metrics import format_metric
from kdviz.errors import InvalidInputError
from kdviz.report.style import TEMPLATE, legend_name, rho_range
from kdviz.report.summary import error_bars, student_archs, student_rows, teacher_row, variant_colour, variant_order

__all__ = ["ACCURACY_TITLE", "ATTENTION_TITLE", "FOCUS_TITLE", "accuracy_figure", "attention_figure",
           "focus_figure"]

ACCURACY_TITLE = "(a) Accuracy by architecture × α"
FOCUS_TITLE = "(b) Focus on the teacher's top-k parts"
ATTENTION_TITLE = "(c) Attention rank alignment"


def _grouped_bars(summary: pd.DataFrame, col: str, *, title: str, yaxis: str, percent: bool = False) -> go.Figure:
    students = student_rows(summary)
    archs = student_archs(summary)
    fig = go.Figure()
    scale = 100.0 if percent else 1.0
    for variant in variant_order(students):
        rows = students[students["variant"] == variant].set_index("arch").reindex(archs)
        err = error_bars(rows, col)
        err["array"] = err["array"] * scale
        err["arrayminus"] = err["arrayminus"] * scale
        y = rows[col].to_numpy(dtype=float) * scale
        fig.add_trace(go.Bar(
            x=archs, y=y, name=legend_name(variant), marker_color=variant_colour(students, variant), error_y=err,
            customdata=np.stack([y - err["arrayminus"], y + err["array"]], axis=-1),
            hovertemplate="%{x} " + variant + ": %{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}]<extra></extra>",
        ))
    # The legend goes below the plot: on the right, a long entry (the null's) took most of a half-width column.
    fig.update_layout(
        title=title, barmode="group", template=TEMPLATE, xaxis_title="architecture", yaxis_title=yaxis,
        legend={"title": {"text": "distillation"}, "orientation": "h", "yanchor": "top", "y": -0.26, "x": 0,
                "xanchor": "left"},
        margin={"t": 60, "b": 40, "r": 20},
    )
    return fig


def _reference_line(fig: go.Figure, reference: float | None, label: str, *, percent: bool = False) -> None:
    """The teacher's own value as a dashed line across the bars (nothing when it is unknown)."""
    if reference is None or not np.isfinite(reference):
        return
    ref = reference * (100.0 if percent else 1.0)
    fig.add_hline(y=ref, line_dash="dash", line_color="#424242",
                  annotation_text=f"{label}: {format_metric(ref, digits=1 if percent else 2)}",
                  annotation_position="top right")


def accuracy_figure(summary: pd.DataFrame) -> go.Figure:
    """(a) Student accuracy (%) on the evaluated inputs, grouped by architecture, one bar per α."""
    t = teacher_row(summary)
    fig = _grouped_bars(summary, "accuracy", title=ACCURACY_TITLE, yaxis="test accuracy (%)", percent=True)
    _reference_line(fig, None if t is None else float(t["accuracy"]),
                    f"teacher {t['arch'] if t is not None else ''}", percent=True)
    lows = summary["accuracy_low"].to_numpy(dtype=float) * 100 if "accuracy_low" in summary else [0.0]
    floor = np.nanmin(lows) if np.isfinite(np.nanmin(lows)) else 0.0
    fig.update_yaxes(range=[max(0.0, floor - 5.0), 101.0])
    return fig


def focus_figure(summary: pd.DataFrame, *, metric: str = "focus_ratio", k: int = 5) -> go.Figure:
    """(b) Focus on the teacher's top-k parts: ``focus_ratio`` (M_in/M_out) or ``focus_fraction``."""
    if metric not in ("focus_ratio", "focus_fraction"):
        raise InvalidInputError(f"metric={metric!r} must be 'focus_ratio' or 'focus_fraction'")
    t = teacher_row(summary)
    label = "M_in / M_out" if metric == "focus_ratio" else "M_in / (M_in + M_out)"
    fig = _grouped_bars(summary, metric, title=FOCUS_TITLE.replace("top-k", f"top-{k}"), yaxis=f"focus ({label})")
    _reference_line(fig, None if t is None else float(t[metric]), "teacher's own focus")
    if metric == "focus_ratio":
        _add_null(fig, summary, "focus_ratio")
    return fig


def _add_null(fig: go.Figure, summary: pd.DataFrame, col: str) -> None:
    """The random-weights null per architecture (mean over its students' inputs) as a wide black tick."""
    null = f"{col}_null"
    if null not in summary:
        return
    students = student_rows(summary)
    archs = student_archs(summary)
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
    fig = _grouped_bars(summary, "attention_rho", title=ATTENTION_TITLE,
                        yaxis="attention rank alignment (Spearman ρ)")
    _add_null(fig, summary, "attention_rho")
    # [0, 1], or [−1, 1] with a negative ρ
    fig.update_yaxes(range=rho_range(summary.get("attention_rho_low", [0.0]), summary["attention_rho"]))
    return fig
