"""Dashboard timings on the demo image zoo: the attention-map grid for one input, all models.

Measures what a click costs on the server side, through the same calls the page makes:
``compare_models`` (attributions + metrics for every model on one input; the cold path) and the
grid figure build (``kdviz.plots``; what a cached rerun or a layout change redraws). Streamlit's
own rerun and the browser's drawing come on top (see tests/test_browser.py for an end-to-end run).

    python benchmarks/bench_dashboard.py [--inputs 5] [--steps 32]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from kdviz.compare import compare_models
from kdviz.data import load_dataset
from kdviz.zoo import load_zoo

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=5, help="distinct inputs, each timed cold")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    zoo = load_zoo(ROOT / "assets" / "zoo" / "mnist")
    ds = load_dataset("mnist")
    print(f"zoo + dataset load: {time.perf_counter() - start:.2f} s ({len(zoo.models)} models)")
    students = [m for m in zoo.models if m.role != "teacher"]
    times = []
    for i in range(args.inputs):
        display = ds.x_test[i : i + 1]
        t0 = time.perf_counter()
        compare_models(
            zoo.teacher, students, ds.model_input(display), labels=ds.y_test[i : i + 1],
            method="integrated_gradients", method_params={"n_steps": args.steps}, parts="slic:50", k=5,
            device="cpu", images_for_slic=np.asarray(display),
        )
        times.append(time.perf_counter() - t0)
        print(f"input {i}: {times[-1]:.2f} s")
    print(f"cold grid compute, {len(zoo.models)} models, IG {args.steps} steps: median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}), torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
