"""``kdviz zoo init DIR --out ZOO``: a zoo (zoo.json + safetensors) from a folder of checkpoints, non-interactive.

Registered under ``kdviz zoo`` (beside ``build``, from :mod:`kdviz.cli.train`); the guessing lives in
:mod:`kdviz.io.zoo.discover`. Prints every guess and what the user should confirm; ``--dry-run`` writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kdviz.io.zoo.discover import InputOverrides, draft_zoo, write_zoo

__all__ = ["register", "run_zoo_init"]


def _zoo_subparsers(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The ``kdviz zoo`` subcommand's own subparsers (``zoo`` is added by kdviz.cli.train)."""
    zoo = subparsers.choices.get("zoo")
    if zoo is None:
        zoo = subparsers.add_parser("zoo", help="demo zoos")
        return zoo.add_subparsers(dest="zoo_command", required=True, metavar="ZOO_COMMAND")
    return next(a for a in zoo._actions if isinstance(a, argparse._SubParsersAction))


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW (images) or L (series), got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kdviz zoo init``."""
    p = _zoo_subparsers(subparsers).add_parser(
        "init", help="write a zoo.json (and safetensors) for a folder of checkpoints",
        description="Guess architecture and class count from the weights, role and α from RepDistiller / "
                    "mdistiller / torchdistill / torchvision naming and metadata, and the teacher; print every guess "
                    "and what to confirm. kdviz's α is the CE weight share (RepDistiller r:0.1 a:0.9 → 0.1).")
    p.add_argument("dir", help="folder of checkpoints (searched recursively; one checkpoint per run folder)")
    p.add_argument("--out", required=True, help="zoo folder to write (zoo.json + <id>.safetensors)")
    p.add_argument("--name", help="zoo name (default: the folder's name)")
    p.add_argument("--dataset", help="dataset name recorded in zoo.json (default: guessed from the class count)")
    p.add_argument("--preset", help="input size and normalisation: CIFAR-10, CIFAR-100 or ImageNet "
                                    "(default: guessed from the teacher's family)")
    p.add_argument("--mean", type=_floats, help="per-channel mean, comma-separated (overrides the preset)")
    p.add_argument("--std", type=_floats, help="per-channel std, comma-separated (overrides the preset)")
    p.add_argument("--input-size", type=_ints, help="HxW for images, L for series")
    p.add_argument("--class-names", help="a file with one class name per line, or names separated by commas")
    p.add_argument("--teacher", help="the teacher's file name (default: the one the students name, else the "
                                     "largest)")
    p.add_argument("--dry-run", action="store_true", help="print the guesses, write nothing")
    p.set_defaults(func=run_zoo_init)


def run_zoo_init(args: argparse.Namespace) -> int:
    """Guess the zoo, print every guess, and write it unless ``--dry-run``; exit 2 on a refused folder."""
    names = None
    if args.class_names:
        path = Path(args.class_names)
        names = ([line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
                 if path.is_file() else [n.strip() for n in args.class_names.split(",")])
    try:
        inputs = InputOverrides(preset=args.preset, mean=args.mean, std=args.std, size=args.input_size)
        draft = draft_zoo(args.dir, name=args.name, dataset=args.dataset, inputs=inputs, class_names=names,
                          teacher=args.teacher)
        for line in draft.report():
            print(line)
        if args.dry_run:
            return 0
        written = write_zoo(draft, args.out)
    except (ValueError, FileNotFoundError) as exc:
        print(f"kdviz zoo init: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {written} and {len(draft.guesses)} safetensors; load it with kdviz.load_zoo('{args.out}')")
    return 0
