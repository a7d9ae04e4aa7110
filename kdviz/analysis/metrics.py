"""Alignment metrics between a student and the teacher, vectorised over a batch.

Every metric is a plain function ``metric(student, teacher, **options) -> (N,) float64`` (one value per
input; the caller averages) carrying two attributes borrowed from Quantus's idea: ``higher_is_better``
and ``category`` (what it reads: ``"parts"`` part-importance vectors (N, K), ``"logits"`` (N, n_classes),
``"maps"`` importance maps (N, H, W) / (N, L)). ``METRICS`` maps names to them, so a UI can sort and
colour results without special cases.

Undefined values are NaN, never a silent 0 and never an exception: Spearman/Pearson of a constant vector,
SSIM of a constant map, a focus ratio with no attribution mass at all. ``format_metric`` renders NaN as
"undefined".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import numpy as np
import scipy.special
import scipy.stats
from skimage.metrics import structural_similarity

from kdviz.errors import InvalidInputError
from kdviz.modalities.parts import top_k_parts

__all__ = [
    "METRICS",
    "agreement",
    "attention_rank_alignment",
    "bootstrap_ci",
    "focus_fraction",
    "focus_ratio",
    "format_metric",
    "logit_alignment",
    "logit_margin",
    "map_pearson",
    "margin_alignment",
    "map_ssim",
    "mean_ci",
    "metric",
    "output_margin_class",
    "pearson_rows",
    "predictive_divergence",
    "spearman_rows",
    "topk_overlap",
    "undefined_reason",
]

Category = Literal["parts", "logits", "maps"]
MIN_RANKED = 3  # fewest values a rank correlation is computed from (below: NaN, see ``undefined_reason``)
F = TypeVar("F", bound=Callable[..., np.ndarray])

METRICS: dict[str, Callable[..., np.ndarray]] = {}


def metric(*, higher_is_better: bool, category: Category, label: str) -> Callable[[F], F]:
    """Mark a function as a metric (attributes ``higher_is_better``, ``category``, ``label``) and register it."""

    def mark(fn: F) -> F:
        fn.higher_is_better = higher_is_better  # type: ignore[attr-defined]
        fn.category = category  # type: ignore[attr-defined]
        fn.label = label  # type: ignore[attr-defined]
        METRICS[fn.__name__] = fn
        return fn

    return mark


def _pair(a: Any, b: Any, *, ndim: int | None = 2) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise InvalidInputError(f"student shape {x.shape} differs from teacher shape {y.shape}")
    if ndim is not None and x.ndim != ndim:
        raise InvalidInputError(f"expected {ndim}-D arrays (N, K), got shape {x.shape}")
    return x, y


# --------------------------------------------------------------------------------------------------
# Row-wise correlation
# --------------------------------------------------------------------------------------------------


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching rows of (N, D) arrays, ignoring positions where either is NaN.

    Vectorised (np.corrcoef would build an N×N matrix per pair); equals ``np.corrcoef(a[i], b[i])[0, 1]``.
    A constant row (or fewer than 2 valid positions) gives NaN.
    """
    x, y = _pair(a, b)
    valid = ~(np.isnan(x) | np.isnan(y))
    count = valid.sum(axis=1)
    n = np.maximum(count, 1)[:, None]
    x0, y0 = np.where(valid, x, 0.0), np.where(valid, y, 0.0)
    xc = np.where(valid, x0 - x0.sum(axis=1, keepdims=True) / n, 0.0)
    yc = np.where(valid, y0 - y0.sum(axis=1, keepdims=True) / n, 0.0)
    sx = np.sqrt((xc * xc).sum(axis=1))
    sy = np.sqrt((yc * yc).sum(axis=1))
    # A row that is constant up to rounding (spread tiny relative to its size) has no correlation.
    tiny = 1e-12
    defined = (
        (count >= 2)
        & (sx > tiny * np.sqrt((x0 * x0).sum(axis=1)))
        & (sy > tiny * np.sqrt((y0 * y0).sum(axis=1)))
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(defined, (xc * yc).sum(axis=1) / np.where(defined, sx * sy, 1.0), np.nan)
    return np.clip(r, -1.0, 1.0)


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman ρ between matching rows of (N, D) arrays (``scipy.stats.spearmanr`` semantics per row).

    Ranks with ``scipy.stats.rankdata`` along axis 1 (ties get average ranks), then Pearson of the ranks:
    that is spearmanr's definition, done for all rows at once instead of N scipy calls. Positions where
    either row is NaN are left out; a constant row gives NaN, and so does a row with fewer than
    ``MIN_RANKED`` (3) valid positions: a rank correlation of two values can only be ±1, which says
    nothing (two classes, two parts).
    """
    x, y = _pair(a, b)
    invalid = np.isnan(x) | np.isnan(y)
    x = np.where(invalid, np.nan, x)
    y = np.where(invalid, np.nan, y)
    rx = scipy.stats.rankdata(x, axis=1, nan_policy="omit")
    ry = scipy.stats.rankdata(y, axis=1, nan_policy="omit")
    rho = pearson_rows(rx, ry)
    return np.where((~invalid).sum(axis=1) >= MIN_RANKED, rho, np.nan)


# --------------------------------------------------------------------------------------------------
# Metrics on part-importance vectors
# --------------------------------------------------------------------------------------------------


def _masses(v: np.ndarray, v_teacher: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    x, t = _pair(v, v_teacher)
    top = top_k_parts(t, k)
    inside = np.nansum(np.take_along_axis(x, top, axis=1), axis=1)
    total = np.nansum(x, axis=1)
    return inside, total - inside


@metric(higher_is_better=True, category="parts", label="focus ratio (M_in / M_out)")
def focus_ratio(v: np.ndarray, v_teacher: np.ndarray, *, k: int = 5) -> np.ndarray:
    """``M_in / M_out``: the model's attribution mass inside the teacher's top-k parts over the mass outside.

    v, v_teacher : (N, K) part importance (non-negative). Returns (N,); ``inf`` when M_out = 0 < M_in,
    NaN when there is no mass at all. k > K raises ValueError.
    """
    m_in, m_out = _masses(v, v_teacher, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(m_in + m_out > 0, m_in / m_out, np.nan)


@metric(higher_is_better=True, category="parts", label="focus fraction (M_in / (M_in + M_out))")
def focus_fraction(v: np.ndarray, v_teacher: np.ndarray, *, k: int = 5) -> np.ndarray:
    """Bounded focus ``M_in / (M_in + M_out)`` in [0, 1]; NaN when there is no mass. Returns (N,)."""
    m_in, m_out = _masses(v, v_teacher, k)
    total = m_in + m_out
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, m_in / np.where(total > 0, total, 1.0), np.nan)


@metric(higher_is_better=True, category="parts", label="attention rank alignment (Spearman ρ)")
def attention_rank_alignment(v: np.ndarray, v_teacher: np.ndarray) -> np.ndarray:
    """Spearman ρ between the student's and the teacher's part-importance vectors (N, K) -> (N,)."""
    return spearman_rows(v, v_teacher)


@metric(higher_is_better=True, category="parts", label="top-k overlap")
def topk_overlap(v: np.ndarray, v_teacher: np.ndarray, *, k: int = 5) -> np.ndarray:
    """``|topk(v_S) ∩ topk(v_T)| / k`` per input, (N, K) -> (N,). Ties broken by the lower part index."""
    x, t = _pair(v, v_teacher)
    ts, tt = top_k_parts(x, k), top_k_parts(t, k)
    # (N, k, k) comparison: k is small, so this stays vectorised without sets.
    hits = (ts[:, :, None] == tt[:, None, :]).any(axis=2).sum(axis=1)
    return hits / k


# --------------------------------------------------------------------------------------------------
# Metrics on outputs
# --------------------------------------------------------------------------------------------------


@metric(higher_is_better=True, category="logits", label="logit alignment (Spearman ρ)")
def logit_alignment(logits: np.ndarray, logits_teacher: np.ndarray) -> np.ndarray:
    """Spearman ρ between the student's and the teacher's logit vectors (N, n_classes) -> (N,)."""
    return spearman_rows(logits, logits_teacher)


@metric(higher_is_better=True, category="logits", label="agreement")
def agreement(logits: np.ndarray, logits_teacher: np.ndarray) -> np.ndarray:
    """1.0 where student and teacher predict the same class, else 0.0; the mean is the agreement."""
    x, t = _pair(logits, logits_teacher)
    return (x.argmax(axis=1) == t.argmax(axis=1)).astype(np.float64)


@metric(higher_is_better=False, category="logits", label="predictive divergence KL(p_T‖p_S)")
def predictive_divergence(logits: np.ndarray, logits_teacher: np.ndarray) -> np.ndarray:
    """KL(p_T ‖ p_S) at temperature 1 per input, from logits (N, n_classes) -> (N,), in nats."""
    x, t = _pair(logits, logits_teacher)
    log_ps = scipy.special.log_softmax(x, axis=1)
    log_pt = scipy.special.log_softmax(t, axis=1)
    return np.maximum(np.sum(np.exp(log_pt) * (log_pt - log_ps), axis=1), 0.0)


def output_margin_class(logits_teacher: np.ndarray) -> np.ndarray:
    """The class whose margin ``logit_margin`` measures, per input: class 1 on a 2-class task (so the margin is
    the log-odds ``z_1 − z_0``, comparable across inputs), else the teacher's predicted class."""
    t = np.asarray(logits_teacher, dtype=np.float64)
    if t.ndim != 2:
        raise InvalidInputError(f"expected (N, n_classes) logits, got shape {t.shape}")
    return np.ones(t.shape[0], dtype=np.int64) if t.shape[1] == 2 else t.argmax(axis=1)


def logit_margin(logits: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``z_c − max_{j≠c} z_j`` per input for the given class ``c`` (N,) — how strongly the model backs ``c``.

    With one class only, NaN (there is nothing to be ahead of).
    """
    z = np.asarray(logits, dtype=np.float64)
    c = np.asarray(classes, dtype=np.int64)
    if z.ndim != 2 or c.shape != (z.shape[0],):
        raise InvalidInputError(f"logits (N, n_classes) and classes (N,) expected, got {z.shape} and {c.shape}")
    if z.shape[1] < 2:
        return np.full(z.shape[0], np.nan)
    rows = np.arange(z.shape[0])
    own = z[rows, c]
    others = z.copy()
    others[rows, c] = -np.inf
    return own - others.max(axis=1)


def margin_alignment(margins: np.ndarray, margins_teacher: np.ndarray) -> float:
    """Output alignment over a set of inputs: Spearman ρ (``scipy.stats.spearmanr``) between the student's and
    the teacher's ``logit_margin`` across inputs.

    Meaningful where per-input logit alignment is not (a 2-class task, where the rank correlation of two logits
    is ±1): it asks whether the student is confident where the teacher is. One number per model, not per input;
    NaN with fewer than ``MIN_RANKED`` valid inputs or a constant side.
    """
    a = np.asarray(margins, dtype=np.float64).ravel()
    b = np.asarray(margins_teacher, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InvalidInputError(f"margins {a.shape} and teacher margins {b.shape} differ")
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < MIN_RANKED or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan
    return float(scipy.stats.spearmanr(a[ok], b[ok]).statistic)


def undefined_reason(name: str, *, n_classes: int | None = None, n_parts: int | None = None,
                     n_inputs: int | None = None) -> str | None:
    """Why metric ``name`` is undefined on data of this size, or None when it is defined (for the UI's notes).

    Rank correlations need at least ``MIN_RANKED`` distinct positions: logit alignment needs ≥ 3 classes,
    attention rank alignment ≥ 3 parts, margin alignment ≥ 3 inputs.
    """
    if name in ("logit_rho", "logit_alignment") and n_classes is not None and n_classes < MIN_RANKED:
        return (f"logit alignment is undefined with {n_classes} classes: the rank correlation of {n_classes} logits "
                "can only be ±1. Margin alignment (Spearman over inputs of the logit margins) is shown instead.")
    if name in ("attention_rho", "attention_rank_alignment") and n_parts is not None and n_parts < MIN_RANKED:
        return f"attention rank alignment is undefined with {n_parts} parts: choose ≥ {MIN_RANKED} parts."
    if name in ("margin_rho", "margin_alignment") and n_inputs is not None and n_inputs < MIN_RANKED:
        return f"margin alignment is undefined over {n_inputs} input(s): it ranks inputs, so it needs ≥ {MIN_RANKED}."
    return None


# --------------------------------------------------------------------------------------------------
# Metrics on importance maps
# --------------------------------------------------------------------------------------------------


def _minmax(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each map scaled to [0, 1]; also which maps are constant (their normalisation is undefined)."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(axis=1)
    span = flat.max(axis=1) - lo
    constant = ~(span > 0)
    shape = (-1,) + (1,) * (maps.ndim - 1)
    scaled = (maps - lo.reshape(shape)) / np.where(constant, 1.0, span).reshape(shape)
    return scaled, constant


@metric(higher_is_better=True, category="maps", label="map SSIM")
def map_ssim(maps: np.ndarray, maps_teacher: np.ndarray) -> np.ndarray:
    """SSIM (scikit-image) between min-max normalised importance maps, ``data_range=1``.

    maps : (N, H, W) or (N, L). Returns (N,); NaN where either map is constant. The window is skimage's
    default 7, shrunk to the largest odd size that fits maps smaller than 7.
    """
    x, t = _pair(maps, maps_teacher, ndim=None)
    if x.ndim not in (2, 3):
        raise InvalidInputError(f"maps must be (N, H, W) or (N, L), got shape {x.shape}")
    xs, cx = _minmax(x)
    ts, ct = _minmax(t)
    side = min(x.shape[1:])
    win = min(7, side if side % 2 else side - 1)
    out = np.full(x.shape[0], np.nan)
    if win < 3:
        return out
    for i in np.flatnonzero(~(cx | ct)):  # skimage compares one pair of images per call
        out[i] = structural_similarity(xs[i], ts[i], data_range=1.0, win_size=win)
    return out


@metric(higher_is_better=True, category="maps", label="map Pearson r")
def map_pearson(maps: np.ndarray, maps_teacher: np.ndarray) -> np.ndarray:
    """Pearson r between flattened importance maps (N, H, W) or (N, L) -> (N,); NaN for a constant map."""
    x, t = _pair(maps, maps_teacher, ndim=None)
    return pearson_rows(x.reshape(x.shape[0], -1), t.reshape(t.shape[0], -1))


# --------------------------------------------------------------------------------------------------
# Aggregation and display
# --------------------------------------------------------------------------------------------------


def bootstrap_ci(
    values: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` (``scipy.stats.bootstrap``).

    NaNs are dropped first; fewer than 2 values left gives ``(nan, nan)``. The percentile method is used
    (not BCa) because it stays defined when every value is equal (e.g. the teacher's ρ = 1).
    """
    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence={confidence} must be in (0, 1)")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size < 2:
        return (math.nan, math.nan)
    if np.all(v == v[0]):
        return (float(v[0]), float(v[0]))
    res = scipy.stats.bootstrap(
        (v,), np.mean, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
        vectorized=True, rng=np.random.default_rng(seed),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def mean_ci(values: np.ndarray, **options: Any) -> tuple[float, float, float]:
    """``(mean, low, high)`` with NaNs dropped; all-NaN gives NaNs. Options go to ``bootstrap_ci``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    mean = float(v.mean()) if v.size else math.nan
    return (mean, *bootstrap_ci(v, **options))


def format_metric(value: float | None, *, digits: int = 2) -> str:
    """A metric value for display: ``"undefined"`` for NaN/None, ``"∞"`` for infinity."""
    if value is None:
        return "undefined"
    v = float(value)
    if math.isnan(v):
        return "undefined"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.{digits}f}"
