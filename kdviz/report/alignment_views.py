"""The dashboard's per-model summary views: focus on the teacher's top-k parts and alignment to the teacher as
bars by architecture × α, with the random-weights null as bands, and output vs attention alignment as a scatter.

Each takes a per-model summary (one row per model with ``model_id, role, arch, alpha, method`` and the metric's
mean, ``_lo`` / ``_hi`` interval and ``_null`` reference columns).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from kdviz.errors import InvalidInputError
from kdviz.report.style import TEACHER_COLOUR, alpha_colour, arch_order, rho_range, variant_label

__all__ = ["NULL_COLOUR", "add_null_bands", "alignment_bars", "alignment_scatter", "focus_bars", "label_positions"]


def _archs(summary: pd.DataFrame) -> list[str]:
    """The students' architectures, the teacher's first (when a student has it), then largest first."""
    teacher = summary.loc[summary["role"] == "teacher", "arch"]
    students = summary[summary["role"] != "teacher"]
    return arch_order(students["arch"], teacher=None if teacher.empty else str(teacher.iloc[0]))


NULL_COLOUR = "rgba(120, 120, 120, 0.25)"


def add_null_bands(fig: go.Figure, summary: pd.DataFrame, metric: str, *, label: str = "untrained") -> go.Figure:
    """Draw the random-weights reference of ``metric`` on a bar chart whose x axis is the architecture.

    For each student architecture with a value in ``<metric>_null``: a grey band over its bars from the
    null's lower to upper 95% bound (``<metric>_null_lo`` / ``_hi`` when present) and a dashed line at its
    mean — what an untrained network of that architecture scores. Summaries without the column (older
    results) leave the figure as it is. Returns ``fig``.
    """
    col = f"{metric}_null"
    if col not in summary.columns:
        return fig
    students = summary[summary["role"] != "teacher"]
    archs = [a for a in (fig.data[0].x if fig.data and fig.data[0].x is not None else [])]
    first, banded = True, False
    for i, arch in enumerate(archs):
        rows = students[(students["arch"] == arch) & students[col].notna()]
        if rows.empty:
            continue
        mean = float(rows[col].mean())
        lo = float(rows[f"{col}_lo"].mean()) if f"{col}_lo" in rows else mean
        hi = float(rows[f"{col}_hi"].mean()) if f"{col}_hi" in rows else mean
        if hi > lo:
            banded = True
            fig.add_shape(type="rect", x0=i - 0.45, x1=i + 0.45, y0=lo, y1=hi, xref="x", yref="y",
                          fillcolor=NULL_COLOUR, line_width=0, layer="below")
        fig.add_shape(type="line", x0=i - 0.45, x1=i + 0.45, y0=mean, y1=mean, xref="x", yref="y",
                      line={"color": "rgb(90, 90, 90)", "dash": "dash", "width": 2}, layer="above")
        first = False
    if not first:  # one legend entry for the bands (shapes have none)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=label + (" ±95%" if banded else ""),
                                 line={"color": "rgb(90, 90, 90)", "dash": "dash", "width": 2},
                                 hoverinfo="skip"))
    return fig


def focus_bars(summary: pd.DataFrame, *, k: int = 5, title: str = "") -> go.Figure:
    """Focus ratio per model, grouped by architecture and coloured by α; the teacher's value as a line.

    summary : one row per model with ``model_id, role, arch, alpha, method, focus_ratio, focus_fraction``
    (means over inputs); the bounded form ``M_in/(M_in+M_out)`` is in the hover.
    """
    fig = go.Figure()
    teacher = summary[summary["role"] == "teacher"]
    students = summary[summary["role"] != "teacher"]
    archs = _archs(summary)
    for (alpha, method), grp in students.groupby(["alpha", "method"], sort=False, dropna=False):
        grp = _one_per_arch(grp, archs)
        y = grp["focus_ratio"].to_numpy(float)
        bar: dict[str, Any] = {}
        if "focus_ratio_lo" in grp and "focus_ratio_hi" in grp:  # 95% bootstrap interval over inputs (and seeds)
            lo, hi = grp["focus_ratio_lo"].to_numpy(float), grp["focus_ratio_hi"].to_numpy(float)
            bar["error_y"] = {"type": "data", "symmetric": False, "array": np.nan_to_num(hi - y),
                              "arrayminus": np.nan_to_num(y - lo), "thickness": 1.2}
        fig.add_trace(go.Bar(
            x=archs, y=y, name=variant_label(alpha, method),
            marker_color=alpha_colour(alpha, method=method),
            customdata=np.stack([grp["focus_fraction"].to_numpy(float), grp["model_id"].astype(str)], axis=-1),
            hovertemplate="%{customdata[1]}<br>focus ratio %{y:.2f}<br>M_in/(M_in+M_out) %{customdata[0]:.3f}"
                          "<extra></extra>", **bar,
        ))
    if len(teacher):
        t = teacher.iloc[0]
        value = float(t["focus_ratio"])
        fig.add_hline(y=value, line={"color": TEACHER_COLOUR, "dash": "dot", "width": 2})
        # named in the legend, not written over the bars
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line={"color": TEACHER_COLOUR, "dash": "dot"},
                                 name=f"teacher {value:.2f} (bounded {float(t['focus_fraction']):.2f})",
                                 hoverinfo="skip"))
    fig.update_layout(barmode="group", title=title or f"Focus on the teacher's top-{k} parts",
                      yaxis_title="focus ratio M_in / M_out", xaxis_title="student architecture",
                      height=420, legend_title="distillation", margin={"t": 60})
    return add_null_bands(fig, summary, "focus_ratio")


def _one_per_arch(grp: pd.DataFrame, archs: list[str]) -> pd.DataFrame:
    """Rows of one variant indexed by ``archs``. Several rows of one architecture (training-seed replicates
    summarised per model) are a caller's mistake: say so rather than pandas' "duplicate labels"."""
    if grp["arch"].duplicated().any():
        raise InvalidInputError("several models per architecture × α (training seeds?): summarise them per variant "
                         "first (kdviz.analysis.aggregate.summarize_variants)")
    return grp.set_index("arch").reindex(archs)


def alignment_bars(summary: pd.DataFrame, *, metric: str, label: str, title: str = "") -> go.Figure:
    """Mean ``metric`` per student by architecture × α with 95% bootstrap error bars.

    summary : rows per model with ``arch, alpha, method, model_id, <metric>, <metric>_lo, <metric>_hi``.
    """
    fig = go.Figure()
    students = summary[summary["role"] != "teacher"]
    archs = _archs(summary)
    extremes = []
    for (alpha, method), grp in students.groupby(["alpha", "method"], sort=False, dropna=False):
        grp = _one_per_arch(grp, archs)
        y = grp[metric].to_numpy(float)
        lo, hi = grp[f"{metric}_lo"].to_numpy(float), grp[f"{metric}_hi"].to_numpy(float)
        extremes += [y, lo]
        fig.add_trace(go.Bar(
            x=archs, y=y, name=variant_label(alpha, method), marker_color=alpha_colour(alpha, method=method),
            error_y={"type": "data", "symmetric": False, "array": np.nan_to_num(hi - y),
                     "arrayminus": np.nan_to_num(y - lo)},
            customdata=np.stack([lo, hi], axis=-1),
            hovertemplate=f"{label} %{{y:.3f}}<br>95% CI [%{{customdata[0]:.3f}}, %{{customdata[1]:.3f}}]"
                          "<extra></extra>",
        ))
    fig.update_layout(barmode="group", title=title or label, yaxis_title=label, xaxis_title="student architecture",
                      height=400, legend_title="distillation", margin={"t": 60})
    fig.update_yaxes(range=rho_range(*extremes), zeroline=True, zerolinecolor="#888", zerolinewidth=1)
    return add_null_bands(fig, summary, metric)


def alignment_scatter(summary: pd.DataFrame, *, title: str = "", x: str = "logit_rho",
                      x_label: str = "logit alignment (Spearman ρ)") -> go.Figure:
    """Output alignment ``x`` (logit ρ; margin ρ on 2-class tasks) against attention rank alignment (y), one point
    per student model; both axes fixed to ρ's range."""
    fig = go.Figure()
    students = summary[summary["role"] != "teacher"]
    positions = label_positions(students[x].to_numpy(float), students["attention_rho"].to_numpy(float))
    students = students.assign(_pos=positions)
    for (alpha, method), grp in students.groupby(["alpha", "method"], sort=False, dropna=False):
        fig.add_trace(go.Scatter(
            x=grp[x], y=grp["attention_rho"], mode="markers+text", text=grp["arch"],
            textposition=list(grp["_pos"]), textfont={"size": 11}, name=variant_label(alpha, method),
            marker={"size": 12, "color": alpha_colour(alpha, method=method), "line": {"width": 1, "color": "#333"}},
            customdata=grp["model_id"].astype(str),
            hovertemplate="%{customdata}<br>" + x_label + " %{x:.3f}<br>attention ρ %{y:.3f}<extra></extra>",
        ))
    fig.update_layout(title=title or "Outputs and explanations co-vary?", xaxis_title=x_label,
                      yaxis_title="attention rank alignment (Spearman ρ)", height=420, legend_title="distillation")
    fig.update_xaxes(range=rho_range(students[x]))
    fig.update_yaxes(range=rho_range(students["attention_rho"]))
    return fig


_POSITIONS = ("top center", "bottom center", "middle right", "middle left", "top right", "bottom left",
              "top left", "bottom right")


def label_positions(x: np.ndarray, y: np.ndarray) -> list[str]:
    """A text position per point so that labels of nearby points go different ways (greedy).

    Points closer than 6% of the axes' span get distinct positions from :data:`_POSITIONS`, in order.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    span_x = float(np.nanmax(x) - np.nanmin(x)) if np.isfinite(x).any() else 1.0
    span_y = float(np.nanmax(y) - np.nanmin(y)) if np.isfinite(y).any() else 1.0
    sx, sy = span_x or 1.0, span_y or 1.0
    out: list[str] = []
    for i in range(len(x)):
        near = {out[j] for j in range(i) if abs(x[i] - x[j]) / sx < 0.06 and abs(y[i] - y[j]) / sy < 0.06}
        out.append(next((p for p in _POSITIONS if p not in near), _POSITIONS[i % len(_POSITIONS)]))
    return out
