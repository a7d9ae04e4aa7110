"""The dashboard's Streamlit layer: the only part of kdviz that imports streamlit.

``sidebar`` (shared settings), ``sets`` (the active model set), ``compute`` (cached comparisons),
``widgets`` (error guard, charts, pickers) and ``uploads`` (user checkpoints and inputs).
"""
