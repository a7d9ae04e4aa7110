"""What the Report page adds to ``kdviz.report.study``'s figures to show them in the app and on a slide.

``kdviz.report.study`` builds the five views for any medium (HTML report, PNG); here they are fitted to the
page's half-width columns (titles wrapped, the table tall enough for its wrapped cells), and an axis that
does not start at zero is marked. (``kdviz.report.study`` draws the random-weights null itself where the
results have it.)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from kdviz.ui.state import Settings

__all__ = ["fit_for_page", "load_results_bytes", "load_results_file", "numbers_tables", "result_for_set",
           "settings_differences", "store_result"]

# The per-model numbers a reader looks for first; the rest go to a second table (one table of every column
# is wider than the page at 1500 px, its right part cut off).
MAIN_NUMBERS = ("model_id", "alpha", "n_seeds", "accuracy", "attention_rho", "attention_rho_excess", "logit_rho",
                "margin_rho", "focus_ratio")

RESULTS = "kdviz_report_results"  # session state: (set key, model hashes) -> EvaluationResult


@st.cache_data(show_spinner="Reading results…", max_entries=8)
def load_results_file(path: str, mtime: float) -> Any:
    """``kdviz.evaluation.evaluate.load_results`` of a file on the server (keyed by path and modification time)."""
    from kdviz.evaluation.evaluate import load_results

    return load_results(path)


@st.cache_data(show_spinner="Reading results…", max_entries=4)
def load_results_bytes(data: bytes) -> Any:
    """``load_results`` of an uploaded results file (parquet bytes)."""
    from kdviz.evaluation.evaluate import load_results

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "results.parquet").write_bytes(data)
        return load_results(Path(tmp) / "results.parquet")


def _wrap_title(fig: go.Figure) -> None:
    """Put what follows " — " in a title on a second, smaller line (half-width columns cut long titles)."""
    text = fig.layout.title.text or ""
    if " — " in text:
        head, tail = text.split(" — ", 1)
        fig.update_layout(title={"text": f"{head}<br><sup>{tail}</sup>"}, margin={"t": 80})


def fit_for_page(figures: dict[str, go.Figure]) -> dict[str, go.Figure]:
    """The report's figures, adjusted for the page (new figure objects; the inputs are left as they are)."""
    out = {key: go.Figure(fig) for key, fig in figures.items()}
    for fig in out.values():
        _wrap_title(fig)
    if "logit_table" in out:  # cells "mean [low, high]" wrap to two lines in a half-width column
        fig = out["logit_table"]
        rows = len(fig.data[0].cells.values[0]) if fig.data else 0
        fig.update_traces(cells={"height": 46, "font": {"size": 12}}, header={"height": 32}, selector={"type": "table"})
        fig.update_layout(height=130 + 32 + 50 * rows, margin={"l": 10, "r": 10, "b": 10})
    if "accuracy" in out:
        fig = out["accuracy"]
        low = (fig.layout.yaxis.range or [0])[0]
        if low and low > 0:  # a truncated axis is marked, not hidden
            fig.update_layout(yaxis_title=f"test accuracy (%) — axis starts at {low:.0f}%")
            fig.add_annotation(text=f"⋮ axis from {low:.0f}%", xref="paper", yref="y", x=0, y=low, showarrow=False,
                               xanchor="left", yanchor="bottom", font={"size": 11, "color": "rgb(120, 120, 120)"})
    return out


def figure_grid(figures: dict[str, go.Figure], titles: dict[str, str], *, prefix: str) -> None:
    """The Report's figures two to a row, each with an HTML download (``prefix`` keeps widget keys apart)."""
    from kdviz.report.study import figure_html
    from kdviz.ui.charts import chart

    for i, (key, fig) in enumerate(figures.items()):
        if i % 2 == 0:
            columns = st.columns(2)
        with columns[i % 2]:
            chart(fig, name=f"report_{prefix}{key}", key=f"rp_{prefix}chart_{key}")
            st.download_button(f"{titles[key][:3]} as HTML", lambda fig=fig: figure_html(fig),
                               f"kdviz_{prefix}{key}.html", "text/html", key=f"rp_{prefix}html_{key}")


def numbers_tables(shown: Any, *, key: str) -> None:
    """The Report's per-model numbers (strings "mean [low, high]") as two tables that fit the page: the main
    columns, then the others in an expander."""
    main = [c for c in MAIN_NUMBERS if c in shown.columns]
    rest = ["model_id"] + [c for c in shown.columns if c not in main]
    height = 35 * (len(shown) + 1) + 3
    st.dataframe(shown[main], hide_index=True, key=key, height=height)
    if len(rest) > 1:  # drawn inside the page's expander: a second table, not a nested expander
        st.caption("More per-model numbers: top-k overlap, the random-weights nulls, agreement, KL, SSIM, Pearson.")
        st.dataframe(shown[rest], hide_index=True, key=f"{key}_more", height=height)


def settings_differences(result_settings: Any, sidebar: Settings, task: str) -> list[str]:
    """How the results' method, parameters, parts and k differ from the sidebar's (empty when they agree)."""
    out = []
    if result_settings.method != sidebar.method:
        out.append(f"method {result_settings.method} (sidebar: {sidebar.method})")
    else:
        for name, value in sidebar.params:
            made = result_settings.method_params.get(name)
            if made is not None and made != value:
                out.append(f"{name.replace('_', ' ')} {made} (sidebar: {value})")
    if result_settings.parts != sidebar.parts_for(task):
        out.append(f"parts {result_settings.parts} (sidebar: {sidebar.parts_for(task)})")
    if int(result_settings.k) != sidebar.k:
        out.append(f"k = {result_settings.k} (sidebar: {sidebar.k})")
    return out


def _set_key(mset: Any) -> tuple:
    return (mset.key, mset.hashes)


def store_result(mset: Any, result: Any) -> None:
    """Keep an evaluation's result for the model set it was made on (one per set in this session)."""
    st.session_state.setdefault(RESULTS, {})[_set_key(mset)] = result


def result_for_set(mset: Any) -> Any:
    """The result of an evaluation run on ``mset`` in this session, or None (never another set's)."""
    return st.session_state.get(RESULTS, {}).get(_set_key(mset))
