"""The random-weights reference ("null"): what an untrained network of the same architecture scores.

Attribution maps on a given input are often dominated by the input itself (edges, the digit's strokes), so
two unrelated networks can rank the same parts alike. A student's alignment to its teacher means something
only above what R randomly initialised copies of the student's architecture get against the same teacher,
on the same inputs, with the same attribution, parts and metric.

* each modality plug-in builds the copies (``kdviz.modalities``: ``ModalityPlugin.random_copies``, fixed seeds
  ``NULL_SEED_BASE + r`` so every run and every page sees the same copies, eval mode);
* :func:`chance_corrected` is the excess ``(m − m_null) / (1 − m_null)``: 0 = what an untrained network gets,
  1 = perfect, negative = below chance; NaN where m or m_null is undefined or m_null = 1.

The null is a *distribution* over initialisations: untrained networks
of one architecture differ from one another, so each copy's mean over the inputs is one draw, and a model is
judged against those draws (:func:`null_stats`: the copies' mean and SD, the model's z, and the one-sided rank
p = (1 + #{copies ≥ model}) / (R + 1)). :func:`holm` corrects p over the students compared. The R rule
(:func:`copies_for`): at least 19 copies (the smallest p a rank test can give is 1/(R + 1) = 0.05), and enough
that m tests can each clear the Holm threshold, R + 1 ≥ m / α. :func:`sequential_stop` is the stopping rule for
expensive settings (Besag & Clifford 1991): add copies in blocks, stop as soon as h = ⌈α (R_max + 1)⌉ copies
score at or above the model (p can no longer reach α; p = h / R), otherwise go on to R_max.

``kdviz.analysis.compare.compare_models`` (``NullOptions(copies=R)``) adds the ``*_null`` / ``*_excess`` columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from kdviz.errors import InvalidInputError

__all__ = [
    "DEFAULT_NULL_COPIES",
    "NULL_ALPHA",
    "NULL_SEED_BASE",
    "NullStats",
    "chance_corrected",
    "copies_for",
    "format_p",
    "holm",
    "inputs_for_power",
    "seeds_for_power",
    "null_stats",
    "p_floor",
    "rank_p",
    "sequential_stop",
]

DEFAULT_NULL_COPIES = 19  # the smallest R whose rank p can reach 0.05 = 1 / (R + 1)
NULL_ALPHA = 0.05  # level of "above the null" (after Holm over the students compared)
# Seeds of the null's copies. Far from the small seeds that training runs use (seeded_model(seed=1, 2, 3) …),
# so a null copy is never the initialisation a shipped student started from.
NULL_SEED_BASE = 10_000


def chance_corrected(m: np.ndarray, m_null: np.ndarray, *, perfect: float = 1.0) -> np.ndarray:
    """Excess over the null, ``(m − m_null) / (perfect − m_null)``, per input.

    NaN where either value is NaN or the null is already perfect (``m_null ≥ perfect``: nothing left to
    exceed). Values below 0 mean the model aligns worse than an untrained network of its architecture.
    """
    a = np.asarray(m, dtype=np.float64)
    b = np.asarray(m_null, dtype=np.float64)
    room = perfect - b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(a) & np.isfinite(b) & (room > 1e-12), (a - b) / np.where(room > 0, room, 1.0),
                        np.nan)



# --------------------------------------------------------------------------------------------------
# The null as a distribution over initialisations
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NullStats:
    """A model's mean against its architecture's copies' means: the copies' mean and SD, z and rank p."""

    mean: float  # mean over copies of each copy's mean over inputs
    sd: float  # SD over copies (ddof = 1)
    z: float  # (model − mean) / sd
    p: float  # (1 + #{copies ≥ model}) / (R + 1)
    copies: int  # R, copies with a defined mean
    at_or_above: int  # #{copies ≥ model}


def rank_p(model: float, copy_means: Sequence[float] | np.ndarray) -> float:
    """One-sided rank p-value: ``(1 + #{copies whose mean ≥ the model's}) / (R + 1)``; NaN copies left out.

    Valid as a p-value (P(p ≤ α) ≤ α when the model is one more untrained network); its smallest value is
    1 / (R + 1). NaN when the model's value is undefined or no copy has one.
    """
    c = np.asarray(copy_means, dtype=np.float64)
    c = c[np.isfinite(c)]
    if not math.isfinite(model) or c.size == 0:
        return math.nan
    return float((1 + np.count_nonzero(c >= model)) / (c.size + 1))


def null_stats(model: float, copy_means: Sequence[float] | np.ndarray) -> NullStats:
    """:class:`NullStats` of a model's mean ``model`` against the copies' means (NaN copies left out)."""
    c = np.asarray(copy_means, dtype=np.float64)
    c = c[np.isfinite(c)]
    if c.size == 0:
        return NullStats(math.nan, math.nan, math.nan, math.nan, 0, 0)
    mean = float(c.mean())
    sd = float(c.std(ddof=1)) if c.size > 1 else math.nan
    z = (model - mean) / sd if math.isfinite(model) and math.isfinite(sd) and sd > 0 else math.nan
    above = int(np.count_nonzero(c >= model)) if math.isfinite(model) else 0
    return NullStats(mean, sd, float(z), rank_p(model, c), int(c.size), above)


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979) in the input order; NaN stays NaN and is not counted.

    Sorted ascending p_(1) ≤ … ≤ p_(m): adjusted p_(i) = max_{j ≤ i} min(1, (m − j + 1) · p_(j)). A test
    rejects at level α when its adjusted p ≤ α, exactly Holm's sequential rule.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def p_floor(copies: int) -> float:
    """The smallest p R copies can give, 1 / (R + 1)."""
    return 1.0 / (copies + 1) if copies >= 0 else math.nan


def copies_for(tests: int = 1, *, alpha: float = NULL_ALPHA, minimum: int = DEFAULT_NULL_COPIES) -> int:
    """The R rule: the fewest copies with which ``tests`` students can each clear Holm at ``alpha``.

    Holm's strictest threshold is α / m, and the smallest rank p is 1 / (R + 1), so R + 1 ≥ m / α; never fewer
    than ``minimum`` (19: one test at 0.05). ``copies_for(1) = 19``, ``copies_for(2) = 39``, ``copies_for(4) = 79``.
    """
    if tests < 1 or not 0 < alpha < 1:
        raise InvalidInputError(f"tests={tests} must be ≥ 1 and alpha={alpha} in (0, 1)")
    return max(int(minimum), math.ceil(tests / alpha - 1e-9) - 1)


def sequential_stop(at_or_above: int, copies: int, *, max_copies: int, alpha: float = NULL_ALPHA) -> bool:
    """Whether to stop adding copies (Besag & Clifford 1991 sequential Monte Carlo p-value).

    Stop when ``h = ⌈α (max_copies + 1)⌉`` copies score at or above the model (p can no longer fall to α; the
    sequential p is then h / copies), or when ``max_copies`` are in (p = (1 + c) / (max_copies + 1)).
    """
    h = math.ceil(alpha * (max_copies + 1) - 1e-9)
    return at_or_above >= h or copies >= max_copies


def format_p(p: float, copies: int, *, alpha: float = NULL_ALPHA) -> str:
    """p for display: ``0.012``; at the floor 1/(R + 1) with R too small to decide at ``alpha``, ``p ≥ 0.25``
    (read: R = 3 copies cannot show more); ``undefined`` for NaN."""
    if not math.isfinite(p):
        return "undefined"
    floor = p_floor(copies)
    if copies > 0 and abs(p - floor) < 1e-12 and floor > alpha + 1e-12:
        return f"≥ {floor:.2g} (R = {copies} too few to decide)"
    return f"{p:.2g}" if p >= 1e-3 else "<0.001"


# --------------------------------------------------------------------------------------------------
# Power: how many inputs (and seeds) detect a given excess
# --------------------------------------------------------------------------------------------------


def _budget(effect: float, power: float, alpha: float) -> float:
    return (effect / (norm.ppf(1 - alpha) + norm.ppf(power))) ** 2  # the largest variance that still detects it


def inputs_for_power(sd_inputs: float, sd_init: float, *, effect: float = 0.1, power: float = 0.8,
                     alpha: float = NULL_ALPHA, copies: int = DEFAULT_NULL_COPIES, seeds: int = 1) -> float:
    """Inputs needed for a one-sided test of excess > 0 to detect ``effect`` with probability ``power``.

    The mean excess of S seeds over N inputs against R copies has variance ``sd_inputs² / (N·S) +
    sd_init² · (1/S + 1/R)`` (normal approximation): ``sd_inputs`` the per-input SD of the excess, ``sd_init``
    the SD over initialisations (the copies' means, in excess units). Returns ∞ when the initialisation spread
    alone is too large: then more inputs cannot help, more seeds (:func:`seeds_for_power`) or a larger effect must.
    """
    room = _budget(effect, power, alpha) - sd_init ** 2 * (1 / seeds + 1 / copies)
    if not (math.isfinite(sd_inputs) and math.isfinite(sd_init)):
        return math.nan
    if room <= 0:
        return math.inf
    return float(math.ceil(sd_inputs ** 2 / (seeds * room)))


def seeds_for_power(sd_inputs: float, sd_init: float, *, inputs: int, effect: float = 0.1, power: float = 0.8,
                    alpha: float = NULL_ALPHA, copies: int = DEFAULT_NULL_COPIES) -> float:
    """Training seeds needed at ``inputs`` inputs (same model as :func:`inputs_for_power`); ∞ if unreachable."""
    if not (math.isfinite(sd_inputs) and math.isfinite(sd_init)) or inputs < 1:
        return math.nan
    room = _budget(effect, power, alpha) - sd_init ** 2 / copies
    if room <= 0:
        return math.inf
    return float(max(1, math.ceil((sd_inputs ** 2 / inputs + sd_init ** 2) / room)))
