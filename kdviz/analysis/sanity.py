"""Which attribution setting to trust on which data: the randomisation test and the null, side by side.

For each (method, parts, baseline) setting, :func:`sanity_row` measures on the same inputs

* the teacher randomisation test (``kdviz.analysis.randomisation``): ρ of the fully randomised teacher and the verdict;
* the random-weights null (``kdviz.analysis.nulls``): mean ρ of untrained copies of the students' architectures;
* the trained students' raw attention ρ and their chance-corrected excess over the null.

``kdviz sanity`` prints these as a table; the README's "which method to trust" table was made with it, and
``choose_default`` picks the setting the demo opens with: among settings that pass the randomisation test,
the one whose trained students stand furthest above the null (largest mean excess). ``kdviz sanity --write``
records it in the zoo's ``zoo.json`` (``kdviz.analysis.defaults``).

The null is a distribution over initialisations (``kdviz.analysis.nulls``): each row also has the copies' SD,
how many students clear it (rank p ≤ 0.05 over R copies) and a power analysis from the observed spreads —
the inputs (one seed) and the seeds (at these inputs) that would detect an excess of 0.1 at 80% power.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from kdviz.analysis.aggregate import summarize_models
from kdviz.analysis.compare import CompareOptions, NullOptions, compare_models
from kdviz.analysis.metrics import mean_ci
from kdviz.analysis.nulls import DEFAULT_NULL_COPIES, NULL_ALPHA, inputs_for_power, seeds_for_power
from kdviz.analysis.randomisation import RandomisationOptions, randomisation_test
from kdviz.modalities.parts import parse_parts

__all__ = ["SanityRow", "SanityRun", "Setting", "choose_default", "power_sentence", "sanity_row", "sanity_table", "spread_power"]


@dataclass(frozen=True)
class Setting:
    """One attribution setting: method, its parameters (e.g. IG's baseline) and the parts."""

    method: str
    params: tuple[tuple[str, Any], ...]
    parts: str

    @property
    def label(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.method}" + (f" ({extra})" if extra else "") + f", {self.parts}"


@dataclass(frozen=True)
class SanityRow:
    """The numbers of one setting (means over inputs; students pooled)."""

    method: str
    params: str
    parts: str
    teacher_randomised_rho: float
    teacher_randomised_rho_low: float
    teacher_randomised_rho_high: float
    verdict: str
    null_rho: float
    null_rho_sd: float
    students_rho: float
    students_excess: float
    students_excess_low: float
    students_excess_high: float
    students_above_null: int  # students with rank p ≤ 0.05 (uncorrected) against R copies
    null_copies: int
    inputs_for_power: float  # inputs (one seed) to detect an excess of 0.1 at 80% power; inf: seeds must grow
    seeds_for_power: float  # training seeds to detect it at n_inputs inputs
    n_inputs: int
    n_students: int
    seconds: float


@dataclass(frozen=True)
class SanityRun:
    """How every setting of a sanity table runs: SLIC's display images, R null copies, randomisation seeds, device."""

    images_for_slic: np.ndarray | None = None
    null_copies: int = DEFAULT_NULL_COPIES
    seeds: Sequence[int] = (20_000,)
    device: str | None = None


def sanity_row(teacher: Any, students: Sequence[Any], x: np.ndarray, setting: Setting, *,
               run: SanityRun | None = None) -> SanityRow:
    """Randomisation test, null and trained students' alignment for one setting on inputs ``x``."""
    run = run or SanityRun()
    images_for_slic, null_copies, seeds, device = run.images_for_slic, run.null_copies, run.seeds, run.device
    start = time.perf_counter()
    params = dict(setting.params)
    comp = compare_models(teacher, students, x, method=setting.method, parts=setting.parts,
                          options=CompareOptions(method_params=params, images_for_slic=images_for_slic,
                                                 null=NullOptions(copies=null_copies), device=device))
    test = randomisation_test(teacher.module, teacher.arch, x, part_labels=comp.part_labels, method=setting.method,
                              options=RandomisationOptions(method_params=params, seeds=seeds, device=device,
                                                           parts_name=comp.parts, full_only=True))
    s = comp.frame[comp.frame["role"] != "teacher"]
    excess = s["attention_rho_excess"].to_numpy(dtype=float)
    ex_mean, ex_lo, ex_hi = mean_ci(excess)
    summary = summarize_models(s, n_resamples=200)
    power = spread_power(s, summary, n_inputs=int(x.shape[0]), copies=null_copies)
    return SanityRow(
        method=setting.method, params=", ".join(f"{k}={v}" for k, v in setting.params), parts=comp.parts,
        teacher_randomised_rho=test.full_rho, teacher_randomised_rho_low=test.full_rho_low,
        teacher_randomised_rho_high=test.full_rho_high, verdict=test.verdict,
        null_rho=float(np.nanmean(s["attention_rho_null"].to_numpy(dtype=float))),
        null_rho_sd=float(np.nanmean(summary["attention_rho_null_sd"])) if "attention_rho_null_sd" in summary
        else math.nan,
        students_above_null=int((summary.get("attention_rho_p", pd.Series(dtype=float)) <= NULL_ALPHA).sum()),
        null_copies=int(null_copies), inputs_for_power=power[0], seeds_for_power=power[1],
        students_rho=float(np.nanmean(s["attention_rho"].to_numpy(dtype=float))),
        students_excess=ex_mean, students_excess_low=ex_lo, students_excess_high=ex_hi,
        n_inputs=int(x.shape[0]), n_students=len(students), seconds=round(time.perf_counter() - start, 1),
    )


def spread_power(frame: pd.DataFrame, summary: pd.DataFrame, *, n_inputs: int, copies: int,
                 effect: float = 0.1, power: float = 0.8) -> tuple[float, float]:
    """(inputs, seeds) that would detect an excess of ``effect`` at ``power`` (``kdviz.analysis.nulls``), from the
    students' per-input SD of the excess and the copies' SD over initialisations in excess units (both pooled
    over students as root mean squares)."""
    if "attention_rho_null_sd" not in summary or frame.empty:
        return math.nan, math.nan
    sd_in = frame.groupby("model_id")["attention_rho_excess"].std().to_numpy(dtype=float)
    null = summary["attention_rho_null"].to_numpy(dtype=float)
    sd_init = summary["attention_rho_null_sd"].to_numpy(dtype=float) / np.clip(1 - null, 1e-6, None)
    rms_in = float(np.sqrt(np.nanmean(sd_in ** 2))) if np.isfinite(sd_in).any() else math.nan
    rms_init = float(np.sqrt(np.nanmean(sd_init ** 2))) if np.isfinite(sd_init).any() else math.nan
    return (inputs_for_power(rms_in, rms_init, effect=effect, power=power, copies=copies),
            seeds_for_power(rms_in, rms_init, inputs=n_inputs, effect=effect, power=power, copies=copies))


def power_sentence(frame: pd.DataFrame, *, copies: int, effect: float = 0.1, power: float = 0.8) -> str | None:
    """One sentence for a page: the inputs (one seed) and seeds (at these inputs) that would detect an excess
    of ``effect`` over the null at ``power``, from this frame's spreads; None without per-copy values."""
    s = frame[frame["role"].astype(str) != "teacher"]
    if s.empty or "attention_rho_null_copies" not in s:
        return None
    summary = summarize_models(s, n_resamples=100)
    n = int(s["input_id"].nunique())
    n_in, n_seeds = spread_power(s, summary, n_inputs=n, copies=copies, effect=effect, power=power)
    if not (math.isfinite(n_seeds) or math.isinf(n_seeds)):
        return None
    seeds = "no number of seeds (the null itself is too uncertain: more copies)" if math.isinf(n_seeds) \
        else f"{int(n_seeds):,} training seed{'s' if n_seeds != 1 else ''} per variant"
    inputs = "no number of inputs with one seed (the spread between initialisations alone hides it)" \
        if math.isinf(n_in) else f"{int(n_in):,} inputs with one seed"
    return (f"Power: to detect an excess of {effect:g} over the null at {power:.0%} (one-sided 0.05, R = {copies}) "
            f"takes {inputs}, or {seeds} at these {n} inputs — a result 'within the null' here may be too few "
            "inputs or seeds rather than no effect.")


def sanity_table(
    teacher: Any, students: Sequence[Any], x: np.ndarray, settings: Sequence[Setting], *,
    run: SanityRun | None = None, log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """:func:`sanity_row` for every setting, as a DataFrame (one row per setting)."""
    rows = []
    for i, setting in enumerate(settings):
        parse_parts(setting.parts)  # fail early on a bad spec
        row = sanity_row(teacher, students, x, setting, run=run)
        rows.append(asdict(row))
        if log is not None:
            log(f"[{i + 1}/{len(settings)}] {setting.label}: randomised teacher ρ {row.teacher_randomised_rho:.2f} "
                f"({row.verdict}), null ρ {row.null_rho:.2f} ± {row.null_rho_sd:.2f}, students ρ {row.students_rho:.2f}, "
                f"excess {row.students_excess:.2f} ({row.seconds:.0f} s)")
    return pd.DataFrame(rows)


def choose_default(table: pd.DataFrame) -> pd.Series | None:
    """The passing setting with the largest mean excess of trained students over the null (None if none pass)."""
    passing = table[table["verdict"] == "passes"]
    if passing.empty:
        return None
    return passing.sort_values("students_excess", ascending=False).iloc[0]
