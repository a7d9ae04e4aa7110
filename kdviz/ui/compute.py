"""Cached computation for the pages: comparisons, predictions, per-model summaries.

Attributions and metrics are cached with ``st.cache_data`` keyed by (model hashes, input hash, method,
parameters, parts, k, device); the modules and arrays travel in ``_``-prefixed arguments, which Streamlit
leaves out of the key. A layout change (overlay, colour scale, α filter) never reaches these functions'
keys, so it recomputes nothing.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from kdviz.attribution import predict_logits
from kdviz.compare import Comparison, compare_models
from kdviz.metrics import mean_ci
from kdviz.ui.sets import ModelSet, array_hash
from kdviz.ui.sidebar import Settings

__all__ = ["compare", "model_problems", "on_device_or_cpu", "pool_predictions", "summarise", "LAST_TIMING"]
T = TypeVar("T")

LAST_TIMING = "kdviz_last_timing"
THREADS_ENV = "KDVIZ_TORCH_THREADS"


def _configure_threads() -> None:
    """Torch's CPU threads for the dashboard's computations: ``KDVIZ_TORCH_THREADS`` when set.

    The default (torch's: one per core) is fastest for one presenter on an idle machine — the demo
    grid for one input takes 1.4–1.7 s with 2 threads against 2.9 s with 1 on the 2-core box
    (benchmarks/bench_dashboard.py). On a machine shared with other heavy jobs, 2 threads were
    measured 2–5× slower than 1 (oversubscription): set KDVIZ_TORCH_THREADS=1 there.
    """
    import torch

    wanted = os.environ.get(THREADS_ENV)
    if wanted:
        torch.set_num_threads(max(1, int(wanted)))


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


def _is_oom(err: BaseException) -> bool:
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(err, oom)) or (
        isinstance(err, RuntimeError) and "out of memory" in str(err).lower())


def on_device_or_cpu(fn: Callable[[str], T], device: str) -> tuple[T, str, str | None]:
    """``fn(device)``; when a GPU runs out of memory (the attribution engine has already retried with smaller
    batches), ``fn('cpu')`` instead. Returns the result, the device used and a note saying so (or None)."""
    try:
        return fn(device), device, None
    except Exception as err:  # noqa: BLE001 - only out-of-memory on an accelerator falls back, the rest re-raised
        if device == "cpu" or not _is_oom(err):
            raise
    import torch  # outside the except block: the failed attempt's tensors are freed first

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    note = (f"{device} ran out of memory even with smaller internal batches, so this was computed on the CPU "
            "instead (slower). Fewer inputs or a cheaper method keep it on the GPU.")
    return fn("cpu"), "cpu", note


@st.cache_data(show_spinner=False, max_entries=32)
def _problems_cached(model_hashes: tuple[str, ...], input_hash: str, device: str, n_classes: int,
                     _mset: ModelSet, _x: np.ndarray) -> dict[str, str]:
    return model_problems(_mset, _x, device=device, n_classes=n_classes)


def model_problems(mset: ModelSet, x: np.ndarray, *, device: str, n_classes: int = 0) -> dict[str, str]:
    """What is wrong with each model of ``mset`` on the model inputs ``x`` (id → message; empty when all fine).

    Catches a forward that raises (wrong architecture, grey vs RGB, input size), outputs that are not
    (N, classes), NaN or infinite outputs, and a class count different from the teacher's (or from
    ``n_classes``, the data set's, for the teacher). Out-of-memory is re-raised for the CPU fallback.
    """
    problems: dict[str, str] = {}
    shape = "×".join(str(d) for d in x.shape[1:])
    expected = None
    for m in mset.models:
        try:
            lg = predict_logits(m.module, x, device=device)
        except Exception as err:  # noqa: BLE001 - any failure of a user's model is reported, not raised
            if _is_oom(err):
                raise
            hint = (" (grey vs RGB: check the model's input channels)" if "channel" in str(err).lower() else "")
            problems[m.id] = (f"fails on inputs of shape {shape}{hint}: "
                              f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            continue
        if lg.ndim != 2 or lg.shape[0] != len(x):
            problems[m.id] = f"returns outputs of shape {lg.shape}, not (inputs, classes)."
            continue
        bad = int((~np.isfinite(lg)).any(axis=1).sum())
        if bad:
            problems[m.id] = (f"gives NaN or infinite outputs on {bad} of {len(x)} input(s); its weights may be "
                              "broken, or the inputs far from the normalisation it was trained with.")
            continue
        if expected is None:
            expected = lg.shape[1]
            if n_classes and expected != n_classes:
                problems[m.id] = (f"has {expected} outputs but the data set has {n_classes} classes; pick a "
                                  "teacher trained on these classes.")
        elif lg.shape[1] != expected:
            problems[m.id] = f"has {lg.shape[1]} outputs but the teacher has {expected} (a different class count)."
    return problems


def usable_set(mset: ModelSet, x: np.ndarray, device: str) -> ModelSet:
    """``mset`` without the students that cannot run on ``x`` (each named in a warning); ValueError when the
    teacher itself cannot."""
    problems = _problems_cached(mset.hashes, array_hash(x), device, len(mset.class_names), mset, x)
    if mset.teacher.id in problems:
        raise ValueError(f"the teacher {mset.teacher.id} {problems[mset.teacher.id]}")
    for mid, msg in problems.items():
        st.warning(f"Left out {mid}: it {msg}")
    if not problems:
        return mset
    return dataclasses.replace(mset, models=tuple(m for m in mset.models if m.id not in problems))


def compare(mset: ModelSet, display: np.ndarray, labels: np.ndarray | None, ids: list[str],
            settings: Settings) -> Comparison:
    """Attribute every model of ``mset`` on the displayed inputs ``display`` (N, C, …), with a spinner.

    Models that fail on these inputs are left out with a warning (the teacher failing is a ValueError); a GPU
    out of memory falls back to the CPU with a warning. Other library errors are raised unchanged; pages show
    them through ``guard``.
    """
    x = mset.model_input(display)
    parts = settings.parts_for(mset.task)
    lab = None if labels is None else tuple(int(v) for v in labels)
    start = time.perf_counter()

    def run(device: str) -> Comparison:
        use = usable_set(mset, x, device)
        with st.spinner(f"Computing {settings.method_label} for {len(use.models)} models × {len(x)} "
                        f"input{'s' if len(x) != 1 else ''} on {device}…"):
            return _compare_cached(
                use.hashes, array_hash(x, display), settings.method, settings.params, parts, settings.k,
                device, lab, tuple(str(i) for i in ids), use, x, display,
            )

    result, _, note = on_device_or_cpu(run, settings.device)
    if note:
        st.warning(note)
    st.session_state[LAST_TIMING] = time.perf_counter() - start
    return result


@st.cache_data(show_spinner=False, max_entries=16)
def _pool_logits(model_hashes: tuple[str, ...], input_hash: str, device: str, _mset: ModelSet,
                 _x: np.ndarray) -> dict[str, np.ndarray]:
    return {m.id: predict_logits(m.module, _x, device=device) for m in _mset.models}


def pool_predictions(mset: ModelSet, display: np.ndarray, device: str) -> dict[str, np.ndarray]:
    """Predicted class per model on ``display`` (for "where students disagree with the teacher")."""
    x = mset.model_input(display)

    def run(dev: str) -> dict[str, np.ndarray]:
        use = usable_set(mset, x, dev)
        with st.spinner(f"Predicting {len(x)} inputs with {len(use.models)} models…"):
            return _pool_logits(use.hashes, array_hash(x), dev, use, x)

    logits, _, note = on_device_or_cpu(run, device)
    if note:
        st.warning(note)
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
