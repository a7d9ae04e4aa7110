"""Cached computation for the pages: comparisons, predictions, per-model summaries.

Three levels of cache, so each change recomputes only what it changes:

* attributions, one model at a time, with ``st.cache_data`` keyed by (model hash, input hash, method,
  parameters, targets, device): a parts or k change reuses all of them; logits likewise by (model, inputs,
  device);
* part labels (SLIC is the slow one) keyed by (parts, inputs);
* finished comparisons (metrics included) by everything, in a per-process LRU of objects.

The modules and arrays travel in ``_``-prefixed arguments, which Streamlit leaves out of the key. A
layout change (overlay, colour scale, α filter) never reaches these keys, so it recomputes nothing.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import streamlit as st
import torch

from kdviz.analysis.aggregate import copy_matrix, has_replicates, margin_rho_ci, null_columns, summarize_variants
from kdviz.analysis.compare import NULL_COLUMNS, CompareOptions, Comparison, Hooks, NullOptions, compare_models
from kdviz.analysis.metrics import margin_alignment, mean_ci
from kdviz.attribution.cache import default_cache, weights_key
from kdviz.attribution.engine import Attribution, attribute, predict_logits
from kdviz.attribution.precision import precision_context
from kdviz.errors import UnsupportedModelError
from kdviz.modalities.parts import label_parts, parse_parts
from kdviz.ui.sets import ModelSet, array_hash
from kdviz.ui.state import Settings
from kdviz.ui.superfeatures import superfeature_parts

__all__ = ["compare", "model_problems", "on_device_or_cpu", "pool_predictions", "explained_class", "seed_means", "summarise", "LAST_TIMING"]
T = TypeVar("T")

LAST_TIMING = "kdviz_last_timing"
THREADS_ENV = "KDVIZ_TORCH_THREADS"


def _configure_threads() -> None:
    """Torch's CPU threads for the dashboard: ``KDVIZ_TORCH_THREADS`` (a number, or ``auto``: one fewer than
    torch's default of one per core, at least one); unset: torch's default.

    ``make run`` (kdviz.ui.launch) sets ``auto``: the browser and Streamlit's own threads share the machine
    with every computation, so leaving them a core keeps the page responsive (benchmarks/bench_dashboard.py).
    """
    wanted = os.environ.get(THREADS_ENV, "").strip().lower()
    if wanted == "auto":
        torch.set_num_threads(max(1, torch.get_num_threads() - 1))
    elif wanted:
        torch.set_num_threads(max(1, int(wanted)))


_configure_threads()


@st.cache_data(show_spinner=False, max_entries=2048)
def _attribution_cached(model_key: str, input_hash: str, method: str, params: tuple, targets: tuple[int, ...],
                        device: str, _module: Any, _x: np.ndarray, precision: str = "fp32") -> Attribution:
    """One model's attribution of one batch, keyed by (model, inputs, method, parameters, targets, device).

    Parts and k are not in the key: changing them reuses every attribution and recomputes only metrics.
    Backed by the disk cache (``kdviz.attribution.cache``), so a restarted app recomputes nothing it computed
    before.
    """

    def compute() -> Attribution:
        with precision_context(device, precision):
            return attribute(_module, _x, method=method, target=np.asarray(targets, dtype=np.int64), device=device,
                             **dict(params))

    disk = default_cache()
    if disk is None:
        return compute()
    key = disk.key(weights=weights_key(_module), inputs=input_hash, method=method, params=dict(params), targets=targets,
                   precision=precision, device=device)
    return disk.get_or_compute(key, compute)


@st.cache_data(show_spinner=False, max_entries=2048)
def _logits_cached(model_key: str, input_hash: str, device: str, _module: Any, _x: np.ndarray) -> np.ndarray:
    """One model's logits on one batch: a parts or k change needs them again but they cannot change."""
    return disk_logits(_module, _x, device)


def disk_logits(module: Any, x: np.ndarray, device: str) -> np.ndarray:
    """``predict_logits`` through the disk cache (a restart's first forward passes are the slow ones)."""
    disk = default_cache()
    if disk is None:
        return predict_logits(module, x, device=device)
    key = disk.logits_key(weights=weights_key(module), inputs=array_hash(x), device=device)
    return disk.logits(key, lambda: predict_logits(module, x, device=device))


@st.cache_data(show_spinner=False, max_entries=128)
def _part_labels_cached(parts: str, input_hash: str, _x: np.ndarray, _display: np.ndarray,
                        _spec: Any = None) -> np.ndarray:
    """The part labelling (SLIC, grid, segments, stored superfeatures in ``_spec``) of a batch, keyed by the
    parts spec and the inputs."""
    spec = parse_parts(parts if _spec is None else _spec)  # superfeature_parts gives a str or a PartSpec
    return label_parts(spec, _x, _display if _display.ndim == 4 else None)


class _LRU:
    """A small thread-safe least-recently-used store (one per process, shared by sessions)."""

    def __init__(self, size: int) -> None:
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key: Hashable, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


@st.cache_resource(show_spinner=False)
def _comparisons() -> _LRU:
    """Finished comparisons by everything that changes their numbers. Kept as objects (not pickled, as
    ``st.cache_data`` would), so a revisit or a layout change costs a dictionary look-up; the progress bar
    is drawn outside any cached function, so nothing is replayed from a cache."""
    return _LRU(64)


def _model_key(entry: Any, keys: dict[str, str]) -> str:
    """Cache key of a model's attributions: its checkpoint hash and architecture (set models), or the
    deterministic id of a random-weights copy (``random:resnet8:10c1ch:seed10000``)."""
    return keys.get(str(entry.id)) or f"{entry.id}:{getattr(entry, 'arch', '')}"


def _is_oom(err: BaseException) -> bool:
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
    if torch.cuda.is_available():  # outside the except block: the failed attempt's tensors are freed first
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
            lg = disk_logits(m.module, x, device)
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
        raise UnsupportedModelError(f"the teacher {mset.teacher.id} {problems[mset.teacher.id]}")
    for mid, msg in problems.items():
        st.warning(f"Left out {mid}: it {msg}")
    if not problems:
        return mset
    return dataclasses.replace(mset, models=tuple(m for m in mset.models if m.id not in problems))


def explained_class(mset: ModelSet, target: str, *, has_labels: bool) -> str | int:
    """The sidebar's "Explain" choice as ``compare_models``' target: ``'teacher'``, ``'label'`` or a class index.

    The true class needs labels that are the models' classes, and a class by name must be one of the set's; where
    not, the teacher's prediction is explained and a warning says why.
    """
    if target == "label":
        if has_labels:
            return "label"
        st.warning("These inputs have no true class among the models' classes: the teacher's prediction is "
                   "explained instead.")
    elif target.startswith("class:"):
        name = target.removeprefix("class:")
        if name in mset.class_names:
            return mset.class_names.index(name)
        st.warning(f"'{name}' is not a class of this model set: the teacher's prediction is explained instead.")
    return "teacher"


def compare(mset: ModelSet, display: np.ndarray, labels: np.ndarray | None, ids: list[str],
            settings: Settings, *, null_copies: int | None = None) -> Comparison:
    """Attribute every model of ``mset`` on the displayed inputs ``display`` (N, C, …), model by model.

    Attributions are cached per model (parts and k only change metrics), part labels per parts spec, and
    the finished comparison by everything. While computing, a progress bar names the model in work; a
    widget change made meanwhile stops the run between two models (Streamlit's rerun), and the models
    already attributed are kept. ``null_copies`` (default: the sidebar's) is R, the random-weights copies
    per student architecture (0 = no reference). Models that fail on these inputs are left out with a
    warning (the teacher failing is a ValueError); a GPU out of memory falls back to the CPU with a warning.
    """
    x = mset.model_input(display)
    parts = settings.parts_for(mset.task)
    copies = settings.null_copies if null_copies is None else int(null_copies)
    if labels is not None and not mset.labels_comparable:
        st.caption(":material/info: Labels not comparable: the inputs' true classes (folder names) are not classes "
                   "of these models, so no accuracy is computed.")
        labels = None
    lab = None if labels is None else tuple(int(v) for v in labels)
    target = explained_class(mset, settings.target, has_labels=lab is not None)
    input_hash = array_hash(x, display)
    start = time.perf_counter()

    with st.spinner("Splitting the inputs into parts…"):
        part_lab = _part_labels_cached(parts, array_hash(display), x, display, superfeature_parts(mset, parts))
    n_parts = int(part_lab.max()) + 1
    k = min(settings.k, n_parts)
    if k < settings.k:  # e.g. SLIC finds few superpixels in a small or flat image
        st.warning(f"These inputs have only {n_parts} part(s) with parts {parts}, so k = {k} is used instead of "
                   f"{settings.k}; more parts (a larger n, or a grid) give the focus ratio more to work with.")

    def run(device: str) -> Comparison:
        use = usable_set(mset, x, device)
        key = (use.hashes, input_hash, settings.method, settings.params, parts, k, device, lab,
               tuple(str(i) for i in ids), copies, settings.precision, target)
        found = _comparisons().get(key)
        if found is not None:
            return found
        model_keys = {m.id: f"{m.arch}:{m.sha256}" for m in use.models}

        def attribute_fn(entry: Any, xb: np.ndarray, targets: np.ndarray, dev: str) -> Attribution:
            return _attribution_cached(_model_key(entry, model_keys), input_hash, settings.method, settings.params,
                                       tuple(int(t) for t in targets), dev, entry.module, xb, settings.precision)

        def logits_fn(entry: Any, xb: np.ndarray, dev: str) -> np.ndarray:
            return _logits_cached(_model_key(entry, model_keys), input_hash, dev, entry.module, xb)

        bar = st.progress(0.0, text=f"{settings.method_label}: starting…")

        def progress(done: int, total: int, model_id: str) -> None:
            if model_id:  # each update is also where Streamlit stops this run when a widget changed
                bar.progress(done / max(total, 1), text=f"{settings.method_label} on {device}: {model_id} "
                             f"({done + 1} of {total} models, {len(x)} input{'s' if len(x) != 1 else ''})")

        try:
            result = compare_models(
                use.teacher, list(use.students), x, labels=None if lab is None else np.asarray(lab),
                method=settings.method, parts=parts, k=k, options=CompareOptions(
                    target=target, method_params=settings.method_params, device=device, input_ids=list(ids),
                    part_labels=part_lab, null=NullOptions(copies=copies),
                    hooks=Hooks(attribute_fn=attribute_fn, logits_fn=logits_fn, progress=progress)),
            )
        finally:
            bar.empty()
        _comparisons().put(key, result)
        return result

    result, _, note = on_device_or_cpu(run, settings.device)
    if note:
        st.warning(note)
    for text in result.notes:
        st.caption(f":material/info: {text}")
    st.session_state[LAST_TIMING] = time.perf_counter() - start
    return result


@st.cache_data(show_spinner=False, max_entries=16)
def _pool_logits(model_hashes: tuple[str, ...], input_hash: str, device: str, _mset: ModelSet,
                 _x: np.ndarray) -> dict[str, np.ndarray]:
    return {m.id: disk_logits(m.module, _x, device) for m in _mset.models}


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
CI_COLUMNS = ("attention_rho", "logit_rho", "focus_ratio", "attention_rho_null", "attention_rho_excess",
              "focus_ratio_null")


def _margin_rho(frame: pd.DataFrame, out: pd.DataFrame, *, ci: bool) -> None:
    """Output (margin) alignment per model over the inputs (``kdviz.analysis.aggregate.margin_rho_ci``): what
    the Alignment page shows where logit alignment is undefined (2 classes). Adds ``margin_rho`` (+ bounds)."""
    teacher = frame[frame["role"] == "teacher"]
    if "logit_margin" not in frame.columns or teacher.empty or "input_id" not in frame.columns:
        return
    t = pd.to_numeric(teacher["logit_margin"], errors="coerce").astype(float)
    t.index = teacher["input_id"].astype(str).to_numpy()
    values = []
    for mid in out["model_id"]:
        g = frame[frame["model_id"] == mid]
        mine = pd.to_numeric(g["logit_margin"], errors="coerce").astype(float)
        mine.index = g["input_id"].astype(str).to_numpy()
        pair = pd.concat([mine, t], axis=1, join="inner").to_numpy()
        values.append(margin_rho_ci(pair[:, 0], pair[:, 1], n_resamples=500) if ci
                      else (margin_alignment(pair[:, 0], pair[:, 1]) if len(pair) else np.nan, np.nan, np.nan))
    out["margin_rho"] = [v[0] for v in values]
    if ci:
        out["margin_rho_lo"], out["margin_rho_hi"] = [v[1] for v in values], [v[2] for v in values]


TESTED_METRICS = ("attention_rho", "topk_overlap")


def _null_tests(frame: pd.DataFrame, out: pd.DataFrame) -> None:
    """Each model against its null as a distribution (``kdviz.analysis.aggregate.null_columns``, as the Report
    and ``kdviz evaluate`` do): the copies' SD, the model's z and rank p, and R (``null_copies``), where the
    frame keeps each copy's values. Adds ``{metric}_null_sd``, ``{metric}_z``, ``{metric}_p``."""
    for i, mid in enumerate(out["model_id"]):
        rows = frame[frame["model_id"] == mid]
        for metric in TESTED_METRICS:
            mat = copy_matrix(rows, metric) if metric in out.columns else None
            if mat is None:
                continue
            cols = null_columns(float(out[metric].iloc[i]), mat, metric)
            for c in (f"{metric}_null_sd", f"{metric}_z", f"{metric}_p"):
                if c not in out.columns:
                    out[c] = np.nan
                out.loc[out.index[i], c] = cols[c]
            if "null_copies" not in out.columns:
                out["null_copies"] = np.nan
            out.loc[out.index[i], "null_copies"] = mat.shape[1]


def seed_means(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per variant (architecture, α, training) of a frame with training-seed replicates: the mean of
    the seeds' means with hierarchical 95% intervals (``kdviz.analysis.aggregate.summarize_variants``), in the
    dashboard's column names (``m``, ``m_lo``, ``m_hi``, ``correct``, ``n_inputs`` per model, ``n_seeds``)."""
    out = summarize_variants(frame, n_resamples=1000)
    out = out.rename(columns={c: c.removesuffix("_low") + "_lo" for c in out.columns if c.endswith("_low")})
    out = out.rename(columns={c: c.removesuffix("_high") + "_hi" for c in out.columns if c.endswith("_high")})
    out = out.rename(columns={"accuracy": "correct", "accuracy_lo": "correct_lo", "accuracy_hi": "correct_hi"})
    out.insert(5, "n_inputs", (out.pop("n") // out["n_seeds"].clip(lower=1)).astype(int))
    teacher_last = out["role"] != "teacher"
    return out.assign(_t=teacher_last).sort_values("_t", kind="stable").drop(columns="_t").reset_index(drop=True)


def summarise(frame: pd.DataFrame, *, ci: bool = False, seeds: bool = True) -> pd.DataFrame:
    """One row per model (teacher first): means over inputs, and 95% bootstrap bounds when ``ci``.

    Means skip NaN (undefined values) and +∞ (a focus ratio with no mass outside the top parts). When the
    frame holds training-seed replicates (several models of one architecture × α × training) and ``seeds``,
    one row per variant instead (:func:`seed_means`), so charts by architecture × α get one bar per cell.
    """
    if seeds and has_replicates(frame):
        return seed_means(frame)
    columns = [c for c in METRIC_COLUMNS + NULL_COLUMNS if c in frame.columns]
    values = frame[columns].apply(pd.to_numeric, errors="coerce").astype(float).replace([np.inf], np.nan)
    for c in ("focus_ratio", "focus_ratio_null"):
        if c in values.columns:
            values[c] = values[c].replace([-np.inf], np.nan)
    values["model_id"] = frame["model_id"].to_numpy()
    groups = values.groupby("model_id", sort=False)
    out = frame.groupby("model_id", sort=False)[["role", "arch", "alpha", "method"]].first().reset_index()
    out.insert(5, "n_inputs", groups.size().to_numpy())
    means = groups.mean()  # skips NaN, like np.nanmean; all-NaN gives NaN
    for c in columns:
        out[c] = means[c].to_numpy()
        if ci and c in CI_COLUMNS:
            bounds = [mean_ci(grp[c].to_numpy()) for _, grp in groups]
            out[c] = [b[0] for b in bounds]
            out[f"{c}_lo"], out[f"{c}_hi"] = [b[1] for b in bounds], [b[2] for b in bounds]
    _margin_rho(frame, out, ci=ci)
    _null_tests(frame, out)
    teacher_last = out["role"] != "teacher"
    return out.assign(_t=teacher_last).sort_values("_t", kind="stable").drop(columns="_t").reset_index(drop=True)
