"""``kdviz`` command line: one subcommand per job, each registered by its own module.

Every module named in ``COMMAND_MODULES`` exposes ``register(subparsers)``, which adds its
subcommand(s) with ``set_defaults(func=...)``; ``func(args) -> int`` is the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = ("kdviz.cli.inspect", "kdviz.cli.evaluate", "kdviz.cli.train", "kdviz.cli.sanity",
                                     "kdviz.cli.ked_zoo", "kdviz.cli.zoo_init")


def build_parser() -> argparse.ArgumentParser:
    """The ``kdviz`` parser with every command module's subcommands."""
    parser = argparse.ArgumentParser(prog="kdviz", description="See how knowledge distillation changes where models look.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kdviz ARGV``; the subcommand's exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
