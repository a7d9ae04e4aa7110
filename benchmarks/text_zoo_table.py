"""The text zoo's table (issue 20's closing note): per model its test accuracy, and on the first N test
snippets its top-5 overlap with the teacher, attention rank alignment ρ over words, their excess over the
random-weights null (R untrained copies of each student architecture) with the one-sided rank p, and the
share of its top-5 words in VADER's lexicon next to the null's share.

    python benchmarks/text_zoo_table.py [--snippets 500] [--copies 19] [--method grad_x_embedding] [--out table.csv]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdviz.analysis.text import TextEntry, compare_text_models  # noqa: E402
from kdviz.io.hf_text import load_text_zoo  # noqa: E402
from kdviz.io.text import TextSplit, read_rotten_tomatoes, vader_lexicon  # noqa: E402

ZOO = Path(__file__).resolve().parents[1] / "assets" / "zoo" / "rotten-tomatoes"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--snippets", type=int, default=500)
    p.add_argument("--copies", type=int, default=19)
    p.add_argument("--method", default="grad_x_embedding")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    zoo = load_text_zoo(ZOO)
    df = read_rotten_tomatoes()
    texts = [df["text"].iloc[i] for i in TextSplit.load(ZOO / "split.npz").test[: a.snippets]]
    entries = [TextEntry(m.id, m.entry.role, m.entry.arch, m.entry.alpha, m.entry.method, m.text.model,
                         m.text.tokenizer) for m in zoo.models]
    t0 = time.perf_counter()
    comp = compare_text_models(entries[0], entries[1:], texts, method=a.method, null_copies=a.copies,
                               lexicon=vader_lexicon())
    took = time.perf_counter() - t0
    s = comp.summary.set_index("id")
    acc = {m.id: m.entry.test_accuracy for m in zoo.models}
    layers = {m.id: (m.text.layers, m.text.hidden) for m in zoo.models}
    cols = ["topk_overlap", "topk_overlap_null", "topk_overlap_excess", "topk_overlap_p", "rho", "rho_null",
            "rho_excess", "rho_p", "vader", "vader_null", "vader_p", "agreement"]
    table = s.reindex(columns=["arch", "alpha", "method", *cols]).copy()
    table.insert(0, "accuracy", [acc[i] for i in table.index])
    table.insert(1, "layers", [layers[i][0] for i in table.index])
    table.insert(2, "hidden", [layers[i][1] for i in table.index])
    print(f"{len(texts)} test snippets, {a.method}, {a.copies} untrained copies per architecture: {took:.0f} s")
    print(table.round(3).to_string())
    if a.out:
        table.to_csv(a.out)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
