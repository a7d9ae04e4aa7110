"""Text models on the command line: ``kdviz distill`` for text students (``--data rotten_tomatoes``,
``--method rationale``) and ``kdviz inspect`` of Hugging Face folders / zips.

Students: ``--arch bert-L2-H256`` (a BERT classifier; rationale = a token-tagging head), ``t5-L2-H128`` or
``gpt2-L2-H128`` (a language model on the teacher's vocabulary, read as a classifier through its verbalizer;
rationale = generating the teacher's top-5 words after ``"explain:"``, distilling step-by-step). ``--max-train``
/ ``--max-test`` keep the first N snippets of each split (quick runs). The training itself is
:func:`kdviz.training.text_distill.distill_from_teacher`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from kdviz.errors import InvalidInputError
from kdviz.evaluation.text import TEXT_DATASETS
from kdviz.io.hf_text import load_hf_text
from kdviz.training.text_distill import TextDistillJob, distill_from_teacher
from kdviz.vocab import TrainingMethod

__all__ = ["parse_verbalizer", "run_hf_inspect", "run_text_distill"]


def parse_verbalizer(items: list[str] | None) -> dict[str, str] | None:
    """``["fresh= fresh", "rotten= rotten"]`` -> ``{"fresh": " fresh", "rotten": " rotten"}`` (the token keeps
    its spaces: GPT-2's word tokens start with one); None when no item is given."""
    if not items:
        return None
    out: dict[str, str] = {}
    for item in items:
        label, sep, token = item.partition("=")
        if not sep or not label.strip() or not token:
            raise InvalidInputError(f"--verbalizer takes CLASS=TOKEN, got {item!r}")
        out[label.strip()] = token
    return out


def run_hf_inspect(args: argparse.Namespace) -> int:
    """Print a Hugging Face text checkpoint's summary as JSON (exit 2 when it is refused)."""
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


def _job(args: argparse.Namespace) -> TextDistillJob:
    """The text student ``kdviz distill``'s options describe; SystemExit on options that do not fit text."""
    if args.data not in TEXT_DATASETS:
        raise SystemExit(f"kdviz distill: --method rationale needs a text dataset ({', '.join(TEXT_DATASETS)})")
    if args.teacher is None:
        raise SystemExit("kdviz distill: text students need --teacher (a Hugging Face folder or zip)")
    method = TrainingMethod.parse(args.method, TrainingMethod.KD)
    beta = getattr(args, "rationale_beta", None)
    if method != TrainingMethod.RATIONALE and beta is not None:
        raise SystemExit("kdviz distill: --rationale-beta needs --method rationale")
    return TextDistillJob(teacher=Path(args.teacher), arch=args.arch, out=Path(args.out), alpha=args.alpha,
                          method=method, beta=beta, temperature=args.temperature, seed=args.seed, epochs=args.epochs,
                          lr=getattr(args, "lr", None), max_train=getattr(args, "max_train", None),
                          max_test=getattr(args, "max_test", None))


def run_text_distill(args: argparse.Namespace) -> int:
    """Train one text student from ``--teacher`` (a Hugging Face folder of the text zoo's kind); print its summary."""
    job = _job(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = distill_from_teacher(job)
    except ValueError as exc:
        raise SystemExit(f"kdviz distill: {exc}") from exc
    print(json.dumps(result))
    return 0
