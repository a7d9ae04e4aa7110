"""The three layers import in one direction: only kdviz/ui (and the pages) may import streamlit."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = sorted(p for p in (ROOT / "kdviz").rglob("*.py") if "ui" not in p.relative_to(ROOT / "kdviz").parts[:1])


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_library_modules_are_found():
    assert {"models.py", "checkpoints.py", "cli.py"} <= {p.name for p in LIBRARY}


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_library_never_imports_streamlit(path):
    assert "streamlit" not in _imports(path), f"{path.relative_to(ROOT)} imports streamlit; move UI code to kdviz/ui/"


def test_library_never_imports_the_pages():
    for path in LIBRARY:
        assert not {"pages", "app"} & _imports(path), path


def test_the_check_itself_catches_a_streamlit_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from streamlit import session_state\n")
    assert "streamlit" in _imports(bad)
