"""``kdviz inspect`` on GPT-2 / T5 folders read as classifiers through verbalizers."""

from __future__ import annotations

import json
import shutil

from kdviz.cli import main
from tests.generative_models import save_generative


def test_inspect_reports_gpt2_and_t5_folders_and_zips(tmp_path, capsys):
    for kind, token in (("gpt2", " fresh"), ("t5", "fresh")):
        folder = save_generative(tmp_path / kind, kind)
        assert main(["inspect", str(folder)]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["model_type"] == kind and out["num_classes"] == 2 and out["verbalizer"]["fresh"] == token
        archive = shutil.make_archive(str(tmp_path / kind), "zip", tmp_path, kind)
        assert main(["inspect", archive, "--num-classes", "2"]) == 0
        assert json.loads(capsys.readouterr().out)["sha256"] == out["sha256"]


def test_inspect_takes_verbalizer_and_prompt(tmp_path, capsys):
    folder = save_generative(tmp_path / "g", "gpt2", labels=False)
    assert main(["inspect", str(folder)]) == 2
    assert "verbalizer" in capsys.readouterr().err
    assert main(["inspect", str(folder), "--verbalizer", "pos= great", "--verbalizer", "neg= bad",
                 "--prompt", "Review: {text} Sentiment:"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verbalizer"] == {"pos": " great", "neg": " bad"} and out["prompt"] == "Review: {text} Sentiment:"
    assert main(["inspect", str(folder), "--verbalizer", "pos"]) == 2
    assert "CLASS=TOKEN" in capsys.readouterr().err
