"""The package's shape, checked: layers import in one direction (``.importlinter``, run by ``make test``); here
what import-linter cannot see: streamlit only in kdviz/ui, no ``_private`` names across modules, the public API."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import kdviz

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kdviz"
LIBRARY = sorted(p for p in PACKAGE.rglob("*.py") if "ui" not in p.relative_to(PACKAGE).parts[:1])
EVERY_MODULE = sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _private_imports(path: Path) -> list[str]:
    """``from kdviz.x import _name`` of another module (imports inside functions included)."""
    own = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kdviz") \
                and node.module != own:
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    return found


def test_library_modules_are_found():
    assert {"registry.py", "checkpoints.py", "engine.py", "evaluate.py"} <= {p.name for p in LIBRARY}


def test_top_level_holds_at_most_three_modules():
    top = {p.name for p in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py"}
    assert len(top) <= 3, f"modules directly in kdviz/: {sorted(top)}; put them in the subpackage of their layer"


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_library_never_imports_streamlit(path):
    assert "streamlit" not in _imports(path), f"{path.relative_to(ROOT)} imports streamlit; move UI code to kdviz/ui/"


def test_library_never_imports_the_pages():
    for path in EVERY_MODULE:
        assert not {"pages", "app"} & _imports(path), path


@pytest.mark.parametrize("path", EVERY_MODULE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_names_across_modules(path):
    assert not _private_imports(path), f"make these public in the module that owns them: {_private_imports(path)}"


def test_the_checks_themselves_catch_violations(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from streamlit import session_state\n")
    assert "streamlit" in _imports(bad)
    pkg = ROOT / "kdviz" / "models"
    sneaky = pkg / "_sneaky_check.py"
    try:
        sneaky.write_text("def f():\n    from kdviz.attribution.engine import _seeded\n")
        assert _private_imports(sneaky) == ["kdviz.attribution.engine._seeded"]
    finally:
        sneaky.unlink()


def test_public_api_resolves_lazily():
    assert set(kdviz.__all__) >= {"load_checkpoint", "load_zoo", "create_model", "attribute", "compare_models",
                                  "evaluate_zoo", "load_dataset"}
    for name in kdviz.__all__:
        assert getattr(kdviz, name) is not None
    assert kdviz.create_model("resnet8", num_classes=3, in_channels=1).fc.out_features == 3
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kdviz.nope  # noqa: B018
    # `import kdviz` alone imports none of the heavy libraries
    code = "import sys, kdviz; print(sorted(m for m in ('torch', 'captum', 'streamlit', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
