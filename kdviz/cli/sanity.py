"""``kdviz sanity --zoo DIR``: which attribution setting to trust on this data (``kdviz.analysis.sanity``).

The zoo's modality picks the table (:data:`SANITY`): a text zoo's is ``kdviz.cli.sanity_text`` (words as the parts,
the text methods). For an image or series zoo, for every method × parts × IG
baseline asked for, on the first ``--n`` test inputs: the teacher randomisation
test (Adebayo et al. 2018) with its verdict, the random-weights null and the trained students' raw and excess
attention alignment, the copies' spread, how many students clear the null (rank p ≤ 0.05) and the inputs/seeds
that would detect an excess of 0.1 at 80% power. Prints a table and writes it as CSV with ``--out``;
``--write`` records the chosen setting (with the table) in the zoo's ``zoo.json`` as its recommendation, which
``kdviz evaluate``, the dashboard and the Report then default to.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdviz.analysis.nulls import DEFAULT_NULL_COPIES
from kdviz.analysis.sanity import SanityRun, Setting, choose_default, sanity_table
from kdviz.attribution.methods import get_method, method_names
from kdviz.attribution.runtime import BASELINES
from kdviz.cli.sanity_text import run_text_sanity
from kdviz.evaluation.pipeline import zoo_modality
from kdviz.io.builtin_datasets import load_dataset
from kdviz.io.zoo.manifest import (
    MANIFEST,
    Recommendation,
    load_zoo,
    parse_manifest,
    read_manifest,
    replace_recommendation,
)
from kdviz.vocab import Modality

SANITY_METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "deeplift", "occlusion", "grad_cam")
SANITY_PARTS = {Modality.IMAGE: "slic:50,grid:4x4", Modality.SERIES: "segments:10"}  # default --parts
COLUMNS = ["method", "params", "parts", "teacher_randomised_rho", "verdict", "null_rho", "null_rho_sd",
           "students_rho", "students_excess", "students_excess_low", "students_excess_high", "students_above_null",
           "inputs_for_power", "seeds_for_power", "seconds"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kdviz sanity`` to the command line."""
    p = subparsers.add_parser(
        "sanity", help="teacher randomisation test + random-weights null for each attribution setting on a zoo",
        description="Which attribution method to trust on this data: for each method × parts × IG baseline, the "
        "teacher randomisation test's verdict, the null and the trained students' excess alignment.",
    )
    p.add_argument("--zoo", required=True, help="zoo folder (with zoo.json)")
    p.add_argument("--n", type=int, default=16, help="first N test inputs (default 16)")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated, from {', '.join(sorted(method_names()))} (default {', '.join(SANITY_METHODS)}); "
                        "for a text zoo from grad_x_embedding, gradient_norm, integrated_gradients (ig), "
                        "word_occlusion, attention_rollout (default all but gradient_norm)")
    p.add_argument("--parts", default=None,
                   help="comma-separated part specs (default slic:50,grid:4x4 for images, segments:10 for series)")
    p.add_argument("--baselines", default="zeros",
                   help=f"comma-separated baselines for IG (others use zeros), from {', '.join(BASELINES)}")
    p.add_argument("--students", default=None, help="comma-separated student ids (default: every student)")
    p.add_argument("--steps", type=int, default=32, help="IG integration steps (default 32)")
    p.add_argument("--null-copies", type=int, default=DEFAULT_NULL_COPIES,
                   help=f"random copies per student architecture (default {DEFAULT_NULL_COPIES}: the smallest R whose "
                        "rank p reaches 0.05)")
    p.add_argument("--write", action="store_true",
                   help="record the chosen setting and this table in the zoo's zoo.json (its recommendation)")
    p.add_argument("--seeds", type=int, default=1, help="fully random teachers in the randomisation test (default 1)")
    p.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--out", help="write the table as CSV here")
    p.set_defaults(func=run_sanity)


def _takes_baseline(method: str) -> bool:
    return "baseline" in {p.name for p in get_method(method).params}


def _settings(args: argparse.Namespace, modality: Modality) -> list[Setting]:
    methods = [m.strip() for m in (args.methods or ",".join(SANITY_METHODS)).split(",") if m.strip()]
    unknown = [m for m in methods if m not in method_names()]
    if unknown:
        raise SystemExit(f"kdviz sanity: unknown method(s) {unknown}; choose from {sorted(method_names())}")
    parts = args.parts or SANITY_PARTS[modality]
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        raise SystemExit(f"kdviz sanity: unknown baseline(s) {bad}; choose from {list(BASELINES)}")
    out = []
    for spec in (p.strip() for p in parts.split(",") if p.strip()):
        for method in methods:
            extra: tuple = (("n_steps", args.steps),) if method == "integrated_gradients" else ()
            for baseline in (baselines if method == "integrated_gradients" else ["zeros"]):
                params = extra + ((("baseline", baseline),) if _takes_baseline(method) else ())
                out.append(Setting(method, params, spec))
    return out


def _students(zoo: Any, spec: str | None) -> list[Any]:
    if not spec:
        return list(zoo.students)
    try:
        return [zoo.get(s.strip()) for s in spec.split(",") if s.strip()]
    except ValueError as exc:
        raise SystemExit(f"kdviz sanity: {exc}") from exc


def _run_arrays(args: argparse.Namespace, *, modality: Modality) -> int:
    """``kdviz sanity`` on an image or series zoo (the module doc); prints the table, writes it with ``--out``."""
    try:
        zoo = load_zoo(args.zoo)
    except ValueError as exc:
        raise SystemExit(f"kdviz sanity: {exc}") from exc
    settings = _settings(args, modality)
    students = _students(zoo, args.students)
    ds = load_dataset(zoo.dataset)
    n = min(args.n, len(ds.x_test))
    display = ds.x_test[:n]
    shape = (1, -1) + (1,) * (display.ndim - 2)
    x = (display - np.asarray(zoo.mean, np.float32).reshape(shape)) / np.asarray(zoo.std, np.float32).reshape(shape)
    start = time.perf_counter()
    table = sanity_table(
        zoo.teacher, students, x.astype(np.float32), settings,
        run=SanityRun(images_for_slic=display if modality is Modality.IMAGE else None, null_copies=args.null_copies,
                      seeds=tuple(20_000 + i for i in range(args.seeds)), device=args.device),
        log=lambda s: print(s, file=sys.stderr, flush=True),
    )
    print(table[COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    best = choose_default(table)
    _print_choice(best, zoo.manifest.recommended, args.null_copies, n)
    print(f"{len(settings)} settings × {n} inputs in {time.perf_counter() - start:.0f} s")
    if args.out:
        table.to_csv(args.out, index=False)
    if args.write:
        if best is None:
            print("kdviz sanity: nothing written, no setting passes the randomisation test", file=sys.stderr)
            return 1
        path = _write_recommendation(args.zoo, table, settings[int(best.name)], n)
        print(f"recommendation written to {path}")
    return 0


def _print_choice(best: Any, rec: Any, null_copies: int, n: int) -> None:
    """The setting chosen from the table, the zoo's current recommendation, and the power of the chosen one."""
    print("\nchosen default: " + ("none passes the randomisation test on this data" if best is None else
                                  f"{best['method']} ({best['params']}), {best['parts']}"))
    print("zoo.json recommends: " + ("nothing yet (the library default for its input kind applies)" if rec is None
                                     else f"{rec.method} {rec.params or ''}, {rec.parts} (from {rec.n_inputs} inputs)"))
    if best is not None:
        print(f"power (excess 0.1, 80%, one-sided 0.05, R = {null_copies}): "
              f"{_count(best['inputs_for_power'])} inputs with one seed; {_count(best['seeds_for_power'])} training "
              f"seeds at {n} inputs (∞: the spread over initialisations alone hides it)")


SANITY: dict[Modality, Callable[[argparse.Namespace], int]] = {
    Modality.IMAGE: partial(_run_arrays, modality=Modality.IMAGE),
    Modality.SERIES: partial(_run_arrays, modality=Modality.SERIES),
    Modality.TEXT: run_text_sanity,
}


def run_sanity(args: argparse.Namespace) -> int:
    """``kdviz sanity``: the zoo's modality runs the table (:data:`SANITY`)."""
    try:
        modality = zoo_modality(args.zoo)
    except ValueError as exc:
        raise SystemExit(f"kdviz sanity: {exc}") from exc
    if args.threads:
        torch.set_num_threads(args.threads)
    return SANITY[modality](args)


def _count(v: float) -> str:
    return "∞" if v == float("inf") else ("?" if v != v else f"{int(v):,}")


def _write_recommendation(root: str, table: object, setting: object, n: int) -> str:
    """Record ``setting`` and the sanity ``table`` as the zoo's recommendation (zoo.json rewritten atomically)."""

    def plain(v: object) -> object:
        if isinstance(v, float):
            return None if not math.isfinite(v) else round(v, 4)
        return v.item() if hasattr(v, "item") else v

    rows = tuple({k: plain(v) for k, v in r.items()} for r in table.to_dict("records"))  # type: ignore[attr-defined]
    rec = Recommendation(
        method=setting.method, params=dict(setting.params), parts=setting.parts, table=rows,  # type: ignore[attr-defined]
        n_inputs=int(n), command="kdviz " + " ".join(sys.argv[1:]), created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    replace_recommendation(read_manifest(root), rec)  # checks that it round-trips through parse_manifest
    path = Path(root) / MANIFEST
    obj = json.loads(path.read_text(encoding="utf-8"))  # every other field kept as written
    obj["recommended"] = json.loads(json.dumps(asdict(rec)))  # tuples as JSON lists
    parse_manifest(obj, source=str(path))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return str(path)
