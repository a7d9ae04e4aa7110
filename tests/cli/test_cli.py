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


def test_inspect_reads_a_repdistiller_checkpoint_with_its_options(tmp_path):
    """RepDistiller's ckpt_epoch_240.pth: accuracy as a 1-element tensor; its *_last.pth holds opt (a Namespace)."""
    import argparse

    model = create_model("wrn_16_2", num_classes=100)
    folder = tmp_path / "S:wrn_16_2_T:wrn_40_2_cifar100_kd_r:0.1_a:0.9_b:0.0_1"
    folder.mkdir()
    torch.save({"epoch": 240, "model": model.state_dict(), "accuracy": torch.tensor([73.5])}, folder / "ckpt_epoch_240.pth")
    opt = argparse.Namespace(model_s="wrn_16_2", model_t="wrn_40_2", gamma=0.1, alpha=0.9, kd_T=4, distill="kd")
    torch.save({"opt": opt, "model": model.state_dict()}, folder / "wrn_16_2_last.pth")
    info = json.loads(_kdviz("inspect", str(folder / "ckpt_epoch_240.pth")).stdout)
    assert (info["arch"], info["num_classes"], info["arch_ties"]) == ("wrn_16_2", 100, [])
    assert info["metadata"] == {"epoch": 240, "accuracy": 73.5}
    last = _kdviz("inspect", str(folder / "wrn_16_2_last.pth"))
    assert last.returncode == 0, last.stderr
    meta = json.loads(last.stdout)["metadata"]
    assert (meta["opt.model_t"], meta["opt.alpha"], meta["opt.kd_T"]) == ("wrn_40_2", 0.9, 4)


def test_inspect_offers_student_and_teacher_of_an_mdistiller_file(tmp_path):
    student, teacher = create_model("resnet8x4", num_classes=100), create_model("resnet32x4", num_classes=100)
    state = {f"module.student.{k}": v for k, v in student.state_dict().items()}
    state |= {f"module.teacher.{k}": v for k, v in teacher.state_dict().items()}
    path = tmp_path / "kd,res32x4,res8x4" / "latest"  # mdistiller: a folder with commas, no extension
    path.parent.mkdir()
    torch.save({"epoch": 3, "model": state, "best_acc": 71.0}, path)
    first = json.loads(_kdviz("inspect", str(path)).stdout)
    assert (first["part"], first["parts"], first["arch"]) == ("student", ["student", "teacher"], "resnet8x4")
    second = json.loads(_kdviz("inspect", str(path), "--part", "teacher").stdout)
    assert (second["part"], second["arch"], second["metadata"]["best_acc"]) == ("teacher", "resnet32x4", 71.0)
