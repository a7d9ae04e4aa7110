"""Part focus: the parts over the input with the teacher's top-k, and each model's focus ratio."""

import streamlit as st

from kdviz.modalities.parts import topk_ties_note
from kdviz.report.alignment_views import focus_bars
from kdviz.report.input_views import parts_figure
from kdviz.ui.charts import chart
from kdviz.ui.compute import compare, pool_predictions, summarise
from kdviz.ui.sidebar import render_sidebar
from kdviz.ui.superfeatures import superfeature_section
from kdviz.ui.widgets import active_set, alpha_filter, choose_inputs, from_url, guard, link_to_view, numbers_table
from kdviz.vocab import Modality

settings = render_sidebar()  # the shared sidebar; its values persist across pages
st.title("Part focus")
with guard("compute the part focus"):
    mset = active_set(settings)
    parts = settings.parts_for(mset.task)
    st.caption(f"{mset.name} · {settings.method_label} · parts {parts} · k = {settings.k}. Focus ratio = "
               "the model's attribution mass inside the teacher's top-k parts / the mass outside.")
    display, labels, names = choose_inputs(mset, settings, key="pf", predict=pool_predictions, many=True, default_n=8)
    show = alpha_filter(mset, key="pf_alpha")
    comp = compare(mset, display, labels, names, settings)
    left, right = st.columns([2, 3])
    with left:
        from_url("pf_input", kind=int, options=list(range(len(names))))
        i = st.selectbox("Input drawn", range(len(names)), format_func=lambda j: names[j], key="pf_input")
        base = display[i] if mset.task == Modality.IMAGE else display[i].mean(axis=0)
        chart(parts_figure(base, comp.part_labels[i], comp.teacher_topk[i],
                           title=f"{parts} — teacher's top-{comp.k} highlighted"), name="parts")
        ties = topk_ties_note(comp.part_vectors[comp.teacher_id][i], comp.k)
        if ties:
            st.caption(f":material/info: {ties}")
    frame = comp.frame[comp.frame["model_id"].isin(show)]
    summary = summarise(frame, ci=True)
    with right:
        chart(focus_bars(summary, k=settings.k,
                         title=f"Focus on the teacher's top-{settings.k} parts (mean over {len(names)} "
                               f"input{'s' if len(names) != 1 else ''})"),
              name="focus_ratio")
        if "focus_ratio_null" in summary and summary["focus_ratio_null"].notna().any():
            st.caption(f"Dashed line and grey band: the focus of {settings.null_copies} untrained copies of each "
                       "architecture (random-weights reference, mean and 95% interval) — what focus is worth by "
                       "chance. Error bars: 95% bootstrap intervals over the inputs.")
    with st.expander("Numbers", expanded=True):
        numbers_table(summary.drop(columns=["ssim", "pearson"]), key="pf_numbers")
    superfeature_section(mset, parts, display, names, key="pf")
link_to_view()
