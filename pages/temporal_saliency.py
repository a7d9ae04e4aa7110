"""Temporal saliency: a series with every model's saliency curve, small multiples per α, a heat strip."""

import numpy as np
import streamlit as st

from kdviz.report.input_views import segment_bars, series_saliency
from kdviz.ui.charts import chart
from kdviz.ui.compute import compare, pool_predictions, summarise
from kdviz.ui.sidebar import render_sidebar
from kdviz.ui.widgets import Stop, active_set, alpha_filter, choose_inputs, guard, link_to_view, numbers_table
from kdviz.vocab import Modality

settings = render_sidebar()  # the shared sidebar; its values persist across pages
st.title("Temporal saliency")
with guard("draw the temporal saliency"):
    mset = active_set(settings)
    if mset.task != Modality.SERIES:
        st.info("This model set works on images: see the **Attention maps** page, or pick the time-series demo "
                "in the sidebar.")
        raise Stop
    st.caption(f"{mset.name} · {settings.method_label} · {settings.parts_for(mset.task)} · k = {settings.k}")
    left, right = st.columns([3, 2])
    with left:
        display, labels, names = choose_inputs(mset, settings, key="ts", predict=pool_predictions)
    with right:
        n_channels = display.shape[1]
        channel = st.selectbox("Channel", ["all channels (sum of |A|)", *[f"channel {c}" for c in range(n_channels)]],
                               index=0 if n_channels > 1 else 1, key="ts_channel", disabled=n_channels == 1)
    show = alpha_filter(mset, key="ts_alpha")

    comp = compare(mset, display, labels, names, settings)
    show = [mid for mid in show if mid in comp.attributions]  # compare leaves out models that fail
    frame = comp.frame[comp.frame["model_id"].isin(show)].copy()
    frame["pred_name"] = [mset.class_name(int(p)) for p in frame["pred"]]
    c = None if channel.startswith("all") else int(channel.split()[-1])
    series = display[0].mean(axis=0) if c is None else display[0, c]
    curves = {mid: (comp.attributions[mid].importance[0] if c is None else np.abs(comp.attributions[mid].raw[0, c]))
              for mid in show}
    truth = "" if labels is None else f" · true class {mset.true_name(int(labels[0]))}"
    chart(series_saliency(series, curves, frame, title=f"{names[0]}{truth} — {settings.method_label}"),
          name="temporal_saliency")
    chart(segment_bars({mid: comp.part_vectors[mid][0] for mid in show}, frame.drop_duplicates("model_id"),
                       title=f"Segment importance ({comp.parts}); teacher's top-{settings.k}: "
                             f"{', '.join(f'S{i + 1}' for i in comp.teacher_topk[0])}"),
          name="segment_importance")
    with st.expander("Numbers", expanded=True):
        summary = summarise(frame)
        summary["pred_name"] = list(frame.drop_duplicates("model_id")["pred_name"])
        numbers_table(summary, key="ts_numbers")
link_to_view()
