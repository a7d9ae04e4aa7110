"""``kdviz evaluate --zoo DIR``: every model of a zoo against its teacher over a test split, into Parquet.

Writes ``--out`` (one row per model × input, settings in the file's metadata) and ``<stem>_summary.csv``
(per-model means with 95% bootstrap intervals). Finished batches are kept in ``<out>.partial/`` so an
interrupted run resumes where it stopped; the folder is removed after a successful run (``--keep-partial``
keeps it).

``--ray [ADDRESS]`` computes the batches on a Ray cluster (a local one without ADDRESS; ``auto`` or
``host:6379`` joins a running one) and writes the same files; ``--precision bf16|fp16`` runs the models under
autocast where the device computes in it natively; ``--steps auto`` picks IG's steps per input.

The zoo's modality (``zoo.json`` task) prepares the run (:data:`PREPARE`). A text zoo is evaluated on its recorded
test split (or ``--data`` a .csv with a text column and, optionally, a label column; a .txt of snippets), words as the
parts, gradient saliency (``grad_x_embedding``) unless ``--method`` says otherwise (``--method ig --steps 32``);
``--parts``, ``--precision`` and ``--preset`` do not apply.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kdviz.analysis.defaults import randomisation_failure
from kdviz.attribution.methods import get_method, method_names
from kdviz.errors import InvalidInputError
from kdviz.evaluation.arrays import canonical_method, resolve_setting
from kdviz.evaluation.batch import EvalResult
from kdviz.evaluation.distributed import ClusterOptions
from kdviz.evaluation.evaluate import evaluate_zoo, save_results
from kdviz.evaluation.pipeline import zoo_modality
from kdviz.evaluation.text import canonical_text_method
from kdviz.io.text import read_labelled_texts
from kdviz.io.user_datasets import test_set_for_zoo
from kdviz.io.zoo.manifest import load_zoo, read_manifest
from kdviz.report.logit_table import format_reference_table, logit_table
from kdviz.vocab import Modality


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kdviz evaluate`` to the command line."""
    p = subparsers.add_parser(
        "evaluate", help="evaluate a zoo over its test split (alignment metrics per model and input) into Parquet"
    )
    p.add_argument("--zoo", required=True, help="zoo folder (with zoo.json)")
    p.add_argument("--data", help="dataset name (default: the zoo's own, e.g. mnist or gunpoint) or a path: an "
                                  "ImageFolder folder or .zip, a CIFAR-10/100 folder or file (binary or python), "
                                  ".npz with x/y, .ts, .arff or .csv series (kdviz.io.user_datasets); for a text zoo a "
                                  ".csv with a text column and optionally a label column (class names or indices), "
                                  "or a .txt with one snippet per line (kdviz.io.text.read_labelled_texts)")
    p.add_argument("--text-column", help="text zoo, --data .csv: the column holding the snippets (default 'text', "
                                         "else the only column besides the labels)")
    p.add_argument("--label-column", help="text zoo, --data .csv: the column holding the labels (default the first of "
                                          "label, labels, category, class, y)")
    p.add_argument("--preset", help="read --data files with a named preprocessing (CIFAR-10, CIFAR-100, ImageNet) "
                                    "instead of the zoo's size and mean/std")
    p.add_argument("--method", default=None,
                   help=f"attribution method: ig or one of {', '.join(sorted(method_names()))} (default: the zoo's "
                        "recommendation from `kdviz sanity --write`, else grad_cam for images and ig for series); a text "
                        "zoo: grad_x_embedding (default), ig, gradient_norm or word_occlusion")
    p.add_argument("--steps", type=_parse_steps, default=None,
                   help="integration steps for ig (default 32, or the zoo's recommended), or 'auto': per input, 16 steps doubled until the "
                        "completeness error |Σ A − (f(x) − f(baseline))| / |f(x) − f(baseline)| is ≤ --tolerance "
                        "(at most 512)")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="completeness error that --steps auto aims for (default 0.01 = 1%%)")
    p.add_argument("--internal-batch-size", type=int, default=0,
                   help="rows per forward/backward pass for ig (0 = the attribution engine's memory-based choice; "
                        "on CPU, ~64-256 rows is often faster)")
    p.add_argument("--parts", default=None,
                   help="slic:N, grid:RxC or segments:N (default: the zoo's recommended, else slic:50 for images, "
                        "segments:10 for series)")
    p.add_argument("--k", type=int, default=5, help="teacher's top-k parts for focus and overlap (default 5)")
    p.add_argument("--null-copies", type=_parse_copies, default="auto",
                   help="random-weights copies per student architecture for the null: 'auto' (default) is the R "
                        "rule, up to 20·(architectures)−1 copies (at least 19) added 20 at a time while a student's "
                        "rank p is undecided at 0.05; an integer fixes R (0 = off)")
    p.add_argument("--limit", type=int, help="evaluate only the first N test inputs")
    p.add_argument("--batch-size", type=int, default=50, help="inputs per batch, the resume unit (default 50)")
    p.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; 1 is faster on a busy CPU); "
                                                "with --ray, threads per CPU worker (default 1)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="autocast precision (default fp32); bf16 on a CPU needs AVX-512 BF16 or AMX, and is refused "
                        "elsewhere")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="compute the batches on a Ray cluster: a local one (no ADDRESS), or join 'auto' / host:6379")
    p.add_argument("--workers", type=int,
                   help="Ray workers (default: one per GPU of the cluster, else its CPUs // --threads)")
    p.add_argument("--out", required=True, help="results file (.parquet); the summary CSV goes next to it")
    p.add_argument("--keep-partial", action="store_true", help="keep the finished batches after success")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_evaluate)


def _parse_copies(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--null-copies must be an integer or 'auto', got {text!r}") from None


def _parse_steps(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--steps must be an integer or 'auto', got {text!r}") from None


AUTO_FIRST_STEPS = 16  # the first rung of --steps auto (kdviz.attribution.ig_steps.step_ladder)


def _method_params(method: str, steps: int | str | None, rows: int = 0, tolerance: float = 0.01,
                   base: dict[str, object] | None = None) -> dict[str, object]:
    names = {p.name for p in get_method(method).params}
    params: dict[str, object] = dict(base or {})
    if steps is None:
        if "n_steps" in names:
            params.setdefault("n_steps", 32)
    elif steps == "auto":
        if "auto_steps" not in names:
            raise InvalidInputError(f"--steps auto is for integrated gradients, not {method!r}")
        params.update({"n_steps": AUTO_FIRST_STEPS, "auto_steps": True, "tolerance": tolerance})
    elif "n_steps" in names:
        params["n_steps"] = steps
    if rows and "internal_batch_size" in names:
        params["internal_batch_size"] = rows
    return params


@dataclass(frozen=True)
class Prepared:
    """What a modality's preparation of ``kdviz evaluate`` hands to the one run: the zoo, the test set, the
    modality's options (``EvalOptions`` fields) and what to print once the results are written."""

    zoo: Any
    dataset: Any
    options: dict[str, Any]
    report: Callable[[EvalResult, Path], None]


def _prepare_arrays(args: argparse.Namespace) -> Prepared:
    """An image or series zoo: its test set or ``--data`` files, the method (the zoo's recommendation by default)."""
    zoo = load_zoo(args.zoo)
    dataset = None
    if args.text_column or args.label_column:
        raise InvalidInputError("--text-column and --label-column apply to a text zoo's --data")
    if args.data:
        dataset, zoo, lines = test_set_for_zoo(args.data, zoo, preset=args.preset)
        for line in lines:
            print(f"kdviz evaluate: {line}")
    elif args.preset:
        raise InvalidInputError("--preset needs --data PATH (files to read with it)")
    method, base, parts = resolve_setting(zoo, None if args.method is None else canonical_method(args.method),
                                          None, args.parts)
    params = _method_params(method, args.steps, args.internal_batch_size, args.tolerance, base)
    origin = ("" if args.method is not None else " (the zoo's recommendation, kdviz sanity)"
              if getattr(zoo.manifest, "recommended", None) is not None else
              " (the library default for this input kind)")
    print(f"kdviz evaluate: {method} {params or ''} on {parts}{origin}", file=sys.stderr)
    failure = randomisation_failure(zoo, method, params=params, parts=parts)
    if failure:
        print(f"kdviz evaluate: warning: {failure}", file=sys.stderr)
    return Prepared(zoo, dataset, {"method": method, "method_params": params, "parts": parts,
                                   "device": args.device, "precision": args.precision}, _report_arrays)


def _report_arrays(result: EvalResult, out: Path) -> None:
    s = result.settings
    print(f"kdviz evaluate: {s.n_inputs} inputs × {len(s.models)} models in {result.run['elapsed_s']:.1f} s "
          f"({result.run['batches_resumed']} batches resumed) -> {out}")
    if "cluster" in result.run:
        c = result.run["cluster"]
        print(f"ray {c['ray_version']}: {c['workers']} workers ({c['device']}) on {c['nodes']} node(s), "
              f"{c['workers_lost']} lost, batches retried: {c['retried_batches'] or 'none'}")
    if result.summary["logit_rho"].notna().any():
        print("logit alignment, " + format_reference_table(logit_table(result.summary)))


def _prepare_text(args: argparse.Namespace) -> Prepared:
    """A text zoo: its recorded split or ``--data`` snippets, words as the parts, a text method, fp32 on the CPU."""
    for flag, value in (("--parts", args.parts), ("--preset", args.preset)):
        if value:
            raise InvalidInputError(f"{flag} does not apply to a text zoo (its parts are words, its inputs raw text)")
    dataset = None
    if args.data:
        dataset = read_labelled_texts(args.data, read_manifest(args.zoo).class_names, column=args.text_column,
                                      label_column=args.label_column)
        print(f"kdviz evaluate: {len(dataset.texts)} snippets from {args.data} ({'; '.join(dataset.notes)})",
              file=sys.stderr)
    elif args.text_column or args.label_column:
        raise InvalidInputError("--text-column and --label-column apply to --data")
    if args.precision != "fp32":
        raise InvalidInputError("--precision: a text zoo is evaluated in fp32")
    method = canonical_text_method(args.method)
    params: dict[str, object] = {}
    if args.steps is not None:
        if method != "integrated_gradients" or args.steps == "auto":
            raise InvalidInputError("--steps takes an integer, for --method ig (integrated_gradients) on a text zoo")
        params["n_steps"] = args.steps
    elif method == "integrated_gradients":
        params["n_steps"] = 32
    print(f"kdviz evaluate: text zoo, {method}{f' {params}' if params else ''} on words, k={args.k}",
          file=sys.stderr)
    return Prepared(args.zoo, dataset, {"method": method, "method_params": params}, _report_text)


def _report_text(result: EvalResult, out: Path) -> None:
    s = result.settings
    print(f"kdviz evaluate: {s.n_inputs} snippets × {len(s.models)} models ({s.null_copies} untrained copies per "
          f"student architecture) in {result.run['elapsed_s']:.1f} s ({result.run['batches_resumed']} batches "
          f"resumed) -> {out}")
    if "cluster" in result.run:
        c = result.run["cluster"]
        print(f"ray {c['ray_version']}: {c['workers']} workers on {c['nodes']} node(s), {c['workers_lost']} lost, "
              f"batches retried: {c['retried_batches'] or 'none'}")
    cols = ["model_id", "accuracy", "topk_overlap", "topk_overlap_excess", "topk_overlap_p", "attention_rho",
            "attention_rho_p", "vader", "vader_null"]
    print(result.summary[[c for c in cols if c in result.summary]].round(3).to_string(index=False))


PREPARE: dict[Modality, Callable[[argparse.Namespace], Prepared]] = {
    Modality.IMAGE: _prepare_arrays, Modality.SERIES: _prepare_arrays, Modality.TEXT: _prepare_text,
}


def run_evaluate(args: argparse.Namespace) -> int:
    """``kdviz evaluate``: the zoo's modality prepares the run, then one evaluation writes the results."""
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    partial = out.with_name(out.name + ".partial")
    try:
        prepared = PREPARE[zoo_modality(args.zoo)](args)
        cluster = None if args.ray is None else ClusterOptions(
            address=None if args.ray == "local" else args.ray, workers=args.workers, threads=args.threads or 1)
        result = evaluate_zoo(prepared.zoo, dataset=prepared.dataset, k=args.k, limit=args.limit,
                              batch_size=args.batch_size, cache_dir=partial, progress_bar=not args.quiet,
                              cluster=cluster, null_copies=args.null_copies, **prepared.options)
    except (ValueError, FileNotFoundError, ConnectionError) as exc:
        print(f"kdviz evaluate: {exc}", file=sys.stderr)
        return 2
    save_results(result, out)
    if not args.keep_partial:
        shutil.rmtree(partial, ignore_errors=True)
    prepared.report(result, out)
    return 0
