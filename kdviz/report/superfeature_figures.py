"""Plotly figures for superfeatures and explanations over them: data in, ``go.Figure`` out.

* :func:`superfeature_layout` — the labelling itself over an input (image: coloured regions over the grey
  digit; series: coloured bands behind the curve), with each superfeature's number.
* :func:`superfeature_explanations` — teacher and students side by side: row 1 the Shapley value of each
  superfeature painted over the input, row 2 the superfeature × class heat map of ``exp_m``.

Colours are sent as ``rgb(…)`` (:func:`kdviz.report.style.browser_safe_scale`) so Streamlit's placeholder swap cannot
reach them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kdviz.errors import InvalidInputError
from kdviz.report.input_views import to_grey
from kdviz.report.style import DIFF_SCALE, GREY_SCALE, browser_safe_scale

__all__ = ["superfeature_explanations", "superfeature_layout"]

_QUALITATIVE = [
    "rgb(31, 119, 180)", "rgb(255, 127, 14)", "rgb(44, 160, 44)", "rgb(214, 39, 40)", "rgb(148, 103, 189)",
    "rgb(140, 86, 75)", "rgb(227, 119, 194)", "rgb(127, 127, 127)", "rgb(188, 189, 34)", "rgb(23, 190, 207)",
]
PROB_SCALE = browser_safe_scale("Blues")


def _centres(labels: np.ndarray) -> list[tuple[float, float]]:
    """(row, col) centre of each superfeature of an image labelling (its member pixel nearest the mean)."""
    out = []
    for k in range(int(labels.max()) + 1):
        rows, cols = np.nonzero(labels == k)
        i = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
        out.append((float(rows[i]), float(cols[i])))
    return out


def _series(display: np.ndarray) -> np.ndarray:
    x = np.asarray(display, dtype=np.float64)
    return x.mean(axis=0) if x.ndim == 2 else x


def superfeature_layout(display: np.ndarray, labels: np.ndarray, *, title: str = "") -> go.Figure:
    """The M superfeatures over one input: ``display`` (C, H, W) / (H, W) image or (C, L) / (L,) series,
    ``labels`` (H, W) / (L,) with values 0..M−1."""
    lab = np.asarray(labels)
    m = int(lab.max()) + 1
    fig = go.Figure()
    if lab.ndim == 2:
        scale = [[i / max(1, m - 1), _QUALITATIVE[i % len(_QUALITATIVE)]] for i in range(m)] if m > 1 else \
            [[0.0, _QUALITATIVE[0]], [1.0, _QUALITATIVE[0]]]
        fig.add_trace(go.Heatmap(z=lab, colorscale=scale, showscale=False, opacity=0.55, zmin=0, zmax=max(1, m - 1),
                                 hovertemplate="superfeature %{z}<extra></extra>"))
        fig.add_trace(go.Contour(z=to_grey(display), showscale=False, contours_coloring="lines",
                                 line={"width": 1.5, "color": "rgb(0, 0, 0)"}, ncontours=4, hoverinfo="skip"))
        for k, (r, c) in enumerate(_centres(lab)):
            fig.add_annotation(x=c, y=r, text=f"<b>{k}</b>", showarrow=False, font={"size": 13, "color": "rgb(0, 0, 0)"})
        fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
        fig.update_xaxes(showticklabels=False)
    else:
        y = _series(display)
        t = np.arange(len(y))
        for k in range(m):
            for start, stop in _runs(lab == k):
                fig.add_vrect(x0=start - 0.5, x1=stop - 0.5, fillcolor=_QUALITATIVE[k % len(_QUALITATIVE)],
                              opacity=0.3, line_width=0, annotation_text=str(k), annotation_position="top left")
        fig.add_trace(go.Scatter(x=t, y=y, mode="lines", line={"color": "rgb(0, 0, 0)", "width": 2}, name="input"))
        fig.update_xaxes(title="time step")
    fig.update_layout(title=title or f"{m} superfeatures", height=360, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      showlegend=False, plot_bgcolor="rgb(255, 255, 255)")
    return fig


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index runs where a 1-D boolean mask is True."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def superfeature_explanations(
    display: np.ndarray,
    labels: np.ndarray,
    shapley: Mapping[str, np.ndarray],
    distributions: Mapping[str, np.ndarray],
    *,
    class_names: Sequence[str],
    titles: Mapping[str, str] | None = None,
    tau: float = 1.0,
    target_name: str = "",
) -> go.Figure:
    """Teacher and students side by side (one column per model id, in ``shapley``'s order).

    shapley : model id → (M,) Shapley value of each superfeature for the explained class.
    distributions : model id → (M, C) ``exp_m`` (softmax at temperature ``tau`` with only m kept).
    Row 1 paints each superfeature with its Shapley value over the input (one symmetric colour range
    for all models); row 2 is the superfeature × class heat map.
    """
    ids = list(shapley)
    if not ids:
        raise InvalidInputError("no models to draw")
    lab = np.asarray(labels)
    m = int(lab.max()) + 1
    names = [str(c) for c in class_names]
    titles = dict(titles or {})
    span = max(float(np.nanmax(np.abs(np.asarray(v)))) for v in shapley.values()) or 1.0
    # Column titles wrapped to the column's width (~1,000 px of plot shared by the models), so neighbours never
    # run into each other.
    chars = max(12, int(1000 / len(ids) / (0.6 * 12)))
    heads = [_wrap(str(titles.get(i, i)), chars) for i in ids]
    lines = max(h.count("<br>") + 1 for h in heads)
    fig = make_subplots(rows=2, cols=len(ids), subplot_titles=heads + [""] * len(ids),
                        vertical_spacing=0.12, horizontal_spacing=0.04, row_heights=[0.55, 0.45])
    fig.update_annotations(font_size=12)
    for j, mid in enumerate(ids, start=1):
        phi = np.asarray(shapley[mid], dtype=np.float64)
        if phi.shape != (m,):
            raise InvalidInputError(f"shapley[{mid!r}] has shape {phi.shape}, expected ({m},)")
        if lab.ndim == 2:
            fig.add_trace(go.Heatmap(z=to_grey(display), colorscale=GREY_SCALE, showscale=False, hoverinfo="skip"),
                          row=1, col=j)
            fig.add_trace(go.Heatmap(z=phi[lab], coloraxis="coloraxis", opacity=0.7, customdata=lab,
                                     hovertemplate="superfeature %{customdata}: φ = %{z:.3f}<extra></extra>"),
                          row=1, col=j)
            fig.update_yaxes(autorange="reversed", scaleanchor=f"x{j if j > 1 else ''}", showticklabels=False,
                             row=1, col=j)
            fig.update_xaxes(showticklabels=False, row=1, col=j)
        else:
            y = _series(display)
            fig.add_trace(go.Heatmap(z=phi[lab][None, :], x=np.arange(len(y)),
                                     y=[float(y.min()), float(y.max())] if y.max() > y.min() else None,
                                     coloraxis="coloraxis", opacity=0.7, customdata=lab[None, :],
                                     hovertemplate="t=%{x}, superfeature %{customdata}: φ = %{z:.3f}<extra></extra>"),
                          row=1, col=j)
            fig.add_trace(go.Scatter(x=np.arange(len(y)), y=y, mode="lines", line={"color": "rgb(0, 0, 0)", "width": 2},
                                     showlegend=False, hoverinfo="skip"), row=1, col=j)
        dist = np.asarray(distributions[mid], dtype=np.float64)
        if dist.shape != (m, len(names)):
            raise InvalidInputError(f"distributions[{mid!r}] has shape {dist.shape}, expected ({m}, {len(names)})")
        fig.add_trace(go.Heatmap(z=dist, x=names, y=[f"sf {k}" for k in range(m)], coloraxis="coloraxis2",
                                 hovertemplate="superfeature %{y}, class %{x}: %{z:.2f}<extra></extra>"),
                      row=2, col=j)
        fig.update_yaxes(autorange="reversed", showticklabels=j == 1, title_text="superfeature" if j == 1 else None,
                         tickmode="array", tickvals=[f"sf {k}" for k in range(m)], row=2, col=j)
        fig.update_xaxes(tickmode="array", tickvals=names, ticktext=names, title_text="class",
                         tickangle=-45 if max(map(len, names)) > 3 else 0, row=2, col=j)
    fig.update_layout(
        coloraxis={"colorscale": DIFF_SCALE, "cmin": -span, "cmax": span,
                   "colorbar": {"title": "Shapley φ", "len": 0.5, "y": 0.78}},
        coloraxis2={"colorscale": PROB_SCALE, "cmin": 0.0, "cmax": 1.0,
                    "colorbar": {"title": f"exp_m (τ={tau:g})", "len": 0.4, "y": 0.2}},
        height=600 + 16 * lines, margin={"l": 60, "r": 10, "t": 90 + 16 * lines, "b": 10}, showlegend=False,
        title={"text": f"Superfeature explanations{(' of class ' + target_name) if target_name else ''}<br><sup>"
                       "Shapley value per superfeature (top) · the class distribution each superfeature alone "
                       "supports (bottom)</sup>", "x": 0.0, "xanchor": "left", "xref": "container", "pad": {"l": 12}},
        title_font={"size": 15},
    )
    return fig


def _wrap(text: str, width: int) -> str:
    """``text`` broken at spaces into lines of at most ``width`` characters (joined by ``<br>``)."""
    return "<br>".join(textwrap.wrap(text, width=width, break_long_words=False)) or text
