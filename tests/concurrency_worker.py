"""Worker for tests/test_thread_safety.py, run in a fresh process (cold registry and caches, where races live).

``python -m tests.concurrency_worker make DIR``: write 16 mixed checkpoints (CIFAR ResNets, CIFAR-KD nets,
torchvision nets, 1D nets; safetensors, plain and wrapped ``torch.save`` files) into DIR.
``python -m tests.concurrency_worker run DIR OUT.npz THREADS``: load every checkpoint (architecture guessed),
attribute it (saliency, integrated gradients through the inference twin), take its logits and those of two
random-weights copies of its architecture, with THREADS threads (1 = serially); every array goes to OUT.npz.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

# (file stem, arch, num_classes, in_channels, how it is saved)
SPECS: tuple[tuple[str, str, int, int, str], ...] = (
    ("r8_plain", "resnet8", 10, 3, "pth"),
    ("r8_repdistiller", "resnet8", 100, 3, "repdistiller"),
    ("r14", "resnet14", 10, 3, "safetensors"),
    ("r8x4_dp", "resnet8x4", 100, 3, "module_prefix"),
    ("wrn16_1", "wrn_16_1", 10, 3, "pth"),
    ("shufflev2", "ShuffleV2", 10, 3, "safetensors"),
    ("mobilenetv2", "MobileNetV2", 100, 3, "pth"),
    ("tv_resnet18_a", "resnet18", 10, 3, "pth"),
    ("tv_resnet18_b", "resnet18", 10, 3, "module_prefix"),
    ("tv_squeezenet", "squeezenet1_1", 10, 3, "pth"),
    ("tv_shufflenet", "shufflenet_v2_x0_5", 10, 3, "safetensors"),
    ("tv_mobilenet_v3", "mobilenet_v3_small", 10, 3, "pth"),
    ("fcn16", "fcn_w16", 2, 1, "safetensors"),
    ("fcn32", "fcn_w32", 3, 1, "pth"),
    ("resnet1d16", "resnet1d_w16", 2, 1, "pth"),
    ("resnet1d16_b", "resnet1d_w16", 4, 1, "repdistiller"),
)


def make(folder: Path) -> None:
    """Write the 16 checkpoints (fixed seeds)."""
    from safetensors.torch import save_file

    from kdviz.models import seeded_model

    folder.mkdir(parents=True, exist_ok=True)
    for i, (stem, arch, classes, channels, how) in enumerate(SPECS):
        state = seeded_model(arch, seed=i, num_classes=classes, in_channels=channels).state_dict()
        if how == "safetensors":
            save_file({k: v.contiguous() for k, v in state.items()}, str(folder / f"{stem}.safetensors"))
        elif how == "repdistiller":
            torch.save({"model": state, "epoch": 240, "accuracy": torch.tensor([73.5])}, folder / f"{stem}.pth")
        elif how == "module_prefix":
            torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, folder / f"{stem}.pth")
        else:
            torch.save(state, folder / f"{stem}.pth")


def inputs_for(channels: int, seed: int) -> np.ndarray:
    """Two 32×32 images (3 channels) or two series of length 64 (1 channel), fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    shape = (2, 3, 32, 32) if channels == 3 else (2, 1, 64)
    return rng.standard_normal(shape).astype(np.float32)


def work(path: Path) -> dict[str, np.ndarray]:
    """Everything one session does with one checkpoint: load, logits, two attributions, random copies."""
    from kdviz.analysis.nulls import NULL_SEED_BASE
    from kdviz.attribution.engine import attribute, predict_logits
    from kdviz.io.checkpoints import load_checkpoint
    from kdviz.modalities.tensor import random_copies

    ckpt = load_checkpoint(path)
    x = inputs_for(ckpt.in_channels, len(path.stem))
    out = {
        "meta": np.asarray([ckpt.arch, str(ckpt.num_classes), str(ckpt.in_channels), ckpt.sha256]),
        "logits": predict_logits(ckpt.module, x, device="cpu"),
        "saliency": attribute(ckpt.module, x, method="saliency", target=None, device="cpu").raw,
        # 2 inputs × 32 steps = 64 gradient passes: the fused inference twin is built and used
        "ig": attribute(ckpt.module, x, method="integrated_gradients", target=0, device="cpu", n_steps=32).raw,
    }
    copies = random_copies(ckpt.arch, num_classes=ckpt.num_classes, in_channels=ckpt.in_channels, copies=2,
                           first_seed=NULL_SEED_BASE)
    for copy in copies:
        out[f"null_{copy.seed}"] = predict_logits(copy.module, x, device="cpu")
    return out


def run(folder: Path, out: Path, threads: int) -> None:
    """All checkpoints with ``threads`` threads; results to ``out`` as ``<file>/<what>`` arrays."""
    torch.set_num_threads(1)  # 8 sessions share 2 cores; also keeps kernels' reduction order fixed
    paths = sorted(p for p in folder.iterdir() if p.suffix in (".pth", ".safetensors"))
    if threads == 1:
        results = [work(p) for p in paths]
    else:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(work, paths))
    np.savez(out, **{f"{p.name}/{k}": v for p, r in zip(paths, results, strict=True) for k, v in r.items()})


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(Path(sys.argv[2]))
    else:
        run(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
