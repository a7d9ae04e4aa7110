"""From per-(model, input) rows to numbers a scientist can quote: per model, and per variant over seeds.

A *variant* is a cell of the study: (role, architecture, α, training method). A zoo may hold several models
of one variant trained with different seeds (training-seed replicates). ``summarize_variants`` reports the
mean of the per-seed means and a **hierarchical** bootstrap interval — resample seeds, then inputs within
each resampled seed — so the interval carries training noise as well as input noise. With one seed it is
the ordinary inputs-only percentile bootstrap.

Both summaries have the same columns (``model_id, role, arch, alpha, method, n``, then for each metric ``m``:
``m, m_low, m_high``; ``accuracy`` is the mean of ``correct``), so the Report draws either. Output alignment
over inputs, ``margin_rho`` (``kdviz.analysis.metrics.margin_alignment``), is added where the frame has
``logit_margin``. Text frames add the VADER share ``vader`` (with its null, as below) and ``n_words`` (mean words
per text); they are left out where a frame has no value of them (images, series).

The random-weights null as a distribution: where the rows hold each copy's values (``*_null_copies``), for
``m`` in attention_rho, topk_overlap, focus_ratio (and vader for texts) the summary has ``m_null`` (mean
of the R copies' means over inputs), ``m_null_sd`` (their SD), ``m_null_low/high`` (2.5 and 97.5 percentiles
of the copies' means), ``m_z`` = (model − null) / SD, ``m_p`` = (1 + #{copies ≥ model}) / (R + 1), and
``null_copies`` = R (:func:`null_columns`). The excess intervals (``m_excess_low/high``) come from
:func:`excess_ci`: they resample inputs, copies (for the null's mean) and the model's own initialisation —
with one seed a copy's deviation from the copies' mean stands in for it, with seed replicates the seeds are
resampled instead — so an untrained network of an unseen seed gets an interval that holds 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from kdviz.analysis.metrics import margin_alignment, mean_ci, spearman_rows
from kdviz.analysis.nulls import chance_corrected, null_stats

__all__ = [
    "EXCESS_METRICS",
    "NULL_METRICS",
    "SUMMARY_METRICS",
    "VARIANT_KEYS",
    "copy_matrix",
    "excess_ci",
    "has_replicates",
    "hierarchical_ci",
    "margin_rho_ci",
    "null_columns",
    "summarize_models",
    "summarize_variants",
]

# Per-(model, input) columns averaged in the summaries (bool columns become fractions).
SUMMARY_METRICS: tuple[str, ...] = (
    "correct", "confidence", "attention_rho", "logit_rho", "focus_ratio", "focus_fraction", "topk_overlap",
    "kl_to_teacher", "agree", "ssim", "pearson",
    "attention_rho_null", "attention_rho_excess", "topk_overlap_null", "topk_overlap_excess", "focus_ratio_null",
    "ig_completeness_error", "ig_steps",
)
VARIANT_KEYS = ("role", "arch", "alpha", "method")
# Metrics with a null distribution (per-row arrays ``m_null_copies``) and those of them with an excess column.
NULL_METRICS = ("attention_rho", "topk_overlap", "focus_ratio", "vader")
EXCESS_METRICS = ("attention_rho", "topk_overlap")
# Metrics of one modality (text), summarised only where a frame has a value of them.
_MODALITY_METRICS = ("vader",)
_MODEL_COLUMNS = ("model_id", "role", "arch", "alpha", "method")


def _values(g: pd.DataFrame, col: str) -> np.ndarray:
    """A metric column as float64 with NaN for missing; infinite focus ratios become NaN (counted apart)."""
    v = pd.to_numeric(g[col].astype("Float64"), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isinf(v), np.nan, v)


def _name(col: str) -> str:
    return "accuracy" if col == "correct" else col


def _teacher_margins(frame: pd.DataFrame) -> pd.Series | None:
    if "logit_margin" not in frame:
        return None
    t = frame[frame["role"].astype(str) == "teacher"]
    if t.empty:
        return None
    return pd.Series(_values(t, "logit_margin"), index=t["input_id"].astype(str).to_numpy())


def margin_rho_ci(
    margins: np.ndarray, margins_teacher: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``margin_alignment`` with a paired percentile-bootstrap interval over inputs (vectorised: the
    resamples are ranked as rows, ``kdviz.analysis.metrics.spearman_rows``, instead of one scipy call each)."""
    a = np.asarray(margins, dtype=np.float64)
    b = np.asarray(margins_teacher, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    rho = margin_alignment(a, b)
    if not math.isfinite(rho):
        return rho, math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, a.size, size=(n_resamples, a.size))
    boot = spearman_rows(a[idx], b[idx])
    boot = boot[np.isfinite(boot)]
    if boot.size < 2:
        return rho, math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(boot, [tail, 100 - tail])
    return rho, float(lo), float(hi)


def copy_matrix(rows: pd.DataFrame, metric: str) -> np.ndarray | None:
    """The copies' values of ``metric`` on a model's rows as (N inputs, R copies), ±inf as NaN; None when the
    rows hold no per-copy values (teacher, null off, or results written before they were kept)."""
    col = f"{metric}_null_copies"
    if col not in rows or rows.empty:
        return None
    cells = [np.asarray(v if v is not None else (), dtype=np.float64).ravel() for v in rows[col].to_numpy()]
    sizes = {c.size for c in cells}
    if len(sizes) != 1 or 0 in sizes:
        return None
    out = np.stack(cells)
    return np.where(np.isinf(out), np.nan, out)


def null_columns(model_mean: float, copies: np.ndarray, metric: str) -> dict[str, float]:
    """Summary columns of ``metric``'s null from the copies' values (N, R): mean and SD over the copies' means,
    their 2.5–97.5 percentiles, the model's z and rank p (``kdviz.analysis.nulls.null_stats``)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(copies, axis=0)
    st = null_stats(model_mean, means)
    ok = means[np.isfinite(means)]
    lo, hi = np.percentile(ok, [2.5, 97.5]) if ok.size else (math.nan, math.nan)
    return {f"{metric}_null": st.mean, f"{metric}_null_low": float(lo), f"{metric}_null_high": float(hi),
            f"{metric}_null_sd": st.sd, f"{metric}_z": st.z, f"{metric}_p": st.p}


def _resample_counts(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    """(n, b): how often each of n items is drawn in each of b resamples of size n with replacement."""
    idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).T.astype(np.float64)


def excess_ci(
    models: Sequence[np.ndarray], copies: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000,
    seed: int = 0, bounds: tuple[float, float] = (-1.0, 1.0),
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean chance-corrected excess that resamples every source of spread.

    models : per training seed, the model's values on the N inputs (same order as ``copies``' rows)
    copies : (N, R) the random copies' values on those inputs

    Each resample draws the R copies with replacement (the null's per-input mean over them), the seeds with
    replacement and each drawn seed's inputs with replacement; with a single seed, the model's own
    initialisation is drawn as well: the deviation of one random copy from the copies' mean is added to the
    model's values (what another initialisation might have given), kept within the metric's ``bounds``.
    Returns (low, high); NaN when undefined.
    """
    c = np.asarray(copies, dtype=np.float64)
    ms = [np.asarray(m, dtype=np.float64).ravel() for m in models]
    if c.ndim != 2 or c.shape[1] < 2 or not ms or any(m.size != c.shape[0] for m in ms):
        return math.nan, math.nan
    n, r = c.shape
    rng = np.random.default_rng(seed)
    b = int(n_resamples)
    ok = np.isfinite(c)
    w_copies = _resample_counts(rng, r, b)  # (R, B)
    with np.errstate(all="ignore"):
        null = (np.where(ok, c, 0.0) @ w_copies) / (ok.astype(np.float64) @ w_copies)  # (N, B)
        if len(ms) == 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                centre = np.nanmean(c, axis=1, keepdims=True)
            dev = np.nan_to_num(c[:, rng.integers(0, r, size=b)] - centre)  # (N, B)
        else:
            dev = np.zeros((n, 1))
        per_seed = []
        for m in ms:
            e = chance_corrected(np.clip(m[:, None] + dev, *bounds), null)
            w = _resample_counts(rng, n, b) * np.isfinite(e)
            per_seed.append((np.where(np.isfinite(e), e, 0.0) * w).sum(axis=0) / w.sum(axis=0))
    boot = np.stack(per_seed)  # (S, B)
    pick = rng.integers(0, len(ms), size=(b, len(ms)))
    boot = boot[pick, np.arange(b)[:, None]].mean(axis=1)
    boot = boot[np.isfinite(boot)]
    if boot.size < 2:
        return math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(boot, [tail, 100 - tail])
    return float(lo), float(hi)


def _add_null(row: dict[str, Any], groups: Sequence[pd.DataFrame], *, confidence: float, n_resamples: int) -> None:
    """The null-distribution columns of one model or variant (``groups``: its models' rows, one per seed)."""
    for metric in NULL_METRICS:
        mats = [copy_matrix(g, metric) for g in groups]
        if any(m is None for m in mats) or not mats or metric not in row:
            continue
        row["null_copies"] = int(mats[0].shape[1])
        row.update(null_columns(float(row[metric]), mats[0], metric))
        if metric in EXCESS_METRICS and f"{metric}_excess" in row:
            lo, hi = excess_ci([_values(g, metric) for g in groups], mats[0], confidence=confidence,
                               n_resamples=n_resamples, bounds=(-1.0, 1.0) if metric == "attention_rho" else (0.0, 1.0))
            row[f"{metric}_excess_low"], row[f"{metric}_excess_high"] = lo, hi


def _metrics_in(g: pd.DataFrame) -> list[str]:
    """The metric columns to summarise: ``SUMMARY_METRICS`` present, the modality's own where they have values."""
    return [c for c in SUMMARY_METRICS if c in g] + [c for c in _MODALITY_METRICS
                                                     if c in g and np.isfinite(_values(g, c)).any()]


def summarize_models(frame: pd.DataFrame, *, confidence: float = 0.95, n_resamples: int = 2000) -> pd.DataFrame:
    """Per-model means of ``SUMMARY_METRICS`` present in ``frame``, with percentile-bootstrap intervals.

    One row per model in order of first appearance. Infinite focus ratios (no mass outside the teacher's top
    parts) are left out of the mean and counted in ``focus_ratio_n_inf``; NaN (undefined) values are left
    out and the mean is over the rest. ``margin_rho`` is output alignment across the model's inputs.
    """
    teacher_margins = _teacher_margins(frame)
    rows = []
    for model_id, g in frame.groupby("model_id", sort=False):
        first = g.iloc[0]
        row: dict[str, Any] = {c: first[c] for c in _MODEL_COLUMNS if c in g}
        row["model_id"] = model_id
        row["n"] = len(g)
        for col in _metrics_in(g):
            if col == "focus_ratio":
                row["focus_ratio_n_inf"] = int(np.isinf(pd.to_numeric(g[col], errors="coerce")).sum())
            name = _name(col)
            row[name], row[f"{name}_low"], row[f"{name}_high"] = mean_ci(
                _values(g, col), confidence=confidence, n_resamples=n_resamples)
        if teacher_margins is not None:
            mine = pd.Series(_values(g, "logit_margin"), index=g["input_id"].astype(str).to_numpy())
            joined = pd.concat([mine, teacher_margins], axis=1, join="inner").to_numpy()
            row["margin_rho"], row["margin_rho_low"], row["margin_rho_high"] = margin_rho_ci(
                joined[:, 0], joined[:, 1], confidence=confidence, n_resamples=min(n_resamples, 1000))
        _add_null(row, [g], confidence=confidence, n_resamples=n_resamples)
        if "n_words" in g and g["n_words"].notna().any():
            row["n_words"] = float(pd.to_numeric(g["n_words"], errors="coerce").mean())
        rows.append(row)
    return pd.DataFrame(rows)


def hierarchical_ci(
    groups: Sequence[np.ndarray], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0,
) -> tuple[float, float, float]:
    """Mean of the groups' means and a two-level percentile-bootstrap interval (groups = training seeds).

    Each resample draws the groups with replacement, then each drawn group's values with replacement, and
    averages the resampled group means. NaNs are dropped within groups; empty groups are left out. With one
    group this is the inputs-only bootstrap of its mean; a single value per group gives (mean, NaN, NaN)
    unless there are several groups.
    """
    clean = [g[np.isfinite(g)] for g in (np.asarray(x, dtype=np.float64).ravel() for x in groups)]
    clean = [g for g in clean if g.size]
    if not clean:
        return math.nan, math.nan, math.nan
    mean = float(np.mean([g.mean() for g in clean]))
    if len(clean) == 1 and clean[0].size < 2:
        return mean, math.nan, math.nan
    rng = np.random.default_rng(seed)
    # inner level: n_resamples bootstrap means of each group's inputs
    inner = np.stack([g[rng.integers(0, g.size, size=(n_resamples, g.size))].mean(axis=1) for g in clean])
    # outer level: which groups each resample draws
    pick = rng.integers(0, len(clean), size=(n_resamples, len(clean)))
    boot = inner[pick, np.arange(n_resamples)[:, None]].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(boot, [tail, 100 - tail])
    return mean, float(lo), float(hi)


def _variant_label(key: tuple) -> str:
    role, arch, alpha, method = key
    if role == "teacher":
        return f"teacher {arch}"
    a = "" if pd.isna(alpha) else f" α={float(alpha):g}"
    return f"{arch}{a} {method}"


def has_replicates(frame: pd.DataFrame) -> bool:
    """Whether some variant (role, arch, α, method) of ``frame`` holds more than one model (training seeds)."""
    if frame.empty or not set(VARIANT_KEYS) <= set(frame.columns):
        return False
    keys = frame.assign(_a=frame["alpha"].astype(float).round(6).fillna(-1.0))
    return bool((keys.groupby(["role", "arch", "_a", "method"])["model_id"].nunique() > 1).any())


def summarize_variants(frame: pd.DataFrame, *, confidence: float = 0.95, n_resamples: int = 2000) -> pd.DataFrame:
    """One row per variant (role, arch, α, method): the mean of its models' means and hierarchical intervals.

    Columns as :func:`summarize_models`, plus ``n_seeds`` (models in the variant) and ``model_ids``; the
    ``model_id`` column holds a readable label (``resnet8 α=0.5 kd``), or the model's own id when the
    variant has one model. ``margin_rho`` is computed per model and averaged over seeds, its interval from
    the seeds' intervals' spread (the per-model bootstrap when there is one seed).
    """
    f = frame.copy()
    f["_alpha_key"] = f["alpha"].astype(float).round(6).fillna(-1.0)
    per_model = summarize_models(frame, confidence=confidence, n_resamples=min(n_resamples, 1000)) \
        if "logit_margin" in frame else None
    rows = []
    for (role, arch, _ak, method), g in f.groupby(["role", "arch", "_alpha_key", "method"], sort=False):
        ids = list(dict.fromkeys(g["model_id"].astype(str)))
        alpha = g["alpha"].iloc[0]
        row: dict[str, Any] = {
            "model_id": ids[0] if len(ids) == 1 else _variant_label((role, arch, alpha, method)),
            "role": role, "arch": arch, "alpha": alpha, "method": method, "n": len(g),
            "n_seeds": len(ids), "model_ids": ",".join(ids),
        }
        for col in _metrics_in(g):
            groups = [_values(g[g["model_id"].astype(str) == mid], col) for mid in ids]
            name = _name(col)
            row[name], row[f"{name}_low"], row[f"{name}_high"] = hierarchical_ci(
                groups, confidence=confidence, n_resamples=n_resamples)
        if per_model is not None and "margin_rho" in per_model:
            m = per_model[per_model["model_id"].astype(str).isin(ids)]
            vals = m["margin_rho"].to_numpy(dtype=float)
            row["margin_rho"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan
            if len(ids) == 1:
                row["margin_rho_low"], row["margin_rho_high"] = m["margin_rho_low"].iloc[0], m["margin_rho_high"].iloc[0]
            else:
                ok = vals[np.isfinite(vals)]
                if ok.size >= 2:
                    half = scipy.stats.t.ppf(0.5 + confidence / 2, ok.size - 1) * ok.std(ddof=1) / math.sqrt(ok.size)
                    row["margin_rho_low"], row["margin_rho_high"] = row["margin_rho"] - half, row["margin_rho"] + half
                else:
                    row["margin_rho_low"] = row["margin_rho_high"] = math.nan
        _add_null(row, [g[g["model_id"].astype(str) == mid] for mid in ids], confidence=confidence,
                  n_resamples=n_resamples)
        rows.append(row)
    return pd.DataFrame(rows)

