"""``kdviz sanity --zoo TEXT_ZOO``: which word attribution to trust on a text zoo.

For each text method (``kdviz.attribution.methods.method_names(Modality.TEXT)``) on the first ``--n`` snippets of the zoo's recorded
test split: the teacher randomisation test (``kdviz.analysis.text_sanity``: cascading re-initialisation from the
classifier down to the embeddings, with the ρ still left when only the trained embeddings remain) and the
random-weights null with the trained students' raw and excess ρ over words (``kdviz.evaluation.text``), as the
image/series ``kdviz sanity`` table does. A text zoo has no recommendation to write: gradient saliency is the seed
paper's choice, and this table says whether it holds on the data.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from kdviz.analysis.text_sanity import text_randomisation_test
from kdviz.evaluation.text import canonical_text_method, evaluate_text_zoo, text_test_set
from kdviz.io.hf_text import load_text_zoo

DEFAULT_TEXT_METHODS = ("grad_x_embedding", "integrated_gradients", "word_occlusion", "attention_rollout")
TEXT_COLUMNS = ["method", "params", "teacher_randomised_rho", "teacher_randomised_rho_low", "teacher_randomised_rho_high",
           "embeddings_kept_rho", "verdict", "null_rho", "null_rho_sd", "students_rho", "students_excess",
           "students_above_null", "students", "seconds"]


def text_methods(spec: str | None) -> list[str]:
    """The methods asked for (aliases such as ``ig`` accepted), default :data:`DEFAULT_TEXT_METHODS`."""
    if spec is None:
        return list(DEFAULT_TEXT_METHODS)
    try:
        return [canonical_text_method(m) for m in spec.split(",") if m.strip()]
    except ValueError as exc:
        raise SystemExit(f"kdviz sanity: {exc}") from exc


def text_sanity_row(zoo: Any, method: str, params: dict, texts: list[str], *, students: list[str] | None,
                    null_copies: int, seeds: tuple[int, ...]) -> dict:
    """One row of the table: the randomisation test of the teacher and the students against the null."""
    start = time.perf_counter()
    teacher = zoo.teacher.text
    test = text_randomisation_test(teacher.model, teacher.tokenizer, texts, method=method, seeds=seeds,
                                   special_ids=teacher.special_ids, max_length=int(zoo.text.get("max_length", 64)),
                                   **params)
    result = evaluate_text_zoo(zoo, method=method, method_params=params, limit=len(texts), null_copies=null_copies,
                               progress_bar=False)
    summary = result.summary[result.summary["role"] == "student"]
    if students is not None:
        unknown = sorted(set(students) - set(summary["model_id"]))
        if unknown:
            raise SystemExit(f"kdviz sanity: no student {unknown} in this zoo; it has {list(summary['model_id'])}")
        summary = summary[summary["model_id"].isin(students)]
    has_null = null_copies > 0 and "attention_rho_null" in summary
    column = (lambda name: summary[name].to_numpy(dtype=float)) if has_null else (lambda name: np.array([np.nan]))
    return {
        "method": method, "params": params or "", "teacher_randomised_rho": test.full_rho,
        "teacher_randomised_rho_low": test.full_rho_low, "teacher_randomised_rho_high": test.full_rho_high,
        "embeddings_kept_rho": test.embeddings_kept_rho, "verdict": test.verdict,
        "null_rho": float(np.nanmean(column("attention_rho_null"))),
        "null_rho_sd": float(np.nanmean(column("attention_rho_null_sd"))),
        "students_rho": float(np.nanmean(summary["attention_rho"].to_numpy(dtype=float))),
        "students_excess": float(np.nanmean(column("attention_rho_excess"))),
        "students_above_null": int((column("attention_rho_p") <= 0.05).sum()) if has_null else 0,
        "students": len(summary), "seconds": time.perf_counter() - start,
    }


def run_text_sanity(args: argparse.Namespace) -> int:
    """``kdviz sanity`` on a text zoo (the module doc); prints the table, writes it with ``--out``."""
    if args.write:
        raise SystemExit("kdviz sanity: --write records a recommendation for image and series zoos; a text zoo's "
                         "evaluation takes --method itself (default gradient saliency, the seed paper's)")
    if args.parts or args.baselines != "zeros" or args.device not in (None, "cpu"):
        raise SystemExit("kdviz sanity: a text zoo's parts are its words, on the CPU, with each method's own "
                         "baseline ([PAD] embeddings for IG); --parts, --baselines and --device do not apply")
    try:
        zoo = load_text_zoo(args.zoo)
        texts, _labels = text_test_set(zoo)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"kdviz sanity: {exc}") from exc
    texts = list(texts[: max(1, args.n)])
    students = [s.strip() for s in args.students.split(",") if s.strip()] if args.students else None
    seeds = tuple(20_000 + i for i in range(args.seeds))
    rows = []
    for method in text_methods(args.methods):
        params = {"n_steps": args.steps} if method == "integrated_gradients" else {}
        print(f"kdviz sanity: {method} on {len(texts)} snippets…", file=sys.stderr, flush=True)
        rows.append(text_sanity_row(zoo, method, params, texts, students=students, null_copies=args.null_copies,
                                    seeds=seeds))
    table = pd.DataFrame(rows, columns=TEXT_COLUMNS)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nteacher_randomised_rho: mean ρ over words between the trained teacher's attributions and a fully "
          f"re-initialised one's (passes when ≤ 0.5); embeddings_kept_rho: every block random but the embeddings. "
          f"Null: {args.null_copies} untrained copies per student architecture; students_above_null: rank p ≤ 0.05.")
    if args.out:
        table.to_csv(args.out, index=False)
    return 0
