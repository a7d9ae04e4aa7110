"""``kdviz inspect`` on Hugging Face folders and zips."""

from __future__ import annotations

import json
import shutil

from kdviz.cli import main
from tests.text_models import save_tiny


def test_inspect_reports_a_hf_folder_and_zip(tmp_path, capsys):
    folder = save_tiny(tmp_path / "tiny")
    assert main(["inspect", str(folder)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "huggingface" and out["arch"] == "bert-L2-H32" and out["num_classes"] == 2
    archive = shutil.make_archive(str(tmp_path / "tiny"), "zip", tmp_path, "tiny")
    assert main(["inspect", archive]) == 0
    assert json.loads(capsys.readouterr().out)["sha256"] == out["sha256"]


def test_inspect_refuses_custom_code(tmp_path, capsys):
    folder = save_tiny(tmp_path / "evil")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "x.Y"}
    (folder / "config.json").write_text(json.dumps(cfg))
    assert main(["inspect", str(folder)]) == 2
    assert "custom code" in capsys.readouterr().err
