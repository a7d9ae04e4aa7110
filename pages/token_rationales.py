"""Token rationales: each model's words coloured by attribution, teacher first, grouped by architecture × α."""

import streamlit as st

from kdviz.analysis.nulls import DEFAULT_NULL_COPIES
from kdviz.attribution.methods import get_method, method_names
from kdviz.report.alignment_views import alignment_bars
from kdviz.ui.charts import chart
from kdviz.ui.text import (
    SENTENCE_SOURCES,
    choose_sentences,
    compared_text_models,
    dataset_comparison,
    default_text_zoo,
    method_controls,
    rationale_rows,
    sentence_comparison,
    summary_table,
    uploaded_text_models,
)
from kdviz.ui.widgets import from_url, guard, link_to_view
from kdviz.vocab import Modality

st.title("Token rationales")
st.caption("Rotten Tomatoes (fresh vs rotten): a fine-tuned MiniLM teacher and small BERT students distilled at "
           "α = 1 (no KD), 0.5 and 0.1, plus one trained on the teacher's rationales. A model's token rationale is "
           "its top-5 words; every model explains the teacher's predicted class.")
with guard("compute the token rationales"):
    zoo = default_text_zoo()
    extra = uploaded_text_models()  # Hugging Face text classifiers uploaded on the Models page
    with st.sidebar:
        from_url("tr_method", options=list(method_names(Modality.TEXT)))
        method, params = method_controls()
        from_url("tr_null", kind=int, lo=0, hi=DEFAULT_NULL_COPIES)
        st.session_state.setdefault("tr_null", 3)
        null_copies = st.slider("Untrained copies per architecture (null)", 0, DEFAULT_NULL_COPIES, key="tr_null")
        if extra:
            st.caption("Uploaded text models (role student; label and α as edited on the Models page): "
                       + ", ".join(f"{u.label} (α {'—' if u.alpha is None else f'{u.alpha:g}'})" for u, _ in extra))
        else:
            st.caption("Add your own Hugging Face text classifiers (a zip of the folder saved with save_pretrained) "
                       "on the **Models** page; they appear here as students.")
    entries, left_out = compared_text_models(zoo, extra)
    for why in left_out:
        st.warning(why)
    upload_key = "|".join(f"{u.digest}:{u.label}:{u.alpha}" for u, _ in extra)
    from_url("tr_source", options=SENTENCE_SOURCES)
    texts = choose_sentences()
    comp = sentence_comparison(entries, texts, method, params, null_copies=null_copies, upload_key=upload_key)
    t = comp.attributions[entries[0].id]
    label = zoo.manifest.class_names[int(t.target[0])]
    st.markdown(f"Teacher predicts **{label}**; shade = attribution to it (scaled per row), "
                f"underline = the teacher's top-{comp.k} words.")
    rationale_rows(comp, 0)

st.divider()
st.subheader("Dataset view")
with guard("compute the dataset view"):
    left, right = st.columns(2)
    from_url("tr_n", kind=int, lo=8, hi=256)
    st.session_state.setdefault("tr_n", 32)
    n = left.slider("Test snippets", 8, 256, step=8, key="tr_n")
    # every text method but occlusion (one pass per word and snippet), the seed paper's saliency first
    d_methods = sorted((m for m in method_names(Modality.TEXT) if m != "word_occlusion"),
                       key=lambda m: m != "grad_x_embedding")
    d_method = right.selectbox("Attribution (dataset)", d_methods,
                               format_func=lambda m: get_method(m, Modality.TEXT).label,
                               key="tr_d_method")
    if st.toggle("Compute", key="tr_dataset", help="attributes every model and its untrained copies on the snippets"):
        d, s = dataset_comparison(entries, n, d_method, {}, null_copies=max(null_copies, 1), upload_key=upload_key)
        a, b = st.columns(2)
        with a:
            chart(alignment_bars(s, metric="topk_overlap", label=f"top-{d.k} overlap with the teacher"),
                  name="text_topk_overlap")
        with b:
            chart(alignment_bars(s, metric="attention_rho", label="attention rank alignment ρ (words)"),
                  name="text_rho")
        chart(alignment_bars(s, metric="vader", label=f"share of top-{d.k} words in VADER's lexicon"),
              name="text_vader")
        st.caption(f"Bars: mean over {n} snippets (95% bootstrap). Dashed line and grey band: "
                   f"{max(null_copies, 1)} untrained copies of each architecture. p = one-sided rank p over the "
                   "copies. Texts of at most 5 words have no top-5 overlap.")
        st.dataframe(summary_table(s), hide_index=True)
link_to_view()
