"""kdviz.report.attention_grid: every model's map of one input in one screen-sized grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from kdviz.report.attention_grid import GridOptions, _text_width_px, attention_grid
from kdviz.report.style import plotly_config
from tests.report.dashboard_frames import models_frame, random_maps


def _cell(fig: go.Figure, trace: int, mid: str) -> np.ndarray:
    (y0, x0), (h, w) = fig.layout.meta["cells"][mid], fig.layout.meta["cell_shape"]
    return np.asarray(fig.data[trace].z, dtype=float)[y0:y0 + h, x0:x0 + w]


def test_attention_grid_layout_and_scales() -> None:
    models = models_frame()
    maps = random_maps(models)
    image = np.linspace(0, 1, 64).reshape(8, 8)
    fig = attention_grid(image, maps, models, GridOptions(captions={"t": "TEACHER CAPTION"}, overlay=False))
    assert len(fig.data) == 1  # every map tiled into one heatmap
    cells = fig.layout.meta["cells"]
    assert cells["t"] == [min(y for y, _x in cells.values()), 0]  # teacher at the head: first row, first column
    assert all(x > 0 for mid, (_y, x) in cells.items() if mid != "t")  # students in the α columns after it
    assert cells["resnet20_1.0"][0] == cells["t"][0]  # no row of its own for the teacher
    assert fig.layout.meta["columns"] == ["teacher (resnet56)", "α=1.0 (no KD)", "α=0.1", "α=0.5 + SD"]
    assert cells["resnet20_1.0"][0] < cells["resnet8_1.0"][0]  # larger architecture above
    assert cells["resnet8_1.0"][1] < cells["resnet8_0.1"][1] < cells["resnet8_sd"][1]  # α 1 → 0.1, SD last
    assert any(a.text == "TEACHER CAPTION" for a in fig.layout.annotations)
    for mid, m in maps.items():  # per-map scale: each map divided by its own max
        np.testing.assert_allclose(_cell(fig, 0, mid), m / m.max(), atol=1e-4)
    shared = attention_grid(image, maps, models, GridOptions(overlay=True, shared_scale=True))
    assert len(shared.data) == 2  # overlay: the grey input under the maps
    np.testing.assert_allclose(_cell(shared, 0, "t"), image, atol=1e-3)
    np.testing.assert_allclose(_cell(shared, 1, "resnet8_0.1"), maps["resnet8_0.1"])
    assert shared.layout.coloraxis.cmax == pytest.approx(max(m.max() for m in maps.values()))
    diff = attention_grid(image, maps, models, GridOptions(overlay=False, difference=True))
    expected = maps["resnet8_0.1"] / maps["resnet8_0.1"].max() - maps["t"] / maps["t"].max()
    np.testing.assert_allclose(_cell(diff, 1, "resnet8_0.1"), expected, atol=1e-4)
    np.testing.assert_allclose(_cell(diff, 0, "t"), maps["t"] / maps["t"].max(), atol=1e-4)  # the teacher stays a map
    assert diff.layout.coloraxis2.cmin == -diff.layout.coloraxis2.cmax
    assert "student −" in diff.layout.coloraxis2.colorbar.title.text and "teacher" in diff.layout.coloraxis2.colorbar.title.text


def test_attention_grid_fits_the_space_and_marks_disagreement() -> None:
    # The MNIST demo's shape: 4 architectures × 3 α + one SD student, 28 px maps.
    rows = [("t", "teacher", "resnet56", 1.0, "ce")] + [
        (f"{a}_{al}", "student", a, al, "kd") for a in ("resnet56", "resnet32", "resnet20", "resnet8") for al in (1.0, 0.5, 0.1)
    ] + [("sd", "student", "resnet8", 0.5, "kd+sd")]
    models = pd.DataFrame(rows, columns=["model_id", "role", "arch", "alpha", "method"])
    maps = {mid: np.random.default_rng(0).random((28, 28)) for mid in models["model_id"]}
    captions = {mid: "pred 7 (98%) · ρ 0.81<br>focus 2.3" for mid in maps}
    fig = attention_grid(np.zeros((28, 28)), maps, models, GridOptions(
        captions=captions, differs={"resnet8_1.0"}, title="x", width_px=1100, max_height_px=700))
    assert fig.layout.height <= 700
    assert fig.layout.meta["rows"] == ["resnet56", "resnet32", "resnet20", "resnet8"]
    assert fig.layout.meta["cell_px"] >= 100  # the maps get the space (28 px digits drawn ≥ 100 px)
    frames = [sh for sh in fig.layout.shapes if sh.type == "rect"]
    (y0, x0), h = fig.layout.meta["cells"]["resnet8_1.0"], 28
    assert len(frames) == 1 and frames[0].x0 < x0 < frames[0].x1 and frames[0].y0 < y0 + h / 2 < frames[0].y1
    assert any("<b>≠</b>" in a.text for a in fig.layout.annotations)  # the ≠ mark (and a red frame)
    # Two uploaded 224 px models: one row, maps scaled down to the space, not one huge map per row.
    two = models.iloc[:2]
    big = {mid: np.random.default_rng(1).random((224, 224)) for mid in two["model_id"]}
    fig = attention_grid(np.zeros((224, 224, 3)), big, two, GridOptions(width_px=1100, max_height_px=700))
    assert fig.layout.height <= 700 and fig.layout.meta["cell_px"] <= 420


def test_attention_grid_captions_fit_their_column_and_clear_the_red_frames() -> None:
    """Captions with "ρ excess" and the "≠ teacher" mark are measured as drawn, so a column is as wide as its
    caption; a red frame hugs its map and stays clear of the caption above it and below it."""
    rows = [("t", "teacher", "resnet56", 1.0, "ce")] + [
        (f"{a}_{al}", "student", a, al, "kd") for a in ("resnet56", "resnet8") for al in (1.0, 0.5, 0.1)]
    models = pd.DataFrame(rows, columns=["model_id", "role", "arch", "alpha", "method"])
    maps = {mid: np.random.default_rng(0).random((28, 28)) for mid in models["model_id"]}
    captions = {mid: "<b>7</b> (98%) · ρ excess 0.81<br>focus 2.35" for mid in maps}
    fig = attention_grid(np.zeros((28, 28)), maps, models, GridOptions(
        captions=captions, differs={"resnet56_0.5"}, title="x", width_px=1100, max_height_px=640, font_size=12))
    meta = fig.layout.meta
    unit = 28 / meta["cell_px"]  # data units per pixel
    pitch_px = (meta["cells"]["resnet56_0.5"][1] - meta["cells"]["resnet56_1.0"][1]) / unit
    size = max(a.font.size for a in fig.layout.annotations if "≠" in a.text)
    drawn = _text_width_px(next(a.text for a in fig.layout.annotations if "≠" in a.text), size)
    assert drawn <= pitch_px, (drawn, pitch_px)  # the widest caption fits its column
    frame = next(sh for sh in fig.layout.shapes if sh.type == "rect")
    y0, x0 = meta["cells"]["resnet56_0.5"]
    caption = next(a for a in fig.layout.annotations if "≠" in a.text)
    assert caption.y < frame.y0  # the caption sits above the frame, not under its line
    below = meta["cells"]["resnet8_0.5"][0]
    assert frame.y1 < below - 0.5 - (2 * 1.35 * size) * unit  # clear of the next row's caption
    assert meta["width_px"] == 1100
    cfg = plotly_config("g", slide=True, size=(1100, 600))["toImageButtonOptions"]
    assert cfg["width"] == 1100 and cfg["scale"] == pytest.approx(1920 / 1100)  # scaled up as a whole
