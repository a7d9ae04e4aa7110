"""kdviz.archs: the CIFAR distillation zoo and timm ViTs, loaded from files laid out as their codebases save them.

Each state dict is made from the registry's own signature (random values, the upstream names and shapes),
wrapped in the container its codebase writes, saved under the file name it uses, and loaded with no
architecture given: kdviz must recognise it, load every tensor strictly and give (1, num_classes) logits.
"""

import argparse

import pytest
import torch

from kdviz import models
from kdviz.io.checkpoints import load_checkpoint, load_checkpoint_parts
from kdviz.models.cifar_kd import UPSTREAM_NAMES

CIFAR_KD = models.list_models("cifar_kd")
TIMM_TRIO = ["deit_tiny_patch16_224", "deit_tiny_distilled_patch16_224", "vit_tiny_patch16_224"]
HEAVY = {"cifar_resnet50", "wide_resnet28_10", "cifar_vgg19"}  # > 20 M parameters: ~100-150 MB files


def random_state(arch, num_classes, in_channels=3, seed=0):
    """A state dict with the registry's names and shapes and random values (positive BN variances)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in models.state_dict_signature(arch, num_classes, in_channels).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(240)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.05
    return state


def _repdistiller_last(arch, state):
    """RepDistiller's ``train_student.py``: ``{model_s}_last.pth`` = {'opt': Namespace, 'model': state dict}."""
    upstream = UPSTREAM_NAMES[arch].split(" ")[0]
    opt = argparse.Namespace(model_s=upstream, model_t="resnet32x4", path_t="./save/models/resnet32x4_vanilla/ckpt.pth",
                             distill="kd", dataset="cifar100", gamma=0.1, alpha=0.9, beta=0.0, kd_T=4, trial="1")
    folder = f"S:{upstream}_T:resnet32x4_cifar100_kd_r:0.1_a:0.9_b:0.0_1"
    return f"{folder}/{upstream}_last.pth", {"opt": opt, "model": state}


def _torchdistill(arch, state):
    """torchdistill's ``save_ckpt``: {'model', 'optimizer', 'best_value', 'lr_scheduler', 'args': Namespace}."""
    args = argparse.Namespace(config="configs/sample/cifar100/kd/wide_resnet40_4.yaml", device="cuda", seed=None)
    ckpt = {"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
            "best_value": 0.7735, "lr_scheduler": {"milestones": {60: 1}, "last_epoch": 200}, "args": args}
    return f"resource/ckpt/cifar100/kd/cifar100-{arch}.pt", ckpt


def _deit(arch, state):
    """DeiT's ``main.py``: ``checkpoint.pth`` = {'model', 'optimizer', 'lr_scheduler', 'epoch', 'scaler', 'args'}."""
    args = argparse.Namespace(model=arch, data_set="IMNET", nb_classes=1000, distillation_type="hard",
                              distillation_alpha=0.5, distillation_tau=1.0, teacher_model="regnety_160", epochs=300)
    return "output/checkpoint.pth", {"model": state, "optimizer": {"state": {}, "param_groups": []},
                                     "lr_scheduler": {"last_epoch": 299}, "epoch": 299, "scaler": {"scale": 65536.0},
                                     "args": args}


def _saved_as(arch, state):
    if arch.startswith("wide_resnet"):
        return _torchdistill(arch, state)
    if arch in TIMM_TRIO:
        return _deit(arch, state)
    return _repdistiller_last(arch, state)


@pytest.mark.parametrize(
    "arch", [pytest.param(a, marks=pytest.mark.slow) if a in HEAVY else a for a in CIFAR_KD + TIMM_TRIO]
)
def test_upstream_checkpoint_is_recognised_and_loads_strictly(tmp_path, arch):
    num_classes = 1000 if arch in TIMM_TRIO else 100
    state = random_state(arch, num_classes)
    name, container = _saved_as(arch, state)
    path = tmp_path / name
    path.parent.mkdir(parents=True)
    torch.save(container, path)
    loaded = load_checkpoint(path)
    assert (loaded.arch, loaded.arch_guessed) == (arch, True)
    assert (loaded.num_classes, loaded.in_channels) == (num_classes, 3)
    got = loaded.module.state_dict()
    assert set(got) == set(state)
    for key, value in state.items():
        assert torch.equal(got[key], value), key
    size = 224 if arch in TIMM_TRIO else 32
    with torch.no_grad():
        out = loaded.module(torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1)))
    assert out.shape == (1, num_classes) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("arch", "params_m"),
    # CRD paper (Tian et al. 2020) Table 1/2 and RepDistiller's model table, CIFAR-100 (100 classes).
    [("wrn_40_2", 2.26), ("wrn_16_2", 0.70), ("cifar_vgg13", 9.46), ("MobileNetV2", 0.81), ("ShuffleV1", 0.95),
     ("ShuffleV2", 1.36), ("cifar_resnet50", 23.71), ("resnet32x4", 7.43), ("resnet8x4", 1.23)],
)
def test_parameter_counts_match_the_benchmark_tables(arch, params_m):
    sig = models.state_dict_signature(arch, 100, 3)
    n = sum(torch.Size(s).numel() for k, s in sig.items() if "running_" not in k and "num_batches" not in k)
    assert round(n / 1e6, 2) == params_m


@pytest.mark.parametrize("arch", ["wrn_16_1", "cifar_vgg8", "MobileNetV2", "ShuffleV1", "ShuffleV2", "cifar_resnet18"])
def test_cifar_zoo_runs_on_28_and_32_pixels_and_one_channel(arch):
    model = models.create_model(arch, num_classes=10, in_channels=1).eval()
    with torch.no_grad():
        for size in (28, 32):
            assert model(torch.zeros(2, 1, size, size)).shape == (2, 10)


def test_mdistiller_full_checkpoint_is_two_models(tmp_path):
    """mdistiller's ``best`` holds the DataParallel distiller: module.student.* and module.teacher.* together."""
    student, teacher = random_state("resnet8x4", 100), random_state("resnet32x4", 100, seed=1)
    distiller = {f"module.student.{k}": v for k, v in student.items()}
    distiller |= {f"module.teacher.{k}": v for k, v in teacher.items()}
    folder = tmp_path / "output" / "cifar100_baselines" / "dkd,res32x4,res8x4"
    folder.mkdir(parents=True)
    torch.save({"epoch": 240, "model": distiller, "optimizer": {"state": {}, "param_groups": []}, "best_acc": 76.32},
               folder / "best")  # no extension, as mdistiller writes it
    torch.save({"model": student}, folder / "student_best")
    parts = load_checkpoint_parts(folder / "best")
    assert [(p.part, p.arch) for p in parts] == [("student", "resnet8x4"), ("teacher", "resnet32x4")]
    assert parts[0].parts == ("student", "teacher") and parts[0].metadata == {"epoch": 240, "best_acc": 76.32}
    assert torch.equal(parts[1].module.state_dict()["fc.weight"], teacher["fc.weight"])
    default = load_checkpoint(folder / "best")
    assert default.part == "student" and any("also holds the teacher" in w for w in default.warnings)
    alone = load_checkpoint(folder / "student_best")
    assert alone.arch == "resnet8x4" and alone.part is None
    assert torch.equal(alone.module.state_dict()["conv1.weight"], student["conv1.weight"])


def test_timm_train_checkpoint_reads_arch_and_metric(tmp_path):
    """timm's train.py CheckpointSaver: {'epoch', 'arch', 'state_dict', 'optimizer', 'version', 'args', 'metric'}."""
    state = random_state("deit_tiny_patch16_224", 10)
    args = argparse.Namespace(model="vit_tiny_patch16_224", num_classes=10, epochs=300)
    path = tmp_path / "model_best.pth.tar"
    torch.save({"epoch": 12, "arch": "vit_tiny_patch16_224", "state_dict": state, "optimizer": {}, "version": 2,
                "args": args, "metric": 71.25}, path)
    loaded = load_checkpoint(path)
    # deit_tiny and vit_tiny are the same network: the container's 'arch' breaks the tie, which is still reported.
    assert loaded.arch == "vit_tiny_patch16_224" and loaded.arch_ties == ("deit_tiny_patch16_224",)
    assert loaded.metadata["metric"] == 71.25 and loaded.metadata["args.model"] == "vit_tiny_patch16_224"
