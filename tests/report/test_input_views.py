"""kdviz.report.input_views: one input across models (series saliency, segment shares, parts with the top-k)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from kdviz.report.input_views import parts_figure, segment_bars, series_saliency
from tests.report.dashboard_frames import models_frame


def test_series_and_segments() -> None:
    models = models_frame()
    curves = {mid: np.abs(np.sin(np.arange(50) / (i + 2))) for i, mid in enumerate(models["model_id"])}
    fig = series_saliency(np.sin(np.arange(50) / 5), curves, models)
    names = [t.name for t in fig.data]
    assert names[0] == "series" and any(isinstance(t, go.Heatmap) for t in fig.data)
    assert sum(n.startswith("resnet") for n in names if n) == len(models) - 1
    vectors = {mid: np.arange(1.0, 6.0) * (i + 1) for i, mid in enumerate(models["model_id"])}
    bars = segment_bars(vectors, models)
    assert len(bars.data) == len(models)
    np.testing.assert_allclose(np.asarray(bars.data[0].y).sum(), 1.0)


def test_parts_figure_marks_the_top_k() -> None:
    labels = np.repeat(np.arange(4), 16).reshape(8, 8)
    fig = parts_figure(np.zeros((8, 8)), labels, [2, 0])
    tint = np.asarray(fig.data[1].z, dtype=float)
    f = tint.shape[0] // 8  # drawn upsampled
    up = np.kron(labels, np.ones((f, f), dtype=int))
    assert np.isfinite(tint[up == 2]).all() and np.isnan(tint[up == 1]).all()
    series = parts_figure(np.zeros(20), np.repeat(np.arange(4), 5), [3])
    assert [s.x0 for s in series.layout.shapes if s.type == "rect"] == [14.5]


def test_parts_figure_has_a_legend_for_the_top_k() -> None:
    labels = np.repeat(np.arange(4), 5)
    fig = parts_figure(np.arange(20.0), labels, [2, 0])
    assert fig.layout.showlegend and any("top-2" in str(t.name) for t in fig.data)
