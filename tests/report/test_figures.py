"""kdviz.report.figures: figures carry the data they are given, in the house layout and colours."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from kdviz.report import figures as plots


def _models() -> pd.DataFrame:
    rows = [("t", "teacher", "resnet56", 1.0, "ce")]
    for arch in ("resnet8", "resnet20"):
        for a in (1.0, 0.1):
            rows.append((f"{arch}_{a}", "student", arch, a, "kd"))
    rows.append(("resnet8_sd", "student", "resnet8", 0.5, "kd+sd"))
    return pd.DataFrame(rows, columns=["model_id", "role", "arch", "alpha", "method"])


def _maps(models: pd.DataFrame, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {mid: rng.random((8, 8)) * (i + 1) for i, mid in enumerate(models["model_id"])}


def test_colours_and_labels() -> None:
    assert plots.alpha_colour(1.0, role="teacher") == plots.TEACHER_COLOUR
    assert plots.alpha_colour(0.1) == plots.ALPHA_COLOURS[0.1] != plots.alpha_colour(1.0)
    assert plots.alpha_colour(0.5, method="kd+sd") not in plots.ALPHA_COLOURS.values()
    assert plots.alpha_label(0.5) == "α=0.5" and plots.alpha_label(0.5, "kd+sd") == "α=0.5 +SD"
    assert plots.alpha_label(None) == "α=—"
    assert plots.arch_order(["resnet8", "resnet56", "resnet20", "resnet8"]) == ["resnet56", "resnet20", "resnet8"]


def test_plotly_config_has_png_download() -> None:
    cfg = plots.plotly_config("grid")
    assert cfg["toImageButtonOptions"]["format"] == "png" and cfg["toImageButtonOptions"]["filename"] == "grid"
    slide = plots.plotly_config("grid", fmt="svg", slide=True)["toImageButtonOptions"]
    assert slide["format"] == "svg" and slide["width"] / slide["height"] == pytest.approx(16 / 9)
    assert slide["width"] == 1920
    with pytest.raises(ValueError, match="fmt"):
        plots.plotly_config("grid", fmt="gif")


PLACEHOLDER = __import__("re").compile(r"#0000[0-3][0-9]\b", __import__("re").IGNORECASE)


def test_colour_scales_avoid_streamlits_placeholder_colours() -> None:
    # Streamlit's Plotly front end rewrites #000001…#000031 in a figure's JSON (Inferno's #000004 became violet).
    import plotly.colors as pc

    assert pc.sequential.Inferno[0] == "#000004"  # the colour that was swapped
    assert plots.MAP_SCALE[0] == [0.0, "rgb(0, 0, 4)"]  # the same colour, written so it is left alone
    assert len(plots.MAP_SCALE) == len(pc.sequential.Inferno)
    for (_, ours), theirs in zip(plots.MAP_SCALE, pc.sequential.Inferno, strict=True):
        assert ours == "rgb({}, {}, {})".format(*pc.hex_to_rgb(theirs))
    assert plots.DIFF_SCALE[5] == [0.5, "rgb(247, 247, 247)"]  # RdBu_r: white at zero difference
    models = _models()
    maps = _maps(models)
    image = np.zeros((8, 8))
    figures = [plots.attention_grid(image, maps, models, difference=True),
               plots.series_saliency(np.sin(np.arange(50) / 5), {m: np.ones(50) for m in models["model_id"]}, models),
               plots.parts_figure(image, np.repeat(np.arange(4), 16).reshape(8, 8), [1])]
    import plotly.io as pio

    for fig in figures:
        # kdviz's own data and layout; the template is Streamlit's (it registers one with placeholders on
        # import, which its front end fills in on purpose) and is left out.
        spec = fig.to_plotly_json()
        spec["layout"].pop("template", None)
        # validate=False: validating rebuilds a Figure, which re-applies the default template (Streamlit sets
        # its own as the default once it is imported, as earlier tests do)
        assert not PLACEHOLDER.search(pio.to_json(spec, validate=False)), fig.layout.title


def _cell(fig: go.Figure, trace: int, mid: str) -> np.ndarray:
    (y0, x0), (h, w) = fig.layout.meta["cells"][mid], fig.layout.meta["cell_shape"]
    return np.asarray(fig.data[trace].z, dtype=float)[y0:y0 + h, x0:x0 + w]


def test_attention_grid_layout_and_scales() -> None:
    models = _models()
    maps = _maps(models)
    image = np.linspace(0, 1, 64).reshape(8, 8)
    fig = plots.attention_grid(image, maps, models, captions={"t": "TEACHER CAPTION"}, overlay=False)
    assert len(fig.data) == 1  # every map tiled into one heatmap
    cells = fig.layout.meta["cells"]
    assert cells["t"] == [min(y for y, _x in cells.values()), 0]  # teacher at the head: first row, first column
    assert all(x > 0 for mid, (_y, x) in cells.items() if mid != "t")  # students in the α columns after it
    assert cells["resnet20_1.0"][0] == cells["t"][0]  # no row of its own for the teacher
    assert fig.layout.meta["columns"] == ["teacher (resnet56)", "α=1 (no KD)", "α=0.1", "α=0.5 +SD"]
    assert cells["resnet20_1.0"][0] < cells["resnet8_1.0"][0]  # larger architecture above
    assert cells["resnet8_1.0"][1] < cells["resnet8_0.1"][1] < cells["resnet8_sd"][1]  # α 1 → 0.1, SD last
    assert any(a.text == "TEACHER CAPTION" for a in fig.layout.annotations)
    for mid, m in maps.items():  # per-map scale: each map divided by its own max
        np.testing.assert_allclose(_cell(fig, 0, mid), m / m.max(), atol=1e-4)
    shared = plots.attention_grid(image, maps, models, overlay=True, shared_scale=True)
    assert len(shared.data) == 2  # overlay: the grey input under the maps
    np.testing.assert_allclose(_cell(shared, 0, "t"), image, atol=1e-3)
    np.testing.assert_allclose(_cell(shared, 1, "resnet8_0.1"), maps["resnet8_0.1"])
    assert shared.layout.coloraxis.cmax == pytest.approx(max(m.max() for m in maps.values()))
    diff = plots.attention_grid(image, maps, models, overlay=False, difference=True)
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
    fig = plots.attention_grid(np.zeros((28, 28)), maps, models, captions=captions, differs={"resnet8_1.0"},
                               title="x", width_px=1100, max_height_px=700)
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
    fig = plots.attention_grid(np.zeros((224, 224, 3)), big, two, width_px=1100, max_height_px=700)
    assert fig.layout.height <= 700 and fig.layout.meta["cell_px"] <= 420


def test_series_and_segments() -> None:
    models = _models()
    curves = {mid: np.abs(np.sin(np.arange(50) / (i + 2))) for i, mid in enumerate(models["model_id"])}
    fig = plots.series_saliency(np.sin(np.arange(50) / 5), curves, models)
    names = [t.name for t in fig.data]
    assert names[0] == "series" and any(isinstance(t, go.Heatmap) for t in fig.data)
    assert sum(n.startswith("resnet") for n in names if n) == len(models) - 1
    vectors = {mid: np.arange(1.0, 6.0) * (i + 1) for i, mid in enumerate(models["model_id"])}
    bars = plots.segment_bars(vectors, models)
    assert len(bars.data) == len(models)
    np.testing.assert_allclose(np.asarray(bars.data[0].y).sum(), 1.0)


def test_parts_figure_marks_the_top_k() -> None:
    labels = np.repeat(np.arange(4), 16).reshape(8, 8)
    fig = plots.parts_figure(np.zeros((8, 8)), labels, [2, 0])
    tint = np.asarray(fig.data[1].z, dtype=float)
    f = tint.shape[0] // 8  # drawn upsampled
    up = np.kron(labels, np.ones((f, f), dtype=int))
    assert np.isfinite(tint[up == 2]).all() and np.isnan(tint[up == 1]).all()
    series = plots.parts_figure(np.zeros(20), np.repeat(np.arange(4), 5), [3])
    assert [s.x0 for s in series.layout.shapes if s.type == "rect"] == [14.5]


def _summary() -> pd.DataFrame:
    m = _models()
    rng = np.random.default_rng(1)
    for c in ("focus_ratio", "focus_fraction", "attention_rho", "logit_rho"):
        m[c] = rng.random(len(m))
        m[f"{c}_lo"], m[f"{c}_hi"] = m[c] - 0.1, m[c] + 0.1
    return m


def test_focus_alignment_and_table() -> None:
    s = _summary()
    fig = plots.focus_bars(s, k=5)
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].y0 == pytest.approx(s["focus_ratio"][0])
    assert "M_in/(M_in+M_out)" in fig.data[0].hovertemplate
    assert list(fig.data[0].x) == ["resnet20", "resnet8"]
    bars = plots.alignment_bars(s, metric="attention_rho", label="ρ")
    assert np.allclose(bars.data[0].error_y.array, 0.1)
    table = plots.logit_table(s)
    assert list(table.index) == ["α=1", "α=0.1", "α=0.5 +SD"]  # variants after the plain α rows
    assert list(table.columns) == ["resnet20", "resnet8"]
    assert np.isnan(table.loc["α=0.5 +SD", "resnet20"])  # no such student: NaN (shown as "—")
    assert table.loc["α=0.1", "resnet8"] == pytest.approx(s.set_index("model_id").loc["resnet8_0.1", "logit_rho"])
    scatter = plots.alignment_scatter(s)
    assert sum(len(t.x) for t in scatter.data) == len(s) - 1  # one point per student


def test_label_positions_separate_close_points() -> None:
    pos = plots.label_positions(np.array([0.5, 0.501, 0.502, 0.9]), np.array([0.5, 0.5, 0.501, 0.1]))
    assert len(set(pos[:3])) == 3  # three points on top of each other: three directions
    assert pos[3] == "top center"  # a point alone keeps the default


def test_null_bands_drawn_only_where_the_reference_exists() -> None:
    s = _summary()
    plain = plots.alignment_bars(s, metric="attention_rho", label="ρ")
    assert len(plain.layout.shapes) == 0  # older results without the null: unchanged
    s["attention_rho_null"] = np.where(s["arch"] == "resnet8", 0.7, np.nan)
    s["attention_rho_null_lo"], s["attention_rho_null_hi"] = s["attention_rho_null"] - 0.05, s["attention_rho_null"] + 0.05
    fig = plots.alignment_bars(s, metric="attention_rho", label="ρ")
    band = [sh for sh in fig.layout.shapes if sh.type == "rect"]
    line = [sh for sh in fig.layout.shapes if sh.type == "line"]
    assert len(band) == 1 and len(line) == 1  # resnet8 only (resnet20 has no reference)
    assert band[0].y0 == pytest.approx(0.65) and band[0].y1 == pytest.approx(0.75) and line[0].y0 == pytest.approx(0.7)
    i = list(fig.data[0].x).index("resnet8")
    assert band[0].x0 == pytest.approx(i - 0.45)
    assert any((t.name or "").startswith("untrained") for t in fig.data)


def test_randomisation_curve_draws_the_cascade_the_independent_points_and_the_threshold() -> None:
    from kdviz.analysis.randomisation import PASS_MAX_RHO, RandomisationResult
    from kdviz.report.figures import randomisation_curve

    cascading = np.array([[0.9, 0.8, 0.7], [0.5, 0.4, 0.3], [0.2, 0.1, 0.0]])  # (blocks, inputs)
    independent = np.array([[0.9, 0.9, 0.9], [0.6, 0.6, 0.6], [0.7, 0.7, 0.7]])
    result = RandomisationResult(method="grad_cam", parts="slic:50", blocks=("fc", "layer3", "conv1"),
                                 cascading_rho=cascading, independent_rho=independent, seeds=(20_000,), n_inputs=3)
    fig = randomisation_curve(result)
    cascade, points = fig.data[0], fig.data[1]
    assert list(cascade.x) == ["trained", "fc", "+ layer3", "+ conv1"]
    np.testing.assert_allclose(cascade.y, [1.0, 0.8, 0.4, 0.1])
    np.testing.assert_allclose(points.y, [0.9, 0.6, 0.7])
    assert fig.layout.shapes[0].y0 == PASS_MAX_RHO and "passes" in fig.layout.title.text
    full_only = RandomisationResult(method="saliency", parts="grid:4x4", blocks=("fc", "layer3", "conv1"),
                                    cascading_rho=np.array([[0.9, 0.8, 0.7]]), independent_rho=np.zeros((0, 3)),
                                    seeds=(1,), n_inputs=3)
    fig = randomisation_curve(full_only)
    assert list(fig.data[0].x) == ["trained", "fully random"] and "fails" in fig.layout.title.text


def test_rho_axes_are_fixed_and_focus_has_intervals_and_a_teacher_legend() -> None:
    """Issue 23 items 10–11: a logit ρ of −0.018 is a small bar on [−1, 1] (not a full-height bar on an
    auto-scaled axis); focus bars carry their intervals; the teacher's reference is named in the legend."""
    s = _summary()
    s.loc[s["role"] != "teacher", "logit_rho"] = -0.018
    s["logit_rho_lo"], s["logit_rho_hi"] = s["logit_rho"] - 0.002, s["logit_rho"] + 0.002
    assert list(plots.alignment_bars(s, metric="logit_rho", label="ρ").layout.yaxis.range) == [-1.05, 1.05]
    s["attention_rho"] = s["attention_rho"].clip(0.1, 0.9)
    s["attention_rho_lo"] = s["attention_rho"] - 0.05
    assert list(plots.alignment_bars(s, metric="attention_rho", label="ρ").layout.yaxis.range) == [0.0, 1.05]
    fig = plots.focus_bars(s, k=5)
    assert fig.data[0].error_y.array is not None and np.allclose(fig.data[0].error_y.array, 0.1)
    assert any(str(t.name).startswith("teacher ") for t in fig.data)  # in the legend, not over the bars
    assert not fig.layout.annotations
    twice = pd.concat([s, s[s["role"] != "teacher"]])  # two seeds per cell, summarised per model
    with pytest.raises(ValueError, match="per variant"):
        plots.focus_bars(twice)


def test_parts_figure_has_a_legend_for_the_top_k() -> None:
    labels = np.repeat(np.arange(4), 5)
    fig = plots.parts_figure(np.arange(20.0), labels, [2, 0])
    assert fig.layout.showlegend and any("top-2" in str(t.name) for t in fig.data)


def test_attention_grid_captions_fit_their_column_and_clear_the_red_frames() -> None:
    """Issue 23 item 8: captions with "ρ excess" and the "≠ teacher" mark are measured as drawn, so a column is
    as wide as its caption; a red frame hugs its map and stays clear of the caption above it and below it."""
    rows = [("t", "teacher", "resnet56", 1.0, "ce")] + [
        (f"{a}_{al}", "student", a, al, "kd") for a in ("resnet56", "resnet8") for al in (1.0, 0.5, 0.1)]
    models = pd.DataFrame(rows, columns=["model_id", "role", "arch", "alpha", "method"])
    maps = {mid: np.random.default_rng(0).random((28, 28)) for mid in models["model_id"]}
    captions = {mid: "<b>7</b> (98%) · ρ excess 0.81<br>focus 2.35" for mid in maps}
    fig = plots.attention_grid(np.zeros((28, 28)), maps, models, captions=captions, differs={"resnet56_0.5"},
                               title="x", width_px=1100, max_height_px=640, font_size=12)
    meta = fig.layout.meta
    unit = 28 / meta["cell_px"]  # data units per pixel
    pitch_px = (meta["cells"]["resnet56_0.5"][1] - meta["cells"]["resnet56_1.0"][1]) / unit
    size = max(a.font.size for a in fig.layout.annotations if "≠" in a.text)
    drawn = plots._text_width_px(next(a.text for a in fig.layout.annotations if "≠" in a.text), size)
    assert drawn <= pitch_px, (drawn, pitch_px)  # the widest caption fits its column
    frame = next(sh for sh in fig.layout.shapes if sh.type == "rect")
    y0, x0 = meta["cells"]["resnet56_0.5"]
    caption = next(a for a in fig.layout.annotations if "≠" in a.text)
    assert caption.y < frame.y0  # the caption sits above the frame, not under its line
    below = meta["cells"]["resnet8_0.5"][0]
    assert frame.y1 < below - 0.5 - (2 * 1.35 * size) * unit  # clear of the next row's caption
    assert meta["width_px"] == 1100
    cfg = plots.plotly_config("g", slide=True, size=(1100, 600))["toImageButtonOptions"]
    assert cfg["width"] == 1100 and cfg["scale"] == pytest.approx(1920 / 1100)  # scaled up as a whole
