"""The Report page's text zoo: its kind of model set (the shipped Rotten Tomatoes zoo, evaluated here on its test
split or on sentences uploaded on the Models page) and the view of a text result (the study's views over words,
the zoo table, downloads). Both register themselves with ``kdviz.ui.report_view``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from kdviz.analysis.nulls import DEFAULT_NULL_COPIES
from kdviz.evaluation.text import evaluate_text_zoo
from kdviz.io.untrusted import UploadError
from kdviz.report import study as report
from kdviz.report import text_study
from kdviz.report.findings import VERDICT_RULE
from kdviz.ui.report_view import (
    ReportKind,
    figure_grid,
    fit_for_page,
    numbers_tables,
    register_report_kind,
    register_result_view,
)
from kdviz.ui.state import Settings
from kdviz.ui.text import default_text_zoo, zoo_folder
from kdviz.ui.uploads import labelled_text_inputs
from kdviz.ui.widgets import UPLOADED_DATA, from_url
from kdviz.vocab import Modality

__all__ = ["run_text_evaluation", "show_text_result", "sidebar_note"]

# The text methods this page offers (registered names), with the labels the report uses for them.
_TEXT_CHOICES = {"grad_x_embedding": "Gradient saliency (gradient × embedding, L2)",
                 "integrated_gradients": "Integrated Gradients (32 steps)"}


def sidebar_note() -> None:
    """Say in the sidebar that its model set, method and parts do not apply to the text zoo's view."""
    st.sidebar.info("**Text zoo view**: the settings below (model set, method, parts, k) are for image and series "
                    "sets. The text zoo's results say how they were made; *Run an evaluation* sets its own method "
                    "and snippets on the page.", icon=":material/info:")


SPLIT, UPLOADED = "The zoo's test split", "Uploaded on the Models page"


def _uploaded_snippets(class_names: tuple[str, ...]) -> Any:
    """The sentences uploaded as inputs on the Models page, with labels where the files have them (or None)."""
    data = st.session_state.get(UPLOADED_DATA)
    if data is None or data.kind != "text":
        return None
    try:
        return labelled_text_inputs(data, class_names)
    except UploadError as err:  # the split stays available
        st.warning(f"The sentences uploaded on the Models page cannot be evaluated here: {err}")
        return None


def run_text_evaluation() -> Any:
    """Controls and a button that evaluate the text zoo here, on its test split or on the snippets uploaded on the
    Models page; the session's last text result (or None)."""
    zoo = default_text_zoo()
    own = _uploaded_snippets(tuple(zoo.manifest.class_names))
    if own is not None:
        from_url("rp_text_source", options=[SPLIT, UPLOADED])
        source = st.radio("Snippets", [SPLIT, UPLOADED], horizontal=True, key="rp_text_source",
                          help="Uploaded: the .txt / .csv sentences of the Models page (labels from a label column "
                               "with class names or indices; without one, no accuracy).")
        if source == UPLOADED:
            st.caption(f"{len(own.texts)} uploaded snippet(s): " + "; ".join(own.notes))
        else:
            own = None
    available = 1000 if own is None else len(own.texts)
    c1, c2, c3 = st.columns(3)
    from_url("rp_text_n", kind=int, lo=1, hi=1000)
    if st.session_state.get("rp_text_n", 0) > available:  # e.g. a bookmark's 50 with 3 uploaded snippets
        st.session_state["rp_text_n"] = available
    n_text = c1.number_input("Snippets (the first N)", 1, available, min(50, available), key="rp_text_n")
    from_url("rp_text_method", options=list(_TEXT_CHOICES))
    text_method = c2.selectbox("Attribution", list(_TEXT_CHOICES), format_func=_TEXT_CHOICES.get,
                               key="rp_text_method")
    from_url("rp_text_copies", kind=int, lo=0, hi=99)
    copies = c3.number_input("Untrained copies per architecture (null)", 0, 99, DEFAULT_NULL_COPIES,
                             key="rp_text_copies",
                             help="R random-weights copies of each student architecture; the rank p is at least "
                                  "1/(R + 1)")
    snippets = "the zoo's recorded test split" if own is None else "the uploaded snippets"
    st.caption(f"Every model of the text zoo on {snippets}, words as the parts, each model explaining the teacher's "
               "predicted class. Finished batches are kept: an interrupted run resumes.")
    if st.button("Run evaluation", type="primary", key="rp_text_run"):
        bar = st.progress(0.0, text="Starting…")
        given = {} if own is None else {"texts": list(own.texts), "labels": own.labels, "dataset": own.name}
        st.session_state["rp_text_result"] = evaluate_text_zoo(
            zoo, method=text_method,
            method_params={"n_steps": 32} if text_method == "integrated_gradients" else {}, limit=int(n_text),
            batch_size=25, null_copies=int(copies), progress_bar=False,
            cache_dir=Path(tempfile.gettempdir()) / "kdviz-evaluate-text",
            progress=lambda p: bar.progress(p.fraction, text=f"{p.done}/{p.total} snippets · {p.elapsed_s:.0f} s"),
            **given,
        )
    return st.session_state.get("rp_text_result")


@register_result_view(Modality.TEXT)
def show_text_result(result: Any, _settings: Settings | None = None, _source: str = "") -> None:
    """A text zoo's evaluation as the Report shows it (its own settings say how it was made: the sidebar's and the
    source of the file do not change the view)."""
    s, summary = result.settings, result.summary
    steps = f" {s.method_params['n_steps']} steps" if "n_steps" in s.method_params else ""
    made = f" · computed in {result.run['elapsed_s']:.0f} s on {result.run.get('device', '?')}" if result.run else ""
    source = s.dataset.split("#")[0] if "#" in s.dataset else None  # fingerprinted: texts given, not the split
    which = (f"the first {s.n_inputs} test snippets" if source is None
             else f"the first {s.n_inputs} given snippets" if source == "texts"
             else f"the first {s.n_inputs} snippets of {source}")
    st.info(f"**{s.zoo}** (text): {which} × {len(s.models)} models · {s.method}{steps} · "
            f"parts: words · k={s.k} · {s.null_copies} untrained copies per student architecture{made}.")
    st.subheader("The reference study's findings on this zoo")
    st.table(text_study.text_findings(summary).rename(columns=str.capitalize), hide_index=True)
    st.caption(VERDICT_RULE)
    figure_grid(fit_for_page(text_study.text_report_figures(summary, k=s.k)), text_study.TEXT_FIGURES, prefix="text_")
    tables = text_study.text_report_tables(summary, result.run, s)
    st.subheader("The text zoo's table")
    st.dataframe(tables["text_zoo_table"].round(3), hide_index=True, key="rp_text_table")
    with st.expander("Per-model numbers (mean [95% interval])", expanded=False):
        numbers_tables(report.summary_display(summary), key="rp_text_numbers")
    st.subheader("Downloads")
    cols = st.columns(len(tables) + 1)
    for col, (name, table) in zip(cols, tables.items(), strict=False):
        col.download_button(f"{name} (CSV)", table.to_csv(index=False).encode(), f"kdviz_text_{name}.csv",
                            "text/csv", key=f"rp_text_csv_{name}")
    cols[-1].download_button(
        "Download report (HTML)", lambda: text_study.text_report_html(summary, settings=s.to_dict(), run=result.run,
                                                                      title=f"kdviz report — {s.zoo}"),
        f"kdviz_report_{s.zoo}.html", "text/html", type="primary", key="rp_text_report")
    with st.expander("Evaluation settings"):
        st.json(s.to_dict(), expanded=False)


register_report_kind(ReportKind("Text zoo (Rotten Tomatoes)", lambda _settings: zoo_folder() / "results.parquet",
                                lambda _settings: run_text_evaluation(), before_sidebar=sidebar_note))
