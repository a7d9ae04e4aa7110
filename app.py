"""kdviz dashboard entry point (placeholder landing page until the dashboard lands)."""

import streamlit as st

st.set_page_config(page_title="kdviz", page_icon="🔍", layout="wide")
st.title("kdviz")
st.write("See how knowledge distillation changes where models look.")
