"""KD vs SD vs KED students at one α on a demo zoo's full test split: the table of issue 13's closing note.

    python benchmarks/ked_table.py --zoo assets/zoo/mnist --alpha 0.5 --arch resnet8 \
        --parts slic:50 superfeatures:8 --out /tmp/ked/mnist_table

For every student of ``--arch`` at ``--alpha`` (each seed replicate of KD, SD and KED), against the zoo's
teacher, on the whole test split: accuracy, attention rank alignment and its chance-corrected excess over
the random-weights null (``null_copies`` untrained copies of the architecture, kdviz.analysis.nulls), focus ratio on
the teacher's top-k parts, and logit alignment. Attributions are computed once per (model, batch) and reused
for every parts spec. Writes ``<out>_<parts>.csv`` (per model) and ``<out>_<parts>_variants.csv`` (per
variant, seeds pooled with hierarchical intervals, kdviz.analysis.aggregate) and prints them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdviz.analysis.aggregate import summarize_models, summarize_variants  # noqa: E402
from kdviz.analysis.compare import CompareOptions, Hooks, NullOptions, compare_models  # noqa: E402
from kdviz.attribution.engine import attribute  # noqa: E402
from kdviz.io.builtin_datasets import load_dataset  # noqa: E402
from kdviz.io.zoo.manifest import load_zoo  # noqa: E402

COLUMNS = ["model_id", "method", "n", "accuracy", "attention_rho", "attention_rho_null", "attention_rho_excess",
           "attention_rho_excess_low", "attention_rho_excess_high", "focus_ratio", "logit_rho", "margin_rho"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--parts", nargs="+", required=True)
    p.add_argument("--steps", type=int, default=32, help="integrated-gradients steps")
    p.add_argument("--null", type=int, default=3, help="random-weights copies of the architecture")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--start", type=int, default=0, help="first test input (split a long run over processes)")
    p.add_argument("--limit", type=int, default=None, help="last test input + 1 (default: the whole split)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    zoo = load_zoo(args.zoo)
    ds = load_dataset(zoo.dataset)
    students = [m for m in zoo.students if m.arch == args.arch and m.alpha == args.alpha]
    print(f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; students: {[m.id for m in students]}", flush=True)
    x_all, y_all = ds.x_test[args.start : args.limit], ds.y_test[args.start : args.limit]
    params = {"n_steps": args.steps}
    frames: dict[str, list[pd.DataFrame]] = {parts: [] for parts in args.parts}
    for lo in range(0, len(x_all), args.batch):
        x_disp, y = x_all[lo : lo + args.batch], y_all[lo : lo + args.batch]
        x = ds.model_input(x_disp)
        memo: dict[str, object] = {}

        def attribute_fn(entry, xb, targets, dev, memo=memo):
            if entry.id not in memo:
                memo[entry.id] = attribute(entry.module, xb, method="integrated_gradients", target=targets,
                                           device=dev, **params)
            return memo[entry.id]

        for parts in args.parts:
            options = CompareOptions(method_params=params, null=NullOptions(copies=args.null),
                                     images_for_slic=x_disp if x_disp.ndim == 4 else None,
                                     input_ids=list(range(args.start + lo, args.start + lo + len(x))),
                                     hooks=Hooks(attribute_fn=attribute_fn))
            comp = compare_models(zoo.teacher, students, x, labels=y, method="integrated_gradients", parts=parts,
                                  k=args.k, options=options)
            frames[parts].append(comp.frame)
        print(f"[{time.perf_counter() - start:6.0f}s] inputs {lo}..{lo + len(x) - 1} done", flush=True)
    for parts, chunks in frames.items():
        frame = pd.concat(chunks, ignore_index=True)
        per_model = summarize_models(frame)
        per_variant = summarize_variants(frame)
        tag = parts.replace(":", "")
        per_model.to_csv(f"{args.out}_{tag}.csv", index=False)
        per_variant.to_csv(f"{args.out}_{tag}_variants.csv", index=False)
        frame.to_parquet(f"{args.out}_{tag}_frame.parquet")
        show = [c for c in COLUMNS if c in per_model.columns]
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(f"\n== {zoo.name}, parts {parts}, IG {args.steps} steps, k={args.k}, null R={args.null}, "
                  f"{len(x_all)} test inputs")
            print(per_model[show].round(3).to_string(index=False))
            vcols = [c for c in per_variant.columns if not c.endswith(("_low", "_high")) or "excess" in c]
            print(per_variant[vcols].round(3).to_string(index=False))
    print(f"total {time.perf_counter() - start:.0f} s; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
