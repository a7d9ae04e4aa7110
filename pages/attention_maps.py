"""Attention maps: one input, every model's map in a grid that fits one screen (teacher at the head, rows =
architecture, columns = α)."""

import streamlit as st

from kdviz.analysis.metrics import format_metric
from kdviz.analysis.nulls import NULL_ALPHA, rank_p
from kdviz.attribution.ig_steps import completeness_caption
from kdviz.report.attention_grid import GridOptions, attention_grid
from kdviz.ui.charts import chart, presenting
from kdviz.ui.compute import compare, pool_predictions, summarise
from kdviz.ui.sidebar import render_sidebar
from kdviz.ui.widgets import (
    Stop,
    active_set,
    alpha_filter,
    choose_inputs,
    from_url,
    guard,
    link_to_view,
    numbers_table,
    seed_filter,
)
from kdviz.vocab import Modality

settings = render_sidebar()  # the shared sidebar; its values persist across pages and live in the URL
st.title("Attention maps")
with guard("draw the attention maps"):
    mset = active_set(settings)
    if mset.task != Modality.IMAGE:
        st.info("This model set works on time series: see the **Temporal saliency** page.")
        raise Stop
    st.caption(f"{mset.name} · {settings.method_label} · parts {settings.parts_for(mset.task)} · k = {settings.k} · "
               f"explaining {settings.target_label}")
    pick, look, scale_col, more = st.columns([4, 2, 2, 3])
    with pick:
        display, labels, names = choose_inputs(mset, settings, key="att", predict=pool_predictions)
    with look:
        from_url("att_overlay", options=["overlay on the input", "map alone"])
        overlay = st.radio("Show", ["overlay on the input", "map alone"], key="att_overlay")
    with scale_col:
        from_url("att_scale", options=["per map", "shared"])
        scale = st.radio("Colour scale", ["per map", "shared"], key="att_scale",
                         help="per map: each map scaled to its own maximum; shared: one scale for all")
    with more:
        from_url("att_diff", kind=bool)
        diff = st.toggle("Difference to the teacher", key="att_diff", help="student − teacher, both scaled to 1")
        from_url("att_excess", kind=bool)
        excess = st.toggle("ρ as excess over random", key="att_excess",
                           help="captions show (ρ − ρ_random) / (1 − ρ_random): 0 = what untrained copies of the "
                                "architecture get, 1 = the teacher's ranking (needs the random-weights reference); "
                                "✱ = rank p ≤ 0.05 against the R untrained copies on this input")
        with st.popover("Students shown", width="stretch"):
            show = alpha_filter(mset, key="att_alpha")
        show, seed = seed_filter(mset, show, key="att_seed")

    comp = compare(mset, display, labels, names, settings, null_copies=settings.null_copies if excess else 0)
    show = [mid for mid in show if mid in comp.attributions]  # compare leaves out models that fail
    frame = comp.frame[comp.frame["model_id"].isin(show)].copy()
    frame["pred_name"] = [mset.class_name(int(p)) for p in frame["pred"]]
    teacher_pred = int(frame.loc[frame["role"] == "teacher", "pred"].iloc[0])
    differs = set(frame.loc[frame["pred"] != teacher_pred, "model_id"])

    def rho_text(r) -> str:
        if excess and r.role != "teacher":  # ✱: rank p ≤ 0.05 against the R copies on this input
            mark = " ✱" if rank_p(r.attention_rho, getattr(r, "attention_rho_null_copies", ())) <= NULL_ALPHA else ""
            return f"ρ excess {format_metric(r.attention_rho_excess)}{mark}"
        return f"ρ {format_metric(r.attention_rho)}"

    seed_text = {} if seed is None else {m.id: f" · seed {m.seed}" for m in mset.students if m.seed is not None}
    sep = "<br>" if excess or seed is not None else " · "  # longer captions: three short lines, not two wide ones
    captions = {r.model_id: f"<b>{r.pred_name}</b> ({r.confidence:.0%}){sep}{rho_text(r)}<br>"
                            f"focus {format_metric(r.focus_ratio)}{seed_text.get(r.model_id, '')}"
                for r in frame.itertuples()}
    truth = "" if labels is None else f" · true class {mset.true_name(int(labels[0]))}"
    big = presenting() is not None
    fig = attention_grid(
        display[0], {mid: comp.attributions[mid].importance[0] for mid in show}, frame, GridOptions(
        captions=captions, overlay=overlay.startswith("overlay"), shared_scale=scale == "shared", difference=diff,
        title=f"{names[0]}{truth} — {settings.method_label}" + ("" if seed is None else f" — training seed {seed}"),
        differs=differs,
        width_px=1420 if big else 1100, max_height_px=720 if big else 640, font_size=16 if big else 12,
    ))
    chart(fig, name="attention_maps")
    st.caption(f"Each caption: the model's prediction (confidence) · ρ = attention rank alignment to the teacher "
               f"(Spearman of part importances) · focus = mass in the teacher's top-{settings.k} parts / mass outside. "
               "A red frame and ≠ mark a student that predicts another class than the teacher. Hover for values.")
    if settings.method == "integrated_gradients":
        st.caption(completeness_caption(frame))
    with st.expander("Numbers", expanded=True):
        summary = summarise(frame)
        summary["pred_name"] = list(frame.drop_duplicates("model_id")["pred_name"])
        numbers_table(summary, key="att_numbers")
link_to_view()
