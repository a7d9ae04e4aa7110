"""``kdviz zoo init`` then ``kdviz evaluate --data``: a RepDistiller folder and a CIFAR-100 test set, end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kdviz.cli import main
from tests.io.test_cifar import write_cifar100_python
from tests.io.zoo.test_discover import write_repdistiller


def test_zoo_init_then_evaluate_on_cifar100(tmp_path: Path, capsys) -> None:
    write_repdistiller(tmp_path / "lab")
    _data, _fine, names = write_cifar100_python(tmp_path / "data")
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    zoo = tmp_path / "zoo"
    assert main(["zoo", "init", str(tmp_path / "lab"), "--out", str(zoo), "--dataset", "cifar100",
                 "--class-names", str(tmp_path / "names.txt")]) == 0
    printed = capsys.readouterr().out
    assert "teacher resnet20_teacher: resnet20" in printed
    assert "α = 0.1 [RepDistiller r:0.1 a:0.9 → α = r/(r+a)]" in printed
    assert "please confirm:" in printed and (zoo / "zoo.json").is_file()
    out = tmp_path / "r.parquet"
    assert main(["evaluate", "--zoo", str(zoo), "--data", str(tmp_path / "data" / "cifar-100-python"),
                 "--method", "saliency", "--parts", "grid:4x4", "--null-copies", "0", "--quiet",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "CIFAR-100 python (test)" in printed and "24 inputs × 4 models" in printed
    assert set(pd.read_parquet(out)["alpha"]) == {0.1, 0.5, 1.0}


def test_zoo_init_dry_run_and_errors(tmp_path: Path, capsys) -> None:
    write_repdistiller(tmp_path / "lab")
    assert main(["zoo", "init", str(tmp_path / "lab"), "--out", str(tmp_path / "z"), "--dry-run"]) == 0
    assert not (tmp_path / "z").exists()
    (tmp_path / "empty").mkdir()
    assert main(["zoo", "init", str(tmp_path / "empty"), "--out", str(tmp_path / "z")]) == 2
    assert "no loadable checkpoint" in capsys.readouterr().err
