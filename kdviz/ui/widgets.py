"""Small building blocks the pages share: error guard, charts, the active set, input and α pickers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from kdviz.metrics import format_metric
from kdviz.plots import alpha_label, plotly_config
from kdviz.ui.sets import UPLOADED, ModelSet, demo_set
from kdviz.ui.sidebar import UPLOAD_SET, Settings

__all__ = ["active_set", "alpha_filter", "chart", "choose_inputs", "guard", "numbers_table", "uploaded_images"]

log = logging.getLogger("kdviz.ui")
UPLOADED_DATA = "kdviz_uploaded_data"  # InputPool of the user's uploaded inputs (images or series)


class Stop(Exception):
    """Raised inside ``guard`` to end a page quietly after a message has been shown."""


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Show a library error as ``st.error`` (never a traceback) and stop this block; keep the rest of the app."""
    try:
        yield
    except Stop:
        pass
    except (ValueError, RuntimeError, OSError, MemoryError) as err:  # library errors carry a human message
        log.warning("%s failed: %s", what, err, exc_info=True)
        st.error(f"Could not {what}: {err}")
    except Exception as err:  # noqa: BLE001 - anything else: a short message here, the traceback in the log
        log.exception("%s failed", what)
        st.error(f"Could not {what}: unexpected {type(err).__name__}: {err}. The details are in the server log.")


def chart(fig: go.Figure, *, name: str, key: str | None = None) -> None:
    """``st.plotly_chart`` with the PNG download button configured in the toolbar."""
    st.plotly_chart(fig, config=plotly_config(f"kdviz_{name}"), key=key, theme=None)


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
    except (ValueError, OSError) as err:
        st.error(f"Could not load the demo model set: {err}")
        raise Stop from err


def alpha_filter(mset: ModelSet, *, key: str) -> list[str]:
    """Multiselect of the students' distillation variants; returns the model ids to show (teacher always)."""
    variants = {}
    for m in mset.students:
        variants.setdefault(alpha_label(m.alpha, m.method), []).append(m.id)
    chosen = st.multiselect("Students to show (by distillation strength α)", list(variants),
                            default=list(variants), key=key,
                            help="α weights the hard-label term: 1.0 = no KD, 0.5 mild, 0.1 strong KD")
    return [mset.teacher.id] + [mid for v in chosen for mid in variants[v]]


def uploaded_images(mset: ModelSet) -> tuple[np.ndarray, list[str]] | None:
    """The user's uploaded inputs resized/converted for ``mset`` (from the Models page), or None."""
    pool = st.session_state.get(UPLOADED_DATA)
    if pool is None:
        return None
    from kdviz.ui.uploads import fit_pool

    return fit_pool(pool, mset)


def choose_inputs(mset: ModelSet, settings: Settings, *, key: str, many: bool = False,
                  default_n: int = 8) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Input picker: by index, by class, where students disagree with the teacher, or uploaded.

    Returns displayed inputs (N, C, …), labels (or None) and names. ``many`` picks several inputs.
    """
    pool = mset.pool
    modes = ["by index", "by class", "where students disagree with the teacher", "uploaded"]
    if pool is None:
        modes = ["uploaded"]
    mode = st.radio("Inputs", modes, horizontal=True, key=f"{key}_mode")
    if mode == "uploaded":
        got = uploaded_images(mset)
        if got is None:
            st.info("No uploaded inputs: add images or series on the **Models** page.")
            raise Stop
        x, names = got
        idx = list(range(len(x)))
        if not many:
            idx = [st.selectbox("Uploaded input", idx, format_func=lambda i: names[i], key=f"{key}_up")]
        return x[idx], None, [names[i] for i in idx]
    assert pool is not None
    n_pool = len(pool)
    if mode == "by class" and pool.labels is not None:
        cls = st.selectbox("Class", range(len(mset.class_names)), format_func=mset.class_name, key=f"{key}_cls")
        candidates = np.flatnonzero(pool.labels == cls)
    elif mode == "where students disagree with the teacher":
        scan = min(n_pool, 200)
        preds = pool_predictions_safe(mset, pool.x[:scan], settings.device)
        t = preds[mset.teacher.id]
        disagree = sum((p != t).astype(int) for mid, p in preds.items() if mid != mset.teacher.id)
        order = np.argsort(-disagree, kind="stable")
        candidates = order[disagree[order] > 0]
        st.caption(f"{len(candidates)} of the first {scan} test inputs have at least one student disagreeing "
                   "with the teacher (most disagreement first).")
        if len(candidates) == 0:
            st.info("Every student agrees with the teacher on these inputs; showing them in order.")
            candidates = np.arange(scan)
    else:
        candidates = np.arange(n_pool)
    if many:
        n = st.slider("Number of inputs", 1, int(min(64, len(candidates))), int(min(default_n, len(candidates))),
                      key=f"{key}_n")
        offset = st.number_input("Starting at", 0, max(0, len(candidates) - n), 0, key=f"{key}_off")
        idx = [int(i) for i in candidates[int(offset):int(offset) + n]]
    else:
        pos = st.number_input(f"Input (0 – {len(candidates) - 1})", 0, len(candidates) - 1, 0, key=f"{key}_pos")
        idx = [int(candidates[int(pos)])]
    labels = None if pool.labels is None else pool.labels[idx]
    return pool.x[idx], labels, [pool.names[i] for i in idx]


def pool_predictions_safe(mset: ModelSet, x: np.ndarray, device: str) -> dict[str, np.ndarray]:
    from kdviz.ui.compute import pool_predictions

    return pool_predictions(mset, x, device)


_DISPLAY_COLUMNS = {
    "model_id": "model", "role": "role", "arch": "architecture", "alpha": "α", "method": "training",
    "pred_name": "prediction", "confidence": "confidence", "correct": "accuracy", "attention_rho": "attention ρ",
    "logit_rho": "logit ρ", "focus_ratio": "focus ratio", "focus_fraction": "focus (bounded)",
    "topk_overlap": "top-k overlap", "agree": "agreement", "kl_to_teacher": "KL(p_T‖p_S)", "ssim": "SSIM",
    "pearson": "Pearson r",
}


def numbers_table(summary: pd.DataFrame, *, key: str | None = None) -> pd.DataFrame:
    """Show per-model numbers (NaN as "undefined"); returns the displayed frame (strings)."""
    cols = [c for c in _DISPLAY_COLUMNS if c in summary.columns]
    out = summary[cols].copy()
    for c in cols:
        if c in ("model_id", "role", "arch", "method", "pred_name"):
            continue
        if c == "alpha":
            out[c] = [alpha_label(a).removeprefix("α=") for a in out[c]]
        else:
            out[c] = [format_metric(v, digits=3) for v in out[c]]
    out = out.rename(columns=_DISPLAY_COLUMNS)
    st.dataframe(out, hide_index=True, key=key)
    return out
