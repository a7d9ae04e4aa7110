"""Small building blocks the pages share: error guard, charts, the active set, input and α pickers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import streamlit as st
import torch

from kdviz.analysis.metrics import format_metric
from kdviz.analysis.nulls import format_p
from kdviz.errors import KdvizError
from kdviz.report.style import variant_label
from kdviz.ui.sets import UPLOADED, ModelSet, demo_set
from kdviz.ui.sidebar import bind_to_url, flush_url
from kdviz.ui.state import PAGE_CHOICES, UPLOAD_SET, Settings
from kdviz.ui.uploads import fit_pool

__all__ = ["Predictor", "active_set", "alpha_filter", "choose_inputs", "from_url", "guard", "link_to_view", "numbers_table",
           "seed_filter", "uploaded_images"]

log = logging.getLogger("kdviz.ui")
# predicted class per model id for inputs x on a device (kdviz.ui.compute.pool_predictions)
Predictor = Callable[[ModelSet, np.ndarray, str], dict[str, np.ndarray]]
UPLOADED_DATA = "kdviz_uploaded_data"  # DataUpload of the user's uploaded inputs (kdviz.ui.uploads)


class Stop(Exception):
    """Raised inside ``guard`` to end a page quietly after a message has been shown."""


# Errors shown as advice: kdviz's own (the message says what to change) and running out of memory (fewer inputs
# or a smaller model help). torch.cuda.OutOfMemoryError is a RuntimeError, not a MemoryError.
ADVICE_ERRORS: tuple[type[BaseException], ...] = (KdvizError, MemoryError, torch.cuda.OutOfMemoryError)


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Run a block of a page; show what stopped it and keep the rest of the app running.

    A :class:`kdviz.errors.KdvizError` (or running out of memory) is advice: its message is shown as an error
    and nothing else. Any other exception is a bug, and is said to be one: the message with its type, and the
    traceback folded in an expander (and in the server log), so a bug never reads as advice.
    """
    try:
        yield
    except Stop:
        pass
    except ADVICE_ERRORS as err:
        log.warning("%s failed: %s", what, err, exc_info=True)
        st.error(f"Could not {what}: {err}")
    except Exception as err:  # noqa: BLE001 - a bug: shown with its traceback, the rest of the app keeps running
        log.exception("%s failed", what)
        st.error(f"Could not {what}: unexpected {type(err).__name__}: {err}. This is a bug in kdviz, not a problem "
                 "with your input or settings; the traceback is below and in the server log.",
                 icon=":material/bug_report:")
        with st.expander("Traceback", expanded=False):
            st.exception(err)


def from_url(key: str, *, kind: type = str, options: list | None = None, lo: float | None = None,
             hi: float | None = None) -> None:
    """Bind a page widget's value (by its ``key``) to the URL, so a view can be bookmarked or linked.

    Call just before drawing the widget. Its value goes to the URL at the end of the run; when the widget
    has no value yet (the page was opened from a link, or opened again), a value in the URL, else the one
    this session last chose on the page, that parses and is allowed (``options``, ``lo``–``hi``) becomes
    its starting value.
    """
    bind_to_url(key)  # its value, once drawn, goes to the address bar with the sidebar's (link_to_view)
    if key in st.session_state:
        return
    text = st.query_params.get(key) or st.session_state.get(PAGE_CHOICES, {}).get(key)
    if text is None:
        return
    try:
        value = (text.lower() in ("1", "true")) if kind is bool else kind(float(text)) if kind is int else kind(text)
    except ValueError:
        return
    if options is not None and value not in options:
        return
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return
    st.session_state[key] = value


def link_to_view() -> None:
    """Write this run's settings into the address bar (one history entry) and offer a "link to this view"
    popover in the sidebar: the page's address with every setting in it, with Streamlit's copy button.
    Every page calls it last."""
    flush_url()
    base = str(st.context.url or "").split("?", 1)[0]
    query = urlencode(st.query_params.to_dict())
    with st.sidebar.popover("Copy link to this view", icon=":material/link:", width="stretch"):
        st.caption("Opens this page with the sidebar's settings and this page's choices (copy with the icon).")
        st.code(f"{base}?{query}" if query else base, language=None, wrap_lines=True)


def active_set(settings: Settings) -> ModelSet:
    """The model set chosen in the sidebar; shows why and raises :class:`Stop` when there is none."""
    if settings.set_key == UPLOADED:
        mset = st.session_state.get(UPLOAD_SET)
        if mset is None:
            st.info("No uploaded model set yet: upload a teacher and students on the **Models** page, or pick a "
                    "demo set in the sidebar.")
            raise Stop
        return mset
    try:
        with st.spinner("Loading the demo model set (first time only)…"):
            return demo_set(settings.set_key)
    except KdvizError as err:
        st.error(f"Could not load the demo model set: {err}")
        raise Stop from err


def alpha_filter(mset: ModelSet, *, key: str) -> list[str]:
    """Multiselect of the students' distillation variants; returns the model ids to show (teacher always)."""
    variants = {}
    for m in mset.students:
        variants.setdefault(variant_label(m.alpha, m.method), []).append(m.id)
    chosen = st.multiselect("Students to show (by distillation strength α)", list(variants),
                            default=list(variants), key=key,
                            help="α weights the hard-label term: 1.0 = no KD, 0.5 mild, 0.1 strong KD")
    return [mset.teacher.id] + [mid for v in chosen for mid in variants[v]]


def seed_filter(mset: ModelSet, show: list[str], *, key: str) -> tuple[list[str], int | None]:
    """On a set with training-seed replicates, a "Training seed" picker; returns the ids of ``show`` that
    belong to the chosen seed (one model per architecture × α) and the seed, or ``(show, None)`` elsewhere."""
    seeds = mset.seed_replicates()
    if not seeds:
        return show, None
    options = list(seeds)
    from_url(key, kind=int, options=options)
    seed = st.selectbox("Training seed", options, key=key, format_func=lambda s: f"seed {s}",
                        help="This set holds several students per architecture × α, trained with different seeds: "
                             "the grid shows one seed at a time (Part focus and Alignment average over seeds).")
    mine = {mset.teacher.id, *seeds[seed]}
    return [mid for mid in show if mid in mine], seed


def uploaded_images(mset: ModelSet) -> tuple[np.ndarray, list[str]] | None:
    """The user's uploaded inputs resized/converted for ``mset`` (from the Models page), or None."""
    upload = st.session_state.get(UPLOADED_DATA)
    if upload is None:
        return None
    return fit_pool(upload, mset)


def choose_inputs(mset: ModelSet, settings: Settings, *, key: str, predict: Predictor, many: bool = False,
                  default_n: int = 8) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Input picker: by index, by class, where students disagree with the teacher, or uploaded.

    ``predict(mset, x, device)`` gives every model's predicted classes (the page passes
    ``kdviz.ui.compute.pool_predictions``: widgets do not import the compute layer).

    Returns displayed inputs (N, C, …), labels (or None) and names. ``many`` picks several inputs.
    """
    pool = mset.pool
    modes = ["by index", "by class", "where students disagree with the teacher", "uploaded"]
    if pool is None:
        modes = ["uploaded"]
    from_url(f"{key}_mode", options=modes)
    mode = st.radio("Inputs", modes, horizontal=True, key=f"{key}_mode")
    if mode == "uploaded":
        return _choose_uploaded(mset, key=key, many=many)
    assert pool is not None
    if mode == "by class" and pool.labels is not None:
        classes = list(range(len(pool.label_names) or len(mset.class_names)))  # offered by name
        from_url(f"{key}_cls", kind=int, options=classes)
        cls = st.selectbox("True class", classes, format_func=mset.true_name, key=f"{key}_cls")
        candidates = np.flatnonzero(pool.labels == cls)
    elif mode == "where students disagree with the teacher":
        candidates = _disagreements(mset, settings, predict)
    else:
        candidates = np.arange(len(pool))
    if len(candidates) == 0:
        st.info("No inputs of this class in the set; showing the first input.")
        candidates = np.arange(min(1, len(pool)))
    idx = _pick_among(candidates, pool.names, key=key, many=many, default_n=default_n)
    labels = None if pool.labels is None else pool.labels[idx]
    return pool.x[idx], labels, [pool.names[i] for i in idx]


def _choose_uploaded(mset: ModelSet, *, key: str, many: bool) -> tuple[np.ndarray, None, list[str]]:
    """The uploaded inputs (all of them, or the one picked when ``many`` is False); :class:`Stop` without any."""
    got = uploaded_images(mset)
    if got is None:
        st.info("No uploaded inputs: add images or series on the **Models** page.")
        raise Stop
    x, names = got
    idx = list(range(len(x)))
    if not many and len(idx) > 1:
        from_url(f"{key}_up", kind=int, options=idx)
        idx = [st.selectbox("Uploaded input", idx, format_func=lambda i: names[i], key=f"{key}_up")]
    elif not many:
        st.caption(f"Uploaded input: {names[0]}")
    return x[idx], None, [names[i] for i in idx]


def _disagreements(mset: ModelSet, settings: Settings, predict: Predictor) -> np.ndarray:
    """Indices of the first pool inputs where students disagree with the teacher, most disagreement first."""
    assert mset.pool is not None
    scan = min(len(mset.pool), 200)
    preds = predict(mset, mset.pool.x[:scan], settings.device)
    t = preds[mset.teacher.id]
    disagree = sum((p != t).astype(int) for mid, p in preds.items() if mid != mset.teacher.id)
    order = np.argsort(-disagree, kind="stable")
    candidates = order[disagree[order] > 0]
    st.caption(f"{len(candidates)} of the first {scan} test inputs have at least one student disagreeing "
               "with the teacher (most disagreement first).")
    if len(candidates) == 0:
        st.info("Every student agrees with the teacher on these inputs; showing them in order.")
        candidates = np.arange(scan)
    return candidates


def _pick_among(candidates: np.ndarray, names: tuple[str, ...], *, key: str, many: bool,
                default_n: int) -> list[int]:
    """The pool indices chosen among ``candidates``: a count and an offset when ``many``, else one position."""
    if len(candidates) == 1:  # one input: nothing to choose (a slider from 1 to 1 is an error in Streamlit)
        st.caption(f"The only input here: {names[int(candidates[0])]}")
        return [int(candidates[0])]
    if many:
        top = int(min(64, len(candidates)))
        from_url(f"{key}_n", kind=int, lo=1, hi=top)
        n = st.slider("Number of inputs", 1, top, int(min(default_n, len(candidates))), key=f"{key}_n")
        from_url(f"{key}_off", kind=int, lo=0, hi=len(candidates) - n)
        offset = st.number_input("Starting at", 0, max(0, len(candidates) - n), 0, key=f"{key}_off")
        return [int(i) for i in candidates[int(offset):int(offset) + n]]
    from_url(f"{key}_pos", kind=int, lo=0, hi=len(candidates) - 1)
    pos = st.number_input(f"Input (0 – {len(candidates) - 1})", 0, len(candidates) - 1, 0, key=f"{key}_pos")
    return [int(candidates[int(pos)])]


_DISPLAY_COLUMNS = {
    "model_id": "model", "role": "role", "arch": "architecture", "alpha": "α", "method": "training",
    "pred_name": "prediction", "confidence": "confidence", "correct": "correct", "attention_rho": "attention ρ",
    "logit_rho": "logit ρ", "margin_rho": "margin ρ (over inputs)", "n_seeds": "seeds", "focus_ratio": "focus ratio", "focus_fraction": "focus (bounded)",
    "topk_overlap": "top-k overlap", "agree": "agreement", "kl_to_teacher": "KL(p_T‖p_S)", "ssim": "SSIM",
    "pearson": "Pearson r",
}


def numbers_table(summary: pd.DataFrame, *, key: str | None = None) -> pd.DataFrame:
    """Show per-model numbers, every row (NaN as "undefined"); returns the displayed frame (strings).

    With one input, ``correct`` is ✓/✗ per model; with several it is the accuracy on those inputs. Where
    the random-weights reference was computed, its value and the chance-corrected excess follow ρ.
    """
    one_input = "n_inputs" in summary.columns and len(summary) and int(summary["n_inputs"].max()) == 1
    names = dict(_DISPLAY_COLUMNS)
    if not one_input:
        names["correct"] = "accuracy (these inputs)"
    cols = [c for c in names if c in summary.columns]
    for extra, after in (("attention_rho_p", "attention_rho"), ("attention_rho_z", "attention_rho"),
                         ("attention_rho_excess", "attention_rho"), ("attention_rho_null", "attention_rho")):
        if extra in summary.columns and summary[extra].notna().any() and after in cols:
            cols.insert(cols.index(after) + 1, extra)
    names.update({"attention_rho_null": "ρ random-weights", "attention_rho_excess": "ρ excess over random",
                  "attention_rho_z": "ρ z (vs copies)", "attention_rho_p": "ρ p (vs copies)"})
    out = summary[cols].copy()
    for c in cols:
        if c in ("model_id", "role", "arch", "method", "pred_name"):
            continue
        if c == "alpha":
            out[c] = ["—" if a is None or pd.isna(a) else f"{float(a):g}" for a in out[c]]  # the number, as typed
        elif c == "attention_rho_p":
            copies = summary["null_copies"] if "null_copies" in summary.columns else pd.Series(np.nan, summary.index)
            out[c] = ["—" if pd.isna(p) or pd.isna(r) else format_p(float(p), int(r))
                      for p, r in zip(out[c], copies, strict=True)]
        elif c == "correct" and one_input:
            out[c] = ["✓" if v == 1 else "✗" if v == 0 else "—" for v in out[c]]
        else:
            out[c] = [format_metric(v, digits=3) for v in out[c]]
    out = out.rename(columns=names)
    # Two tables, so every column is on a 1500 px screen (one table of every column ran off its right edge):
    # the numbers read first, then the others keyed by the model again.
    first = [names.get(c, c) for c in cols if c in _FIRST_COLUMNS]
    rest = [names["model_id"]] + [names.get(c, c) for c in cols if c not in _FIRST_COLUMNS]
    st.dataframe(out[first], hide_index=True, key=key, height=table_height(len(out)))
    if len(rest) > 1:
        st.dataframe(out[rest], hide_index=True, key=None if key is None else f"{key}_more",
                     height=table_height(len(out)))
    return out


_FIRST_COLUMNS = ("model_id", "role", "arch", "alpha", "method", "pred_name", "correct", "attention_rho",
                  "attention_rho_excess", "attention_rho_z", "attention_rho_p", "logit_rho", "margin_rho", "focus_ratio", "topk_overlap")


def table_height(rows: int) -> int:
    """Pixel height that shows ``rows`` rows of ``st.dataframe`` and its header without scrolling."""
    return 35 * (rows + 1) + 3
