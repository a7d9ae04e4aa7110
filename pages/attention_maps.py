"""Attention maps: one input, every model's map in a grid (teacher first, rows = architecture, columns = α)."""

import streamlit as st

from kdviz.metrics import format_metric
from kdviz.plots import alpha_label, attention_grid
from kdviz.ui.compute import compare, summarise
from kdviz.ui.sidebar import render_sidebar
from kdviz.ui.widgets import Stop, active_set, alpha_filter, chart, choose_inputs, guard, numbers_table

settings = render_sidebar()  # the shared sidebar; its values persist across pages
st.title("Attention maps")
with guard("draw the attention maps"):
    mset = active_set(settings)
    if mset.task != "image":
        st.info("This model set works on time series: see the **Temporal saliency** page.")
        raise Stop
    st.caption(f"{mset.name} · {settings.method_label} · parts {settings.parts_for(mset.task)} · k = {settings.k}")
    left, right = st.columns([3, 2])
    with left:
        display, labels, names = choose_inputs(mset, settings, key="att")
    with right:
        overlay = st.radio("Show", ["overlay on the input", "map alone"], horizontal=True, key="att_overlay")
        scale = st.radio("Colour scale", ["per map", "shared"], horizontal=True, key="att_scale",
                         help="per map: each map scaled to its own maximum; shared: one scale for all")
        diff = st.toggle("Difference to the teacher", key="att_diff")
    show = alpha_filter(mset, key="att_alpha")

    comp = compare(mset, display, labels, names, settings)
    show = [mid for mid in show if mid in comp.attributions]  # compare leaves out models that fail
    frame = comp.frame[comp.frame["model_id"].isin(show)].copy()
    frame["pred_name"] = [mset.class_name(int(p)) for p in frame["pred"]]
    captions = {
        r.model_id: (f"<b>{'teacher ' + r.arch if r.role == 'teacher' else r.arch + ' ' + alpha_label(r.alpha, r.method)}"
                     "</b> · "
                     f"pred {r.pred_name} ({r.confidence:.0%})<br>ρ {format_metric(r.attention_rho)} · "
                     f"focus {format_metric(r.focus_ratio)}")
        for r in frame.itertuples()
    }
    truth = "" if labels is None else f" · true class {mset.class_name(int(labels[0]))}"
    fig = attention_grid(
        display[0], {mid: comp.attributions[mid].importance[0] for mid in show}, frame,
        captions=captions, overlay=overlay.startswith("overlay"), shared_scale=scale == "shared", difference=diff,
        title=f"{names[0]}{truth} — {settings.method_label}",
    )
    chart(fig, name="attention_maps")
    st.caption("ρ = attention rank alignment to the teacher (Spearman of part importances); focus = mass in the "
               f"teacher's top-{settings.k} parts / mass outside. Hover a map for values.")
    with st.expander("Numbers", expanded=True):
        summary = summarise(frame)
        summary["pred_name"] = list(frame.drop_duplicates("model_id")["pred_name"])
        numbers_table(summary, key="att_numbers")
