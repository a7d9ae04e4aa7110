"""Report: the reference study's views over a whole test split, with downloads ready for a slide."""

import streamlit as st

from kdviz.ui import text_report  # noqa: F401  (registers the text zoo's kind and view)
from kdviz.ui.report_view import (
    OPEN,
    REPORT_KINDS,
    RUN,
    SHIPPED,
    load_results_bytes,
    load_results_file,
    show_result,
)
from kdviz.ui.sidebar import render_sidebar
from kdviz.ui.widgets import from_url, guard, link_to_view

KINDS = list(REPORT_KINDS)
from_url("rp_kind", options=KINDS)
REPORT_KINDS[st.session_state.get("rp_kind", KINDS[0])].before_sidebar()  # above the shared sidebar's settings
settings = render_sidebar()  # the shared sidebar; its values persist across pages


st.title("Report")
st.caption("Accuracy, focus on the teacher's top parts, attention and logit alignment over a whole test split — "
           "the reference study's views for this zoo. Error bars: 95% bootstrap intervals.")
kind = REPORT_KINDS[st.radio("Model set", KINDS, horizontal=True, key="rp_kind",
                             help="Image and series sets: the one chosen in the sidebar. Text zoo: the shipped "
                                  "Rotten Tomatoes BERTs, explained word by word.")]
shipped = kind.shipped(settings)
sources = ([SHIPPED] if shipped is not None and shipped.exists() else []) + [OPEN, RUN]
from_url("rp_source", options=sources)
source = st.radio("Results", sources, horizontal=True, key="rp_source")
result = None
with guard("load the results"):
    if source == SHIPPED:
        result = load_results_file(str(shipped), shipped.stat().st_mtime)
    elif source == OPEN:
        upload = st.file_uploader("Results file from `kdviz evaluate` (.parquet)", type=["parquet"], key="rp_file")
        result = None if upload is None else load_results_bytes(upload.getvalue())
    else:
        result = kind.run(settings)

if result is not None:
    show_result(result, settings, source)
link_to_view()
