"""The README's library example runs as written (the public API at the top of the package)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_library_example_runs(monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("**Library API.**"):]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["cmp"].frame["attention_rho"].notna().all()
    assert len(scope["result"].summary) == len(scope["zoo"].models)
    assert scope["attr"].importance.shape == (8, 28, 28)
    assert scope["ckpt"].arch == "resnet8" and scope["model"].fc.out_features == 10
