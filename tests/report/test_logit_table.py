"""kdviz.report.logit_table: the reference study's layout, rows α and columns architecture, in the Report and
the dashboard alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdviz.report.logit_table import format_reference_table, logit_table, logit_table_figure
from tests.report.summaries import ARCHS, REFERENCE, REFERENCE_TEXT, make_summary


def test_logit_table_has_the_reference_layout():
    table = logit_table(make_summary())
    assert list(table.columns) == list(ARCHS)  # largest first
    assert list(table.index) == ["α=1.0", "α=0.5", "α=0.1", "α=0.1 + SD"]  # no KD first, SD last
    np.testing.assert_allclose(table.loc["α=0.5"].to_numpy(), REFERENCE[0.5])
    assert table.loc["α=0.1 + SD"].isna().sum() == 3 and table.loc["α=0.1 + SD", "resnet18"] == 0.55
    text = format_reference_table(logit_table(make_summary(sd=False)))
    assert text.splitlines()[1] == REFERENCE_TEXT
    assert "— — — 0.55" in format_reference_table(table)


def test_dashboard_summary_rows_are_variants_after_the_plain_alphas() -> None:
    """A dashboard summary (interval columns ``_lo``/``_hi``): variants after the plain α rows, NaN where the set
    has no such student, the teacher's architecture (not a student's here) left out."""
    rows = [("t", "teacher", "resnet56", 1.0, "ce")]
    for arch in ("resnet8", "resnet20"):
        for a in (1.0, 0.1):
            rows.append((f"{arch}_{a}", "student", arch, a, "kd"))
    rows.append(("resnet8_sd", "student", "resnet8", 0.5, "kd+sd"))
    s = pd.DataFrame(rows, columns=["model_id", "role", "arch", "alpha", "method"])
    s["logit_rho"] = np.random.default_rng(1).random(len(s))
    table = logit_table(s)
    assert list(table.index) == ["α=1.0", "α=0.1", "α=0.5 + SD"]
    assert list(table.columns) == ["resnet20", "resnet8"]
    assert np.isnan(table.loc["α=0.5 + SD", "resnet20"])  # no such student: NaN (shown as "—")
    assert table.loc["α=0.1", "resnet8"] == pytest.approx(s.set_index("model_id").loc["resnet8_0.1", "logit_rho"])


def test_the_teachers_architecture_comes_first() -> None:
    s = make_summary()
    s.loc[s["role"] == "teacher", "arch"] = "resnet34"  # a teacher no larger than some students
    assert list(logit_table(s).columns) == ["resnet34", "resnet101", "resnet50", "resnet18"]


def test_logit_table_figure_cells_carry_the_interval() -> None:
    fig = logit_table_figure(make_summary())
    cells = fig.data[0].cells.values
    assert list(cells[0]) == ["α=1.0", "α=0.5", "α=0.1", "α=0.1 + SD"]
    assert cells[1][1] == "<b>0.76</b> [0.75, 0.77]" and cells[1][3] == "—"
