"""How ``kdviz evaluate`` time grows with the number of images and IG steps (CPU by default).

    python benchmarks/bench_evaluate.py --zoo assets/zoo/mnist --images 50 100 200 --steps 16 32

Without ``--zoo`` it times randomly initialised models with the MNIST demo zoo's architectures (teacher
resnet56; resnet56/32/20/8 at α ∈ {1.0, 0.5, 0.1}; resnet8 kd+sd): attribution cost depends on the
architecture, not the weights. Prints one line per (images, steps), a per-architecture breakdown, and a
linear extrapolation to ``--full`` images (the whole MNIST demo test split, 1,000).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdviz.attribution.engine import attribute  # noqa: E402
from kdviz.evaluation.evaluate import evaluate_zoo  # noqa: E402
from kdviz.io.builtin_datasets import load_dataset  # noqa: E402
from kdviz.models import create_model  # noqa: E402

MNIST_RECIPE = [("teacher", "resnet56", 1.0, "ce")] + [
    ("student", arch, a, "kd") for arch in ("resnet56", "resnet32", "resnet20", "resnet8") for a in (1.0, 0.5, 0.1)
] + [("student", "resnet8", 0.1, "kd+sd")]


def random_zoo() -> types.SimpleNamespace:
    ds = load_dataset("mnist")
    models = []
    for i, (role, arch, alpha, method) in enumerate(MNIST_RECIPE):
        torch.manual_seed(i)
        module = create_model(arch, num_classes=10, in_channels=1).eval()
        models.append(types.SimpleNamespace(id=f"{role}_{arch}_{alpha}_{method}", role=role, arch=arch, alpha=alpha,
                                            method=method, module=module, sha256=f"random{i}"))
    return types.SimpleNamespace(name="mnist-random", dataset="mnist", mean=ds.mean, std=ds.std, models=models)


def per_arch(zoo, n: int, steps: int) -> dict[str, float]:
    """Seconds per image of IG for one model of each architecture (plus the forward pass)."""
    ds = load_dataset(zoo.dataset)
    x = ds.model_input(ds.x_test[:n])
    out = {}
    for m in zoo.models:
        if m.arch in out:
            continue
        attribute(m.module, x[:2], method="integrated_gradients", target=None, n_steps=steps)  # warm-up
        t = time.perf_counter()
        attribute(m.module, x, method="integrated_gradients", target=None, n_steps=steps)
        out[m.arch] = (time.perf_counter() - t) / n
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", help="zoo folder (default: random models with the MNIST demo architectures)")
    ap.add_argument("--images", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--steps", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--parts", default="slic:50")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--full", type=int, default=1000, help="images to extrapolate to (default 1000)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--json", help="also write the measurements here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.zoo:
        from kdviz.io.zoo.manifest import load_zoo

        zoo = load_zoo(args.zoo)
    else:
        zoo = random_zoo()
    print(f"zoo {zoo.name}: {len(zoo.models)} models; torch threads {torch.get_num_threads()}; parts {args.parts}")
    rows = []
    for steps in args.steps:
        for n in args.images:
            t = time.perf_counter()
            evaluate_zoo(zoo, method="ig", method_params={"n_steps": steps}, parts=args.parts, limit=n,
                         batch_size=args.batch_size, device="cpu", progress_bar=False)
            s = time.perf_counter() - t
            rows.append({"images": n, "steps": steps, "seconds": round(s, 2), "s_per_image": round(s / n, 4)})
            print(f"images {n:5d}  steps {steps:3d}  {s:8.1f} s  {s / n:.3f} s/image", flush=True)
    fits = {}
    for steps in args.steps:
        pts = [(r["images"], r["seconds"]) for r in rows if r["steps"] == steps]
        if len(pts) >= 2:
            slope, intercept = np.polyfit(*zip(*pts, strict=True), 1)
            fits[steps] = {"s_per_image": round(float(slope), 4), "fixed_s": round(float(intercept), 2),
                           f"predicted_{args.full}_s": round(float(slope * args.full + intercept), 1)}
            print(f"steps {steps}: {slope:.3f} s/image + {intercept:.1f} s fixed -> {args.full} images "
                  f"≈ {(slope * args.full + intercept) / 60:.1f} min")
    arch = per_arch(zoo, min(args.images), max(args.steps))
    rounded = json.dumps({k: round(v, 4) for k, v in arch.items()})
    print(f"IG per image by architecture (s, {max(args.steps)} steps): {rounded}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": rows, "fits": fits, "per_arch_s": arch}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
