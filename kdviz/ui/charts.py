"""Charts on a page: ``st.plotly_chart`` with kdviz's toolbar and presentation mode, in one place."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from kdviz.report.style import plotly_config
from kdviz.ui.state import K_SETTINGS, Settings

__all__ = ["PRESENT_FONT", "chart", "presenting"]

PRESENT_FONT = 18  # chart font size in presentation mode


def presenting() -> Settings | None:
    """The sidebar's settings when presentation mode is on, else None."""
    settings = st.session_state.get(K_SETTINGS)
    return settings if settings is not None and settings.presenting else None


def chart(fig: go.Figure, *, name: str, key: str | None = None) -> None:
    """``st.plotly_chart`` with the download button configured in the toolbar (the sidebar's format).

    In presentation mode the chart's fonts are larger and the download is a 16:9 image at 1920×1080.
    """
    settings = st.session_state.get(K_SETTINGS)
    fmt = getattr(settings, "figure_format", "png")
    if presenting():
        fig = go.Figure(fig)  # a copy: the caller's (possibly cached) figure stays as it was
        fig.update_layout(font={"size": PRESENT_FONT}, title_font={"size": PRESENT_FONT + 6},
                          legend_font={"size": PRESENT_FONT})
    meta = fig.layout.meta if isinstance(fig.layout.meta, dict) else {}
    size = (meta["width_px"], fig.layout.height) if "width_px" in meta and fig.layout.height else None
    st.plotly_chart(fig, config=plotly_config(f"kdviz_{name}", fmt=fmt, slide=presenting() is not None, size=size),
                    key=key, theme=None)
