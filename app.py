"""kdviz dashboard: page config and navigation over the pages (nothing else)."""

import streamlit as st

from kdviz.ui.runlog import run_page

# Presentation mode (a sidebar toggle, kdviz.ui.sidebar) folds the sidebar; its own effects live in kdviz.ui.
_saved = st.session_state.get("kdviz_sidebar_saved")
_presenting = str(_saved.get("kdviz_present") if _saved else st.query_params.get("present")) in ("True", "1")
st.set_page_config(page_title="kdviz — where distilled models look", page_icon=":material/search:", layout="wide",
                   initial_sidebar_state="collapsed" if _presenting else "auto")

# One entry per page; add a page by adding a line here.
PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/models.py", title="Models", icon=":material/model_training:"),
    st.Page("pages/attention_maps.py", title="Attention maps", icon=":material/image:"),
    st.Page("pages/temporal_saliency.py", title="Temporal saliency", icon=":material/show_chart:"),
    st.Page("pages/token_rationales.py", title="Token rationales", icon=":material/text_fields:"),
    st.Page("pages/part_focus.py", title="Part focus", icon=":material/center_focus_strong:"),
    st.Page("pages/alignment.py", title="Alignment", icon=":material/compare_arrows:"),
    st.Page("pages/report.py", title="Report", icon=":material/summarize:"),
]

# Each page draws the shared sidebar itself (kdviz.ui.sidebar.render_sidebar), so a page works the same
# whether Streamlit runs it through this file or directly.
page = st.navigation(PAGES)
deep_link = st.session_state.pop("kdviz_deep_link", None)  # set by kdviz.ui.sidebar.ensure_navigation
if deep_link:
    st.switch_page(deep_link)
run_page(page)  # page.run(), timed in the server log when KDVIZ_LOG_RUNS=1 (benchmarks)
