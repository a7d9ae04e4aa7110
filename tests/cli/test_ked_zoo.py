"""``kdviz ked-zoo``: the command line picks a plan and overrides its seeds and epochs (the build itself is
tested in tests/training/test_ked_zoo.py)."""

from __future__ import annotations

import argparse

import pytest

from kdviz.cli import build_parser
from kdviz.cli.ked_zoo import plan_from_args
from kdviz.training.ked_zoo import KED_ZOOS


def test_the_plan_takes_the_command_lines_seeds_and_epochs() -> None:
    args = build_parser().parse_args(["ked-zoo", "--zoo", "mnist-ked", "--out", "x", "--seeds", "4", "5",
                                      "--student-epochs", "2"])
    plan = plan_from_args(args)
    assert plan.seeds == (4, 5) and plan.student_epochs == 2
    assert plan.teacher_epochs == KED_ZOOS["mnist-ked"].teacher_epochs and plan.student_width == 20
    assert plan_from_args(argparse.Namespace(zoo="mnist-ked", seeds=None, teacher_epochs=None,
                                             student_epochs=None)) == KED_ZOOS["mnist-ked"]


def test_an_unknown_zoo_is_refused() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ked-zoo", "--zoo", "cifar-ked", "--out", "x"])
