"""The Report for a text zoo: the reference study's views over words, from ``kdviz evaluate`` on a text zoo.

Data in (the per-model summary of ``kdviz.evaluation.text``, whose columns mean what the image/series ones do with
words as the parts), ``go.Figure`` or DataFrame out. The study's views are drawn by the same builders as for images
(``kdviz.report.study``), titled for words:

(a) ``accuracy``    accuracy by architecture × α
(b) ``focus``       focus on the teacher's top-k words (M_in / M_out), the teacher's own focus as the reference line,
                    the random-weights null per architecture as a tick
(c) ``attention``   attention rank alignment: Spearman ρ over words, with the null
(d) ``logit_table`` output alignment table, rows α, columns architecture (margin ρ over snippets: logit ρ is
                    undefined for two classes)
(e) ``covariation`` output vs attention alignment across students

and two views of the seed paper's token rationales: (f) ``overlap``, the top-k overlap with the teacher's top-k
words, and (g) ``vader``, the share of each model's top-k words in VADER's lexicon (the outside reference), each
with its null. A student trained with a method other than KD/CE (the rationale student) is drawn as its own group,
``<arch> + rationale``, so it never shares a bar slot with the α = 1.0 student of its architecture.

:func:`text_zoo_table` is the zoo's table (model, layers, α, method, accuracy, top-5 overlap, its excess over the
null with p, VADER share and its null); :func:`text_report_html` puts everything in one offline HTML file.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from kdviz.analysis.nulls import format_p
from kdviz.report import study
from kdviz.report.findings import VERDICT_RULE, findings_table
from kdviz.report.logit_table import logit_table
from kdviz.report.study_bars import attention_figure
from kdviz.report.summary import output_alignment_column
from kdviz.vocab import TrainingMethod

__all__ = [
    "TEXT_FIGURES",
    "display_summary",
    "text_findings",
    "text_report_figures",
    "text_report_html",
    "text_report_tables",
    "text_zoo_table",
]

# every training recipe but the rationale one, whose student is drawn as its own group
_PLAIN = tuple(m.value for m in TrainingMethod if m is not TrainingMethod.RATIONALE)


def _titles(k: int) -> dict[str, str]:
    return {
        "accuracy": "(a) Accuracy by architecture × α",
        "focus": f"(b) Focus on the teacher's top-{k} words",
        "attention": "(c) Attention rank alignment over words",
        "logit_table": "(d) Output alignment (architecture × α)",
        "covariation": "(e) Output vs attention alignment",
        "overlap": f"(f) Top-{k} overlap with the teacher's rationale words",
        "vader": f"(g) Share of the top-{k} words in VADER's lexicon",
    }


TEXT_FIGURES: dict[str, str] = _titles(5)


def display_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with every student of another training method (``rationale``) in its own architecture group,
    ``<arch> + <method>``, so the study's grouped views keep one bar per (architecture, α)."""
    out = summary.copy()
    other = (out["role"].astype(str) != "teacher") & ~out["method"].astype(str).isin(_PLAIN)
    out.loc[other, "arch"] = [f"{a} + {m}" for a, m in zip(out.loc[other, "arch"], out.loc[other, "method"],
                                                           strict=True)]
    out.loc[other, "method"] = "kd"
    return out


def _as_attention(summary: pd.DataFrame, col: str) -> pd.DataFrame:
    """``col`` and its interval and null in the attention columns, to draw it with ``attention_figure``."""
    out = summary.copy()
    for suffix in ("", "_low", "_high", "_null"):
        out[f"attention_rho{suffix}"] = summary.get(f"{col}{suffix}", np.nan)
    return out


def _retitle(fig: go.Figure, title: str, yaxis: str | None = None) -> go.Figure:
    fig.update_layout(title=title)
    if yaxis is not None:
        fig.update_yaxes(title=yaxis)
    return fig


def text_report_figures(summary: pd.DataFrame, *, k: int = 5) -> dict[str, go.Figure]:
    """The seven views keyed as ``TEXT_FIGURES`` (titles for ``k``)."""
    s = display_summary(summary)
    titles = _titles(k)
    figs = study.report_figures(s, k=k)
    figs["accuracy"] = _retitle(figs["accuracy"], titles["accuracy"], "accuracy on the test snippets (%)")
    figs["focus"] = _retitle(figs["focus"], titles["focus"], "focus on the teacher's top words (M_in / M_out)")
    figs["attention"] = _retitle(figs["attention"], titles["attention"], "Spearman ρ of word importance")
    figs["covariation"].update_layout(title=figs["covariation"].layout.title.text.replace(
        "(e) Logit vs attention alignment", titles["covariation"]))
    figs["overlap"] = _retitle(attention_figure(_as_attention(s, "topk_overlap")), titles["overlap"],
                               f"top-{k} overlap with the teacher")
    figs["overlap"].update_yaxes(range=[0, 1.02])
    if "vader" in s:
        fig = attention_figure(_as_attention(s, "vader"))
        teacher = s[s["role"].astype(str) == "teacher"]
        ref = float(teacher["vader"].iloc[0]) if not teacher.empty else math.nan
        if np.isfinite(ref):
            fig.add_hline(y=ref, line_dash="dash", line_color="#424242", annotation_text=f"teacher: {ref:.2f}",
                          annotation_position="top right")
        figs["vader"] = _retitle(fig, titles["vader"], f"share of the top-{k} words in VADER's lexicon")
        figs["vader"].update_yaxes(range=[0, 1.02])
    return figs


def text_findings(summary: pd.DataFrame) -> pd.DataFrame:
    """The reference study's findings (``kdviz.report.findings.findings_table``) judged on the text summary (the
    rationale student in its own group, so the α trends are the plain-KD students')."""
    return findings_table(display_summary(summary))


def _number(row: pd.Series, col: str) -> float:
    try:
        return float(row.get(col, math.nan))
    except (TypeError, ValueError):
        return math.nan


def text_zoo_table(summary: pd.DataFrame, run: dict[str, Any] | None = None, settings: Any = None) -> pd.DataFrame:
    """The text zoo's table: model, layers, α, method, attribution, accuracy on the evaluated snippets (and the zoo's
    recorded ``test_accuracy`` on its whole test split, from ``run``), top-k overlap
    with the teacher, its excess over the null with the rank p, ρ over words with its p, VADER share with the
    null's. ``run`` (the results' run facts) gives layers and hidden sizes; ``settings`` the attribution."""
    run = dict(run or {})
    layers, hidden = run.get("layers") or {}, run.get("hidden") or {}
    if settings is None:
        attribution = ""
    else:
        d = settings if isinstance(settings, dict) else settings.to_dict()
        steps = (d.get("method_params") or {}).get("n_steps")
        attribution = str(d.get("method", "")) + (f" ({steps} steps)" if steps else "")
    rows = []
    for _, r in summary.iterrows():
        mid = str(r["model_id"])
        copies = int(_number(r, "null_copies")) if np.isfinite(_number(r, "null_copies")) else 0
        p = _number(r, "topk_overlap_p")
        rows.append({
            "model": mid, "role": r.get("role"), "layers": layers.get(mid), "hidden": hidden.get(mid),
            "alpha": r.get("alpha"), "method": r.get("method"), "attribution": attribution,
            "accuracy": _number(r, "accuracy"),
            "test_accuracy": _number(pd.Series(run.get("test_accuracy") or {}), mid),
            "topk_overlap": _number(r, "topk_overlap"),
            "topk_overlap_null": _number(r, "topk_overlap_null"), "topk_overlap_excess": _number(r, "topk_overlap_excess"),
            "topk_overlap_p": p, "topk_overlap_p_text": "" if not np.isfinite(p) else format_p(p, copies),
            "attention_rho": _number(r, "attention_rho"), "attention_rho_p": _number(r, "attention_rho_p"),
            "vader": _number(r, "vader"), "vader_null": _number(r, "vader_null"), "vader_p": _number(r, "vader_p"),
            "null_copies": copies, "n": int(_number(r, "n")) if np.isfinite(_number(r, "n")) else None,
        })
    return pd.DataFrame(rows)


def text_report_tables(summary: pd.DataFrame, run: dict[str, Any] | None = None,
                       settings: Any = None) -> dict[str, pd.DataFrame]:
    """Tables for CSV export: the summary, the zoo table, the output alignment table and the findings."""
    s = display_summary(summary)
    return {
        "summary": summary,
        "text_zoo_table": text_zoo_table(summary, run, settings),
        "output_alignment": logit_table(s, column=output_alignment_column(s)).round(4).reset_index(),
        "findings": text_findings(summary),
    }


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#212121}table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ddd;
padding:4px 8px;text-align:left}th{background:#e3f2fd}h2{margin-top:2em}"""


def text_report_html(summary: pd.DataFrame, *, settings: dict[str, Any] | None = None,
                     run: dict[str, Any] | None = None, title: str = "kdviz report — text zoo") -> str:
    """Every view, the zoo table, the findings and the settings in one self-contained HTML file (opens offline)."""
    settings = dict(settings or {})
    k = int(settings.get("k", 5) or 5)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><h2>Evaluation settings</h2><table>"]
    for key in ("zoo", "dataset", "method", "method_params", "parts", "k", "limit", "n_inputs", "null_copies",
                "kdviz_version"):
        if key in settings:
            v = settings[key]
            text = json.dumps(v, default=str) if isinstance(v, (dict, list, tuple)) else str(v)
            parts.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(text)}</td></tr>")
    for key in ("elapsed_s", "device", "created"):
        if key in (run or {}):
            parts.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(str(run[key]))}</td></tr>")
    parts.append("</table><h2>Findings of the reference study on this zoo</h2>")
    parts.append(text_findings(summary).to_html(index=False, escape=True))
    parts.append(f"<p><small>{html.escape(VERDICT_RULE)}</small></p>")
    titles = _titles(k)
    for i, (key, fig) in enumerate(text_report_figures(summary, k=k).items()):
        parts.append(f"<h2>{html.escape(titles[key])}</h2>")
        parts.append(pio.to_html(fig, include_plotlyjs=(i == 0), full_html=False, div_id=f"kdviz-{key}"))
    parts.append("<h2>The text zoo's table</h2>")
    parts.append(text_zoo_table(summary, run, settings).round(3).to_html(index=False, escape=True, na_rep=""))
    parts.append("<h2>Per-model numbers (mean [95% bootstrap interval])</h2>")
    parts.append(study.summary_display(summary).to_html(index=False, escape=True))
    parts.append("</body></html>")
    return "\n".join(parts)
