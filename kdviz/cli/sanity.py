"""``kdviz sanity --zoo DIR``: which attribution setting to trust on this data (``kdviz.analysis.sanity``).

A text zoo goes to ``kdviz.cli.sanity_text`` (words as the parts, the text methods). For every method × parts × IG
baseline asked for, on the first ``--n`` test inputs: the teacher randomisation
test (Adebayo et al. 2018) with its verdict, the random-weights null and the trained students' raw and excess
attention alignment, the copies' spread, how many students clear the null (rank p ≤ 0.05) and the inputs/seeds
that would detect an excess of 0.1 at 80% power. Prints a table and writes it as CSV with ``--out``;
``--write`` records the chosen setting (with the table) in the zoo's ``zoo.json`` as its recommendation, which
``kdviz evaluate``, the dashboard and the Report then default to.
"""

from __future__ import annotations

import argparse
import sys
import time

from kdviz.attribution.engine import BASELINES, METHODS

DEFAULT_METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "deeplift", "occlusion", "grad_cam")
_BASELINE_METHODS = ("integrated_gradients", "deeplift", "occlusion", "gradient_shap")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sanity", help="teacher randomisation test + random-weights null for each attribution setting on a zoo",
        description="Which attribution method to trust on this data: for each method × parts × IG baseline, the "
        "teacher randomisation test's verdict, the null and the trained students' excess alignment.",
    )
    p.add_argument("--zoo", required=True, help="zoo folder (with zoo.json)")
    p.add_argument("--n", type=int, default=16, help="first N test inputs (default 16)")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated, from {', '.join(sorted(METHODS))} (default {', '.join(DEFAULT_METHODS)}); "
                        "for a text zoo from grad_x_embedding, gradient_norm, integrated_gradients (ig), "
                        "word_occlusion, attention_rollout (default all but gradient_norm)")
    p.add_argument("--parts", default=None,
                   help="comma-separated part specs (default slic:50,grid:4x4 for images, segments:10 for series)")
    p.add_argument("--baselines", default="zeros",
                   help=f"comma-separated baselines for IG (others use zeros), from {', '.join(BASELINES)}")
    p.add_argument("--students", default=None, help="comma-separated student ids (default: every student)")
    p.add_argument("--steps", type=int, default=32, help="IG integration steps (default 32)")
    p.add_argument("--null-copies", type=int, default=19,
                   help="random copies per student architecture (default 19: the smallest R whose rank p reaches 0.05)")
    p.add_argument("--write", action="store_true",
                   help="record the chosen setting and this table in the zoo's zoo.json (its recommendation)")
    p.add_argument("--seeds", type=int, default=1, help="fully random teachers in the randomisation test (default 1)")
    p.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--out", help="write the table as CSV here")
    p.set_defaults(func=run_sanity)


def _settings(args: argparse.Namespace, task: str) -> list:
    from kdviz.analysis.sanity import Setting

    methods = [m.strip() for m in (args.methods or ",".join(DEFAULT_METHODS)).split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"kdviz sanity: unknown method(s) {unknown}; choose from {sorted(METHODS)}")
    parts = args.parts or ("slic:50,grid:4x4" if task == "image" else "segments:10")
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        raise SystemExit(f"kdviz sanity: unknown baseline(s) {bad}; choose from {list(BASELINES)}")
    out = []
    for spec in (p.strip() for p in parts.split(",") if p.strip()):
        for method in methods:
            extra: tuple = (("n_steps", args.steps),) if method == "integrated_gradients" else ()
            for baseline in (baselines if method == "integrated_gradients" else ["zeros"]):
                params = extra + ((("baseline", baseline),) if method in _BASELINE_METHODS else ())
                out.append(Setting(method, params, spec))
    return out


def run_sanity(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from kdviz.analysis.sanity import choose_default, sanity_table
    from kdviz.evaluation.text import is_text_zoo
    from kdviz.io.builtin_datasets import load_dataset
    from kdviz.io.zoo.manifest import load_zoo

    if is_text_zoo(args.zoo):
        from kdviz.cli.sanity_text import run_text_sanity

        return run_text_sanity(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        zoo = load_zoo(args.zoo)
    except ValueError as exc:
        raise SystemExit(f"kdviz sanity: {exc}") from exc
    settings = _settings(args, zoo.task)
    students = list(zoo.students)
    if args.students:
        wanted = [s.strip() for s in args.students.split(",") if s.strip()]
        try:
            students = [zoo.get(s) for s in wanted]
        except ValueError as exc:
            raise SystemExit(f"kdviz sanity: {exc}") from exc
    ds = load_dataset(zoo.dataset)
    n = min(args.n, len(ds.x_test))
    display = ds.x_test[:n]
    shape = (1, -1) + (1,) * (display.ndim - 2)
    x = (display - np.asarray(zoo.mean, np.float32).reshape(shape)) / np.asarray(zoo.std, np.float32).reshape(shape)
    start = time.perf_counter()
    table = sanity_table(
        zoo.teacher, students, x.astype(np.float32), settings, images_for_slic=display if zoo.task == "image" else None,
        null_copies=args.null_copies, seeds=tuple(20_000 + i for i in range(args.seeds)), device=args.device,
        log=lambda s: print(s, file=sys.stderr, flush=True),
    )
    cols = ["method", "params", "parts", "teacher_randomised_rho", "verdict", "null_rho", "null_rho_sd",
            "students_rho", "students_excess", "students_excess_low", "students_excess_high", "students_above_null",
            "inputs_for_power", "seeds_for_power", "seconds"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    best = choose_default(table)
    print("\nchosen default: " + ("none passes the randomisation test on this data" if best is None else
                                  f"{best['method']} ({best['params']}), {best['parts']}"))
    rec = zoo.manifest.recommended
    print("zoo.json recommends: " + ("nothing yet (the library default for its input kind applies)" if rec is None
                                     else f"{rec.method} {rec.params or ''}, {rec.parts} (from {rec.n_inputs} inputs)"))
    if best is not None:
        print(f"power (excess 0.1, 80%, one-sided 0.05, R = {args.null_copies}): "
              f"{_count(best['inputs_for_power'])} inputs with one seed; {_count(best['seeds_for_power'])} training "
              f"seeds at {n} inputs (∞: the spread over initialisations alone hides it)")
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


def _count(v: float) -> str:
    return "∞" if v == float("inf") else ("?" if v != v else f"{int(v):,}")


def _write_recommendation(root: str, table: object, setting: object, n: int) -> str:
    """Record ``setting`` and the sanity ``table`` as the zoo's recommendation (zoo.json rewritten atomically)."""
    import json
    import math
    import os
    from dataclasses import asdict
    from pathlib import Path

    from kdviz.io.zoo.manifest import MANIFEST, Recommendation, parse_manifest, read_manifest, replace_recommendation

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
