"""Per-model summaries for the Report's tests: the reference study's logit table with trends along α."""

from __future__ import annotations

import numpy as np
import pandas as pd

# The reference study: rows α, columns ResNet101/50/34/18 (teacher ResNet101 at α=1.0).
REFERENCE = {1.0: (1.00, 0.52, 0.28, 0.26), 0.5: (0.76, 0.70, 0.48, 0.38), 0.1: (0.81, 0.76, 0.56, 0.50)}
REFERENCE_TEXT = "α=1.0: 1.00 0.52 0.28 0.26 · α=0.5: 0.76 0.70 0.48 0.38 · α=0.1: 0.81 0.76 0.56 0.50"
ARCHS = ("resnet101", "resnet50", "resnet34", "resnet18")


def make_summary(*, trend: float = 1.0, sd: bool = True) -> pd.DataFrame:
    """A per-model summary like ``evaluate.summarize`` gives: the reference logit table, and attention/focus
    /accuracy that rise with KD strength when ``trend`` > 0 (fall when < 0)."""
    rows = [{"model_id": "teacher", "role": "teacher", "arch": "resnet101", "alpha": np.nan, "method": "ce",
             "accuracy": 0.80, "attention_rho": 1.0, "logit_rho": 1.0, "focus_ratio": 2.0, "focus_fraction": 0.6}]
    for alpha, values in REFERENCE.items():
        strength = {1.0: 0.0, 0.5: 0.5, 0.1: 1.0}[alpha]
        for j, (arch, logit) in enumerate(zip(ARCHS, values, strict=True)):
            rows.append({
                "model_id": f"{arch}_a{alpha}", "role": "student", "arch": arch, "alpha": alpha, "method": "kd",
                "accuracy": 0.70 + 0.02 * j * trend * strength, "attention_rho": 0.3 + 0.2 * trend * strength + 0.4 * logit,
                "logit_rho": logit, "focus_ratio": 1.0 + trend * strength, "focus_fraction": 0.5 + 0.1 * trend * strength,
            })
    if sd:
        rows.append({"model_id": "resnet18_sd", "role": "student", "arch": "resnet18", "alpha": 0.1,
                     "method": "kd+sd", "accuracy": 0.75, "attention_rho": 0.8, "logit_rho": 0.55,
                     "focus_ratio": 2.2, "focus_fraction": 0.7})
    s = pd.DataFrame(rows)
    for col in ("accuracy", "attention_rho", "logit_rho", "focus_ratio", "focus_fraction"):
        s[f"{col}_low"], s[f"{col}_high"] = s[col] - 0.01, s[col] + 0.01
    s["n"] = 200
    return s


def trend_summary(deltas: dict[str, tuple[float, float, float]], *, half_width: float = 0.01,
                   excess_low: float | None = None) -> pd.DataFrame:
    """Students of each arch at α 1.0/0.5/0.1 with the given attention ρ means and ± half_width intervals."""
    rows = [{"model_id": "t", "role": "teacher", "arch": "resnet101", "alpha": np.nan, "method": "ce",
             "attention_rho": 1.0}]
    for arch, values in deltas.items():
        for alpha, v in zip((1.0, 0.5, 0.1), values, strict=True):
            rows.append({"model_id": f"{arch}{alpha}", "role": "student", "arch": arch, "alpha": alpha,
                         "method": "ce" if alpha == 1.0 else "kd", "attention_rho": v})
    s = pd.DataFrame(rows)
    s["attention_rho_low"], s["attention_rho_high"] = s["attention_rho"] - half_width, s["attention_rho"] + half_width
    if excess_low is not None:
        s["attention_rho_excess_low"] = excess_low
    return s
