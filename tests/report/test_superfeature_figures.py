"""Superfeature figures: the painted values are the Shapley values of each pixel's superfeature."""

from __future__ import annotations

import numpy as np
import pytest

from kdviz.report.superfeature_figures import superfeature_explanations, superfeature_layout

LABELS = np.kron(np.arange(4).reshape(2, 2), np.ones((3, 3), dtype=int))  # 4 superfeatures on 6×6


def test_image_explanations_paint_each_superfeature_with_its_value():
    phi = {"teacher": np.array([1.0, -2.0, 0.5, 0.0]), "student": np.array([0.2, 0.1, -0.3, 0.4])}
    dist = {k: np.full((4, 3), 1 / 3) for k in phi}
    fig = superfeature_explanations(np.random.default_rng(0).random((1, 6, 6)), LABELS, phi, dist,
                                    class_names=["a", "b", "c"], tau=2.0)
    painted = [t for t in fig.data if t.type == "heatmap" and t.coloraxis == "coloraxis"]
    assert len(painted) == 2
    np.testing.assert_array_equal(np.asarray(painted[0].z), phi["teacher"][LABELS])
    assert fig.layout.coloraxis.cmin == -2.0 and fig.layout.coloraxis.cmax == 2.0  # one symmetric range
    heat = [t for t in fig.data if t.type == "heatmap" and t.coloraxis == "coloraxis2"]
    assert len(heat) == 2 and list(heat[0].x) == ["a", "b", "c"]
    assert "τ=2" in fig.layout.coloraxis2.colorbar.title.text


def test_series_layout_and_explanations():
    labels = np.repeat(np.arange(3), 5)
    series = np.sin(np.linspace(0, 3, 15))[None]
    fig = superfeature_layout(series, labels)
    assert len(fig.layout.shapes) == 3  # one band per superfeature run
    fig = superfeature_explanations(series, labels, {"t": np.array([1.0, 2.0, 3.0])},
                                    {"t": np.full((3, 2), 0.5)}, class_names=["x", "y"])
    np.testing.assert_array_equal(np.asarray(fig.data[0].z)[0], np.repeat([1.0, 2.0, 3.0], 5))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="expected \\(4,\\)"):
        superfeature_explanations(np.zeros((1, 6, 6)), LABELS, {"t": np.zeros(3)}, {"t": np.zeros((4, 2))},
                                  class_names=["a", "b"])


def test_titles_wrap_and_the_class_heat_map_labels_every_tick():
    """Long column titles wrap instead of running into each other, the title is on two lines (no clipping), and
    the superfeature × class map names every class and superfeature."""
    ids = [f"resnet{n} α=0.5 KD+KED student, seed {n}" for n in (56, 32, 20, 8, 14)]
    phi = {i: np.array([1.0, -2.0, 0.5, 0.0]) for i in ids}
    names = [f"class {c}" for c in range(10)]
    dist = {i: np.full((4, 10), 0.1) for i in ids}
    fig = superfeature_explanations(np.zeros((1, 6, 6)), LABELS, phi, dist, class_names=names)
    heads = [a.text for a in fig.layout.annotations if a.text]
    assert len(heads) == 5 and all("<br>" in h for h in heads)
    assert all(len(line) <= 1000 / 5 / 7.2 for h in heads for line in h.split("<br>"))
    assert "<br>" in fig.layout.title.text
    assert list(fig.layout.xaxis6.tickvals) == names and fig.layout.xaxis6.title.text == "class"
    assert list(fig.layout.yaxis6.tickvals) == [f"sf {k}" for k in range(4)]
