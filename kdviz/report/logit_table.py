"""The reference study's logit alignment table: rows α, columns architecture, as a DataFrame, a line of text and
a Plotly table.

Rows are the students' variants (no KD first, then stronger KD, then SD and other recipes: the Report's variant
order), columns their architectures (the teacher's first, then the rest largest first); a combination absent
from the zoo is NaN.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from kdviz.analysis.metrics import format_metric
from kdviz.report.style import TEMPLATE
from kdviz.report.summary import output_alignment_column, student_archs, student_rows, variant_order

__all__ = ["LOGIT_TABLE_TITLE", "format_reference_table", "logit_table", "logit_table_figure"]

LOGIT_TABLE_TITLE = "(d) Logit alignment (architecture × α)"


def logit_table(summary: pd.DataFrame, *, column: str = "logit_rho") -> pd.DataFrame:
    """(d) Mean ``column`` per student variant (rows, index name ``α``) and architecture (columns).

    Parameters
    ----------
    summary : per-model summary with ``role, arch, alpha, method`` and ``column``
    column : the number in the cells (``logit_rho``, ``margin_rho``, or an interval bound ``logit_rho_low``)

    Returns
    -------
    DataFrame, rows in the Report's variant order, columns the students' architectures, NaN where absent
    """
    students = student_rows(summary)
    table = students.pivot_table(index="variant", columns="arch", values=column, aggfunc="mean", dropna=False)
    table = table.reindex(index=variant_order(students), columns=student_archs(summary))
    table.index.name, table.columns.name = "α", "architecture"
    return table


def format_reference_table(table: pd.DataFrame, *, digits: int = 2) -> str:
    """The table as the reference study writes it: ``α=1.0: 1.00 0.52 0.28 0.26 · α=0.5: …``."""
    head = "rows α, columns " + "/".join(map(str, table.columns))
    rows = [f"{idx}: " + " ".join("—" if pd.isna(v) else format_metric(v, digits=digits) for v in row)
            for idx, row in zip(table.index, table.to_numpy(), strict=True)]
    return head + "\n" + " · ".join(rows)


def logit_table_figure(summary: pd.DataFrame) -> go.Figure:
    """(d) The logit alignment table drawn as a Plotly table, cells "mean [low, high]" (margin ρ with 2 classes)."""
    col = output_alignment_column(summary)
    mean = logit_table(summary, column=col)
    low = logit_table(summary, column=f"{col}_low") if f"{col}_low" in summary else mean
    high = logit_table(summary, column=f"{col}_high") if f"{col}_high" in summary else mean

    def cell(m: float, lo: float, hi: float) -> str:
        if pd.isna(m):
            return "—"
        return f"<b>{format_metric(m)}</b> [{format_metric(lo)}, {format_metric(hi)}]"

    columns = [list(mean.index)] + [
        [cell(m, lo, hi) for m, lo, hi in zip(mean[c], low[c], high[c], strict=True)] for c in mean.columns
    ]
    fig = go.Figure(go.Table(
        header={"values": ["<b>α</b>"] + [f"<b>{c}</b>" for c in mean.columns], "fill_color": "#e3f2fd",
                "align": "center"},
        cells={"values": columns, "align": "center", "height": 28},
    ))
    title = (LOGIT_TABLE_TITLE + " — mean Spearman ρ [95% CI]" if col == "logit_rho" else
             "(d) Output (margin) alignment (architecture × α) — Spearman ρ over inputs [95% CI]; logit alignment "
             "is undefined with 2 classes")
    fig.update_layout(title=title, template=TEMPLATE,
                      margin={"t": 60, "b": 10}, height=120 + 32 * len(mean))
    return fig
