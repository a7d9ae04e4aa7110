"""Benchmark: the Token rationales page's work for one sentence × every text-zoo model (IG, 32 steps), and
gradient saliency for 1,000 test snippets × every model. Prints a markdown table with ``uptime`` before and
after and the peak resident memory. Run it alone (``flock /tmp/kdviz-cpu.lock``): timings under load mean little.

    python benchmarks/bench_text.py [--snippets 1000] [--threads N]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from kdviz.analysis.compare import ComparedModel, CompareOptions, NullOptions, compare_models
from kdviz.attribution.engine import attribute_text
from kdviz.attribution.text import encode_words
from kdviz.io.hf_text import load_text_zoo
from kdviz.io.text import TextSplit, read_rotten_tomatoes, vader_lexicon

ZOO = Path(__file__).resolve().parents[1] / "assets" / "zoo" / "rotten-tomatoes"
SENTENCE = "A gorgeous, witty and heartfelt film, though the ending drags."


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _entries(zoo) -> list[ComparedModel]:
    return [ComparedModel.of(m) for m in zoo.models]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--snippets", type=int, default=1000)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"before: {_uptime()}; torch threads {torch.get_num_threads()}")
    t0 = time.perf_counter()
    zoo = load_text_zoo(ZOO)
    load_s = time.perf_counter() - t0
    entries = _entries(zoo)
    lexicon = vader_lexicon()
    rows = [("load the zoo (8 models)", load_s)]
    for null in (0, 3):
        for _ in range(2):  # the first call warms up; the second is what a page rerun costs
            t0 = time.perf_counter()
            options = CompareOptions(method_params={"n_steps": 32}, null=NullOptions(copies=null),
                                     reading={"lexicon": lexicon})
            compare_models(entries[0], entries[1:], [SENTENCE], method="integrated_gradients", options=options)
            took = time.perf_counter() - t0
        rows.append((f"page: 1 sentence × {len(entries)} models, IG 32 steps, null copies {null}", took))
    df = read_rotten_tomatoes()
    split = TextSplit.load(ZOO / "split.npz")
    texts = [df["text"].iloc[i] for i in split.test[: a.snippets]]
    total = 0.0
    for e in entries:
        t0 = time.perf_counter()
        enc = encode_words(e.tokenizer, texts)
        for s in range(0, len(texts), 64):
            attribute_text(e.module, enc.rows(np.arange(s, min(s + 64, len(texts)))), method="grad_x_embedding")
        took = time.perf_counter() - t0
        total += took
        rows.append((f"{len(texts)} snippets, gradient × embedding: {e.id}", took))
    rows.append((f"{len(texts)} snippets × {len(entries)} models, gradient × embedding (total)", total))
    print("\n| step | seconds |\n| --- | ---: |")
    for name, s in rows:
        print(f"| {name} | {s:.2f} |")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"after: {_uptime()}")


if __name__ == "__main__":
    main()
