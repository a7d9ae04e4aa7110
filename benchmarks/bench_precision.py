"""Fidelity of a lower precision, measured: bf16 (or fp16) autocast against fp32 on the demo zoos.

For each zoo, the first ``--images`` test inputs go through ``kdviz.analysis.compare.compare_models`` twice, in fp32
and under autocast, with the same settings (IG, its steps, the zoo's default parts, k = 5). Prints per model
the Spearman ρ between the two precisions' importance maps (mean and minimum over inputs) and the IG
completeness error in each, then per summary metric the fp32 mean, the bf16 mean and the largest change
over models, and both wall times.

    python benchmarks/bench_precision.py --images 16 --steps 32
    python benchmarks/bench_precision.py --device cuda --precision bf16       # on a GPU

On a CPU without native bf16 (no ``avx512_bf16`` / ``amx_bf16``) kdviz refuses bf16; this benchmark runs it
emulated (``allow_emulated``) because the *numbers* are bf16's either way — the timings then say nothing
about bf16 hardware and are printed as emulated.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdviz.analysis.compare import CompareOptions, NullOptions, compare_models  # noqa: E402
from kdviz.attribution.precision import precision_context, precision_support  # noqa: E402
from kdviz.evaluation.evaluate import summarize  # noqa: E402
from kdviz.io.builtin_datasets import load_dataset  # noqa: E402
from kdviz.io.zoo.manifest import load_zoo  # noqa: E402

METRICS = ("accuracy", "confidence", "attention_rho", "logit_rho", "focus_ratio", "focus_fraction", "topk_overlap",
           "kl_to_teacher", "agree", "ssim", "pearson", "ig_completeness_error")


def run(zoo_dir: Path, images: int, steps: int, precision: str, device: str) -> tuple[str, str]:
    zoo = load_zoo(zoo_dir)
    ds = load_dataset(zoo.dataset)
    x_disp = ds.x_test[:images]
    x = ds.model_input(x_disp)
    y = ds.y_test[:images]
    parts = "segments:10" if zoo.task == "timeseries" else "slic:50"
    kwargs = dict(labels=y, method="integrated_gradients", parts=parts, k=5,
                  options=CompareOptions(method_params={"n_steps": steps}, device=device, images_for_slic=x_disp,
                                         null=NullOptions(copies=0)))
    teacher, students = zoo.teacher, list(zoo.students)
    emulated = not precision_support(device, precision).supported
    results, seconds = {}, {}
    for name in ("fp32", precision):
        t0 = time.perf_counter()
        with precision_context(device, name, allow_emulated=True):
            results[name] = compare_models(teacher, students, x, **kwargs)
        seconds[name] = time.perf_counter() - t0
    a, b = results["fp32"], results[precision]
    lines = [f"### {zoo.name}: {images} inputs, IG {steps} steps, parts {parts}, {device}"
             f"{' (bf16 EMULATED: no native support on this CPU)' if emulated else ''}", "",
             f"fp32 {seconds['fp32']:.1f} s, {precision} {seconds[precision]:.1f} s", "",
             f"| model | map ρ {precision}↔fp32 mean | min | completeness error fp32 (mean / max) | {precision} |",
             "| --- | ---: | ---: | --- | --- |"]
    for m in [teacher, *students]:
        ia, ib = a.attributions[m.id], b.attributions[m.id]
        rho = [scipy.stats.spearmanr(u.ravel(), v.ravel())[0] for u, v in zip(ia.importance, ib.importance, strict=True)]
        ea, eb = ia.completeness_error, ib.completeness_error
        lines.append(f"| {m.id} | {np.nanmean(rho):.4f} | {np.nanmin(rho):.4f} | {ea.mean():.2%} / {ea.max():.2%} "
                     f"| {eb.mean():.2%} / {eb.max():.2%} |")
    sa, sb = summarize(a.frame).set_index("model_id"), summarize(b.frame).set_index("model_id")
    table = ["", f"| summary metric | fp32 (mean over models) | {precision} | largest change for one model |",
             "| --- | ---: | ---: | ---: |"]
    for col in METRICS:
        if col not in sa:
            continue
        u, v = pd.to_numeric(sa[col], errors="coerce"), pd.to_numeric(sb[col], errors="coerce")
        finite = np.isfinite(u) & np.isfinite(v)
        change = float(np.nanmax(np.abs(u[finite] - v[finite]))) if finite.any() else float("nan")
        table.append(f"| {col} | {np.nanmean(u):.4f} | {np.nanmean(v):.4f} | {change:.4f} |")
    return "\n".join(lines), "\n".join(table)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zoos", nargs="+", default=[str(ROOT / "assets/zoo/mnist"), str(ROOT / "assets/zoo/gunpoint")])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--precision", default="bf16", choices=("bf16", "fp16"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()}")
    for z in args.zoos:
        maps, summary = run(Path(z), args.images, args.steps, args.precision, args.device)
        print(maps + "\n" + summary + "\n", flush=True)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
