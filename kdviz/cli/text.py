"""Text models on the command line: ``kdviz distill`` for text students (``--data rotten_tomatoes``,
``--method rationale``) and ``kdviz inspect`` of Hugging Face folders / zips.

Students: ``--arch bert-L2-H256`` (a BERT classifier; rationale = a token-tagging head), ``t5-L2-H128`` or
``gpt2-L2-H128`` (a language model on the teacher's vocabulary, read as a classifier through its verbalizer;
rationale = generating the teacher's top-5 words after ``"explain:"``, distilling step-by-step). ``--max-train``
/ ``--max-test`` keep the first N snippets of each split (quick runs).

``kdviz.cli.train`` hands a ``distill`` over to :func:`run_text_distill` when ``--data rotten_tomatoes`` or
``--method rationale`` is given; ``kdviz.cli.inspect`` hands a folder or zip with ``config.json`` to
:func:`run_hf_inspect`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["TEXT_DATASETS", "is_text_distill", "parse_verbalizer", "run_hf_inspect", "run_text_distill"]

TEXT_DATASETS = ("rotten_tomatoes",)


def is_text_distill(args: argparse.Namespace) -> bool:
    """True when a ``kdviz distill`` call is for a text student."""
    return args.data in TEXT_DATASETS or args.method == "rationale"


def parse_verbalizer(items: list[str] | None) -> dict[str, str] | None:
    """``["fresh= fresh", "rotten= rotten"]`` -> ``{"fresh": " fresh", "rotten": " rotten"}`` (the token keeps
    its spaces: GPT-2's word tokens start with one); None when no item is given."""
    if not items:
        return None
    out: dict[str, str] = {}
    for item in items:
        label, sep, token = item.partition("=")
        if not sep or not label.strip() or not token:
            raise ValueError(f"--verbalizer takes CLASS=TOKEN, got {item!r}")
        out[label.strip()] = token
    return out


def run_hf_inspect(args: argparse.Namespace) -> int:
    """Print a Hugging Face text checkpoint's summary as JSON (exit 2 when it is refused)."""
    from kdviz.io.hf_text import load_hf_text

    try:
        model = load_hf_text(args.file, verbalizer=parse_verbalizer(getattr(args, "verbalizer", None)),
                             template=getattr(args, "prompt", None))
    except ValueError as exc:
        print(f"kdviz inspect: {args.file}: {exc}", file=sys.stderr)
        return 2
    if args.num_classes is not None and args.num_classes != model.num_labels:
        print(f"kdviz inspect: {args.file}: {model.num_labels} classes, expected {args.num_classes}", file=sys.stderr)
        return 2
    print(json.dumps(model.summary()))
    return 0


def run_text_distill(args: argparse.Namespace) -> int:
    """Train one text student from ``--teacher`` (a Hugging Face folder of the text zoo's kind)."""
    import torch

    from kdviz.io.hf_text import load_hf_text
    from kdviz.models.hf_text import parse_text_arch
    from kdviz.training.rationale import TeacherCache
    from kdviz.training.text_zoo import (
        StudentRun,
        TextZooConfig,
        compute_teacher_cache,
        distill_text_student,
        load_text_data,
        subset_text_data,
    )

    if args.data not in TEXT_DATASETS:
        raise SystemExit(f"kdviz distill: --method rationale needs a text dataset ({', '.join(TEXT_DATASETS)})")
    if args.teacher is None:
        raise SystemExit("kdviz distill: text students need --teacher (a Hugging Face folder or zip)")
    beta = getattr(args, "rationale_beta", None)
    method = "rationale" if args.method == "rationale" else ("ce" if args.alpha == 1.0 else "kd")
    if method != "rationale" and beta is not None:
        raise SystemExit("kdviz distill: --rationale-beta needs --method rationale")
    if args.threads:
        torch.set_num_threads(args.threads)
    defaults = TextZooConfig()
    config = TextZooConfig(student_seed=args.seed, temperature=args.temperature,
                           student_epochs=args.epochs or defaults.student_epochs,
                           student_lr=getattr(args, "lr", None) or defaults.student_lr)
    try:
        spec = parse_text_arch(args.arch)
        teacher = load_hf_text(args.teacher)
    except ValueError as exc:
        raise SystemExit(f"kdviz distill: {exc}") from exc
    out = Path(args.out)
    work = out.parent / f".{out.name}.work"
    work.mkdir(parents=True, exist_ok=True)
    data = load_text_data(teacher.tokenizer, seed=config.seed, n_test=config.n_test, max_length=config.max_length)
    shipped = Path(args.teacher).parent / "teacher_rationales.npz"
    cache_path = shipped if shipped.is_file() else work / "teacher_rationales.npz"
    if not cache_path.is_file():
        compute_teacher_cache(teacher.model, data, k=config.k).save(cache_path)
    cache = TeacherCache.load(cache_path)
    max_train, max_test = getattr(args, "max_train", None), getattr(args, "max_test", None)
    if max_train or max_test:
        data, cache = subset_text_data(data, cache, n_train=max_train, n_test=max_test)
    run = StudentRun(spec, args.alpha, method, beta=0.5 if beta is None and method == "rationale" else (beta or 0.0))
    info = distill_text_student(run, data, cache, out, work, config=config)
    print(json.dumps({"id": run.id, "arch": spec.arch, "alpha": run.alpha, "method": run.method, "beta": run.beta,
                      "test_accuracy": round(info["accuracy"], 4), "train_seconds": round(info["seconds"], 1),
                      "out": str(out), "rationales": str(cache_path)}))
    return 0
