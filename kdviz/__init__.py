"""kdviz — see how knowledge distillation changes where models look.

The library under the dashboard: model registry and safe checkpoint loading, zoos and data,
attributions and parts, alignment metrics, distillation recipes and Plotly figure builders.
Only ``kdviz.ui`` imports streamlit.
"""

__version__ = "0.1.0"
