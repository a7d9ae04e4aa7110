"""Cached computation for the pages: comparisons, predictions, per-model summaries.

Attributions and metrics are cached with ``st.cache_data`` keyed by (model hashes, input hash, method,
parameters, parts, k, device); the modules and arrays travel in ``_``-prefixed arguments, which Streamlit
leaves out of the key. A layout change (overlay, colour scale, α filter) never reaches these functions'
keys, so it recomputes nothing.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from kdviz.attribution import predict_logits
from kdviz.compare import Comparison, compare_models
from kdviz.metrics import mean_ci
from kdviz.ui.sets import ModelSet, array_hash
from kdviz.ui.sidebar import Settings

__all__ = ["compare", "pool_predictions", "summarise", "LAST_TIMING"]

LAST_TIMING = "kdviz_last_timing"
THREADS_ENV = "KDVIZ_TORCH_THREADS"


def _configure_threads() -> None:
    """One torch thread per computation on small machines (≤ 2 cores), unless KDVIZ_TORCH_THREADS says otherwise.

    A dashboard serves several sessions and shares the machine; measured on the 2-core box with other
    jobs running, IG over the demo zoo took 2.6–3.2 s with 1 thread against 7–17 s with 2 (oversubscription).
    """
    import torch

    wanted = os.environ.get(THREADS_ENV)
    if wanted:
        torch.set_num_threads(max(1, int(wanted)))
    elif (os.cpu_count() or 1) <= 2:
        torch.set_num_threads(1)


_configure_threads()


@st.cache_data(show_spinner=False, max_entries=64)
def _compare_cached(
    model_hashes: tuple[str, ...], input_hash: str, method: str, params: tuple, parts: str, k: int,
    device: str, labels: tuple[int, ...] | None, ids: tuple[str, ...], _mset: ModelSet, _x: np.ndarray,
    _display: np.ndarray,
) -> Comparison:
    """compare_models on the normalised batch (cached by everything that changes the numbers)."""
    images = _display if _display.ndim == 4 else None
    return compare_models(
        _mset.teacher, list(_mset.students), _x, labels=None if labels is None else np.asarray(labels),
        method=method, method_params=dict(params), parts=parts, k=k, device=device,
        images_for_slic=images, input_ids=list(ids),
    )


def compare(mset: ModelSet, display: np.ndarray, labels: np.ndarray | None, ids: list[str],
            settings: Settings) -> Comparison:
    """Attribute every model of ``mset`` on the displayed inputs ``display`` (N, C, …), with a spinner.

    Raises the library's ValueError/RuntimeError unchanged; pages show them through ``guard``.
    """
    x = mset.model_input(display)
    parts = settings.parts_for(mset.task)
    lab = None if labels is None else tuple(int(v) for v in labels)
    start = time.perf_counter()
    with st.spinner(f"Computing {settings.method_label} for {len(mset.models)} models × {len(x)} "
                    f"input{'s' if len(x) != 1 else ''} on {settings.device}…"):
        result = _compare_cached(
            mset.hashes, array_hash(x, display), settings.method, settings.params, parts, settings.k,
            settings.device, lab, tuple(str(i) for i in ids), mset, x, display,
        )
    st.session_state[LAST_TIMING] = time.perf_counter() - start
    return result


@st.cache_data(show_spinner=False, max_entries=16)
def _pool_logits(model_hashes: tuple[str, ...], input_hash: str, device: str, _mset: ModelSet,
                 _x: np.ndarray) -> dict[str, np.ndarray]:
    return {m.id: predict_logits(m.module, _x, device=device) for m in _mset.models}


def pool_predictions(mset: ModelSet, display: np.ndarray, device: str) -> dict[str, np.ndarray]:
    """Predicted class per model on ``display`` (for "where students disagree with the teacher")."""
    x = mset.model_input(display)
    with st.spinner(f"Predicting {len(x)} inputs with {len(mset.models)} models…"):
        logits = _pool_logits(mset.hashes, array_hash(x), device, mset, x)
    return {mid: lg.argmax(axis=1) for mid, lg in logits.items()}


METRIC_COLUMNS = ("attention_rho", "logit_rho", "focus_ratio", "focus_fraction", "topk_overlap",
                  "kl_to_teacher", "agree", "ssim", "pearson", "correct", "confidence")


def summarise(frame: pd.DataFrame, *, ci: bool = False) -> pd.DataFrame:
    """One row per model (teacher first): means over inputs, and 95% bootstrap bounds when ``ci``."""
    rows: list[dict[str, Any]] = []
    for mid, grp in frame.groupby("model_id", sort=False):
        first = grp.iloc[0]
        row: dict[str, Any] = {c: first[c] for c in ("model_id", "role", "arch", "alpha", "method")}
        row["n_inputs"] = len(grp)
        for c in METRIC_COLUMNS:
            vals = pd.to_numeric(grp[c], errors="coerce").astype(float).replace([np.inf], np.nan).to_numpy()
            if c == "focus_ratio":  # an infinite ratio (no mass outside) is left out of the mean
                vals = vals[np.isfinite(vals) | np.isnan(vals)]
            if ci and c in ("attention_rho", "logit_rho", "focus_ratio"):
                mean, lo, hi = mean_ci(vals)
                row[c], row[f"{c}_lo"], row[f"{c}_hi"] = mean, lo, hi
            else:
                row[c] = float(np.nanmean(vals)) if np.isfinite(vals).any() else np.nan
        rows.append(row)
        del mid
    out = pd.DataFrame(rows)
    out["_t"] = out["role"] != "teacher"
    return out.sort_values("_t", kind="stable").drop(columns="_t").reset_index(drop=True)
