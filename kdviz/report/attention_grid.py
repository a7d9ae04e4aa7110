"""Every model's attention map for one input, in a grid sized for one screen.

The teacher heads the grid (first column of the first row); rows are student architectures (the teacher's
first, then largest first), columns α from no KD to strong KD, then variants such as saliency distillation.
The cells are tiled into one image per layer (input, maps, differences) on a single pair of axes, so the
browser draws 2–3 heatmaps instead of two per model.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from kdviz.report.input_views import scaled_to_max, to_grey
from kdviz.report.style import (
    DIFF_SCALE,
    DIFFERS_COLOUR,
    GREY_SCALE,
    MAP_SCALE,
    arch_order,
    variant_label,
    variant_sort_key,
)

__all__ = ["GridOptions", "attention_grid"]


@dataclass(frozen=True)
class GridOptions:
    """How :func:`attention_grid` draws the maps and the space it lays them out for.

    captions : model id -> caption (prediction, confidence, ρ, focus) shown above the cell
    overlay : draw the map translucent over the (grey) input, else the map alone
    shared_scale : one colour scale for every map (raw values); else each map scaled to its own max
    difference : students show ``map − teacher map`` (both scaled to their max) on a diverging scale
    title : the figure's title (none when empty)
    differs : ids of students whose prediction differs from the teacher's: framed in red, marked "≠"
    width_px, max_height_px : the space the grid is laid out for; font_size : caption size in px
    """

    captions: Mapping[str, str] | None = None
    overlay: bool = True
    shared_scale: bool = False
    difference: bool = False
    title: str = ""
    differs: Collection[str] = ()
    width_px: int = 1100
    max_height_px: int = 740
    font_size: int = 11


@dataclass(frozen=True)
class _Cells:
    """Which model sits in which (row, column), the captions as drawn and the row and column labels."""

    teacher: str
    cells: dict[tuple[int, int], str]
    texts: dict[str, str]
    archs: list[str]
    headers: list[str]


@dataclass(frozen=True)
class _Geometry:
    """The grid in pixels and in data units of the tiled image (``unit`` data units per pixel)."""

    font_size: int
    caption_px: float
    title_px: int
    cell_px: float
    overhang_px: float
    unit: float
    gx: float
    gy: float
    top: float
    big_h: float
    big_w: float


def _text_width_px(html: str, font_size: float) -> float:
    """Width in px of the widest line of a Plotly annotation (tags dropped; bold counted wider)."""
    lines = re.split(r"<br\s*/?>", html)
    widest = max((len(re.sub(r"<[^>]+>", "", line)) for line in lines), default=0)
    # measured in Chromium (DejaVu/Source Sans): ~0.58 em per character, bold ~0.64 (ρ, ≠ and digits included)
    return widest * font_size * (0.64 if "<b>" in html else 0.58)


def _place(models: pd.DataFrame, captions: Mapping[str, str], differs: set[str]) -> _Cells:
    """Cells: the teacher at (0, 0), students at (their architecture's row, 1 + their variant's column)."""
    # Each cell's caption as drawn (a student that predicts another class gets "≠" in front), so columns are
    # sized for the text that is actually there.
    texts = {str(mid): (f"<span style='color:{DIFFERS_COLOUR}'><b>≠</b></span> " if mid in differs else "")
             + captions.get(mid, str(mid)) for mid in models["model_id"].astype(str)}
    records = models[["model_id", "role", "arch", "alpha", "method"]].drop_duplicates("model_id").to_dict("records")
    teacher = next(r for r in records if r["role"] == "teacher")
    students = [r for r in records if r["role"] != "teacher"]
    archs = arch_order([r["arch"] for r in students], teacher=str(teacher["arch"])) or [str(teacher["arch"])]

    def key(r: dict) -> tuple:
        return (None, None) if pd.isna(r["alpha"]) else (float(r["alpha"]), str(r["method"]))

    # Columns: the teacher, then α from no KD to strong KD; variants such as saliency distillation after them.
    variants = sorted({key(r) for r in students if not pd.isna(r["alpha"])}, key=lambda v: variant_sort_key(*v))
    if any(pd.isna(r["alpha"]) for r in students):
        variants.append((None, None))
    cells: dict[tuple[int, int], str] = {(0, 0): str(teacher["model_id"])}
    for r in students:
        cells.setdefault((archs.index(str(r["arch"])), 1 + variants.index(key(r))), str(r["model_id"]))
    headers = [f"teacher ({teacher['arch']})"] + [
        variant_label(a, m) + {1.0: " (no KD)"}.get(a, "") if a is not None else "α unknown" for a, m in variants]
    return _Cells(str(teacher["model_id"]), cells, texts, archs, headers)


def _drawn_headers(headers: list[str]) -> list[str]:
    """Headers on two lines ("α=0.5 + KED" over "(black-box)"), so a long variant name does not widen its column."""
    return [h.replace(" (", "<br>(", 1) for h in headers]


def _geometry(grid: _Cells, shape: tuple[int, int], options: GridOptions) -> _Geometry:
    """Pixel layout: captions and headers keep their height in px; the maps take the rest.

    A column is as wide as its widest caption or header line, so neighbouring texts never overlap; with many
    columns the captions get smaller rather than overlapping.
    """
    h, w = shape
    drawn = _drawn_headers(grid.headers)
    font_size = options.font_size
    h_lines = max(d.count("<br>") + 1 for d in drawn)
    n_lines = max((grid.texts.get(mid, mid).count("<br>") + 1 for mid in grid.cells.values()), default=1)
    n_cols, n_rows = len(grid.headers), len(grid.archs)

    def heights(size: int) -> tuple[float, float]:
        return (n_lines * 1.35 + 0.5) * size + 8, (h_lines * 1.35 + 0.6) * (size + 2)

    def widest_text(size: float) -> float:
        return max([_text_width_px(grid.texts[mid], size) for mid in grid.cells.values()]
                   + [_text_width_px(f"<b>{label}</b>", size + 2) for label in drawn])

    caption_px, header_px = heights(font_size)
    label_px, gap_px = 28, 8
    title_px = 50 if options.title else 10
    text_px = widest_text(font_size)
    # 110 px: the colour bars; the first column's caption may stick out left of its map by half its excess
    pitch_px = (options.width_px - label_px - 110 - max(0.0, text_px / 2 - 20)) / n_cols
    if text_px + 6 > pitch_px:  # many columns: smaller captions rather than overlapping ones
        font_size = max(8, int(font_size * (pitch_px - 6) / text_px))
        text_px = widest_text(font_size)
        caption_px, header_px = heights(font_size)
    cell_px = min(pitch_px - gap_px, (options.max_height_px - title_px - header_px - 20) / n_rows - caption_px)
    cell_px = max(40.0, min(cell_px, 6.0 * max(h, w), 420.0))
    gap_px = max(gap_px, text_px + 6 - cell_px)
    unit = max(h, w) / cell_px  # data units per pixel
    gx, gy, top = gap_px * unit, caption_px * unit, header_px * unit
    return _Geometry(font_size=font_size, caption_px=caption_px, title_px=title_px, cell_px=cell_px,
                     overhang_px=max(0.0, (text_px - cell_px) / 2), unit=unit, gx=gx, gy=gy, top=top,
                     big_h=top + n_rows * (h + gy), big_w=n_cols * (w + gx) - gx)


@dataclass
class _Layers:
    """The tiled images (maps, differences, input, model ids) and the figure's annotations and frames."""

    seq: np.ndarray
    div: np.ndarray | None
    grey: np.ndarray | None
    names: np.ndarray
    annotations: list[dict]
    shapes: list[dict]
    offsets: dict[str, list[int]]


def _empty_layers(geo: _Geometry, options: GridOptions) -> _Layers:
    seq = np.full((round(geo.big_h), round(geo.big_w)), np.nan, dtype=np.float32)  # float32: half the bytes sent
    return _Layers(seq=seq, div=np.full(seq.shape, np.nan, dtype=np.float32) if options.difference else None,
                   grey=np.full(seq.shape, np.nan, dtype=np.float32) if options.overlay else None,
                   names=np.full(seq.shape, "", dtype=object), annotations=[], shapes=[], offsets={})


def _tile(image: np.ndarray, maps: Mapping[str, np.ndarray], grid: _Cells, geo: _Geometry,
          options: GridOptions) -> _Layers:
    """Every model's map (or difference) tiled at its cell, with its caption above and a red frame when it differs."""
    h, w = np.asarray(maps[grid.teacher]).shape
    layers = _empty_layers(geo, options)
    small = to_grey(image) if options.overlay else None
    t_norm = scaled_to_max(np.asarray(maps[grid.teacher], dtype=float))
    differs = set(options.differs)
    for (r, c), mid in grid.cells.items():
        y0, x0 = round(geo.top + r * (h + geo.gy) + geo.gy), round(c * (w + geo.gx))
        layers.offsets[mid] = [y0, x0]
        block = (slice(y0, y0 + h), slice(x0, x0 + w))
        m = np.asarray(maps[mid], dtype=float)
        # Rounded to 4 decimals where the values are relative (keeps the figure's JSON small).
        if options.difference and mid != grid.teacher:
            layers.div[block] = np.round(scaled_to_max(m) - t_norm, 4)  # type: ignore[index]
        else:
            layers.seq[block] = m if options.shared_scale and not options.difference else np.round(scaled_to_max(m), 4)
        layers.names[block] = mid
        if layers.grey is not None:
            layers.grey[block] = np.round(small, 3)
        pad = 3 * geo.unit  # the red frame hugs the map (3 px), clear of the caption above and the one below
        if mid in differs:
            layers.shapes.append({"type": "rect", "xref": "x", "yref": "y", "x0": x0 - 0.5 - pad,
                                  "x1": x0 + w - 0.5 + pad, "y0": y0 - 0.5 - pad, "y1": y0 + h - 0.5 + pad,
                                  "line": {"color": DIFFERS_COLOUR, "width": 3}, "layer": "above"})
        layers.annotations.append({"text": grid.texts.get(mid, mid), "x": x0 + (w - 1) / 2, "y": y0 - 0.5 - 2.5 * pad,
                                   "xref": "x", "yref": "y", "xanchor": "center", "yanchor": "bottom",
                                   "showarrow": False, "font": {"size": geo.font_size}})
    return layers


def _labels(grid: _Cells, geo: _Geometry, shape: tuple[int, int]) -> list[dict]:
    """Column headers above the grid and architecture names left of each row."""
    h, w = shape
    out = [{"text": f"<b>{label}</b>", "x": c * (w + geo.gx) + (w - 1) / 2, "y": geo.top * 0.15, "xref": "x",
            "yref": "y", "xanchor": "center", "yanchor": "top", "showarrow": False,
            "font": {"size": geo.font_size + 2}} for c, label in enumerate(_drawn_headers(grid.headers))]
    out += [{"text": f"<b>{label}</b>", "x": -0.5 - (geo.overhang_px + 6) * geo.unit,
             "y": geo.top + r * (h + geo.gy) + geo.gy + h / 2,
             "xref": "x", "yref": "y", "xanchor": "right", "yanchor": "middle", "showarrow": False,
             "textangle": -90, "font": {"size": geo.font_size + 1}} for r, label in enumerate(grid.archs)]
    return out


def _traces(layers: _Layers, options: GridOptions) -> list[dict]:
    hover = "%{customdata}<br>x=%{x}, y=%{y}<br>"
    traces: list[dict] = []
    if layers.grey is not None:
        traces.append({"type": "heatmap", "z": layers.grey, "colorscale": GREY_SCALE, "showscale": False,
                       "hoverinfo": "skip", "name": "input"})
    traces.append({
        "type": "heatmap", "z": layers.seq, "coloraxis": "coloraxis", "opacity": 0.6 if options.overlay else 1.0,
        "customdata": layers.names, "name": "maps", "hoverongaps": False,
        "hovertemplate": hover + ("importance %{z:.4g}" if options.shared_scale else "relative importance %{z:.2f}")
        + "<extra></extra>",
    })
    if layers.div is not None:
        traces.append({
            "type": "heatmap", "z": layers.div, "coloraxis": "coloraxis2", "customdata": layers.names,
            "name": "difference", "hoverongaps": False,
            "hovertemplate": hover + "student − teacher %{z:.3f}<extra></extra>",
        })
    return traces


def _colour_axes(maps: Mapping[str, np.ndarray], teacher: str, options: GridOptions) -> dict:
    """The maps' colour axis (raw or relative importance) and, for differences, a diverging one around 0."""
    vmax = max(float(np.nanmax(m)) for m in maps.values()) or 1.0
    axes: dict = {"coloraxis": {
        "colorscale": MAP_SCALE, "cmin": 0.0, "cmax": vmax if options.shared_scale and not options.difference else 1.0,
        "colorbar": {"title": {"text": "importance" if options.shared_scale else "relative<br>importance",
                               "side": "top"},
                     "len": 0.45 if options.difference else 0.8, "y": 0.98, "yanchor": "top", "thickness": 14}}}
    if options.difference:
        t_norm = scaled_to_max(np.asarray(maps[teacher], dtype=float))
        diff_max = max((float(np.abs(scaled_to_max(np.asarray(m, dtype=float)) - t_norm).max())
                        for mid, m in maps.items() if mid != teacher), default=1.0) or 1.0
        axes["coloraxis2"] = {"colorscale": DIFF_SCALE, "cmin": -diff_max, "cmax": diff_max,
                              "colorbar": {"title": {"text": "student −<br>teacher", "side": "top"},
                                           "len": 0.45, "y": 0.02, "yanchor": "bottom", "thickness": 14}}
    return axes


def attention_grid(image: np.ndarray, maps: Mapping[str, np.ndarray], models: pd.DataFrame,
                   options: GridOptions = GridOptions()) -> go.Figure:
    """Attention maps of one input in a grid sized for one screen.

    Cell size is chosen so the grid fits ``options.width_px`` × ``options.max_height_px`` with captions of a
    fixed pixel height whatever the map resolution (28 px digits and 224 px photos alike).

    Parameters
    ----------
    image : the input as displayed, (H, W), (H, W, 3) or (C, H, W)
    maps : model id -> importance map (H, W)
    models : one row per model with columns ``model_id, role, arch, alpha, method`` (teacher first)
    options : captions, overlay, scales, differences, title and the space to fit (:class:`GridOptions`)

    Returns
    -------
    go.Figure whose ``layout.meta`` gives ``cells`` (each model's (row, col) pixel offset in the tiled image),
    ``columns`` (the column headers), ``rows`` (architectures), ``cell_px``, ``width_px`` and ``font_px``
    """
    grid = _place(models, options.captions or {}, set(options.differs))
    shape = np.asarray(maps[grid.teacher]).shape
    geo = _geometry(grid, shape, options)
    layers = _tile(image, maps, grid, geo, options)
    label_units = (28 + geo.overhang_px) * geo.unit
    layout: dict = {
        "annotations": layers.annotations + _labels(grid, geo, shape), "shapes": layers.shapes,
        "xaxis": {"visible": False, "range": [-label_units - 0.5, geo.big_w - 0.5], "constrain": "domain"},
        "yaxis": {"visible": False, "range": [geo.big_h - 0.5, -0.5], "scaleanchor": "x", "constrain": "domain"},
        **_colour_axes(maps, grid.teacher, options),
        "height": round(geo.title_px + 20 + geo.big_h / geo.unit),
        "margin": {"l": 12, "r": 4, "t": geo.title_px, "b": 20},
        "plot_bgcolor": "white", "meta": {"cells": layers.offsets, "cell_shape": list(shape), "columns": grid.headers,
                                          "rows": grid.archs, "cell_px": round(geo.cell_px),
                                          "width_px": int(options.width_px), "font_px": int(geo.font_size)},
        "font": {"size": geo.font_size + 1},
    }
    if options.title:
        layout["title"] = {"text": options.title, "x": 0.0, "xanchor": "left", "xref": "container",
                           "pad": {"l": 12}, "font": {"size": geo.font_size + 5}}
    return go.Figure(data=_traces(layers, options), layout=layout)
