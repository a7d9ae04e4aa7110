"""Report: the reference study's views over a whole test split, with downloads ready for a slide."""

import tempfile
import types
from pathlib import Path

import streamlit as st

from kdviz.analysis.aggregate import has_replicates, summarize_variants
from kdviz.attribution.engine import METHODS
from kdviz.evaluation.evaluate import evaluate_zoo
from kdviz.report import study as report
from kdviz.report import text_study
from kdviz.ui.report_view import (
    figure_grid,
    fit_for_page,
    load_results_bytes,
    load_results_file,
    numbers_tables,
    result_for_set,
    settings_differences,
    store_result,
)
from kdviz.ui.sets import DEMO_SETS, demo_folder
from kdviz.ui.sidebar import render_sidebar
from kdviz.ui.text_report import run_text_evaluation, show_text_result, sidebar_note
from kdviz.ui.widgets import active_set, from_url, guard, link_to_view

SHIPPED, OPEN, RUN = "Shipped demo results", "Open a results file", "Run an evaluation"
IMAGE_SETS, TEXT_ZOO = "Image and series sets", "Text zoo (Rotten Tomatoes)"
from_url("rp_kind", options=[IMAGE_SETS, TEXT_ZOO])
if st.session_state.get("rp_kind") == TEXT_ZOO:
    sidebar_note()  # above the shared sidebar's image settings, which the text view does not use
settings = render_sidebar()  # the shared sidebar; its values persist across pages


st.title("Report")
st.caption("Accuracy, focus on the teacher's top parts, attention and logit alignment over a whole test split — "
           "the reference study's views for this zoo. Error bars: 95% bootstrap intervals.")
kind = st.radio("Model set", [IMAGE_SETS, TEXT_ZOO], horizontal=True, key="rp_kind",
                help="Image and series sets: the one chosen in the sidebar. Text zoo: the shipped Rotten Tomatoes "
                     "BERTs, explained word by word.")
if kind == TEXT_ZOO:
    from kdviz.ui.text import zoo_folder


    shipped = zoo_folder() / "results.parquet"
else:
    shipped = demo_folder(settings.set_key) / "results.parquet" if settings.set_key in DEMO_SETS else None
sources = ([SHIPPED] if shipped is not None and shipped.exists() else []) + [OPEN, RUN]
from_url("rp_source", options=sources)
source = st.radio("Results", sources, horizontal=True, key="rp_source")
result = mset = None
with guard("load the results"):
    if kind == TEXT_ZOO and source == RUN:
        result = run_text_evaluation()
    elif source == SHIPPED:
        result = load_results_file(str(shipped), shipped.stat().st_mtime)
    elif source == OPEN:
        upload = st.file_uploader("Results file from `kdviz evaluate` (.parquet)", type=["parquet"], key="rp_file")
        result = None if upload is None else load_results_bytes(upload.getvalue())
    else:
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
        result = result_for_set(mset)  # only this set's own result, never the previous set's

if result is not None and text_study.is_text_result(result.settings):
    show_text_result(result)
elif result is not None:
    s, summary = result.settings, result.summary
    if has_replicates(result.frame) and not st.toggle(
            "Show training-seed replicates separately", key="rp_seeds",
            help="Off: each variant (architecture, α, method) is the mean of its seeds' means, with 95% intervals "
                 "that resample seeds, then inputs."):
        summary = summarize_variants(result.frame)
    steps = f" {s.method_params['n_steps']} steps" if "n_steps" in s.method_params else ""
    made = f" · computed in {result.run['elapsed_s']:.0f} s on {result.run.get('device', '?')}" if result.run else ""
    subset = s.limit is not None and s.limit <= s.n_inputs
    st.info(f"**{s.zoo}**: {'the first' if subset else 'all'} {s.n_inputs} test inputs × {len(s.models)} models · "
            f"{METHODS[s.method].label}{steps} · parts {s.parts} · k={s.k}{made}."
            + (" The shipped demo covers a subset so this page opens at once; run the whole split with "
               "`kdviz evaluate` or *Run an evaluation*." if source == SHIPPED and subset else ""))
    task = "timeseries" if s.parts.startswith("segments") else "image"
    differs = settings_differences(s, settings, task)
    if differs:
        st.warning("These results were made with other settings than the sidebar's: " + "; ".join(differs) + ".")
        st.button("Recompute with the sidebar's settings", key="rp_recompute",
                  on_click=lambda: st.session_state.update(rp_source=RUN))
    st.subheader("The reference study's findings on this zoo")
    st.table(report.findings_table(summary).rename(columns=str.capitalize), hide_index=True)  # wraps the long evidence text
    rule = getattr(report, "VERDICT_RULE", None)
    if isinstance(rule, str) and rule:
        st.caption(rule)
    figure_grid(fit_for_page(report.report_figures(summary, k=s.k)), report.FIGURES, prefix="")
    st.code(report.format_reference_table(report.logit_table(summary, column=report.output_alignment_column(summary))),
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
link_to_view()
