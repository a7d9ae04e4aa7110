"""Reading an evaluation's per-model summary for the Report: the teacher, the students named by variant, their
architectures and variants in the Report's order, and error bars from the summary's 95% intervals.

The summary is ``kdviz.evaluation.evaluate.summarize``'s (or ``kdviz.analysis.aggregate``'s per-variant one):
one row per model with ``role, arch, alpha, method`` and means with ``<col>_low`` / ``<col>_high`` intervals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kdviz.report.style import alpha_colour, arch_order, variant_label, variant_sort_key

__all__ = ["error_bars", "output_alignment_column", "student_archs", "student_rows", "teacher_row", "variant_colour",
           "variant_order"]


def teacher_row(summary: pd.DataFrame) -> pd.Series | None:
    """The teacher's row, or None when the summary has none."""
    t = summary[summary["role"].astype(str) == "teacher"]
    return None if t.empty else t.iloc[0]


def student_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The students' rows (a copy) with a ``variant`` column: :func:`kdviz.report.style.variant_label`."""
    s = summary[summary["role"].astype(str) != "teacher"].copy()
    s["variant"] = [variant_label(a, m) for a, m in zip(s["alpha"], s["method"], strict=True)]
    return s


def student_archs(summary: pd.DataFrame) -> list[str]:
    """The students' architectures: the teacher's first when a student has it, then the rest largest first."""
    t = teacher_row(summary)
    return arch_order(student_rows(summary)["arch"].astype(str), teacher=None if t is None else str(t["arch"]))


def variant_order(students_frame: pd.DataFrame) -> list[str]:
    """The variants of :func:`student_rows`' frame in :func:`kdviz.report.style.variant_sort_key` order."""
    keys = {v: variant_sort_key(a, m) for a, m, v in
            zip(students_frame["alpha"], students_frame["method"], students_frame["variant"], strict=True)}
    return sorted(keys, key=keys.get)  # type: ignore[arg-type]


def variant_colour(students_frame: pd.DataFrame, variant: str) -> str:
    """The dashboard's colour for a variant (:func:`kdviz.report.style.alpha_colour` of its first student)."""
    row = students_frame[students_frame["variant"] == variant].iloc[0]
    alpha = None if pd.isna(row["alpha"]) else float(row["alpha"])
    return alpha_colour(alpha, method=str(row["method"]))


def error_bars(frame: pd.DataFrame, col: str) -> dict[str, Any]:
    """Plotly ``error_y`` / ``error_x`` of ``col`` from its ``_low`` / ``_high`` interval (none when absent)."""
    mean = frame[col].to_numpy(dtype=float)
    lo = frame[f"{col}_low"].to_numpy(dtype=float) if f"{col}_low" in frame else mean
    hi = frame[f"{col}_high"].to_numpy(dtype=float) if f"{col}_high" in frame else mean
    return {"type": "data", "array": np.nan_to_num(hi - mean), "arrayminus": np.nan_to_num(mean - lo),
            "visible": True, "thickness": 1.2}


def output_alignment_column(summary: pd.DataFrame) -> str:
    """``logit_rho``, or ``margin_rho`` when logit alignment is undefined for every student (2-class tasks:
    ``kdviz.analysis.metrics.undefined_reason``)."""
    s = student_rows(summary)
    if "logit_rho" in s and np.isfinite(s["logit_rho"].to_numpy(dtype=float)).any():
        return "logit_rho"
    return "margin_rho" if "margin_rho" in summary else "logit_rho"
