"""kdviz.report.study_bars: the Report's bar views (accuracy, focus, attention alignment)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from kdviz.report.study import report_figures
from kdviz.report.study_bars import focus_figure
from tests.report.summaries import ARCHS, make_summary


@pytest.mark.parametrize("name", ["accuracy", "focus", "attention"])
def test_bar_views_group_by_arch_with_bootstrap_error_bars(name):
    fig = report_figures(make_summary())[name]
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert [t.name.split(" ")[0] for t in bars] == ["α=1.0", "α=0.5", "α=0.1", "α=0.1"]
    assert bars[-1].name.startswith("α=0.1 + SD")
    assert list(bars[0].x) == list(ARCHS)
    scale = 100 if name == "accuracy" else 1
    np.testing.assert_allclose(bars[0].error_y.array, 0.01 * scale, rtol=1e-6)
    np.testing.assert_allclose(bars[0].error_y.arrayminus, 0.01 * scale, rtol=1e-6)
    if name != "attention":  # the teacher's own value is the reference line
        assert any(s.type == "line" for s in fig.layout.shapes)


def test_focus_view_bounded_form_and_bad_metric():
    s = make_summary()
    fig = focus_figure(s, metric="focus_fraction", k=3)
    assert "top-3" in fig.layout.title.text
    assert fig.data[2].y[0] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="metric"):
        focus_figure(s, metric="ssim")


def test_bar_views_keep_their_plot_area_wide() -> None:
    """The legend (with the long null entry) goes below the bars, not beside them."""
    s = make_summary()
    s["attention_rho_null"] = 0.2
    for name in ("accuracy", "focus", "attention"):
        legend = report_figures(s)[name].layout.legend
        assert legend.orientation == "h" and legend.y < 0, name
