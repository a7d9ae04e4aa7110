"""Attained GFLOP/s of kdviz's attribution engine against the machine's measured matmul ceiling, fp32 and bf16.

Ceiling: a 2048×2048 matrix multiply (2·n³ FLOP) timed in fp32 and in bf16. Engine: Integrated Gradients
(``--steps``) on ``--images`` MNIST digits for every model of the demo zoo, through
``kdviz.attribution.engine.attribute`` as ``kdviz evaluate`` calls it. The engine's work is counted as DESIGN.md
counts it: forward + input-gradient backward per IG row (the backward of a conv/linear layer with respect to
its input costs what its forward costs; weight gradients are not computed), plus the two forwards of the
convergence delta: ``F · N · (2·steps + 2)``, where ``F`` is one input's forward FLOPs measured by PyTorch's
``torch.utils.flop_counter.FlopCounterMode`` (it cannot run inside captum's ``autograd.grad``).

    python benchmarks/bench_flops.py --images 16 --steps 32

bf16 runs under autocast; on a CPU without native bf16 (no ``avx512_bf16``/``amx_bf16``) it is emulated and
labelled so: its GFLOP/s then measures the emulation, not bf16 hardware.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdviz.attribution.engine import attribute  # noqa: E402
from kdviz.attribution.precision import precision_context, precision_support  # noqa: E402


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Best-of-``repeats`` GFLOP/s of an n×n matmul in ``dtype`` (CPU)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def engine(models: list[tuple[str, torch.nn.Module]], x: torch.Tensor, steps: int, precision: str) -> tuple[float, float]:
    """(GFLOP counted, seconds) for IG on every model, in ``precision``."""
    flops = 0
    seconds = 0.0
    for _mid, model in models:
        with torch.no_grad():
            target = model(x).argmax(1)
        kwargs = dict(method="integrated_gradients", target=target, device="cpu", n_steps=steps)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x[:1])
        flops += counter.get_total_flops() * len(x) * (2 * steps + 2)
        with precision_context("cpu", precision, allow_emulated=True):
            attribute(model, x[:2], **{**kwargs, "target": target[:2]})  # warm-up (inference twin, allocator)
            t0 = time.perf_counter()
            attribute(model, x, **kwargs)
            seconds += time.perf_counter() - t0
    return flops / 1e9, seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zoo", default=str(ROOT / "assets" / "zoo" / "mnist"))
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from kdviz.io.builtin_datasets import load_dataset
    from kdviz.io.zoo.manifest import load_zoo

    zoo = load_zoo(args.zoo)
    ds = load_dataset(zoo.dataset)
    x = torch.as_tensor(ds.model_input(ds.x_test[: args.images]))
    models = [(str(m.id), m.module.eval()) for m in zoo.models]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; load average before {os.getloadavg()}")
    print(f"zoo {zoo.name}: {len(models)} models, {args.images} inputs, IG {args.steps} steps\n")
    print("| precision | matmul ceiling (GFLOP/s) | engine GFLOP counted | engine seconds | engine GFLOP/s "
          "| % of ceiling | native? |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        ceiling = matmul_gflops(dtype)
        gflop, seconds = engine(models, x, args.steps, precision)
        native = precision_support("cpu", precision)
        print(f"| {precision} | {ceiling:.1f} | {gflop:.1f} | {seconds:.2f} | {gflop / seconds:.1f} "
              f"| {100 * gflop / seconds / ceiling:.0f}% | {'yes' if native.supported else 'no (emulated)'} |",
              flush=True)
    print(f"\nload average after {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
