"""The sidebar every page shares: model set, device, attribution method and its parameters, parts, k.

Every page calls :func:`render_sidebar` first (one line), which draws the same widgets and returns the
:class:`Settings`. Streamlit gives widgets on different pages different identities, so the values are
kept in a plain session-state dict and restored on the next page: a choice made on one page holds on
all of them. Method parameter widgets are built from the method registry (``kdviz.attribution.methods``): registering a
method, or adding a parameter to one, adds its widgets here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import streamlit as st
import torch

from kdviz.analysis.defaults import default_setting, randomisation_failure
from kdviz.analysis.nulls import DEFAULT_NULL_COPIES
from kdviz.attribution.methods import ParamSpec, get_method, method_label, method_names, unavailable_methods
from kdviz.attribution.precision import available_precisions
from kdviz.attribution.vision_transformer import model_kind
from kdviz.io.zoo.manifest import read_manifest
from kdviz.ui.sets import DEMO_MODEL_KINDS, DEMO_SETS, UPLOADED, demo_folder
from kdviz.ui.state import (
    K_DEVICE,
    K_FORMAT,
    K_GRID_C,
    K_GRID_R,
    K_METHOD,
    K_NULL,
    K_PARTS_KIND,
    K_PRECISION,
    K_PRESENT,
    K_SEGMENTS,
    K_SET,
    K_SETTINGS,
    K_SF_SERIES,
    K_SLIC_N,
    K_TARGET,
    K_TARGET_CLASS,
    K_TOPK,
    PAGE_CHOICES,
    UPLOAD_SET,
    Settings,
)
from kdviz.ui.superfeatures import available_m
from kdviz.vocab import Modality

__all__ = ["Settings", "method_param_widget", "render_sidebar", "set_choice"]

# Parameters a presenter rarely touches: shown in an "advanced" expander.
_ADVANCED = frozenset({"internal_batch_size", "seed", "integration", "blur_sigma"})
COMPACT_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
</style>"""
PRESENTATION_CSS = """<style>
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p { font-size: 1.15rem !important; }
[data-testid="stMarkdownContainer"] p, [data-testid="stWidgetLabel"] p { font-size: 1.15rem; }
h1 { font-size: 2.6rem !important; }
</style>"""


_SAVED = "kdviz_sidebar_saved"
_METHOD_SET = "kdviz_method_set"  # the set the method was last chosen on
_URL_READ = "kdviz_url_read"
_DEEP_LINK_QUERY = "kdviz_deep_link_query"
# Sidebar settings in the URL (short names), so a view can be bookmarked or sent as a link.
URL_NAMES = {K_SET: "set", K_DEVICE: "device", K_METHOD: "method", K_PARTS_KIND: "parts", K_SLIC_N: "slic",
             K_GRID_R: "rows", K_GRID_C: "cols", K_SEGMENTS: "segments", K_TOPK: "k", K_NULL: "null",
             K_PRESENT: "present", K_FORMAT: "format", K_TARGET: "explain", K_TARGET_CLASS: "class"}
_PARAM_PREFIX = "kdviz_p_"
_URL_PARAMS = "kdviz_url_method_params"
_URL_QUEUE = "kdviz_url_queue"  # values to write at the end of the run (flush_url)
_URL_LAST = "kdviz_url_last"  # the query string kdviz last wrote (follow_history compares with it)
_URL_BOUND = "kdviz_url_bound"  # page widget keys this run binds to the URL (kdviz.ui.widgets.from_url)


def bind_to_url(key: str) -> None:
    """Put the page widget ``key``'s value into the address bar at the end of this run (:func:`flush_url`)."""
    st.session_state.setdefault(_URL_BOUND, set()).add(key)


def _typed(text: str, like: Any) -> Any:
    """``text`` from the URL converted to the type of ``like`` (ValueError when it does not parse)."""
    if isinstance(like, bool):
        return text.lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(float(text))
    if isinstance(like, float):
        return float(text)
    return text


def read_url_once() -> None:
    """On a session's first run, seed the saved sidebar values from the URL's query parameters; on later
    runs, again whenever the address changed without kdviz writing it (see :func:`follow_history`).

    Values that do not parse or are not offered are ignored (``_restore`` falls back to the default).
    """
    for stale in (_URL_QUEUE, _URL_BOUND):  # what a run stopped by a newer change queued is not this run's
        st.session_state.pop(stale, None)
    if st.session_state.get(_URL_READ):
        follow_history()
        return
    st.session_state[_URL_READ] = True
    stashed = st.session_state.pop(_DEEP_LINK_QUERY, None)
    if stashed:  # the link's query, kept across ensure_navigation's detour, goes back into the address bar
        st.query_params.from_dict(stashed)
    _seed_from_url(st.query_params.to_dict())


def _seed_from_url(query: dict[str, str]) -> None:
    saved = st.session_state.setdefault(_SAVED, {})
    by_name = {v: k for k, v in URL_NAMES.items()}
    pending = st.session_state.setdefault("kdviz_url_pending", set())
    for name, text in query.items():
        if name in by_name:
            saved[by_name[name]] = text  # typed in _restore_url below, when the widget's default is known
            pending.add(by_name[name])
        elif name.startswith("p_"):
            st.session_state[_URL_PARAMS] = {**st.session_state.get(_URL_PARAMS, {}), name[2:]: text}


def follow_history() -> None:
    """The browser's back and forward buttons (and an address edited by hand): when the query string differs
    from the one kdviz last wrote and names kdviz settings, it wins. Sidebar values are seeded from it and the
    page's own choices in it are dropped from the session, so the page's ``from_url`` reads them again.

    Streamlit pushes one history entry per change of the query string and, on back/forward, reruns the
    page with the entry's query string; without this the next run would write the session's values back.
    """
    last = st.session_state.get(_URL_LAST)
    query = st.query_params.to_dict()
    if last is None or query == last or not set(query) & set(URL_NAMES.values()):
        return  # nothing new, or a page opened from the navigation (no query yet): the session's values stay
    _seed_from_url(query)
    for name in query:
        if name not in URL_NAMES.values() and not name.startswith("p_") and name in st.session_state:
            del st.session_state[name]  # a page widget: its from_url() seeds it from the address again
    st.session_state[_URL_LAST] = query


def _seed_method_params(method: str) -> None:
    """Method parameters from the URL (``p_n_steps=16``) go to the chosen method's widgets (once)."""
    from_url = st.session_state.pop(_URL_PARAMS, None)
    if not from_url:
        return
    saved, pending = st.session_state[_SAVED], st.session_state.setdefault("kdviz_url_pending", set())
    for name, text in from_url.items():
        saved[f"{_PARAM_PREFIX}{method}_{name}"] = text
        pending.add(f"{_PARAM_PREFIX}{method}_{name}")


def _restore_url(key: str, default: Any) -> None:
    """Convert a value that came from the URL to the widget's type (once)."""
    pending = st.session_state.get("kdviz_url_pending") or set()
    if key in pending:
        pending.discard(key)
        saved = st.session_state[_SAVED]
        try:
            saved[key] = _typed(str(saved[key]), default)
        except ValueError:
            saved[key] = default


def write_url(values: dict[str, Any]) -> None:
    """Queue ``values`` (URL name → value) for the address bar; :func:`flush_url` writes them."""
    queue = st.session_state.setdefault(_URL_QUEUE, {})
    for name, value in values.items():
        queue[name] = str(int(value) if isinstance(value, bool) else value)


def flush_url() -> None:
    """Make the address bar hold exactly this run's settings: the sidebar's, the chosen method's parameters
    (``p_…``) and this page's choices, in one change (one browser history entry per run, so the back button
    undoes one change). Every page calls this once, at its end (``kdviz.ui.widgets.link_to_view`` does).

    Built from what this run queued, not from the current query: after a page switch Streamlit's server still
    holds the previous page's query while the browser shows none.
    """
    queue = st.session_state.pop(_URL_QUEUE, {})
    remembered = st.session_state.setdefault(PAGE_CHOICES, {})
    for key in st.session_state.pop(_URL_BOUND, ()):  # page widgets bound by from_url, drawn by now
        if key in st.session_state:
            value = st.session_state[key]
            queue[key] = remembered[key] = str(int(value) if isinstance(value, bool) else value)
    current = st.query_params.to_dict()
    wanted = {name: text for name, text in current.items() if name.lower().startswith("embed")}  # Streamlit's own
    wanted.update(queue)
    if wanted != current:
        st.query_params.from_dict(wanted)
    st.session_state[_URL_LAST] = wanted


def _restore(key: str, default: Any, options: list | None = None) -> None:
    """Set the widget's key to the saved value (or ``default``) before it is drawn, on every page.

    A user's change reaches the saved dict first, through the widget's ``on_change`` callback
    (callbacks run before the script), so restoring never undoes it.
    """
    saved = st.session_state.setdefault(_SAVED, {})
    _restore_url(key, default)
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
    try:  # Streamlit internals, imported where used: a future Streamlit without them has nothing to repair
        from streamlit import config  # noqa: PLC0415 - optional internal API, see above
        from streamlit.runtime.pages_manager import PagesManager  # noqa: PLC0415 - optional internal API
    except ImportError:
        return
    # AppTest re-detects the folder on every run (a real server does so once), so it is left alone there.
    if getattr(PagesManager, "uses_pages_directory", False) and not config.get_option("global.appTest"):
        page = _page_of_caller()
        if page is not None:
            st.session_state[DEEP_LINK] = page
        st.session_state[_DEEP_LINK_QUERY] = st.query_params.to_dict()  # switch_page drops the query
        st.switch_page("app.py")


def render_sidebar() -> Settings:
    """Draw the shared sidebar and store the resulting :class:`Settings` in session state.

    Its values persist across pages and live in the URL (``?set=…&method=…&k=…``), so a view can be
    bookmarked; :func:`kdviz.ui.widgets.link_to_view` offers the link.
    """
    ensure_navigation()
    read_url_once()
    sb = st.sidebar
    set_key = _set_choice(sb)
    device, precision = _device_choice(sb)
    sb.subheader("Attribution")
    method, params = _method_choice(sb, set_key)
    target = _target_choice(sb, set_key)
    sb.subheader("Parts")
    parts_image, parts_series, k = _parts_choice(sb, set_key)
    with sb.expander("Random-weights reference"):
        null_copies = _widget(st.number_input, K_NULL, DEFAULT_NULL_COPIES, "Copies R per architecture", 0, 99,
                              help="R untrained networks of each student architecture, attributed like the "
                                   "students: the null that alignment is compared against (0 = off); the default "
                                   f"R = {DEFAULT_NULL_COPIES} is the fewest with which a rank p can reach 0.05")
    sb.divider()
    presenting = _widget(sb.toggle, K_PRESENT, False, "Presentation mode",
                         help="larger fonts in charts and captions, the sidebar folded, figure downloads as "
                              "16:9 images at slide resolution (1920×1080)")
    formats = ["png", "svg"]
    figure_format = _widget(sb.radio, K_FORMAT, "png", "Figure downloads", formats, options=formats,
                            horizontal=True, format_func=str.upper,
                            help="the format of each chart's camera button")
    settings = Settings(set_key, device, method, tuple(sorted(params.items())), parts_image,
                        parts_series, int(k), int(null_copies), bool(presenting), figure_format, precision, target)
    st.session_state[K_SETTINGS] = settings
    # Less empty space above the title on every page (Streamlit's default is 6rem), so a grid fits one screen;
    # in presentation mode, larger captions and text for a projector (charts: kdviz.ui.charts.chart).
    st.html(COMPACT_CSS + (PRESENTATION_CSS if presenting else ""))
    saved = st.session_state[_SAVED]
    url = {URL_NAMES[key]: saved[key] for key in URL_NAMES if key in saved}
    url.update({"p_" + name: value for name, value in params.items()})
    write_url(url)
    return settings


def _set_choice(sb: Any) -> str:
    """The model set picker (the demo zoos and the uploaded set)."""
    set_labels = {k: label for k, (label, _) in DEMO_SETS.items()}
    set_labels[UPLOADED] = "Uploaded models" + ("" if UPLOAD_SET in st.session_state else " (none yet)")
    return _widget(sb.selectbox, K_SET, "demo-image", "Model set", list(set_labels), options=list(set_labels),
                   format_func=set_labels.get,
                   help="the teacher, its students and their inputs; upload your own on the Models page")


def _device_choice(sb: Any) -> tuple[str, str]:
    """The device attributions run on and their autocast precision."""
    devices = _device_options()
    device = _widget(sb.selectbox, K_DEVICE, next(iter(devices)), "Device", list(devices), options=list(devices),
                     format_func=devices.get,
                     help="where attributions are computed (the first GPU is chosen when there is one)")
    sb.caption(f"Computing on **{devices[device]}**")
    precisions, missing = available_precisions(device)
    precision = _widget(sb.selectbox, K_PRECISION, "fp32", "Precision", precisions, options=precisions,
                        help="bf16/fp16 autocast: faster where the device computes in it natively; maps move a "
                             "little (benchmarks/bench_precision.py measures how much)")
    if missing:
        sb.caption(" · ".join(f"{m.precision} unavailable: {m.reason.split(';')[0]}" for m in missing))
    return device, precision


def _method_choice(sb: Any, set_key: str) -> tuple[str, dict[str, Any]]:
    """The attribution method and its parameters' widgets, built from the method's parameter specs.

    A set opens on its zoo's recommended method (``kdviz sanity --write``), else the library's default for its
    modality (:mod:`kdviz.analysis.defaults`); methods that do not apply to the set's models are greyed.
    """
    names = list(method_names())
    uploaded = st.session_state.get(UPLOAD_SET) if set_key == UPLOADED else None
    off = unavailable_methods({model_kind(m.module) for m in uploaded.models} if uploaded else
                              {DEMO_MODEL_KINDS.get(set_key, "cnn")})
    manifest = _demo_manifest(set_key)
    recommended = default_setting(manifest, kind=_set_task(set_key) or Modality.IMAGE)
    default = recommended.method if recommended.method not in off else next(n for n in names if n not in off)
    saved = st.session_state.setdefault(_SAVED, {})
    if saved.get(K_METHOD) in off and st.session_state.get(_METHOD_SET) not in (None, set_key):
        saved[K_METHOD] = default  # carried over from another set where it applied: open this set on its default
    st.session_state[_METHOD_SET] = set_key
    method = _widget(sb.selectbox, K_METHOD, default, "Method", names, options=names,
                     format_func=lambda n: method_label(n, get_method(n).label, off), help="attribution method (captum)")
    failure = randomisation_failure(manifest, method)
    if failure:
        sb.badge("fails the randomisation test on this data", icon=":material/warning:", color="orange",
                 help=failure)
    if method in off:
        sb.info(f"{get_method(method).label} does not apply to this model set: {off[method]}.")
    spec = get_method(method)
    _seed_method_params(method)
    sb.caption(spec.description)
    params: dict[str, Any] = {}
    with sb:
        for p in spec.params:
            if p.name not in _ADVANCED:
                params[p.name] = method_param_widget(p, key=f"kdviz_p_{method}_{p.name}")
        advanced = [p for p in spec.params if p.name in _ADVANCED]
        if advanced:
            with st.expander("Advanced parameters"):
                for p in advanced:
                    params[p.name] = method_param_widget(p, key=f"kdviz_p_{method}_{p.name}")
    return method, params


def _target_choice(sb: Any, set_key: str) -> str:
    """The class every model's attribution explains: 'teacher', 'label' or 'class:<name>'."""
    explained = ["teacher's prediction", "true class", "a class by name"]
    explain = _widget(sb.selectbox, K_TARGET, explained[0], "Explain", explained, options=explained,
                      help="the class whose attribution every model shows: the teacher's predicted class (the same "
                           "for every model), the input's true class, or one class you name, for every input")
    target = {"true class": "label"}.get(explain, "teacher")
    class_names = _class_names(set_key) if explain == explained[2] else ()
    if class_names:
        chosen = _widget(sb.selectbox, K_TARGET_CLASS, class_names[0], "Class explained", class_names,
                         options=list(class_names), help="type to search the model's classes")
        target = f"class:{chosen}"
    return target


def _parts_choice(sb: Any, set_key: str) -> tuple[str, str, int]:
    """How images and series are split into parts, and the teacher's top-k (k). A set known to be of one
    modality shows only its own part settings; the other's saved values are kept."""
    task = _set_task(set_key)
    superfeature_ms = available_m(key=set_key)  # M of the superfeatures stored with a demo zoo
    parts_image = _image_parts(sb, superfeature_ms) if task != Modality.SERIES else _saved_image_parts()
    if task != Modality.IMAGE:
        segments = _widget(sb.slider, K_SEGMENTS, 10, "Series segments K", 2, 50,
                           help="time series are split into K equal segments")
    else:
        segments = int(st.session_state[_SAVED].get(K_SEGMENTS, 10))
    parts_series = f"segments:{int(segments)}"
    if task != Modality.IMAGE and superfeature_ms and _widget(
            sb.toggle, K_SF_SERIES, False, f"Series parts: the teacher's {superfeature_ms[0]} superfeatures",
            help="instead of K equal segments: groups of interacting time windows, stored with the zoo"):
        parts_series = f"superfeatures:{superfeature_ms[0]}"
    k = _widget(sb.number_input, K_TOPK, 5, "Teacher's top-k parts (k)", 1, 20,
                help="focus ratio and top-k overlap use the teacher's k most important parts")
    return parts_image, parts_series, int(k)


def _image_parts(sb: Any, superfeature_ms: list[int]) -> str:
    """The image part widgets: SLIC superpixels, a grid, or the zoo's stored superfeatures."""
    kinds = ["SLIC superpixels", "grid"] + (["superfeatures"] if superfeature_ms else [])
    kind = _widget(sb.radio, K_PARTS_KIND, kinds[0], "Image parts", kinds, options=kinds, horizontal=True,
                   help="how images are split into parts (superfeatures: the teacher's groups of interacting "
                        "pixels, stored with the zoo)")
    if kind == "superfeatures":
        return f"superfeatures:{superfeature_ms[0]}"
    if kind == "grid":
        c1, c2 = sb.columns(2)
        rows = _widget(c1.number_input, K_GRID_R, 4, "rows", 1, 32)
        cols = _widget(c2.number_input, K_GRID_C, 4, "cols", 1, 32)
        return f"grid:{int(rows)}x{int(cols)}"
    n = _widget(sb.slider, K_SLIC_N, 50, "SLIC superpixels n", 5, 200, step=5)
    return f"slic:{int(n)}"


def _saved_image_parts() -> str:
    """The image parts last chosen (a series set hides the image widgets but keeps their values)."""
    saved = st.session_state.setdefault(_SAVED, {})
    if saved.get(K_PARTS_KIND) == "grid":
        return f"grid:{int(saved.get(K_GRID_R, 4))}x{int(saved.get(K_GRID_C, 4))}"
    return f"slic:{int(saved.get(K_SLIC_N, 50))}"


def _class_names(set_key: str) -> tuple[str, ...]:
    """The chosen set's class names without loading its models (a demo zoo's manifest, or the uploaded set)."""
    if set_key == UPLOADED:
        uploaded = st.session_state.get(UPLOAD_SET)
        return () if uploaded is None else tuple(uploaded.class_names)
    try:
        return tuple(str(c) for c in json.loads((demo_folder(set_key) / "zoo.json").read_text())["class_names"])
    except (OSError, ValueError, KeyError):
        return ()


def _demo_manifest(set_key: str) -> Any:
    """The zoo manifest of a demo set (for its recommended method), None for uploads or an unreadable one."""
    if set_key not in DEMO_SETS:
        return None
    try:
        return read_manifest(demo_folder(set_key))
    except ValueError:
        return None


def _set_task(set_key: str) -> Modality | None:
    """The chosen set's modality when known without loading it, else None."""
    if set_key == "demo-image":
        return Modality.IMAGE
    if set_key == "demo-series":
        return Modality.SERIES
    uploaded = st.session_state.get(UPLOAD_SET)
    return None if uploaded is None else uploaded.task
