"""Superfeatures of the demo teachers: the cost of building them, of explaining one input over them, and a
picture of each labelling.

    python benchmarks/bench_superfeatures.py --zoo assets/zoo/mnist --inputs 16 \
        --picture assets/screenshots/superfeatures_mnist.png

Times ``build_superfeatures`` on the teacher's first ``--inputs`` training inputs (the stored labelling is
built by ``kdviz zoo superfeatures`` and records its own build time), and the exact Shapley values + exp_m
of every model of the zoo on one test input (what the dashboard's section computes per model). With
``--picture`` it draws the stored labelling over a few test inputs (matplotlib). Report ``uptime`` with
the numbers: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdviz.attribution.groups import explain_groups  # noqa: E402
from kdviz.io.builtin_datasets import load_dataset  # noqa: E402
from kdviz.io.zoo.manifest import load_zoo  # noqa: E402
from kdviz.modalities.superfeatures import build_superfeatures, default_base, load_superfeatures  # noqa: E402
from kdviz.training.loop import sd_baseline  # noqa: E402


def picture(zoo_dir: Path, m: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    zoo = load_zoo(zoo_dir)
    ds = load_dataset(zoo.dataset)
    sf = load_superfeatures(zoo_dir, m)
    cmap = plt.get_cmap("tab10")
    if sf.labels.ndim == 2:
        fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
        for ax, i in zip(axes, range(4), strict=True):
            ax.imshow(ds.x_test[i, 0], cmap="gray")
            ax.imshow(sf.labels, cmap=cmap, vmin=0, vmax=9, alpha=0.45)
            ax.set_axis_off()
        for k in range(sf.m):
            r, c = np.argwhere(sf.labels == k).mean(axis=0)
            axes[0].text(c, r, str(k), ha="center", va="center", fontsize=11, weight="bold")
    else:
        fig, ax = plt.subplots(figsize=(10, 3))
        for k in range(sf.m):
            idx = np.flatnonzero(sf.labels == k)
            ax.axvspan(idx.min() - 0.5, idx.max() + 0.5, color=cmap(k % 10), alpha=0.3)
            ax.text(idx.mean(), 2.3, str(k), ha="center", weight="bold")
        for i in range(4):
            ax.plot(ds.x_test[i, 0], color="black", lw=1, alpha=0.8)
        ax.set_xlabel("time step")
    fig.suptitle(f"{zoo.name}: {sf.m} superfeatures of {zoo.teacher.id} over {sf.base} "
                 f"(sizes {list(sf.sizes)}; {sf.n_inputs} inputs, {sf.seconds:.0f} s)", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", required=True)
    p.add_argument("--m", type=int, default=8)
    p.add_argument("--inputs", type=int, default=16, help="training inputs for the timed build (0 = skip)")
    p.add_argument("--picture", default=None, help="write a PNG of the stored labelling here")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
    zoo_dir = Path(args.zoo)
    zoo = load_zoo(zoo_dir)
    ds = load_dataset(zoo.dataset)
    if args.inputs:
        x = ds.model_input(ds.x_train[: args.inputs])
        t = time.perf_counter()
        sf = build_superfeatures(zoo.teacher.module, x, base=default_base(tuple(x.shape[2:])), m=args.m, seed=0)
        dt = time.perf_counter() - t
        print(f"build {sf.base} -> M={sf.m} from {args.inputs} inputs: {dt:.1f} s ({dt / args.inputs:.2f} s/input)")
    labels = load_superfeatures(zoo_dir, args.m).labels
    x1 = torch.from_numpy(ds.model_input(ds.x_test[:1]))
    base = sd_baseline(ds)
    for model in zoo.models:
        t = time.perf_counter()
        explain_groups(model.module, x1, labels=labels, baseline=base)
        print(f"explain one input, exact Shapley over {args.m} + exp_m: {model.id:>22} {time.perf_counter() - t:.2f} s")
    if args.picture:
        picture(zoo_dir, args.m, Path(args.picture))


if __name__ == "__main__":
    main()
