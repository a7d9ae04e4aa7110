"""Home: what kdviz shows, and a link to each page."""

import streamlit as st

st.title("kdviz — how knowledge distillation changes where models look")
st.markdown(
    """
A **teacher** network and **students** distilled from it at several strengths **α** (α weights the
hard-label loss: **1.0 = no KD**, **0.5 = mild**, **0.1 = strong KD**). kdviz computes attributions live
(Integrated Gradients, Grad-CAM, occlusion … chosen in the sidebar) and shows, side by side with the teacher,
*where* each student looks and how closely its reasoning follows the teacher's:
**attention rank alignment** (Spearman ρ of part importances), **logit alignment**, and the **focus ratio**
on the teacher's top-k parts.

Three demo model sets ship with the app (MNIST digits with CIFAR-style ResNets, GunPoint time series with
1D CNNs, and MNIST students at three training seeds each); pick one in the sidebar, or upload your own
checkpoints on the Models page.
"""
)
st.page_link("pages/models.py", label="Models — the active teacher and students; upload your own", icon=":material/model_training:")
st.page_link("pages/attention_maps.py", label="Attention maps — a grid of maps, teacher first, by architecture × α",
             icon=":material/image:")
st.page_link("pages/temporal_saliency.py", label="Temporal saliency — saliency curves over a time series", icon=":material/show_chart:")
st.page_link("pages/part_focus.py", label="Part focus — mass inside the teacher's top-k parts", icon=":material/center_focus_strong:")
st.page_link("pages/alignment.py", label="Alignment — attention vs logit alignment by architecture × α", icon=":material/compare_arrows:")
st.page_link("pages/report.py", label="Report — the reference study's five views over a whole test split, ready for a slide",
             icon=":material/summarize:")
st.caption("Definitions (README and kdviz.analysis.metrics): focus ratio = M_in / M_out on the teacher's top-k parts; "
           "undefined values (e.g. ρ of a constant map) are shown as “undefined”.")

# Drawn after the page text: importing the attribution stack (torch) must not delay the first page.
from kdviz.ui.sidebar import flush_url, render_sidebar  # noqa: E402

render_sidebar()
flush_url()  # the sidebar's settings into the address bar (other pages: link_to_view)
