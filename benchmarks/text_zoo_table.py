"""The text zoo's table (issue 20's closing note), read from results written by ``kdviz evaluate``.

Per model and attribution: layers, α, training method, accuracy on the evaluated test snippets, top-5 overlap with
the teacher's top-5 words, its excess over the random-weights null (R untrained copies per student architecture)
with the one-sided rank p, ρ over words with its p, and the share of the top-5 words in VADER's lexicon next to the
null's. One results file per attribution, e.g. gradient saliency and IG with 32 steps:

    kdviz evaluate --zoo assets/zoo/rotten-tomatoes --out assets/zoo/rotten-tomatoes/results.parquet --limit 100
    kdviz evaluate --zoo assets/zoo/rotten-tomatoes --method ig --steps 32 --out ig32.parquet --limit 100
    python benchmarks/text_zoo_table.py assets/zoo/rotten-tomatoes/results.parquet ig32.parquet --out table.md

``--compute N`` runs the missing ones here first (``kdviz.evaluation.text.evaluate_text_zoo`` on the first N
snippets; gradient saliency for the first file, IG 32 steps for the second) and saves them where named.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from kdviz.evaluation.evaluate import load_results, save_results  # noqa: E402
from kdviz.report.text_study import text_zoo_table  # noqa: E402

ZOO = Path(__file__).resolve().parents[1] / "assets" / "zoo" / "rotten-tomatoes"
DEFAULT = (ZOO / "results.parquet",)
METHODS = (("grad_x_embedding", {}), ("integrated_gradients", {"n_steps": 32}))


def _fmt(v: object, digits: int = 3) -> str:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(v)
    return "" if f != f else f"{f:.{digits}f}"


def markdown(table: pd.DataFrame) -> str:
    """The table as Markdown: overlap, excess and p in one cell each, VADER share next to the null's."""
    head = ("| model | layers | α | method | attribution | accuracy (evaluated; whole split) | top-5 overlap (null) | "
            "excess | p | ρ over words (p) | VADER share (null) |")
    lines = [head, "|" + "|".join("---" for _ in range(11)) + "|"]
    for _, r in table.iterrows():
        p = r["topk_overlap_p_text"] or ""
        rho_p = "" if r["attention_rho_p"] != r["attention_rho_p"] else f" ({_fmt(r['attention_rho_p'], 3)})"
        acc = _fmt(r["accuracy"]) + (f"; {_fmt(r['test_accuracy'])}" if r["test_accuracy"] == r["test_accuracy"] else "")
        null = f" ({_fmt(r['topk_overlap_null'])})" if r["topk_overlap_null"] == r["topk_overlap_null"] else ""
        vnull = f" ({_fmt(r['vader_null'])})" if r["vader_null"] == r["vader_null"] else ""
        lines.append(f"| {r['model']} | {r['layers']} | {_fmt(r['alpha'], 1)} | {r['method']} | {r['attribution']} | "
                     f"{acc} | {_fmt(r['topk_overlap'])}{null} | {_fmt(r['topk_overlap_excess'])} | "
                     f"{p} | {_fmt(r['attention_rho'])}{rho_p} | {_fmt(r['vader'])}{vnull} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="*", type=Path, default=list(DEFAULT), help="results files of kdviz evaluate")
    p.add_argument("--compute", type=int, metavar="N", help="evaluate missing results files on the first N snippets")
    p.add_argument("--copies", default="auto", help="null copies for --compute (default: the R rule)")
    p.add_argument("--out", type=Path, help="write the table (.md or .csv)")
    a = p.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    tables = []
    for i, path in enumerate(a.results):
        if not path.exists():
            if a.compute is None:
                print(f"{path}: missing; make it with kdviz evaluate (see --help) or pass --compute N", file=sys.stderr)
                return 2
            from kdviz.evaluation.text import evaluate_text_zoo

            method, params = METHODS[min(i, len(METHODS) - 1)]
            t0 = time.perf_counter()
            res = evaluate_text_zoo(ZOO, method=method, method_params=params, limit=a.compute,
                                    null_copies=a.copies if a.copies == "auto" else int(a.copies))
            save_results(res, path)
            print(f"{path}: {method} on {a.compute} snippets in {time.perf_counter() - t0:.0f} s")
        res = load_results(path)
        s = res.settings
        print(f"{path}: {s.n_inputs} snippets, {s.method} {s.method_params}, R = {s.null_copies}, "
              f"{res.run.get('elapsed_s', float('nan')):.0f} s")
        tables.append(text_zoo_table(res.summary, res.run, s))
    table = pd.concat(tables, ignore_index=True)
    text = markdown(table)
    print(text)
    if a.out:
        a.out.write_text(text + "\n" if a.out.suffix == ".md" else table.to_csv(index=False))
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
