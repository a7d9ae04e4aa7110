"""The KED study's numbers (arXiv 2310.02572 as its authors build it): accuracy and attention alignment of
CE, KD and KED students of a KED zoo (``kdviz ked-zoo``), with intervals that resample seeds, then inputs.

* :func:`accuracy_table`: per cell (architecture, method) the accuracy of each seed on the full test split, the
  mean of the seeds and a hierarchical 95% bootstrap interval (:func:`kdviz.analysis.aggregate.hierarchical_ci`);
  :func:`accuracy_difference` the KED − KD difference with the same two-level resampling (seeds of each arm
  drawn independently; the test inputs drawn once per resample and shared by both arms).
* :func:`alignment_table`: attention rank alignment (Spearman ρ of part-importance vectors) of every
  student to the zoo's teacher, with the random-weights null as a distribution: R untrained copies of each
  student architecture — explaining copies carry the zoo's superfeatures and class prior, as every trained
  explaining model does — scored exactly like the students; the copies' mean and SD, the model's z and the
  one-sided rank p = (1 + #{copies ≥ model}) / (R + 1).

``python -m kdviz.report.ked_study ZOO`` prints both tables as Markdown.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from kdviz.analysis.aggregate import hierarchical_ci
from kdviz.analysis.compare import CompareOptions, NullOptions, compare_models
from kdviz.analysis.nulls import DEFAULT_NULL_COPIES, NULL_SEED_BASE
from kdviz.errors import InvalidInputError
from kdviz.io.builtin_datasets import load_dataset
from kdviz.io.zoo.manifest import Zoo, load_zoo
from kdviz.models import seeded_model
from kdviz.training.inference import eval_logits
from kdviz.vocab import TrainingMethod

__all__ = ["NullCopy", "accuracy_difference", "accuracy_table", "alignment_table", "explaining_copies",
           "markdown", "test_correct"]


def test_correct(model: nn.Module, x: np.ndarray, y: np.ndarray, *, batch_size: int = 1000) -> np.ndarray:
    """(N,) bool: the model's prediction equals the label, on model-input ``x``."""
    return eval_logits(model, torch.from_numpy(x), batch_size=batch_size).argmax(1).numpy() == np.asarray(y)


def _cell(model: object) -> tuple[str, str]:
    return str(model.arch), str(model.method)  # type: ignore[attr-defined]


def accuracy_table(zoo: Zoo, *, n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per (arch, method) of the zoo's students and teacher: seeds, per-seed accuracy, mean, interval."""
    ds = load_dataset(zoo.dataset)
    x = ds.model_input(ds.x_test)
    rows = []
    cells: dict[tuple[str, str, str], list[tuple[int, np.ndarray]]] = {}
    for model in zoo.models:
        key = (model.role if not model.id.startswith("plain_teacher") else "teacher (plain)", *_cell(model))
        cells.setdefault(key, []).append((model.seed, test_correct(model.module, x, ds.y_test)))
    for (role, arch, method), runs in cells.items():
        runs.sort(key=lambda r: r[0])
        mean, lo, hi = hierarchical_ci([c for _, c in runs], n_resamples=n_resamples, seed=seed)
        params = next(m.params for m in zoo.models if m.arch == arch)
        rows.append({"role": role, "arch": arch, "method": method, "params": params,
                     "seeds": tuple(s for s, _ in runs), "per_seed": tuple(round(float(c.mean()), 4) for _, c in runs),
                     "accuracy": mean, "low": lo, "high": hi})
    return pd.DataFrame(rows)


def accuracy_difference(zoo: Zoo, *, a: str = TrainingMethod.KED, b: str = TrainingMethod.KD, n_resamples: int = 2000,
                        seed: int = 0) -> tuple[float, float, float]:
    """Mean accuracy of method ``a`` minus method ``b`` (students) and a seeds-then-inputs 95% interval."""
    ds = load_dataset(zoo.dataset)
    x = ds.model_input(ds.x_test)
    arms = [np.stack([test_correct(m.module, x, ds.y_test) for m in zoo.students
                      if m.method == method and not m.id.startswith("plain_teacher")]).astype(np.float64)
            for method in (a, b)]
    if any(len(arm) == 0 for arm in arms):
        raise InvalidInputError(f"zoo {zoo.name!r} has no students of method {a!r} or {b!r}")
    point = float(arms[0].mean() - arms[1].mean())
    rng = np.random.default_rng(seed)
    n = arms[0].shape[1]
    boot = np.empty(n_resamples)
    for r in range(n_resamples):
        inputs = rng.integers(0, n, size=n)
        means = [arm[rng.integers(0, len(arm), size=len(arm))][:, inputs].mean() for arm in arms]
        boot[r] = means[0] - means[1]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return point, float(lo), float(hi)


@dataclass(frozen=True, eq=False)
class NullCopy:
    """An untrained copy of a student architecture (quacks like a zoo model for ``compare_models``)."""

    id: str
    arch: str
    seed: int
    module: nn.Module
    alpha: float | None = None
    role: str = "random"
    method: str = "random"


def explaining_copies(zoo: Zoo, arch: str, copies: int) -> tuple[NullCopy, ...]:
    """``copies`` untrained networks of ``arch`` (seeds ``NULL_SEED_BASE + r``); explaining ones get the zoo
    teacher's superfeatures and class prior, which are part of their architecture."""
    teacher = zoo.teacher.module
    out = []
    for r in range(copies):
        s = NULL_SEED_BASE + r
        module = seeded_model(arch, seed=s, num_classes=len(zoo.class_names), in_channels=zoo.input_shape[0])
        if hasattr(module, "set_superfeatures") and hasattr(teacher, "superfeatures"):
            module.set_superfeatures(teacher.superfeatures, teacher.log_prior,
                                     generator=torch.Generator().manual_seed(s))
        out.append(NullCopy(f"random:{arch}:seed{s}", arch, s, module.float().eval()))
    return tuple(out)


def alignment_table(zoo: Zoo, *, n_inputs: int = 500, method: str = "integrated_gradients",
                    parts: str = "grid:7x7", copies: int = DEFAULT_NULL_COPIES, n_resamples: int = 2000,
                    seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per model, per cell) attention alignment to the teacher on the first ``n_inputs`` test inputs.

    Per model: mean ρ over inputs, the null copies' mean and SD of their per-copy means, z and rank p. Per cell
    (arch, method): mean of the seeds' means with a seeds-then-inputs interval, and the same for the null.
    """
    ds = load_dataset(zoo.dataset)
    x = ds.model_input(ds.x_test[:n_inputs])
    students = list(zoo.students)
    nulls = {arch: explaining_copies(zoo, arch, copies) for arch in dict.fromkeys(m.arch for m in students)}
    everyone = students + [c for cs in nulls.values() for c in cs]
    comp = compare_models(zoo.teacher, everyone, x, labels=ds.y_test[:n_inputs], method=method, parts=parts,
                          options=CompareOptions(null=NullOptions(copies=0), images_for_slic=ds.x_test[:n_inputs]))
    rho = {mid: g.sort_values("input_id")["attention_rho"].to_numpy(dtype=np.float64)
           for mid, g in comp.frame.groupby("model_id")}
    per_model = []
    for m in students:
        own = float(np.nanmean(rho[m.id]))
        null_means = np.array([np.nanmean(rho[c.id]) for c in nulls[m.arch]])
        sd = float(null_means.std(ddof=1)) if len(null_means) > 1 else math.nan
        per_model.append({"model_id": m.id, "arch": m.arch, "method": m.method, "seed": m.seed,
                          "attention_rho": own, "null_mean": float(null_means.mean()), "null_sd": sd,
                          "z": (own - null_means.mean()) / sd if sd and sd > 0 else math.nan,
                          "p": (1 + int((null_means >= own).sum())) / (len(null_means) + 1)})
    per_model_df = pd.DataFrame(per_model)
    cells = []
    for (arch, meth), g in per_model_df.groupby(["arch", "method"], sort=False):
        mean, lo, hi = hierarchical_ci([rho[i] for i in g["model_id"]], n_resamples=n_resamples, seed=seed)
        nmean, nlo, nhi = hierarchical_ci([rho[c.id] for c in nulls[arch]], n_resamples=n_resamples, seed=seed)
        cells.append({"arch": arch, "method": meth, "seeds": len(g), "attention_rho": mean, "low": lo, "high": hi,
                      "null": nmean, "null_low": nlo, "null_high": nhi, "p_max": float(g["p"].max())})
    return per_model_df, pd.DataFrame(cells)


def markdown(frame: pd.DataFrame, *, digits: int = 3) -> str:
    """A DataFrame as a GitHub Markdown table (floats rounded)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the accuracy table, the KED − KD difference and the alignment table of a KED zoo."""
    parser = argparse.ArgumentParser(prog="python -m kdviz.report.ked_study", description=__doc__.split("\n")[0])
    parser.add_argument("zoo", type=Path)
    parser.add_argument("--inputs", type=int, default=500, help="test inputs for attention alignment")
    parser.add_argument("--copies", type=int, default=DEFAULT_NULL_COPIES,
                        help="random-weights copies per architecture (R)")
    parser.add_argument("--method", default="integrated_gradients")
    parser.add_argument("--parts", default="grid:7x7")
    args = parser.parse_args(argv)
    zoo = load_zoo(args.zoo)
    print(markdown(accuracy_table(zoo)))
    d, lo, hi = accuracy_difference(zoo)
    print(f"\nKED − KD accuracy: {d:+.4f} [{lo:+.4f}, {hi:+.4f}] (seeds, then inputs)\n")
    if args.inputs > 0:
        per_model, cells = alignment_table(zoo, n_inputs=args.inputs, copies=args.copies, method=args.method,
                                           parts=args.parts)
        print(markdown(per_model))
        print()
        print(markdown(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
