"""Throughput of ``kdviz evaluate`` in one process against 1 and 2 local Ray workers, and a GPU projection.

CPU (default): the demo zoo's first ``--images`` test inputs, IG ``--steps``, in batches of ``--batch-size``:
single process (torch's default threads, and 1 thread), then a local Ray cluster (``num_cpus=2``, loopback
only) with 1 and 2 workers of 1 thread each. For each: wall time of ``evaluate_zoo`` (Ray: the workers'
start and the models' transfer included), steady throughput between the first and the last finished batch
(inputs/s), and whether the table equals the single-process one.

    python benchmarks/bench_ray.py --images 12 --batch-size 3 --steps 16

GPU (``--gpu``, needs CUDA): torchvision ResNet-50s at 224×224 (random weights: attribution cost depends on
the architecture, not the weights) as a teacher and ``--students`` students, IG ``--steps`` on
``--images`` random images, grid 7×7 parts; single process on one GPU, then one Ray worker per GPU
(``num_gpus=1``). Prints the measured (model, image) IG evaluations per second per GPU and the projection

    hours(ImageNet-val × S students, N GPUs) = 50,000 · (S + 1) / (rate_per_gpu · N · efficiency) / 3600

with the measured Ray efficiency (rate with N workers / (N · single-GPU rate)).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdviz.evaluation.evaluate import EvalProgress, evaluate_zoo  # noqa: E402


def timed(zoo, data, opts: dict, **kwargs) -> tuple[float, float, pd.DataFrame, dict]:
    """(wall seconds, steady inputs/s, frame, run facts) of one evaluation."""
    marks: list[tuple[float, int]] = []

    def note(p: EvalProgress) -> None:
        marks.append((time.perf_counter(), p.done))

    t0 = time.perf_counter()
    res = evaluate_zoo(zoo, dataset=data, progress=note, progress_bar=False, **opts, **kwargs)
    wall = time.perf_counter() - t0
    (t_first, d_first), (t_last, d_last) = marks[0], marks[-1]
    steady = (d_last - d_first) / (t_last - t_first) if t_last > t_first else float("nan")
    return wall, steady, res.frame, res.run


def cpu(args: argparse.Namespace) -> None:
    import ray

    from kdviz.evaluation.distributed import ClusterOptions
    from kdviz.io.builtin_datasets import load_dataset
    from kdviz.io.zoo.manifest import load_zoo

    zoo = load_zoo(args.zoo)
    data = load_dataset(zoo.dataset)
    parts = "segments:10" if zoo.task == "timeseries" else "slic:50"
    opts = dict(method="ig", method_params={"n_steps": args.steps}, parts=parts, k=5, limit=args.images,
                batch_size=args.batch_size, device="cpu", null_copies=0)
    print(f"zoo {zoo.name}: {len(zoo.models)} models, {args.images} inputs in batches of {args.batch_size}, "
          f"IG {args.steps} steps, parts {parts}; load average before {os.getloadavg()}\n")
    print("| run | threads | wall s | steady inputs/s | same table |")
    print("| --- | --- | ---: | ---: | --- |")
    default_threads = torch.get_num_threads()
    wall, steady, ref, _ = timed(zoo, data, opts)
    print(f"| single process | {default_threads} | {wall:.1f} | {steady:.3f} | (reference) |", flush=True)
    torch.set_num_threads(1)
    wall, steady, frame, _ = timed(zoo, data, opts)
    print(f"| single process | 1 | {wall:.1f} | {steady:.3f} | {_same(frame, ref)} |", flush=True)
    torch.set_num_threads(default_threads)
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    print(f"| (local Ray cluster start: {time.perf_counter() - t0:.1f} s, not in the rows below) | | | | |")
    try:
        for workers in (1, 2):
            wall, steady, frame, run = timed(zoo, data, opts, cluster=ClusterOptions(workers=workers, threads=1))
            print(f"| Ray, {workers} worker{'s' if workers > 1 else ''} | 1 each | {wall:.1f} | {steady:.3f} "
                  f"| {_same(frame, ref)} |", flush=True)
    finally:
        ray.shutdown()
    print(f"\nload average after {os.getloadavg()}")


def _same(frame: pd.DataFrame, ref: pd.DataFrame) -> str:
    try:
        pd.testing.assert_frame_equal(frame, ref, check_exact=False, atol=1e-4, rtol=1e-3)
        return "yes"
    except AssertionError as err:
        return f"no ({str(err).splitlines()[0][:60]})"


def resnet50_zoo(students: int, images: int, device: str) -> tuple[types.SimpleNamespace, types.SimpleNamespace]:
    """Random-weight torchvision ResNet-50 teacher + students, and random 224×224 images in [0, 1]."""
    import torchvision

    models = []
    for i in range(students + 1):
        torch.manual_seed(i)
        module = torchvision.models.resnet50(weights=None).eval()
        role = "teacher" if i == 0 else "student"
        models.append(types.SimpleNamespace(id=f"resnet50_{i}", role=role, arch="resnet50", alpha=1.0,
                                            method="kd", module=module, sha256=f"random{i}"))
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    zoo = types.SimpleNamespace(name="resnet50-random", dataset="random224", mean=mean, std=std, models=models)
    gen = np.random.default_rng(0)
    x = gen.random((images, 3, 224, 224), dtype=np.float32)
    data = types.SimpleNamespace(name="random224", x_test=x, y_test=gen.integers(0, 1000, images), mean=mean, std=std)
    return zoo, data


def gpu(args: argparse.Namespace) -> None:
    import ray

    from kdviz.evaluation.distributed import ClusterOptions

    n_gpus = torch.cuda.device_count()
    if args.device == "cuda" and n_gpus == 0:
        raise SystemExit("--gpu needs CUDA; no GPU is visible here (this benchmark was not run on this machine)")
    zoo, data = resnet50_zoo(args.students, args.images, args.device)
    opts = dict(method="ig", method_params={"n_steps": args.steps}, parts="grid:7x7", k=5, limit=args.images,
                batch_size=args.batch_size, device=args.device, null_copies=0, precision=args.precision)
    n_models = len(zoo.models)
    name = torch.cuda.get_device_name(0) if n_gpus else "CPU (smoke test)"
    print(f"{n_models} torchvision ResNet-50s (random weights), {args.images} images 224×224, IG {args.steps} "
          f"steps, {args.precision}, {name} × {n_gpus}\n")
    wall, steady, ref, _ = timed(zoo, data, opts)
    rate1 = steady * n_models  # (model, image) IG evaluations per second on one device
    print(f"single process: {wall:.1f} s, {steady:.2f} images/s = {rate1:.2f} model-images/s", flush=True)
    ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        workers = max(1, n_gpus)
        wall, steady, frame, run = timed(zoo, data, opts, cluster=ClusterOptions(workers=workers,
                                                                                 use_gpus=n_gpus > 0))
    finally:
        ray.shutdown()
    efficiency = steady * n_models / (workers * rate1)
    print(f"Ray, {workers} worker(s): {wall:.1f} s, {steady:.2f} images/s; efficiency {efficiency:.2f}; "
          f"same table: {_same(frame, ref)}")
    for n in (1, 8, 64):
        hours = 50_000 * 13 / (rate1 * n * min(1.0, efficiency)) / 3600
        print(f"projection, ImageNet-val × 12 students + teacher on {n} such GPU(s): {hours:.2f} h")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zoo", default=str(ROOT / "assets" / "zoo" / "mnist"))
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=3)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--gpu", action="store_true", help="ResNet-50s at 224² on the GPUs (needs CUDA)")
    ap.add_argument("--students", type=int, default=2, help="--gpu: students besides the teacher")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="--gpu: autocast")
    ap.add_argument("--device", default="cuda", help="--gpu: cuda (cpu = a smoke test of the code path only)")
    args = ap.parse_args(argv)
    if args.gpu:
        gpu(args)
    else:
        cpu(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
