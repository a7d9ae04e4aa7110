"""The Report page's parts: where results come from, and each modality's view of them.

Each kind of model set the page offers is a :class:`ReportKind` (its shipped results, its *Run an evaluation*
panel), and each modality's results have a view (:func:`register_result_view`); :func:`show_result` picks the
view from the results' own settings (``kdviz.evaluation.pipeline.result_modality``). The image and series kind
and view are here; the text zoo's register themselves in ``kdviz.ui.text_report``.

``kdviz.report.study`` builds the views for any medium (HTML report, PNG); here they are fitted to the page's
half-width columns (titles wrapped, the table tall enough for its wrapped cells), and an axis that does not
start at zero is marked.
"""

from __future__ import annotations

import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from kdviz.analysis.aggregate import has_replicates, summarize_variants
from kdviz.attribution.methods import get_method
from kdviz.evaluation.evaluate import evaluate_zoo, load_results
from kdviz.evaluation.pipeline import result_modality
from kdviz.report import study as report
from kdviz.report.findings import VERDICT_RULE, findings_table
from kdviz.report.logit_table import format_reference_table, logit_table
from kdviz.report.study import figure_html
from kdviz.report.summary import output_alignment_column
from kdviz.ui.charts import chart
from kdviz.ui.sets import DEMO_SETS, demo_folder
from kdviz.ui.state import Settings
from kdviz.ui.widgets import active_set
from kdviz.vocab import Modality

__all__ = ["OPEN", "REPORT_KINDS", "RUN", "SHIPPED", "ReportKind", "fit_for_page", "load_results_bytes",
           "load_results_file", "numbers_tables", "register_report_kind", "register_result_view", "result_for_set",
           "settings_differences", "show_result", "store_result"]

SHIPPED, OPEN, RUN = "Shipped demo results", "Open a results file", "Run an evaluation"

# The per-model numbers a reader looks for first; the rest go to a second table (one table of every column
# is wider than the page at 1500 px, its right part cut off).
MAIN_NUMBERS = ("model_id", "alpha", "n_seeds", "accuracy", "attention_rho", "attention_rho_excess", "logit_rho",
                "margin_rho", "focus_ratio")

RESULTS = "kdviz_report_results"  # session state: (set key, model hashes) -> EvaluationResult


@st.cache_data(show_spinner="Reading results…", max_entries=8)
def load_results_file(path: str, mtime: float) -> Any:
    """``kdviz.evaluation.evaluate.load_results`` of a file on the server (keyed by path and modification time)."""
    return load_results(path)


@st.cache_data(show_spinner="Reading results…", max_entries=4)
def load_results_bytes(data: bytes) -> Any:
    """``load_results`` of an uploaded results file (parquet bytes)."""
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


# --------------------------------------------------------------------------------------------------
# Kinds of model set and the views of their results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportKind:
    """A kind of model set the Report offers: its shipped results and its *Run an evaluation* panel."""

    label: str
    shipped: Callable[[Settings], Path | None]  # the shipped results file for the sidebar's settings, if any
    run: Callable[[Settings], Any]  # draws the panel; the session's result for it (or None)
    before_sidebar: Callable[[], None] = lambda: None  # drawn above the shared sidebar when this kind is chosen


REPORT_KINDS: dict[str, ReportKind] = {}  # label -> kind, in the order the page lists them
ResultView = Callable[[Any, Settings, str], None]  # (result, sidebar settings, where it came from)
_VIEWS: dict[Modality, ResultView] = {}


def register_report_kind(kind: ReportKind) -> ReportKind:
    """Offer ``kind`` on the Report page (after those registered before it)."""
    REPORT_KINDS[kind.label] = kind
    return kind


def register_result_view(*modalities: Modality) -> Callable[[ResultView], ResultView]:
    """Register ``view`` as how the Report shows results of ``modalities``."""

    def add(view: ResultView) -> ResultView:
        _VIEWS.update(dict.fromkeys(modalities, view))
        return view

    return add


def show_result(result: Any, settings: Settings, source: str) -> None:
    """Show ``result`` with the view registered for its modality."""
    _VIEWS[result_modality(result.settings)](result, settings, source)


def _shipped_demo(settings: Settings) -> Path | None:
    return demo_folder(settings.set_key) / "results.parquet" if settings.set_key in DEMO_SETS else None


def _run_on_set(settings: Settings) -> Any:
    """Evaluate the sidebar's model set here with the sidebar's settings; that set's result in this session."""
    mset = active_set(settings)
    n_pool = 0 if mset.pool is None else len(mset.pool)
    if n_pool == 0:
        st.info("This model set has no inputs to evaluate on: upload data on the **Models** page.")
    limit = st.number_input("Test inputs (the first N)", 1, max(n_pool, 1), min(100, max(n_pool, 1)), key="rp_n")
    st.caption(f"{settings.method_label} · parts {settings.parts_for(mset.task)} · k={settings.k} on "
               f"{settings.device} (sidebar). Finished batches are kept: an interrupted run resumes.")
    if st.button("Run evaluation", type="primary", disabled=n_pool == 0, key="rp_run"):
        bar = st.progress(0.0, text="Starting…")
        data = types.SimpleNamespace(name=mset.key, x_test=mset.pool.x, y_test=mset.pool.labels)
        store_result(mset, evaluate_zoo(
            mset, dataset=data, method=settings.method, method_params=settings.method_params,
            parts=settings.parts_for(mset.task), k=settings.k, limit=int(limit), batch_size=10,
            device=settings.device, cache_dir=Path(tempfile.gettempdir()) / "kdviz-evaluate",
            progress=lambda p: bar.progress(p.fraction, text=f"{p.done}/{p.total} inputs · {p.elapsed_s:.0f} s"),
            progress_bar=False,
        ))
    return result_for_set(mset)  # only this set's own result, never the previous set's


register_report_kind(ReportKind("Image and series sets", _shipped_demo, _run_on_set))


def _settings_line(result: Any, source: str) -> None:
    """What the results are: the zoo, how many inputs and models, the method, parts and k, where they were made."""
    s = result.settings
    steps = f" {s.method_params['n_steps']} steps" if "n_steps" in s.method_params else ""
    made = f" · computed in {result.run['elapsed_s']:.0f} s on {result.run.get('device', '?')}" if result.run else ""
    subset = s.limit is not None and s.limit <= s.n_inputs
    st.info(f"**{s.zoo}**: {'the first' if subset else 'all'} {s.n_inputs} test inputs × {len(s.models)} models · "
            f"{get_method(s.method).label}{steps} · parts {s.parts} · k={s.k}{made}."
            + (" The shipped demo covers a subset so this page opens at once; run the whole split with "
               "`kdviz evaluate` or *Run an evaluation*." if source == SHIPPED and subset else ""))


@register_result_view(Modality.IMAGE, Modality.SERIES)
def show_array_result(result: Any, settings: Settings, source: str) -> None:
    """An image or series evaluation: findings, the study's views, the logit table, numbers and downloads."""
    s, summary = result.settings, result.summary
    if has_replicates(result.frame) and not st.toggle(
            "Show training-seed replicates separately", key="rp_seeds",
            help="Off: each variant (architecture, α, method) is the mean of its seeds' means, with 95% intervals "
                 "that resample seeds, then inputs."):
        summary = summarize_variants(result.frame)
    _settings_line(result, source)
    differs = settings_differences(s, settings, result_modality(s))
    if differs:
        st.warning("These results were made with other settings than the sidebar's: " + "; ".join(differs) + ".")
        st.button("Recompute with the sidebar's settings", key="rp_recompute",
                  on_click=lambda: st.session_state.update(rp_source=RUN))
    st.subheader("The reference study's findings on this zoo")
    st.table(findings_table(summary).rename(columns=str.capitalize), hide_index=True)  # wraps the long evidence
    st.caption(VERDICT_RULE)
    figure_grid(fit_for_page(report.report_figures(summary, k=s.k)), report.FIGURES, prefix="")
    st.code(format_reference_table(logit_table(summary, column=output_alignment_column(summary))),
            language=None)  # margin ρ where logit ρ is undefined (2 classes), as view (d)
    with st.expander("Per-model numbers (mean [95% interval])", expanded=True):
        numbers_tables(report.summary_display(summary), key="rp_numbers")
    st.subheader("Downloads")
    cols = st.columns(4)
    for col, (name, table) in zip(cols, report.report_tables(summary).items(), strict=False):
        col.download_button(f"{name} (CSV)", table.to_csv(index=False).encode(), f"kdviz_{name}.csv", "text/csv",
                            key=f"rp_csv_{name}")
    cols[3].download_button(
        "Download report (HTML)", lambda: report.report_html(summary, settings=s.to_dict(), run=result.run,
                                                             title=f"kdviz report — {s.zoo}"),
        f"kdviz_report_{s.zoo}.html", "text/html", type="primary", key="rp_report")
    with st.expander("Evaluation settings"):
        st.json(s.to_dict(), expanded=False)
