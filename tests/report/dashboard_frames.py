"""Model tables and maps for the dashboard views' tests: a teacher, two student architectures at α 1.0 and 0.1,
and one saliency-distilled student."""

from __future__ import annotations

import numpy as np
import pandas as pd


def models_frame() -> pd.DataFrame:
    rows = [("t", "teacher", "resnet56", 1.0, "ce")]
    for arch in ("resnet8", "resnet20"):
        for a in (1.0, 0.1):
            rows.append((f"{arch}_{a}", "student", arch, a, "kd"))
    rows.append(("resnet8_sd", "student", "resnet8", 0.5, "kd+sd"))
    return pd.DataFrame(rows, columns=["model_id", "role", "arch", "alpha", "method"])


def random_maps(models: pd.DataFrame, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {mid: rng.random((8, 8)) * (i + 1) for i, mid in enumerate(models["model_id"])}


def dashboard_summary() -> pd.DataFrame:
    """:func:`models_frame` with focus, attention and logit alignment and ``_lo``/``_hi`` intervals of ±0.1."""
    m = models_frame()
    rng = np.random.default_rng(1)
    for c in ("focus_ratio", "focus_fraction", "attention_rho", "logit_rho"):
        m[c] = rng.random(len(m))
        m[f"{c}_lo"], m[f"{c}_hi"] = m[c] - 0.1, m[c] + 0.1
    return m
