"""Integrated Gradients you can trust at the least cost: the completeness error and an ``auto`` step count.

IG's attributions sum to ``f(x) − f(baseline)`` when the path integral is exact (completeness). With a finite
number of quadrature steps they do not quite; captum reports the gap as the convergence delta
``δ = Σ A − (f(x) − f(baseline))``. The **completeness error** is that gap relative to what is being
explained: ``|δ| / |f(x) − f(baseline)|`` (``f(x) − f(baseline) = Σ A − δ``, so no extra forward pass).

ReLU networks have kinks along the path, so Gauss–Legendre quadrature converges slowly on some inputs and
fast on others (the MNIST demo teacher at 64 steps: mostly well under 1%, a few inputs at ~3.6%). A fixed
step count is too many for easy inputs and too few for hard ones. With ``auto_steps``,
:func:`kdviz.attribution.engine.attribute_auto_steps`
starts every input at ``n_steps`` and doubles the steps of only those inputs whose error is still above
``tolerance``, up to :data:`MAX_STEPS`; each input keeps the attribution of the first step count that met
the tolerance (Gauss–Legendre nodes of different counts are not nested, so a retry recomputes the input).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from kdviz.errors import InvalidInputError

__all__ = [
    "MAX_STEPS", "completeness_caption", "completeness_column", "completeness_error", "step_ladder", "steps_column",
    "steps_cost",
]

MAX_STEPS = 512  # the largest step count IG's parameter table allows
_GAP_FLOOR = 1e-8  # |f(x) − f(baseline)| below this counts as this (an input the baseline already explains)


def completeness_error(raw: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Per-input ``|δ| / |f(x) − f(baseline)|`` from IG attributions ``raw`` (N, ...) and captum's ``delta`` (N,)."""
    raw = np.asarray(raw, dtype=np.float64)
    delta = np.asarray(delta, dtype=np.float64).reshape(-1)
    gap = raw.reshape(raw.shape[0], -1).sum(axis=1) - delta
    return np.abs(delta) / np.maximum(np.abs(gap), _GAP_FLOOR)


def completeness_column(attr: Any, n: int) -> np.ndarray:
    """(n,) completeness error of an ``Attribution`` for a results table; NaN for methods without a delta."""
    err = getattr(attr, "completeness_error", None)
    return np.full(n, np.nan) if err is None else np.asarray(err, dtype=np.float64)


def steps_column(attr: Any, n: int) -> Any:
    """(n,) IG steps per input (``auto_steps``' choice, else the fixed ``n_steps``); NA for other methods."""
    if getattr(attr, "method", None) != "integrated_gradients":
        return pd.array([pd.NA] * n, dtype="Int64")
    steps = attr.steps if getattr(attr, "steps", None) is not None else np.full(n, attr.params["n_steps"])
    return pd.array(np.asarray(steps, dtype=np.int64), dtype="Int64")


def completeness_caption(frame: Any, *, tolerance: float = 0.01) -> str:
    """One line for the IG maps of a comparison frame (``ig_completeness_error``, ``ig_steps``, ``model_id``):
    the worst completeness error and whose it is, and what to do when it is above ``tolerance``."""
    err = np.asarray(frame["ig_completeness_error"], dtype=np.float64)
    if err.size == 0 or not np.isfinite(err).any():
        return ""
    worst = int(np.nanargmax(err))
    steps = sorted({int(s) for s in frame["ig_steps"].dropna()})
    text = (f"IG completeness error |Σ A − (f(x) − f(baseline))| / |f(x) − f(baseline)|: median "
            f"{np.nanmedian(err):.1%}, worst {err[worst]:.1%} ({frame['model_id'].iloc[worst]}); steps "
            f"{', '.join(map(str, steps))}.")
    if err[worst] > tolerance:
        text += (f" Above {tolerance:.0%} a map does not yet add up to the output change it explains: raise the "
                 "steps, or turn on auto_steps.")
    return text


def step_ladder(start: int, max_steps: int = MAX_STEPS) -> tuple[int, ...]:
    """The step counts tried in turn: ``start``, doubled each time, capped at ``max_steps`` (which is last)."""
    if start < 2 or start > max_steps:
        raise InvalidInputError(f"n_steps={start} must be between 2 and max_steps={max_steps}")
    rungs = [start]
    while rungs[-1] < max_steps:
        rungs.append(min(2 * rungs[-1], max_steps))
    return tuple(rungs)


def steps_cost(chosen: Sequence[int] | np.ndarray, start: int, max_steps: int = MAX_STEPS) -> int:
    """Steps actually evaluated to reach the ``chosen`` step counts (every rung tried on the way counts)."""
    ladder = step_ladder(start, max_steps)
    cumulative = dict(zip(ladder, np.cumsum(ladder).tolist(), strict=True))
    return int(sum(cumulative[int(s)] for s in np.asarray(chosen).reshape(-1)))
