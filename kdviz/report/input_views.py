"""Views of one input across models: a series' saliency curves, segment shares, and the parts with the
teacher's top-k highlighted; and the display helpers they share with the attention grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from skimage.segmentation import find_boundaries

from kdviz.report.style import GREY_SCALE, MAP_SCALE, TEACHER_COLOUR, alpha_colour, arch_order, variant_label

__all__ = ["parts_figure", "scaled_to_max", "segment_bars", "series_saliency", "to_grey"]


def scaled_to_max(m: np.ndarray) -> np.ndarray:
    """``m`` divided by its maximum (zeros when the maximum is not positive): maps compared by shape."""
    top = float(np.nanmax(m)) if m.size else 0.0
    return m / top if top > 0 else np.zeros_like(m, dtype=float)


def to_grey(image: np.ndarray) -> np.ndarray:
    """(H, W) float in [0, 1] from (H, W), (H, W, 3) or (C, H, W) display arrays."""
    img = np.asarray(image, dtype=float)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 3:
        img = img.mean(axis=-1)
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def _pred_suffix(row: pd.Series) -> str:
    """`` · predicts 3`` when the row carries a ``pred_name`` (the model's predicted class), else ''."""
    name = row.get("pred_name") if hasattr(row, "get") else None
    return "" if name is None or (isinstance(name, float) and math.isnan(name)) else f" · predicts {name}"


def series_saliency(
    series: np.ndarray,
    curves: Mapping[str, np.ndarray],
    models: pd.DataFrame,
    *,
    title: str = "",
) -> go.Figure:
    """The series on top, then small multiples per α (each model's saliency curve), and a heat strip.

    series : (L,) the displayed channel; curves : model id -> (L,) importance;
    models : rows ``model_id, role, arch, alpha, method`` (teacher first; with ``pred_name`` the legend
    names each model's prediction). The teacher's curve is drawn
    (dashed) in every panel for reference; curves are scaled to their own max.
    """
    t_row = models[models["role"] == "teacher"].iloc[0]
    tid = str(t_row["model_id"])
    students = models[models["role"] != "teacher"]
    groups = [(a, sorted(set(students.loc[students["alpha"] == a, "method"]))) for a in
              sorted({a for a in students["alpha"] if not pd.isna(a)}, reverse=True)]
    if students["alpha"].isna().any():
        groups.append((None, []))
    n_panels = len(groups)
    heights = [0.28] + [0.6 / max(1, n_panels)] * n_panels + [0.12]
    fig = make_subplots(
        rows=n_panels + 2, cols=1, shared_xaxes=True, vertical_spacing=0.035, row_heights=heights,
        subplot_titles=["input series"] + [variant_label(a) for a, _ in groups] + ["teacher saliency (heat strip)"],
    )
    t = np.arange(len(series))
    fig.add_trace(go.Scatter(x=t, y=series, mode="lines", line={"color": "#444", "width": 2}, name="series",
                             hovertemplate="t=%{x}<br>value %{y:.3f}<extra></extra>"), row=1, col=1)
    t_curve = scaled_to_max(np.asarray(curves[tid], dtype=float))
    for i, (a, _methods) in enumerate(groups, start=2):
        fig.add_trace(go.Scatter(
            x=t, y=t_curve, mode="lines", line={"color": TEACHER_COLOUR, "dash": "dash", "width": 1.5},
            name=f"teacher ({tid})" + _pred_suffix(t_row), legendgroup="teacher", showlegend=i == 2,
            hovertemplate="teacher<br>t=%{x}<br>rel. importance %{y:.3f}<extra></extra>",
        ), row=i, col=1)
        sel = students[students["alpha"].isna()] if a is None else students[students["alpha"] == a]
        dashes = ["solid", "dot", "dashdot", "longdash"]
        for j, (_, row) in enumerate(sel.iterrows()):
            mid = str(row["model_id"])
            fig.add_trace(go.Scatter(
                x=t, y=scaled_to_max(np.asarray(curves[mid], dtype=float)), mode="lines",
                line={"color": alpha_colour(row["alpha"], method=row["method"]), "dash": dashes[j % 4], "width": 2},
                name=f"{row['arch']} {variant_label(row['alpha'], row['method'])}" + _pred_suffix(row),
                hovertemplate=f"{mid}{_pred_suffix(row)}<br>t=%{{x}}<br>rel. importance %{{y:.3f}}<extra></extra>",
            ), row=i, col=1)
    fig.add_trace(go.Heatmap(z=t_curve[None, :], x=t, colorscale=MAP_SCALE, showscale=False,
                             hovertemplate="t=%{x}<br>teacher rel. importance %{z:.3f}<extra></extra>"),
                  row=n_panels + 2, col=1)
    fig.update_yaxes(showticklabels=False, row=n_panels + 2, col=1)
    fig.update_xaxes(title_text="time step", row=n_panels + 2, col=1)
    fig.update_layout(title=title or None, height=260 + 170 * n_panels, margin={"l": 50, "r": 20, "t": 70, "b": 40},
                      legend={"orientation": "h", "y": -0.08})
    return fig


def segment_bars(vectors: Mapping[str, np.ndarray], models: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Segment (part) importance per model as grouped bars, each vector scaled to sum to 1."""
    fig = go.Figure()
    archs = arch_order([a for a, r in zip(models["arch"], models["role"], strict=True) if r != "teacher"])
    patterns = ["", "/", ".", "x", "-", "|", "+"]
    for _, row in models.iterrows():
        mid = str(row["model_id"])
        pattern = "" if row["role"] == "teacher" else patterns[archs.index(row["arch"]) % len(patterns)]
        v = np.nan_to_num(np.asarray(vectors[mid], dtype=float))
        v = v / v.sum() if v.sum() > 0 else v
        name = "teacher" if row["role"] == "teacher" else f"{row['arch']} {variant_label(row['alpha'], row['method'])}"
        fig.add_trace(go.Bar(
            x=[f"S{k + 1}" for k in range(len(v))], y=v, name=name,
            marker_color=alpha_colour(row["alpha"], role=row["role"], method=row["method"]),
            marker_pattern_shape=pattern,  # colour = α, hatching = architecture
            hovertemplate=f"{mid}<br>%{{x}}: share %{{y:.3f}}<extra></extra>",
        ))
    fig.update_layout(barmode="group", title=title or None, yaxis_title="share of attribution",
                      xaxis_title="segment", height=380, margin={"t": 50, "b": 40})
    return fig


def parts_figure(
    display: np.ndarray,
    labels: np.ndarray,
    topk: Sequence[int],
    *,
    importance: np.ndarray | None = None,
    title: str = "",
) -> go.Figure:
    """The parts drawn over the input, the teacher's top-k highlighted (rank in the hover).

    Images: ``display`` (H, W[, 3]) or (C, H, W), ``labels`` (H, W); part boundaries in white, top-k
    parts tinted. Series: ``display`` (L,), ``labels`` (L,); top-k segments shaded.
    """
    labels = np.asarray(labels)
    rank = {int(p): i + 1 for i, p in enumerate(topk)}
    if labels.ndim == 1:
        series = np.asarray(display, dtype=float).ravel()
        fig = go.Figure(go.Scatter(y=series, mode="lines", line={"color": "#444"}, name="series"))
        edges = np.flatnonzero(np.diff(labels)) + 1
        starts = np.r_[0, edges]
        ends = np.r_[edges, len(labels)]
        for s, e in zip(starts, ends, strict=True):
            part = int(labels[s])
            if part in rank:
                fig.add_vrect(x0=s - 0.5, x1=e - 0.5, fillcolor="#E69F00", opacity=0.25, line_width=0,
                              annotation_text=f"#{rank[part]}", annotation_position="top left")
            else:
                fig.add_vline(x=s - 0.5, line={"color": "#bbb", "width": 1})
        _topk_legend(fig, len(rank), boundary="#bbb")
        fig.update_layout(title=title or None, height=340, xaxis_title="time step", showlegend=True,
                          legend={"orientation": "h", "yanchor": "top", "y": -0.34, "x": 0}, margin={"b": 90})
        return fig
    # Small inputs (28×28) are drawn upsampled, so part boundaries are thin lines, not whole pixels.
    f = max(1, min(8, 320 // max(labels.shape)))
    up = np.kron(labels, np.ones((f, f), dtype=labels.dtype))
    grey = np.kron(to_grey(display), np.ones((f, f)))
    bounds = find_boundaries(up, mode="inner")
    top = np.isin(up, list(rank))
    hover_rank = np.vectorize(lambda p: rank.get(int(p), 0))(up)
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=grey, colorscale=GREY_SCALE, showscale=False, hoverinfo="skip"))
    fig.add_trace(go.Heatmap(
        z=np.where(top, 1.0, np.nan), colorscale=[[0, "#E69F00"], [1, "#E69F00"]], showscale=False,
        opacity=0.5, customdata=np.stack([up, hover_rank], axis=-1),
        hovertemplate="part %{customdata[0]}<br>teacher rank #%{customdata[1]}<extra></extra>",
    ))
    fig.add_trace(go.Heatmap(
        z=np.where(bounds, 1.0, np.nan), colorscale=[[0, "#56B4E9"], [1, "#56B4E9"]], showscale=False,
        opacity=0.9, hoverinfo="skip",
    ))
    _topk_legend(fig, len(rank), boundary="#56B4E9")
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False, ticks="", showgrid=False)
    fig.update_xaxes(showticklabels=False, ticks="", showgrid=False)
    fig.update_layout(title=title or None, height=440, margin={"l": 10, "r": 10, "t": 50, "b": 10}, showlegend=True,
                      legend={"orientation": "h", "yanchor": "top", "y": -0.02, "x": 0})
    return fig


def _topk_legend(fig: go.Figure, k: int, *, boundary: str) -> None:
    """Legend entries for what :func:`parts_figure` draws: the teacher's top-k parts and the part boundaries."""
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"teacher's top-{k} parts (rank in the hover)",
                             marker={"symbol": "square", "size": 14, "color": "#E69F00", "opacity": 0.6},
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="part boundary", hoverinfo="skip",
                             line={"color": boundary, "width": 2}))
