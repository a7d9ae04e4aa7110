"""kdviz.io.paths: server paths stay inside KDVIZ_DATA_ROOT."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdviz.io.paths import data_root, resolve_data_path
from kdviz.io.untrusted import DataPathError
from tests.hostile_inputs import make_data_root  # noqa: E402


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    made = make_data_root(tmp_path)
    monkeypatch.setenv("KDVIZ_DATA_ROOT", str(made))
    return made.resolve()


def test_relative_and_absolute_inside(root: Path) -> None:
    assert resolve_data_path("series/good.csv") == root / "series/good.csv"
    assert resolve_data_path(str(root / "series/good.csv")) == root / "series/good.csv"
    assert resolve_data_path("./series") == root / "series"


def test_link_inside_root_is_fine(root: Path) -> None:
    (root / "alias").symlink_to(root / "series")
    assert resolve_data_path("alias/good.csv") == root / "series/good.csv"


def test_must_exist_false_allows_new_names(root: Path) -> None:
    assert resolve_data_path("new/out.csv", must_exist=False) == root / "new/out.csv"


def test_explicit_root_overrides_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KDVIZ_DATA_ROOT", raising=False)
    made = make_data_root(tmp_path)
    assert resolve_data_path("series/good.csv", root=made).name == "good.csv"


@pytest.mark.parametrize("typed", ["", "   ", "a\x00b", "..", "series/..", "..\\outside"])
def test_refused(root: Path, typed: str) -> None:
    with pytest.raises(DataPathError):
        resolve_data_path(typed)


def test_root_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DataPathError, match="disabled"):
        data_root(environ={})
    with pytest.raises(DataPathError, match="not an existing folder"):
        data_root(environ={"KDVIZ_DATA_ROOT": str(tmp_path / "missing")})
