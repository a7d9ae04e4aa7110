"""Plotly figure builders for the dashboard: data in, ``go.Figure`` out (pure; no streamlit).

Conventions shared by every figure, so a presentation reads consistently:

* the teacher is drawn first and in :data:`TEACHER_COLOUR`; students are coloured by distillation
  strength α (kdviz convention: 1.0 no KD, 0.5 mild, 0.1 strong) via :func:`alpha_colour`;
* architectures are ordered largest first (:func:`arch_order`);
* every figure has a title and hover text with the exact values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "ALPHA_COLOURS",
    "DIFF_SCALE",
    "GREY_SCALE",
    "MAP_SCALE",
    "TEACHER_COLOUR",
    "alignment_bars",
    "alpha_colour",
    "alpha_label",
    "arch_order",
    "attention_grid",
    "browser_safe_scale",
    "focus_bars",
    "logit_table",
    "add_null_bands",
    "alignment_scatter",
    "label_positions",
    "parts_figure",
    "plotly_config",
    "rho_range",
    "segment_bars",
    "series_saliency",
]

TEACHER_COLOUR = "#222222"
DIFFERS_COLOUR = "#D81B60"  # a student whose prediction differs from the teacher's
# Colour-blind-safe (Okabe–Ito): no KD blue, mild KD orange, strong KD vermilion.
ALPHA_COLOURS: dict[float, str] = {1.0: "#0072B2", 0.5: "#E69F00", 0.1: "#D55E00"}
_EXTRA_COLOURS = ("#009E73", "#CC79A7", "#56B4E9", "#F0E442", "#999999")


def browser_safe_scale(name_or_colours: str | Sequence[str]) -> list[list]:
    """A Plotly colour scale as ``[[position, 'rgb(r, g, b)'], ...]`` that reaches the browser unchanged.

    Streamlit's Plotly front end rewrites the placeholder colours ``#000001`` … ``#000031`` in a
    figure's JSON to its own theme colours (Inferno's first stop ``#000004`` becomes violet
    ``#ab63fa``), so kdviz never sends hex colours: every stop is written as ``rgb(…)``.
    """
    import plotly.colors as pc

    if isinstance(name_or_colours, str):
        scale = pc.get_colorscale(name_or_colours)
    else:
        colours = list(name_or_colours)
        scale = [[i / (len(colours) - 1), c] for i, c in enumerate(colours)]
    out = []
    for pos, colour in scale:
        r, g, b = (pc.hex_to_rgb(colour) if str(colour).startswith("#")
                   else tuple(round(float(v)) for v in pc.unlabel_rgb(colour)))
        out.append([round(float(pos), 6), f"rgb({int(r)}, {int(g)}, {int(b)})"])
    return out


# Sequential maps: Inferno (black = no attribution); differences: red/blue, white at 0; input: grey.
MAP_SCALE = browser_safe_scale("Inferno")
DIFF_SCALE = browser_safe_scale("RdBu_r")
GREY_SCALE = [[0.0, "rgb(0, 0, 0)"], [1.0, "rgb(255, 255, 255)"]]


SLIDE_SIZE = (1920, 1080)  # 16:9 at full-HD, what a slide is projected at


def plotly_config(filename: str = "kdviz", *, fmt: str = "png", slide: bool = False,
                  size: tuple[int, int] | None = None) -> dict:
    """Plotly ``config`` with a download button in the toolbar: a named PNG at 2× scale, or SVG; with
    ``slide`` a 16:9 image at :data:`SLIDE_SIZE` (1920×1080) for presentations.

    ``size`` (width, height in px): a figure laid out for a fixed size (the attention grid, whose captions are
    placed in pixels): with ``slide`` it is drawn at that size and scaled up to 1920 px wide as a whole, so its
    captions grow with it instead of staying small in a re-laid-out figure.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt={fmt!r} is not one of ['png', 'svg']")
    options: dict = {"format": fmt, "filename": filename, "scale": 2}
    if slide and size is not None:
        options.update(width=int(size[0]), height=int(size[1]), scale=SLIDE_SIZE[0] / int(size[0]))
    elif slide:
        options.update(width=SLIDE_SIZE[0], height=SLIDE_SIZE[1], scale=1)
    return {"displaylogo": False, "toImageButtonOptions": options}


def alpha_label(alpha: float | None, method: str | None = None) -> str:
    """``'α=0.5'`` (plus ``' +SD'`` for saliency-distilled students); ``'—'`` when α is unknown."""
    if alpha is None or (isinstance(alpha, float) and math.isnan(alpha)):
        text = "α=—"
    else:
        text = f"α={float(alpha):g}"
    if method and "sd" in method:
        text += " +SD"
    elif method == "ked":
        text += " +KED"
    elif method == "ked-blackbox":
        text += " +KED (black-box)"
    elif method == "rationale":
        text += " +rationale"
    return text


def alpha_colour(alpha: float | None, *, role: str = "student", method: str | None = None) -> str:
    """The colour of a model in every chart: teacher black, students by α (SD students green)."""
    if role == "teacher":
        return TEACHER_COLOUR
    if method and "sd" in method:
        return "#009E73"
    if method in ("ked", "ked-blackbox"):  # knowledge explaining distillation: reddish purple (Okabe–Ito)
        return "#CC79A7"
    if method == "rationale":  # rationale distillation (text): sky blue (Okabe–Ito)
        return "#56B4E9"
    if alpha is None or (isinstance(alpha, float) and math.isnan(alpha)):
        return "#999999"
    a = round(float(alpha), 3)
    if a in ALPHA_COLOURS:
        return ALPHA_COLOURS[a]
    return _EXTRA_COLOURS[int(a * 100) % len(_EXTRA_COLOURS)]


def _arch_size(arch: str) -> tuple[int, str]:
    nums = re.findall(r"\d+", arch)
    return (-int(nums[0]) if nums else 0, arch)


def arch_order(archs: Sequence[str]) -> list[str]:
    """Distinct architectures, largest (by the number in the name) first: resnet56, resnet32, …"""
    return sorted(dict.fromkeys(archs), key=_arch_size)


def _norm(m: np.ndarray) -> np.ndarray:
    top = float(np.nanmax(m)) if m.size else 0.0
    return m / top if top > 0 else np.zeros_like(m, dtype=float)


def _to_grey(image: np.ndarray) -> np.ndarray:
    """(H, W) float in [0, 1] from (H, W), (H, W, 3) or (C, H, W) display arrays."""
    img = np.asarray(image, dtype=float)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 3:
        img = img.mean(axis=-1)
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def _text_width_px(html: str, font_size: float) -> float:
    """Width in px of the widest line of a Plotly annotation (tags dropped; bold counted wider)."""
    lines = re.split(r"<br\s*/?>", html)
    widest = max((len(re.sub(r"<[^>]+>", "", line)) for line in lines), default=0)
    # measured in Chromium (DejaVu/Source Sans): ~0.58 em per character, bold ~0.64 (ρ, ≠ and digits included)
    return widest * font_size * (0.64 if "<b>" in html else 0.58)


def attention_grid(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    models: pd.DataFrame,
    *,
    captions: Mapping[str, str] | None = None,
    overlay: bool = True,
    shared_scale: bool = False,
    difference: bool = False,
    title: str = "",
    differs: Collection[str] = (),
    width_px: int = 1100,
    max_height_px: int = 740,
    font_size: int = 11,
) -> go.Figure:
    """Attention maps in a grid sized for one screen: the teacher at the head (first column of the first
    row), rows = student architecture (largest first), columns = α (no KD → strong KD), then variants such
    as saliency distillation as extra columns.

    The cells are tiled into one image per layer (input, maps, differences) on a single pair of axes, so
    the browser draws 2–3 heatmaps instead of two per model. Cell size is chosen so the grid fits
    ``width_px`` × ``max_height_px`` with captions of a fixed pixel height whatever the map resolution
    (28 px digits and 224 px photos alike). ``fig.layout.meta["cells"]`` gives each model's (row, col)
    pixel offset in the tiled image, ``meta["columns"]`` the column headers.

    Parameters
    ----------
    image : the input as displayed, (H, W), (H, W, 3) or (C, H, W)
    maps : model id -> importance map (H, W)
    models : one row per model with columns ``model_id, role, arch, alpha, method`` (teacher first)
    captions : model id -> caption (prediction, confidence, ρ, focus) shown above the cell
    overlay : draw the map translucent over the (grey) input, else the map alone
    shared_scale : one colour scale for every map (raw values); else each map scaled to its own max
    difference : students show ``map − teacher map`` (both scaled to their max) on a diverging scale
    differs : ids of students whose prediction differs from the teacher's: framed in red, marked "≠"
    width_px, max_height_px : the space the grid is laid out for; font_size : caption size in px
    """
    captions = captions or {}
    differs = set(differs)
    # Each cell's caption as drawn (a student that predicts another class gets "≠ teacher · " in front), so
    # columns are sized for the text that is actually there.
    texts = {str(mid): (f"<span style='color:{DIFFERS_COLOUR}'><b>≠</b></span> " if mid in differs else "")
             + captions.get(mid, str(mid)) for mid in models["model_id"].astype(str)}
    records = models[["model_id", "role", "arch", "alpha", "method"]].drop_duplicates("model_id").to_dict("records")
    teacher = next(r for r in records if r["role"] == "teacher")
    students = [r for r in records if r["role"] != "teacher"]
    archs = arch_order([r["arch"] for r in students]) or [str(teacher["arch"])]

    def key(r: dict) -> tuple:
        return (None, None) if pd.isna(r["alpha"]) else (float(r["alpha"]), str(r["method"]))

    # Columns: the teacher, then α from no KD to strong KD; variants such as saliency distillation after them.
    variants = sorted({key(r) for r in students if not pd.isna(r["alpha"])},
                      key=lambda v: ("sd" in v[1] or "ked" in v[1], -v[0], v[1]))
    if any(pd.isna(r["alpha"]) for r in students):
        variants.append((None, None))
    n_cols = 1 + len(variants)
    n_rows = len(archs)
    cells: dict[tuple[int, int], str] = {(0, 0): str(teacher["model_id"])}
    for r in students:
        cells.setdefault((archs.index(r["arch"]), 1 + variants.index(key(r))), str(r["model_id"]))
    headers = [f"teacher ({teacher['arch']})"] + [alpha_label(a, m) + {1.0: " (no KD)"}.get(a, "") if a is not None else "α unknown"
                             for a, m in variants]

    tid = str(teacher["model_id"])
    h, w = np.asarray(maps[tid]).shape
    # Pixel layout: captions and headers keep their height in px; the maps take the rest.
    # Headers on two lines ("α=0.5 +KED" over "(black-box)"), so a long variant name does not widen its column.
    drawn = [h.replace(" (", "<br>(", 1) for h in headers]
    h_lines = max(h.count("<br>") + 1 for h in drawn)
    n_lines = max((texts.get(mid, mid).count("<br>") + 1 for mid in cells.values()), default=1)
    caption_px, header_px, label_px, gap_px = ((n_lines * 1.35 + 0.5) * font_size + 8,
                                               (h_lines * 1.35 + 0.6) * (font_size + 2), 28, 8)
    title_px = 50 if title else 10
    # A column is as wide as its widest caption or header line, so neighbouring texts never overlap.
    def widest_text(size: float) -> float:
        return max([_text_width_px(texts[mid], size) for mid in cells.values()]
                   + [_text_width_px(f"<b>{label}</b>", size + 2) for label in drawn])

    text_px = widest_text(font_size)
    # 110 px: the colour bars; the first column's caption may stick out left of its map by half its excess
    pitch_px = (width_px - label_px - 110 - max(0.0, text_px / 2 - 20)) / n_cols
    if text_px + 6 > pitch_px:  # many columns: smaller captions rather than overlapping ones
        font_size = max(8, int(font_size * (pitch_px - 6) / text_px))
        text_px = widest_text(font_size)
        caption_px, header_px = (n_lines * 1.35 + 0.5) * font_size + 8, (h_lines * 1.35 + 0.6) * (font_size + 2)
    cell_px = min(pitch_px - gap_px, (max_height_px - title_px - header_px - 20) / n_rows - caption_px)
    cell_px = max(40.0, min(cell_px, 6.0 * max(h, w), 420.0))
    gap_px = max(gap_px, text_px + 6 - cell_px)
    overhang_px = max(0.0, (text_px - cell_px) / 2)  # left of the first column's maps
    unit = max(h, w) / cell_px  # data units per pixel
    gx, gy, top = gap_px * unit, caption_px * unit, header_px * unit
    big_h, big_w = top + n_rows * (h + gy), n_cols * (w + gx) - gx
    seq = np.full((round(big_h), round(big_w)), np.nan, dtype=np.float32)  # float32: half the bytes sent
    div = np.full(seq.shape, np.nan, dtype=np.float32) if difference else None
    names = np.full(seq.shape, "", dtype=object)
    grey = np.full(seq.shape, np.nan, dtype=np.float32) if overlay else None
    small = _to_grey(image) if overlay else None
    t_norm = _norm(np.asarray(maps[tid], dtype=float))
    vmax = max(float(np.nanmax(m)) for m in maps.values()) or 1.0
    diff_max = 1.0
    if difference:
        diff_max = max((float(np.abs(_norm(np.asarray(m, dtype=float)) - t_norm).max())
                        for mid, m in maps.items() if mid != tid), default=1.0) or 1.0
    annotations: list[dict] = []
    shapes: list[dict] = []
    offsets: dict[str, list[int]] = {}
    for (r, c), mid in cells.items():
        y0, x0 = round(top + r * (h + gy) + gy), round(c * (w + gx))
        offsets[mid] = [y0, x0]
        block = (slice(y0, y0 + h), slice(x0, x0 + w))
        m = np.asarray(maps[mid], dtype=float)
        # Rounded to 4 decimals where the values are relative (keeps the figure's JSON small).
        if difference and mid != tid:
            div[block] = np.round(_norm(m) - t_norm, 4)  # type: ignore[index]
        else:
            seq[block] = m if shared_scale and not difference else np.round(_norm(m), 4)
        names[block] = mid
        if grey is not None:
            grey[block] = np.round(small, 3)
        text = texts.get(mid, mid)
        pad = 3 * unit  # the red frame hugs the map (3 px), clear of the caption above and the one below
        if mid in differs:
            shapes.append({"type": "rect", "xref": "x", "yref": "y", "x0": x0 - 0.5 - pad,
                           "x1": x0 + w - 0.5 + pad, "y0": y0 - 0.5 - pad, "y1": y0 + h - 0.5 + pad,
                           "line": {"color": DIFFERS_COLOUR, "width": 3}, "layer": "above"})
        annotations.append({"text": text, "x": x0 + (w - 1) / 2, "y": y0 - 0.5 - 2.5 * pad, "xref": "x",
                            "yref": "y", "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                            "font": {"size": font_size}})
    for c, label in enumerate(drawn):
        annotations.append({"text": f"<b>{label}</b>", "x": c * (w + gx) + (w - 1) / 2, "y": top * 0.15, "xref": "x",
                            "yref": "y", "xanchor": "center", "yanchor": "top", "showarrow": False,
                            "font": {"size": font_size + 2}})
    for r, label in enumerate(archs):
        annotations.append({"text": f"<b>{label}</b>", "x": -0.5 - (overhang_px + 6) * unit,
                            "y": top + r * (h + gy) + gy + h / 2,
                            "xref": "x", "yref": "y", "xanchor": "right", "yanchor": "middle", "showarrow": False,
                            "textangle": -90, "font": {"size": font_size + 1}})
    hover = "%{customdata}<br>x=%{x}, y=%{y}<br>"
    traces: list[dict] = []
    if grey is not None:
        traces.append({"type": "heatmap", "z": grey, "colorscale": GREY_SCALE, "showscale": False,
                       "hoverinfo": "skip", "name": "input"})
    traces.append({
        "type": "heatmap", "z": seq, "coloraxis": "coloraxis", "opacity": 0.6 if overlay else 1.0,
        "customdata": names, "name": "maps", "hoverongaps": False,
        "hovertemplate": hover + ("importance %{z:.4g}" if shared_scale else "relative importance %{z:.2f}")
        + "<extra></extra>",
    })
    label_units = (label_px + overhang_px) * unit
    height = round(title_px + 20 + big_h / unit)
    layout: dict = {
        "annotations": annotations, "shapes": shapes,
        "xaxis": {"visible": False, "range": [-label_units - 0.5, big_w - 0.5], "constrain": "domain"},
        "yaxis": {"visible": False, "range": [big_h - 0.5, -0.5], "scaleanchor": "x", "constrain": "domain"},
        "coloraxis": {"colorscale": MAP_SCALE, "cmin": 0.0,
                      "cmax": vmax if shared_scale and not difference else 1.0,
                      "colorbar": {"title": {"text": "importance" if shared_scale else "relative<br>importance",
                                             "side": "top"},
                                   "len": 0.45 if difference else 0.8, "y": 0.98, "yanchor": "top",
                                   "thickness": 14}},
        "height": height,
        "margin": {"l": 12, "r": 4, "t": title_px, "b": 20},
        "plot_bgcolor": "white", "meta": {"cells": offsets, "cell_shape": [h, w], "columns": headers,
                                          "rows": archs, "cell_px": round(cell_px), "width_px": int(width_px),
                                          "font_px": int(font_size)},
        "font": {"size": font_size + 1},
    }
    if title:
        layout["title"] = {"text": title, "x": 0.0, "xanchor": "left", "xref": "container", "pad": {"l": 12},
                           "font": {"size": font_size + 5}}
    if div is not None:
        traces.append({
            "type": "heatmap", "z": div, "coloraxis": "coloraxis2", "customdata": names, "name": "difference",
            "hoverongaps": False, "hovertemplate": hover + "student − teacher %{z:.3f}<extra></extra>",
        })
        layout["coloraxis2"] = {"colorscale": DIFF_SCALE, "cmin": -diff_max, "cmax": diff_max,
                                "colorbar": {"title": {"text": "student −<br>teacher", "side": "top"},
                                             "len": 0.45, "y": 0.02, "yanchor": "bottom", "thickness": 14}}
    return go.Figure(data=traces, layout=layout)


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
        subplot_titles=["input series"] + [alpha_label(a) for a, _ in groups] + ["teacher saliency (heat strip)"],
    )
    t = np.arange(len(series))
    fig.add_trace(go.Scatter(x=t, y=series, mode="lines", line={"color": "#444", "width": 2}, name="series",
                             hovertemplate="t=%{x}<br>value %{y:.3f}<extra></extra>"), row=1, col=1)
    t_curve = _norm(np.asarray(curves[tid], dtype=float))
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
                x=t, y=_norm(np.asarray(curves[mid], dtype=float)), mode="lines",
                line={"color": alpha_colour(row["alpha"], method=row["method"]), "dash": dashes[j % 4], "width": 2},
                name=f"{row['arch']} {alpha_label(row['alpha'], row['method'])}" + _pred_suffix(row),
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
        name = "teacher" if row["role"] == "teacher" else f"{row['arch']} {alpha_label(row['alpha'], row['method'])}"
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
    from skimage.segmentation import find_boundaries

    # Small inputs (28×28) are drawn upsampled, so part boundaries are thin lines, not whole pixels.
    f = max(1, min(8, 320 // max(labels.shape)))
    up = np.kron(labels, np.ones((f, f), dtype=labels.dtype))
    grey = np.kron(_to_grey(display), np.ones((f, f)))
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


def _model_label(row: pd.Series) -> str:
    return "teacher" if row["role"] == "teacher" else alpha_label(row["alpha"], row.get("method"))


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
    archs = arch_order(list(students["arch"]))
    for (alpha, method), grp in students.groupby(["alpha", "method"], sort=False, dropna=False):
        grp = _one_per_arch(grp, archs)
        y = grp["focus_ratio"].to_numpy(float)
        bar: dict[str, Any] = {}
        if "focus_ratio_lo" in grp and "focus_ratio_hi" in grp:  # 95% bootstrap interval over inputs (and seeds)
            lo, hi = grp["focus_ratio_lo"].to_numpy(float), grp["focus_ratio_hi"].to_numpy(float)
            bar["error_y"] = {"type": "data", "symmetric": False, "array": np.nan_to_num(hi - y),
                              "arrayminus": np.nan_to_num(y - lo), "thickness": 1.2}
        fig.add_trace(go.Bar(
            x=archs, y=y, name=alpha_label(alpha, method),
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
        raise ValueError("several models per architecture × α (training seeds?): summarise them per variant "
                         "first (kdviz.analysis.aggregate.summarize_variants)")
    return grp.set_index("arch").reindex(archs)


def rho_range(*values: Any) -> list[float]:
    """A fixed y range for a Spearman ρ axis: [0, 1] when every value is ≥ 0, else [−1, 1] (a little margin),
    so a ρ of −0.02 is drawn as the small number it is, not as a full-height bar."""
    v = np.concatenate([np.asarray(x, dtype=float).ravel() for x in values]) if values else np.zeros(1)
    v = v[np.isfinite(v)]
    return [-1.05 if v.size and v.min() < 0 else 0.0, 1.05]


def alignment_bars(summary: pd.DataFrame, *, metric: str, label: str, title: str = "") -> go.Figure:
    """Mean ``metric`` per student by architecture × α with 95% bootstrap error bars.

    summary : rows per model with ``arch, alpha, method, model_id, <metric>, <metric>_lo, <metric>_hi``.
    """
    fig = go.Figure()
    students = summary[summary["role"] != "teacher"]
    archs = arch_order(list(students["arch"]))
    extremes = []
    for (alpha, method), grp in students.groupby(["alpha", "method"], sort=False, dropna=False):
        grp = _one_per_arch(grp, archs)
        y = grp[metric].to_numpy(float)
        lo, hi = grp[f"{metric}_lo"].to_numpy(float), grp[f"{metric}_hi"].to_numpy(float)
        extremes += [y, lo]
        fig.add_trace(go.Bar(
            x=archs, y=y, name=alpha_label(alpha, method), marker_color=alpha_colour(alpha, method=method),
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


def logit_table(summary: pd.DataFrame, *, metric: str = "logit_rho", include_teacher_arch: bool = True) -> pd.DataFrame:
    """The reference study's layout: rows α (1.0, 0.5, 0.1 …, then variants such as +SD), columns
    architectures largest first; NaN where the set has no such student."""
    students = summary[summary["role"] != "teacher"].copy()
    students["row"] = [alpha_label(a, m) for a, m in zip(students["alpha"], students["method"], strict=True)]
    table = students.pivot_table(index="row", columns="arch", values=metric, aggfunc="mean")
    order_rows = [alpha_label(a, m) for a, m in
                  sorted({(a, m) for a, m in zip(students["alpha"], students["method"], strict=True)},
                         key=lambda am: ("sd" in str(am[1]) or "ked" in str(am[1]),
                                         -(am[0] if not pd.isna(am[0]) else -1), str(am[1])))]
    return table.reindex(index=list(dict.fromkeys(order_rows)), columns=arch_order(list(table.columns)))


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
            textposition=list(grp["_pos"]), textfont={"size": 11}, name=alpha_label(alpha, method),
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


def randomisation_curve(result: Any, *, title: str = "") -> go.Figure:
    """The teacher randomisation test (``kdviz.analysis.randomisation.RandomisationResult``) as Adebayo et al. draw it:
    mean ρ to the trained teacher's part ranking as blocks are re-initialised from the output down
    (cascading, the last point = a fully random teacher), each block alone (independent), and the pass
    threshold. A method whose curve stays high ranks parts by the input, not by what the teacher learned."""
    from kdviz.analysis.randomisation import PASS_MAX_RHO

    blocks = list(result.blocks)
    cascading = result.cascading_means()
    fig = go.Figure()
    if len(cascading) == len(blocks):  # the full cascade (not only the fully randomised teacher)
        x = ["trained"] + [f"+ {b}" if i else f"{b}" for i, b in enumerate(blocks)]
        fig.add_trace(go.Scatter(x=x, y=[1.0, *cascading], mode="lines+markers", name="cascading (output → input)",
                                 line={"color": TEACHER_COLOUR, "width": 3},
                                 hovertemplate="re-initialised down to %{x}<br>mean ρ %{y:.3f}<extra></extra>"))
        independent = result.independent_means()
        if len(independent) == len(blocks):
            fig.add_trace(go.Scatter(x=x[1:], y=independent, mode="markers", name="independent (that block alone)",
                                     marker={"color": "#E69F00", "size": 10, "symbol": "diamond"},
                                     hovertemplate="only %{x} re-initialised<br>mean ρ %{y:.3f}<extra></extra>"))
    else:
        x = ["trained", "fully random"]
        fig.add_trace(go.Scatter(x=x, y=[1.0, result.full_rho], mode="lines+markers", name="fully randomised",
                                 line={"color": TEACHER_COLOUR, "width": 3}))
    fig.add_trace(go.Scatter(x=[x[-1]], y=[result.full_rho], mode="markers", showlegend=False, hoverinfo="skip",
                             error_y={"type": "data", "symmetric": False,
                                      "array": [max(0.0, result.full_rho_high - result.full_rho)],
                                      "arrayminus": [max(0.0, result.full_rho - result.full_rho_low)]},
                             marker={"color": TEACHER_COLOUR, "size": 1}))
    fig.add_hline(y=PASS_MAX_RHO, line={"dash": "dash", "color": DIFFERS_COLOUR},
                  annotation_text=f"passes at or below ρ = {PASS_MAX_RHO}", annotation_position="bottom left")
    verdict = {"passes": "passes", "fails": "fails on this data"}.get(result.verdict, result.verdict)
    if getattr(result, "undecided", False):
        verdict = f"undecided ({result.verdict} on the mean; the interval straddles {PASS_MAX_RHO})"
    fig.update_layout(
        title=title or f"Teacher randomisation test — {verdict} (fully random teacher: ρ {result.full_rho:.2f})",
        yaxis={"title": "mean ρ to the trained teacher's ranking", "range": [-0.25, 1.05]},
        xaxis={"title": "blocks re-initialised, from the output down"}, height=400, margin={"t": 60},
        legend={"orientation": "h", "y": -0.3},
    )
    return fig
