"""``kdviz inspect`` end to end, as a user runs it."""

import json
import subprocess
import sys

import torch

from kdviz.models import create_model


def _kdviz(*args):
    return subprocess.run([sys.executable, "-m", "kdviz", *args], capture_output=True, text=True, timeout=120)


def test_inspect_prints_one_json_object(tmp_path):
    path = tmp_path / "student.pth"
    model = create_model("resnet56", num_classes=10, in_channels=1)
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}}, path)
    proc = _kdviz("inspect", str(path))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["arch"] == "resnet56" and info["arch_guessed"] is True
    assert (info["num_classes"], info["in_channels"], info["format"]) == (10, 1, "state_dict")
    assert info["params"] == sum(p.numel() for p in model.parameters())
    assert len(info["sha256"]) == 64 and "stripped wrapper prefix 'module.'" in info["warnings"]

    wrong = _kdviz("inspect", str(path), "--arch", "resnet20")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.strip().endswith("this looks like resnet56, not resnet20")


def test_inspect_bad_file_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    proc = _kdviz("inspect", str(path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"kdviz inspect: {path}: file is not a checkpoint (empty)"]
