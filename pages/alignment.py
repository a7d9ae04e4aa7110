"""Alignment: attention rank alignment and logit alignment by architecture × α, and how they co-vary."""

import pandas as pd
import streamlit as st

from kdviz.analysis.metrics import format_metric, undefined_reason
from kdviz.analysis.sanity import power_sentence
from kdviz.report.alignment_views import alignment_bars, alignment_scatter
from kdviz.report.logit_table import logit_table
from kdviz.report.summary import output_alignment_column
from kdviz.ui.charts import chart
from kdviz.ui.compute import compare, pool_predictions, summarise
from kdviz.ui.sanity_view import randomisation_section
from kdviz.ui.sidebar import render_sidebar
from kdviz.ui.superfeatures import superfeature_section
from kdviz.ui.widgets import active_set, alpha_filter, choose_inputs, guard, link_to_view, numbers_table, table_height

settings = render_sidebar()  # the shared sidebar; its values persist across pages
st.title("Alignment")
with guard("compute the alignment"):
    mset = active_set(settings)
    st.caption(f"{mset.name} · {settings.method_label} · parts {settings.parts_for(mset.task)}. Attention rank "
               "alignment = Spearman ρ of part importances to the teacher; logit alignment = Spearman ρ of logits. "
               "Means over the chosen inputs with 95% bootstrap intervals.")
    display, labels, names = choose_inputs(mset, settings, key="al", predict=pool_predictions, many=True, default_n=16)
    show = alpha_filter(mset, key="al_alpha")
    comp = compare(mset, display, labels, names, settings)
    summary = summarise(comp.frame[comp.frame["model_id"].isin(show)], ci=True)
    out = output_alignment_column(summary)  # margin ρ over inputs where logit ρ is undefined (2 classes)
    out_label = "logit alignment (ρ)" if out == "logit_rho" else "output (margin) alignment (ρ over inputs)"
    reason = undefined_reason("logit_rho", n_classes=comp.logits[comp.teacher_id].shape[1])
    if reason:
        st.info(reason)
    left, right = st.columns(2)
    with left:
        chart(alignment_bars(summary, metric="attention_rho", label="attention rank alignment (ρ)"),
              name="attention_alignment")
        if "attention_rho_null" in summary and summary["attention_rho_null"].notna().any():
            st.caption(f"Dashed line and grey band: ρ of {settings.null_copies} untrained copies of each architecture "
                       "against the teacher (random-weights reference, 95% interval). The numbers table gives the "
                       "excess over it, (ρ − ρ_random) / (1 − ρ_random).")
            if sentence := power_sentence(comp.frame[comp.frame["model_id"].isin(show)], copies=settings.null_copies):
                st.caption(sentence)
    with right:
        chart(alignment_bars(summary, metric=out, label=out_label), name="logit_alignment")
    randomisation_section(mset, display, comp, settings, key="al")
    left, right = st.columns([2, 3])
    with left:
        st.subheader("Logit alignment table" if out == "logit_rho" else "Output (margin) alignment table")
        st.caption("Rows α, columns student architecture (as in the reference study); — = no such student in "
                   "this set.")
        table = logit_table(summary, column=out)
        st.dataframe(table.map(lambda v: "—" if pd.isna(v) else format_metric(v)), key="al_logit_table",
                     height=table_height(len(table)))
        st.download_button("Download table (CSV)", table.to_csv().encode(), "logit_alignment.csv", "text/csv")
    with right:
        chart(alignment_scatter(summary, x=out, x_label=out_label), name="alignment_scatter")
    with st.expander("Numbers", expanded=True):
        numbers_table(summary, key="al_numbers")
    superfeature_section(mset, settings.parts_for(mset.task), display, names, key="al")
link_to_view()
