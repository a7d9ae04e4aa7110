"""The sidebar every page shares: model set, device, attribution method and its parameters, parts, k.

Every page calls :func:`render_sidebar` first (one line), which draws the same widgets and returns the
:class:`Settings`. Streamlit gives widgets on different pages different identities, so the values are
kept in a plain session-state dict and restored on the next page: a choice made on one page holds on
all of them. Method parameter widgets are built from ``kdviz.attribution.METHODS``: adding a method or a
parameter to the table adds its widget here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from kdviz.attribution import METHODS, ParamSpec
from kdviz.ui.sets import DEMO_SETS, UPLOADED

__all__ = ["Settings", "current_settings", "render_sidebar", "method_param_widget"]

K_SET = "kdviz_set"
K_DEVICE = "kdviz_device"
K_METHOD = "kdviz_method"
K_PARTS_KIND = "kdviz_parts_kind"
K_SLIC_N = "kdviz_slic_n"
K_GRID_R = "kdviz_grid_rows"
K_GRID_C = "kdviz_grid_cols"
K_SEGMENTS = "kdviz_segments"
K_TOPK = "kdviz_k"
K_SETTINGS = "kdviz_settings"
UPLOAD_SET = "kdviz_upload_set"  # the ModelSet built on the Models page

# Parameters a presenter rarely touches: shown in an "advanced" expander.
_ADVANCED = frozenset({"internal_batch_size", "seed", "integration", "blur_sigma"})
DEFAULT_METHOD = "integrated_gradients"


@dataclass(frozen=True)
class Settings:
    """Everything the sidebar decides; each page gets it from :func:`render_sidebar`."""

    set_key: str
    device: str
    method: str
    params: tuple[tuple[str, Any], ...]
    parts_image: str  # 'slic:50' | 'grid:4x4'
    parts_series: str  # 'segments:10'
    k: int

    def parts_for(self, task: str) -> str:
        return self.parts_series if task == "timeseries" else self.parts_image

    @property
    def method_params(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def method_label(self) -> str:
        return METHODS[self.method].label


_SAVED = "kdviz_sidebar_saved"


def _restore(key: str, default: Any, options: list | None = None) -> None:
    """Set the widget's key to the saved value (or ``default``) before it is drawn, on every page.

    A user's change reaches the saved dict first, through the widget's ``on_change`` callback
    (callbacks run before the script), so restoring never undoes it.
    """
    saved = st.session_state.setdefault(_SAVED, {})
    value = saved.get(key, default)
    if options is not None and value not in options:
        value = default
    saved[key] = st.session_state[key] = value


def _changed(key: str) -> None:
    st.session_state[_SAVED][key] = st.session_state[key]


def set_choice(key: str, value: Any) -> None:
    """Change a sidebar setting from elsewhere (e.g. a button's callback), e.g. ``set_choice(K_SET, 'uploaded')``."""
    st.session_state.setdefault(_SAVED, {})[key] = value


def method_param_widget(spec: ParamSpec, *, key: str) -> Any:
    """One widget for one parameter spec (number input, select box or checkbox); its value persists."""
    label = spec.name.replace("_", " ")
    if spec.kind == "bool":
        _restore(key, bool(spec.default))
        return st.checkbox(label, help=spec.help, key=key, on_change=_changed, args=(key,))
    if spec.kind == "choice":
        _restore(key, spec.default, list(spec.choices))
        return st.selectbox(label, list(spec.choices), help=spec.help, key=key, on_change=_changed, args=(key,))
    if spec.kind == "int":
        _restore(key, int(spec.default))
        return int(st.number_input(
            label, min_value=None if spec.min is None else int(spec.min),
            max_value=None if spec.max is None else int(spec.max), step=1, help=spec.help, key=key, on_change=_changed, args=(key,),
        ))
    _restore(key, float(spec.default))
    return float(st.number_input(
        label, min_value=None if spec.min is None else float(spec.min),
        max_value=None if spec.max is None else float(spec.max), help=spec.help, key=key, format="%.3f",
        on_change=_changed, args=(key,),
    ))


def _widget(kind: Any, key: str, default: Any, *args: Any, options: list | None = None, **kwargs: Any) -> Any:
    """Draw a sidebar widget whose value persists across pages."""
    _restore(key, default, options)
    return kind(*args, key=key, on_change=_changed, args=(key,), **kwargs)


def _device_options() -> dict[str, str]:
    """Device choices with readable names: cuda (GPU name), mps, cpu."""
    import torch

    options: dict[str, str] = {}
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            options[f"cuda:{i}"] = f"GPU: {torch.cuda.get_device_name(i)}"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        options["mps"] = "Apple GPU (MPS)"
    options["cpu"] = "CPU"
    return options


DEEP_LINK = "kdviz_deep_link"  # the page to return to after a detour through app.py


def _page_of_caller() -> str | None:
    """``pages/<name>.py`` of the page script that called us (walking up the stack), if any."""
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    frame = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.parent == root / "pages":
            return f"pages/{path.name}"
        frame = frame.f_back
    return None


def ensure_navigation() -> None:
    """Go through ``app.py`` when Streamlit ran a page file directly, then come back to the page.

    Streamlit treats a ``pages/`` folder next to the entry file as a legacy multipage app until
    ``st.navigation`` has run once in the process; a deep link as the first request after start then
    runs the page alone (no page config, legacy menu). ``app.py`` returns here via :data:`DEEP_LINK`.
    """
    try:
        from streamlit import config
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without it: nothing to repair
        return
    # AppTest re-detects the folder on every run (a real server does so once), so it is left alone there.
    if getattr(PagesManager, "uses_pages_directory", False) and not config.get_option("global.appTest"):
        page = _page_of_caller()
        if page is not None:
            st.session_state[DEEP_LINK] = page
        st.switch_page("app.py")


def render_sidebar() -> Settings:
    """Draw the shared sidebar and store the resulting :class:`Settings` in session state."""
    ensure_navigation()
    sb = st.sidebar
    set_labels = {k: label for k, (label, _) in DEMO_SETS.items()}
    set_labels[UPLOADED] = "Uploaded models" + ("" if UPLOAD_SET in st.session_state else " (none yet)")
    set_key = _widget(sb.selectbox, K_SET, "demo-image", "Model set", list(set_labels), options=list(set_labels),
                      format_func=set_labels.get,
                      help="the teacher, its students and their inputs; upload your own on the Models page")
    devices = _device_options()
    device = _widget(sb.selectbox, K_DEVICE, next(iter(devices)), "Device", list(devices), options=list(devices),
                     format_func=devices.get,
                     help="where attributions are computed (the first GPU is chosen when there is one)")
    sb.caption(f"Computing on **{devices[device]}**")

    sb.subheader("Attribution")
    names = list(METHODS)
    method = _widget(sb.selectbox, K_METHOD, DEFAULT_METHOD, "Method", names, options=names,
                     format_func=lambda n: METHODS[n].label, help="attribution method (captum)")
    spec = METHODS[method]
    sb.caption(spec.description)
    params: dict[str, Any] = {}
    basic = [p for p in spec.params if p.name not in _ADVANCED]
    advanced = [p for p in spec.params if p.name in _ADVANCED]
    with sb:
        for p in basic:
            params[p.name] = method_param_widget(p, key=f"kdviz_p_{method}_{p.name}")
        if advanced:
            with st.expander("Advanced parameters"):
                for p in advanced:
                    params[p.name] = method_param_widget(p, key=f"kdviz_p_{method}_{p.name}")

    sb.subheader("Parts")
    parts_image, segments = "slic:50", 10
    saved = st.session_state[_SAVED]
    if set_key != "demo-series":  # image part settings, unless the set is known to be time series
        kinds = ["SLIC superpixels", "grid"]
        kind = _widget(sb.radio, K_PARTS_KIND, kinds[0], "Image parts", kinds, options=kinds, horizontal=True,
                       help="how images are split into parts")
        if kind == "grid":
            c1, c2 = sb.columns(2)
            rows = _widget(c1.number_input, K_GRID_R, 4, "rows", 1, 32)
            cols = _widget(c2.number_input, K_GRID_C, 4, "cols", 1, 32)
            parts_image = f"grid:{int(rows)}x{int(cols)}"
        else:
            n = _widget(sb.slider, K_SLIC_N, 50, "SLIC superpixels n", 5, 200, step=5)
            parts_image = f"slic:{int(n)}"
    elif saved.get(K_PARTS_KIND) == "grid":
        parts_image = f"grid:{int(saved.get(K_GRID_R, 4))}x{int(saved.get(K_GRID_C, 4))}"
    else:
        parts_image = f"slic:{int(saved.get(K_SLIC_N, 50))}"
    if set_key != "demo-image":
        segments = _widget(sb.slider, K_SEGMENTS, 10, "Series segments K", 2, 50,
                           help="time series are split into K equal segments")
    else:
        segments = int(saved.get(K_SEGMENTS, 10))
    k = _widget(sb.number_input, K_TOPK, 5, "Teacher's top-k parts (k)", 1, 20,
                help="focus ratio and top-k overlap use the teacher's k most important parts")
    settings = Settings(set_key, device, method, tuple(sorted(params.items())), parts_image,
                        f"segments:{int(segments)}", int(k))
    st.session_state[K_SETTINGS] = settings
    return settings


def current_settings() -> Settings:
    """Draw the shared sidebar and return its settings (same as :func:`render_sidebar`; call once per page)."""
    return render_sidebar()
