"""``kdviz zoo init``'s guessing (kdviz.io.zoo.discover) on folders laid out as RepDistiller, mdistiller, torchdistill
and torchvision's reference training scripts save them (tiny random models, the real file layouts)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from kdviz.io.zoo.conventions import read_safe_yaml
from kdviz.io.zoo.discover import draft_zoo, find_checkpoints, write_zoo
from kdviz.io.zoo.manifest import load_zoo
from kdviz.models import seeded_model


def _sd(arch: str, seed: int, classes: int = 100) -> dict[str, torch.Tensor]:
    return seeded_model(arch, seed=seed, num_classes=classes, in_channels=3).state_dict()


def write_repdistiller(root: Path, *, teacher: str = "resnet20", student: str = "resnet8") -> None:
    """RepDistiller: train_teacher.py → save/models/<arch>_vanilla/; train_student.py → save/student_model/
    S:…_T:…_cifar100_kd_r:γ_a:α_b:β_trial/ with <arch>_best.pth, <arch>_last.pth and ckpt_epoch_N.pth."""
    t = root / "save" / "models" / f"{teacher}_vanilla"
    t.mkdir(parents=True)
    torch.save({"epoch": 240, "model": _sd(teacher, 0), "accuracy": torch.tensor([72.3]),
                "optimizer": {"state": {}, "param_groups": []}}, t / "ckpt_epoch_240.pth")
    for i, (r, a) in enumerate(((0.1, 0.9), (0.5, 0.5), (1, 0))):
        folder = root / "save" / "student_model" / f"S:{student}_T:{teacher}_cifar100_kd_r:{r}_a:{a}_b:0.0_1"
        folder.mkdir(parents=True)
        state = {"epoch": 240, "model": _sd(student, 10 + i), "best_acc": torch.tensor(60.0 + i)}
        torch.save(state, folder / f"{student}_best.pth")
        torch.save({**state, "model": _sd(student, 20 + i)}, folder / f"{student}_last.pth")
        torch.save({**state, "model": _sd(student, 30 + i)}, folder / "ckpt_epoch_40.pth")


def test_repdistiller_folder(tmp_path: Path) -> None:
    write_repdistiller(tmp_path)
    draft = draft_zoo(tmp_path, dataset="cifar100")
    by_alpha = {g.alpha: g for g in draft.guesses if g.role == "student"}
    teacher = next(g for g in draft.guesses if g.role == "teacher")
    assert (teacher.arch, teacher.method, teacher.alpha) == ("resnet20", "ce", 1.0)
    assert teacher.test_accuracy == pytest.approx(0.723)
    assert sorted(by_alpha) == [0.1, 0.5, 1.0]  # α = r / (r + a): CE 0.1, KL 0.9 → 0.1
    assert all(g.arch == "resnet8" and g.num_classes == 100 for g in by_alpha.values())
    assert by_alpha[0.1].file.name == "resnet8_best.pth" and "r/(r+a)" in by_alpha[0.1].alpha_source
    assert sum("another checkpoint" in s for s in draft.skipped) == 6
    assert draft.manifest.input_shape == (3, 32, 32) and draft.manifest.mean == (0.5071, 0.4867, 0.4408)
    assert "RepDistiller" in draft.manifest.description
    assert any("temperature T = 4 assumed" in c for c in draft.confirm)
    written = write_zoo(draft, tmp_path / "zoo")
    zoo = load_zoo(written.parent)
    assert zoo.teacher.arch == "resnet20" and len(zoo.students) == 3
    # the zoo's weights are the chosen file's (the *_best), not the last epoch's
    best = torch.load(next((tmp_path / "save").rglob("*r:0.1_a:0.9*/resnet8_best.pth")), weights_only=True)["model"]
    zoo_student = next(m for m in zoo.students if m.alpha == 0.1).module.state_dict()
    assert all(torch.equal(best[k].float(), zoo_student[k].float()) for k in best)
    with pytest.raises(ValueError, match="never overwrites"):
        write_zoo(draft, tmp_path / "zoo")


def test_mdistiller_folder(tmp_path: Path) -> None:
    """mdistiller: teachers from RepDistiller's download (…/resnet20_vanilla/ckpt_epoch_240.pth), runs in
    output/<tag>/ with student_best, student_latest and latest (the whole distiller); a config next to one run."""
    t = tmp_path / "download_ckpts" / "cifar_teachers" / "resnet20_vanilla"
    t.mkdir(parents=True)
    torch.save({"model": _sd("resnet20", 0)}, t / "ckpt_epoch_240.pth")
    with_cfg = tmp_path / "output" / "cifar100_baselines" / "kd,res20,res8"
    without = tmp_path / "output" / "kd,res20,res8"
    for i, run in enumerate((with_cfg, without)):
        run.mkdir(parents=True)
        student = _sd("resnet8", 5 + i)
        torch.save({"model": student}, run / "student_best")
        torch.save({"model": student}, run / "student_latest")
        torch.save({"epoch": 240, "model": {**{f"module.student.{k}": v for k, v in student.items()},
                                            **{f"module.teacher.{k}": v for k, v in _sd("resnet20", 0).items()}}},
                   run / "latest")
    (with_cfg / "kd.yaml").write_text(
        'EXPERIMENT:\n  NAME: ""\n  TAG: "kd,res20,res8"\n  PROJECT: "cifar100_baselines"\n'
        'DISTILLER:\n  TYPE: "KD"\n  TEACHER: "resnet20"\n  STUDENT: "resnet8"\n'
        "KD:\n  TEMPERATURE: 2\n  LOSS:\n    CE_WEIGHT: 0.5\n    KD_WEIGHT: 0.5\n")
    draft = draft_zoo(tmp_path)
    students = sorted((g for g in draft.guesses if g.role == "student"), key=lambda g: g.alpha)
    assert [g.file.name for g in students] == ["student_best", "student_best"]
    assert [(g.alpha, g.temperature) for g in students] == [(0.1, 4.0), (0.5, 2.0)]
    assert "defaults" in students[0].alpha_source and "CE_WEIGHT 0.5" in students[1].alpha_source
    assert next(g for g in draft.guesses if g.role == "teacher").arch == "resnet20"
    assert any("no mdistiller config" in c for c in draft.confirm)


def test_torchdistill_folder(tmp_path: Path) -> None:
    """torchdistill: configs/…/resnet8_from_resnet20.yaml (custom tags) and resource/ckpt/…/cifar10-….pt files."""
    cfg = tmp_path / "configs" / "sample" / "cifar10" / "kd"
    cfg.mkdir(parents=True)
    (cfg / "resnet8_from_resnet20.yaml").write_text(
        "datasets:\n  cifar10:\n    name: &dataset_name 'cifar10'\n"
        "models:\n  teacher_model:\n    key: &teacher_model_key 'resnet20'\n    kwargs:\n      num_classes: 10\n"
        "    src_ckpt: !join ['./resource/ckpt/cifar10/teacher/cifar10-', *teacher_model_key, '.pt']\n"
        "  student_model:\n    key: &student_model_key 'resnet8'\n    kwargs:\n      num_classes: 10\n"
        "    dst_ckpt: !join ['./resource/ckpt/cifar10/kd/cifar10-', *student_model_key, '_from_', "
        "*teacher_model_key, '.pt']\n"
        "train:\n  criterion:\n    key: 'WeightedSumLoss'\n    kwargs:\n      sub_terms:\n        kd:\n"
        "          criterion:\n            key: 'KDLoss'\n            kwargs:\n              temperature: 4.0\n"
        "              alpha: 0.5\n              reduction: 'batchmean'\n          weight: 1.0\n"
        "  optimizer: !import_call\n    key: 'torch.optim.SGD'\n")
    ck = tmp_path / "resource" / "ckpt" / "cifar10"
    (ck / "teacher").mkdir(parents=True)
    (ck / "kd").mkdir(parents=True)
    args = argparse.Namespace(config="configs/sample/cifar10/kd/resnet8_from_resnet20.yaml", seed=None)
    torch.save({"model": _sd("resnet20", 0, 10), "optimizer": {}, "lr_scheduler": {}, "best_value": 0.91,
                "args": args}, ck / "teacher" / "cifar10-resnet20.pt")
    torch.save({"model": _sd("resnet8", 1, 10), "optimizer": {}, "lr_scheduler": {}, "best_value": 0.85,
                "args": args}, ck / "kd" / "cifar10-resnet8_from_resnet20.pt")
    data = read_safe_yaml(cfg / "resnet8_from_resnet20.yaml")
    assert data["models"]["student_model"]["dst_ckpt"][-1] == ".pt"  # !join kept as a plain list, never called
    draft = draft_zoo(tmp_path)
    student = next(g for g in draft.guesses if g.role == "student")
    assert (student.arch, student.alpha, student.temperature) == ("resnet8", 0.5, 4.0)
    assert "KDLoss alpha" in student.alpha_source
    assert next(g for g in draft.guesses if g.role == "teacher").arch == "resnet20"
    assert draft.manifest.dataset == "cifar10" and len(draft.manifest.class_names) == 10


def test_torchvision_reference_script_folder(tmp_path: Path) -> None:
    """torchvision's references/classification/train.py: model_<epoch>.pth and checkpoint.pth with 'args';
    the lab's own KD runs named by α; the largest model teaches when nobody names a teacher; ties reported."""
    import torchvision

    for folder, model, seed in (("resnet34", "resnet34", 0), ("resnet18_alpha0.5", "resnet18", 1),
                                ("resnet18_alpha1.0", "resnet18", 2)):
        out = tmp_path / folder
        out.mkdir()
        torch.manual_seed(seed)
        net = getattr(torchvision.models, model)(num_classes=10)
        state = {"model": net.state_dict(), "optimizer": {}, "lr_scheduler": {}, "epoch": 9,
                 "args": argparse.Namespace(model=model, epochs=10)}
        torch.save(state, out / "model_8.pth")
        torch.save(state, out / "model_9.pth")
        torch.save(state, out / "checkpoint.pth")
    draft = draft_zoo(tmp_path, class_names=[f"c{i}" for i in range(10)])
    roles = {g.file.parent.name: (g.role, g.arch, g.alpha) for g in draft.guesses}
    assert roles == {"resnet34": ("teacher", "resnet34", 1.0), "resnet18_alpha0.5": ("student", "resnet18", 0.5),
                     "resnet18_alpha1.0": ("student", "resnet18", 1.0)}
    assert all(g.file.name == "model_9.pth" for g in draft.guesses)  # the last epoch
    assert any("the largest model" in c for c in draft.confirm)
    assert any("CE weight (kdviz) or the KL" in c for c in draft.confirm)
    assert draft.manifest.input_shape == (3, 224, 224)  # ImageNet preset for torchvision, to confirm
    lines = "\n".join(draft.report())
    assert "please confirm:" in lines and "resnet18_alpha0.5" in lines


def test_find_checkpoints_skips_hidden_and_other_files(tmp_path: Path) -> None:
    (tmp_path / ".cache").mkdir()
    torch.save({}, tmp_path / ".cache" / "x.pth")
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "run").mkdir()
    torch.save({}, tmp_path / "run" / "student_best")
    files, skipped = find_checkpoints(tmp_path)
    assert [p.name for p in files] == ["student_best"] and skipped == []
