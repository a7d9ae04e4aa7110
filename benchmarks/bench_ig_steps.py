"""IG's ``auto`` step count against fixed 32 and 64 steps: time, steps evaluated, completeness error.

For each demo teacher, the first ``--images`` test inputs: IG with 32 and with 64 fixed steps, and with
``auto_steps`` (16 steps doubled per input until the completeness error is ≤ ``--tolerance``, at most 512).
Prints time, steps evaluated (every rung tried counts), the error (mean / max), the inputs within tolerance,
and the steps auto chose; then the smallest fixed count on the ladder that brings *every* input within
tolerance, and its cost.

    python benchmarks/bench_ig_steps.py --images 16
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdviz.attribution.engine import attribute  # noqa: E402
from kdviz.attribution.ig_steps import step_ladder, steps_cost  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zoos", nargs="+", default=[str(ROOT / "assets/zoo/mnist"), str(ROOT / "assets/zoo/gunpoint")])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from kdviz.io.builtin_datasets import load_dataset
    from kdviz.io.zoo.manifest import load_zoo

    tol = args.tolerance
    print(f"{torch.get_num_threads()} threads; tolerance {tol:.0%}; load average before {os.getloadavg()}")
    for z in args.zoos:
        zoo = load_zoo(z)
        ds = load_dataset(zoo.dataset)
        x = ds.model_input(ds.x_test[: args.images])
        model = zoo.teacher.module.eval()
        with torch.no_grad():
            target = model(torch.as_tensor(x)).argmax(1).numpy()
        attribute(model, x[:2], method="integrated_gradients", target=target[:2], n_steps=8)  # warm-up
        print(f"\n### {zoo.name} teacher ({zoo.teacher.arch}), {len(x)} inputs\n")
        print("| IG steps | seconds | steps evaluated | error mean | error max | inputs ≤ tolerance |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        errors = {}
        for label, params in (("fixed 32", {"n_steps": 32}), ("fixed 64", {"n_steps": 64}),
                              ("auto", {"n_steps": 16, "auto_steps": True, "tolerance": tol})):
            t0 = time.perf_counter()
            out = attribute(model, x, method="integrated_gradients", target=target, **params)
            seconds = time.perf_counter() - t0
            err = out.completeness_error
            errors[label] = err
            cost = steps_cost(out.steps, 16) if out.steps is not None else params["n_steps"] * len(x)
            print(f"| {label} | {seconds:.2f} | {cost} | {err.mean():.2%} | {err.max():.2%} "
                  f"| {(err <= tol).sum()}/{len(x)} |", flush=True)
            if out.steps is not None:
                chosen = dict(sorted(collections.Counter(int(s) for s in out.steps).items()))
        print(f"\nauto chose (steps: inputs): {chosen}")
        for steps in step_ladder(16):
            t0 = time.perf_counter()
            fixed = attribute(model, x, method="integrated_gradients", target=target, n_steps=steps)
            seconds = time.perf_counter() - t0
            if (fixed.completeness_error <= tol).all():
                print(f"smallest fixed count with every input ≤ {tol:.0%}: {steps} steps, {steps * len(x)} steps "
                      f"evaluated, {seconds:.2f} s")
                break
        else:
            print(f"no fixed count up to 512 brings every input within {tol:.0%} (max error at 512: "
                  f"{fixed.completeness_error.max():.2%})")
    print(f"\nload average after {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
