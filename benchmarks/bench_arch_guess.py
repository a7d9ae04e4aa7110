"""Benchmark: guessing an architecture from a state dict, with the shipped key index and without it.

For each architecture below, the shapes of its state dict (100 classes, 3 channels; ImageNet models 1000) go
through ``kdviz.models.arch_guess.guess`` in a fresh process-level cache state: "index" uses
``kdviz/models/key_index.py``; "no index" first computes every registered architecture's key names by building
it on the meta device (what the guesser would do without the index, once per process). Prints a markdown
table; say how busy the machine was (``uptime``) when quoting it.

    python benchmarks/bench_arch_guess.py
"""

from __future__ import annotations

import os
import time

from kdviz import models
from kdviz.models import arch_guess

ARCHS = ["resnet8x4", "wrn_40_2", "ShuffleV1", "cifar_resnet50", "MobileNetV2", "resnet50", "vit_b_16",
         "deit_tiny_distilled_patch16_224", "vit_tiny_patch16_224"]


def _shapes(arch: str) -> dict[str, tuple[int, ...]]:
    classes = 1000 if models.model_info(arch).family in ("timm", "torchvision") else 100
    return models.state_dict_signature(arch, classes, 3)


def main() -> None:
    inputs = {a: _shapes(a) for a in ARCHS}  # built before timing: the file's shapes are given
    rows = []
    for arch in ARCHS:
        arch_guess.clear_caches()
        start = time.perf_counter()
        g = arch_guess.guess(inputs[arch])
        rows.append((arch, g.arch, ", ".join(g.ties) or "-", time.perf_counter() - start))
    models.state_dict_signature.cache_clear()
    start = time.perf_counter()
    for arch in models.list_models():
        models.state_dict_signature(arch, 10, None)
    build_all = time.perf_counter() - start
    print(f"load average at start of table: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)\n")
    print("| weights of | guessed | tied with | guess with index (s) |")
    print("|---|---|---|---|")
    for arch, got, ties, seconds in rows:
        print(f"| {arch} | {got} | {ties} | {seconds:.2f} |")
    print(f"\nWithout the index, reading the key names of all {len(models.list_models())} registered architectures "
          f"(built on meta) costs {build_all:.1f} s once per process, before any guess.")


if __name__ == "__main__":
    main()
