"""``kdviz ked-zoo``: build a KED demo zoo as the paper does (:mod:`kdviz.training.ked_zoo` holds the recipe).

``kdviz ked-zoo --zoo fashion-mnist-ked --out assets/zoo/fashion-mnist-ked`` trains the plain and explaining
teachers, the superfeatures and every CE / KD / KED student, each step skipped when its files exist, so an
interrupted build resumes; ``--only ID`` retrains one model and rewrites ``zoo.json``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from kdviz.training.ked_zoo import KED_ZOOS, KedZooPlan, build_ked_zoo

__all__ = ["main", "plan_from_args", "register"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zoo", choices=sorted(KED_ZOOS), required=True)
    parser.add_argument("--out", required=True, help="zoo folder (created; resumed when it holds records)")
    parser.add_argument("--only", help="retrain this model id (or 'superfeatures') and rewrite zoo.json")
    parser.add_argument("--seeds", type=int, nargs="+", help="student seeds (default: the plan's)")
    parser.add_argument("--teacher-epochs", type=int, help="epochs of both teachers (default: the plan's)")
    parser.add_argument("--student-epochs", type=int, help="epochs of every student (default: the plan's)")
    parser.add_argument("--threads", type=int, help="torch threads")


def plan_from_args(args: argparse.Namespace) -> KedZooPlan:
    """The named plan with the command line's seeds and epochs in place of its own."""
    plan = KED_ZOOS[args.zoo]
    if args.seeds:
        plan = replace(plan, seeds=tuple(args.seeds))
    if args.teacher_epochs:
        plan = replace(plan, teacher_epochs=args.teacher_epochs)
    if args.student_epochs:
        plan = replace(plan, student_epochs=args.student_epochs)
    return plan


def _say(line: str) -> None:
    print(line, flush=True)


def _run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    build_ked_zoo(plan_from_args(args), args.out, only=args.only, log=_say)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``kdviz ked-zoo``."""
    parser = subparsers.add_parser("ked-zoo", help="build a KED demo zoo as the paper does (arXiv 2310.02572)",
                                   description=__doc__.split("\n")[0])
    _add_arguments(parser)
    parser.set_defaults(func=_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m kdviz.cli.ked_zoo …`` (the same as ``kdviz ked-zoo …``)."""
    parser = argparse.ArgumentParser(prog="kdviz ked-zoo", description=__doc__.split("\n")[0])
    _add_arguments(parser)
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
