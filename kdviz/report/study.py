"""The Report: the reference study's views for any zoo, bundled as figures, CSV tables and one HTML file.

Pure builders over an evaluation's per-model summary (``kdviz.evaluation.evaluate.summarize``): data in,
``go.Figure``, DataFrame or HTML out. Error bars are the summary's 95% bootstrap intervals. The views, keyed as
:data:`FIGURES`:

(a) ``accuracy``     accuracy by architecture × α (:mod:`kdviz.report.study_bars`)
(b) ``focus``        focus on the teacher's top-k parts, the teacher's own value as the reference line
(c) ``attention``    attention rank alignment (Spearman ρ of part-importance vectors)
(d) ``logit_table``  logit alignment, rows α, columns architecture (:mod:`kdviz.report.logit_table`)
(e) ``covariation``  logit alignment vs attention alignment, one point per student (:mod:`kdviz.report.covariation`)

The findings (:mod:`kdviz.report.findings`) and the evaluation settings join them in :func:`report_html`, one
self-contained HTML file (plotly.js inlined once, so it opens offline).
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from kdviz.analysis.metrics import format_metric
from kdviz.analysis.nulls import format_p
from kdviz.report.covariation import COVARIATION_TITLE, covariation_figure
from kdviz.report.findings import VERDICT_RULE, findings_table
from kdviz.report.logit_table import LOGIT_TABLE_TITLE, format_reference_table, logit_table, logit_table_figure
from kdviz.report.study_bars import (
    ACCURACY_TITLE,
    ATTENTION_TITLE,
    FOCUS_TITLE,
    accuracy_figure,
    attention_figure,
    focus_figure,
)

__all__ = ["FIGURES", "figure_html", "report_figures", "report_html", "report_tables", "summary_display"]

FIGURES: dict[str, str] = {
    "accuracy": ACCURACY_TITLE,
    "focus": FOCUS_TITLE,
    "attention": ATTENTION_TITLE,
    "logit_table": LOGIT_TABLE_TITLE,
    "covariation": COVARIATION_TITLE,
}


def report_figures(summary: pd.DataFrame, *, k: int = 5, focus_metric: str = "focus_ratio") -> dict[str, go.Figure]:
    """The five views keyed as ``FIGURES``."""
    return {
        "accuracy": accuracy_figure(summary),
        "focus": focus_figure(summary, metric=focus_metric, k=k),
        "attention": attention_figure(summary),
        "logit_table": logit_table_figure(summary),
        "covariation": covariation_figure(summary),
    }


_SUMMARY_COLUMNS = ("model_id", "role", "arch", "alpha", "method", "n_seeds", "n", "accuracy", "attention_rho",
                    "attention_rho_null", "attention_rho_null_sd", "attention_rho_excess", "attention_rho_z",
                    "attention_rho_p", "logit_rho", "margin_rho", "focus_ratio", "focus_ratio_null", "focus_ratio_z",
                    "focus_ratio_p", "focus_fraction", "topk_overlap", "topk_overlap_null", "topk_overlap_excess",
                    "topk_overlap_z", "topk_overlap_p", "null_copies", "agree", "kl_to_teacher", "ssim", "pearson")


def summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """Per-model numbers as strings ``mean [low, high]`` for display (NaN -> "undefined")."""
    out = pd.DataFrame(index=summary.index)
    for col in _SUMMARY_COLUMNS:
        if col not in summary:
            continue
        if col.endswith("_p"):  # rank p: its floor 1/(R + 1) shown as "≥" where R is too small to decide
            copies = summary["null_copies"] if "null_copies" in summary else pd.Series(0, index=summary.index)
            out[col] = [format_p(float(p), int(r) if np.isfinite(r) else 0) for p, r in
                        zip(summary[col].astype(float), copies.astype(float), strict=True)]
        elif col.endswith(("_z", "_sd")) or col == "null_copies":
            out[col] = [format_metric(v, digits=0 if col == "null_copies" else 2) for v in summary[col].astype(float)]
        elif f"{col}_low" in summary:
            out[col] = [f"{format_metric(m, digits=3)} [{format_metric(lo, digits=3)}, {format_metric(hi, digits=3)}]"
                        for m, lo, hi in zip(summary[col], summary[f"{col}_low"], summary[f"{col}_high"], strict=True)]
        else:
            out[col] = summary[col].astype(str)
    return out


def report_tables(summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Tables for CSV export: the per-model summary, the logit alignment table and the findings."""
    return {
        "summary": summary,
        "logit_alignment": logit_table(summary).round(4).reset_index(),
        "findings": findings_table(summary),
    }


def figure_html(fig: go.Figure) -> str:
    """One figure as a standalone HTML page with plotly.js inlined (opens offline)."""
    return pio.to_html(fig, include_plotlyjs=True, full_html=True)


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#212121}table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ddd;
padding:4px 8px;text-align:left}th{background:#e3f2fd}pre{background:#f5f5f5;padding:8px}h2{margin-top:2em}"""


def report_html(
    summary: pd.DataFrame, *, settings: dict[str, Any] | None = None, run: dict[str, Any] | None = None,
    title: str = "kdviz report",
) -> str:
    """Every figure, table and the evaluation settings in one self-contained HTML document."""
    settings = dict(settings or {})
    figs = report_figures(summary, k=int(settings.get("k", 5) or 5))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append(_settings_html(settings, run or {}))
    parts.append("<h2>Findings of the reference study on this zoo</h2>")
    parts.append(findings_table(summary).to_html(index=False, escape=True))
    parts.append(f"<p><small>{html.escape(VERDICT_RULE)}</small></p>")
    for i, (key, fig) in enumerate(figs.items()):
        parts.append(f"<h2>{html.escape(FIGURES[key])}</h2>")
        parts.append(pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False, div_id=f"kdviz-{key}"))
        if key == "logit_table":
            parts.append(f"<pre>{html.escape(format_reference_table(logit_table(summary)))}</pre>")
    parts.append("<h2>Per-model numbers (mean [95% bootstrap interval])</h2>")
    parts.append(summary_display(summary).to_html(index=False, escape=True))
    parts.append("</body></html>")
    return "\n".join(parts)


def _settings_html(settings: dict[str, Any], run: dict[str, Any]) -> str:
    rows = []
    for key in ("zoo", "dataset", "method", "method_params", "parts", "k", "limit", "n_inputs", "batch_size",
                "target", "kdviz_version", "models"):
        if key in settings:
            value = settings[key]
            text = json.dumps(value, default=str) if isinstance(value, (dict, list, tuple)) else str(value)
            rows.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(text)}</td></tr>")
    for key in ("elapsed_s", "device", "created"):
        if key in run:
            rows.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(str(run[key]))}</td></tr>")
    return "<h2>Evaluation settings</h2><table>" + "".join(rows) + "</table>" if rows else ""
