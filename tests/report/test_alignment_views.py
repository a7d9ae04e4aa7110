"""kdviz.report.alignment_views: focus and alignment bars by architecture × α, the null as bands, the scatter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdviz.report.alignment_views import alignment_bars, alignment_scatter, focus_bars, label_positions
from tests.report.dashboard_frames import dashboard_summary


def test_focus_and_alignment() -> None:
    s = dashboard_summary()
    fig = focus_bars(s, k=5)
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].y0 == pytest.approx(s["focus_ratio"][0])
    assert "M_in/(M_in+M_out)" in fig.data[0].hovertemplate
    assert list(fig.data[0].x) == ["resnet20", "resnet8"]
    bars = alignment_bars(s, metric="attention_rho", label="ρ")
    assert np.allclose(bars.data[0].error_y.array, 0.1)
    scatter = alignment_scatter(s)
    assert sum(len(t.x) for t in scatter.data) == len(s) - 1  # one point per student


def test_label_positions_separate_close_points() -> None:
    pos = label_positions(np.array([0.5, 0.501, 0.502, 0.9]), np.array([0.5, 0.5, 0.501, 0.1]))
    assert len(set(pos[:3])) == 3  # three points on top of each other: three directions
    assert pos[3] == "top center"  # a point alone keeps the default


def test_null_bands_drawn_only_where_the_reference_exists() -> None:
    s = dashboard_summary()
    plain = alignment_bars(s, metric="attention_rho", label="ρ")
    assert len(plain.layout.shapes) == 0  # older results without the null: unchanged
    s["attention_rho_null"] = np.where(s["arch"] == "resnet8", 0.7, np.nan)
    s["attention_rho_null_lo"], s["attention_rho_null_hi"] = s["attention_rho_null"] - 0.05, s["attention_rho_null"] + 0.05
    fig = alignment_bars(s, metric="attention_rho", label="ρ")
    band = [sh for sh in fig.layout.shapes if sh.type == "rect"]
    line = [sh for sh in fig.layout.shapes if sh.type == "line"]
    assert len(band) == 1 and len(line) == 1  # resnet8 only (resnet20 has no reference)
    assert band[0].y0 == pytest.approx(0.65) and band[0].y1 == pytest.approx(0.75) and line[0].y0 == pytest.approx(0.7)
    i = list(fig.data[0].x).index("resnet8")
    assert band[0].x0 == pytest.approx(i - 0.45)
    assert any((t.name or "").startswith("untrained") for t in fig.data)


def test_rho_axes_are_fixed_and_focus_has_intervals_and_a_teacher_legend() -> None:
    """A logit ρ of −0.018 is a small bar on [−1, 1] (not a full-height bar on an auto-scaled axis); focus bars
    carry their intervals; the teacher's reference is named in the legend."""
    s = dashboard_summary()
    s.loc[s["role"] != "teacher", "logit_rho"] = -0.018
    s["logit_rho_lo"], s["logit_rho_hi"] = s["logit_rho"] - 0.002, s["logit_rho"] + 0.002
    assert list(alignment_bars(s, metric="logit_rho", label="ρ").layout.yaxis.range) == [-1.05, 1.05]
    s["attention_rho"] = s["attention_rho"].clip(0.1, 0.9)
    s["attention_rho_lo"] = s["attention_rho"] - 0.05
    assert list(alignment_bars(s, metric="attention_rho", label="ρ").layout.yaxis.range) == [0.0, 1.05]
    fig = focus_bars(s, k=5)
    assert fig.data[0].error_y.array is not None and np.allclose(fig.data[0].error_y.array, 0.1)
    assert any(str(t.name).startswith("teacher ") for t in fig.data)  # in the legend, not over the bars
    assert not fig.layout.annotations
    twice = pd.concat([s, s[s["role"] != "teacher"]])  # two seeds per cell, summarised per model
    with pytest.raises(ValueError, match="per variant"):
        focus_bars(twice)
