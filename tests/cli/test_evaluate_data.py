"""``kdviz evaluate --data PATH``: a lab's own test set read from files, preprocessing printed, resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kdviz.cli import main
from kdviz.io.zoo.manifest import ModelEntry, ZooManifest, save_weights
from kdviz.models import create_model
from tests.io.test_cifar import write_cifar100_python

CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)


@pytest.fixture(scope="module")
def cifar_zoo(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("zoo")
    data_root = tmp_path_factory.mktemp("data")
    _data, _fine, names = write_cifar100_python(data_root)
    entries = []
    for i, (role, alpha) in enumerate((("teacher", 1.0), ("student", 0.1))):
        torch.manual_seed(i)
        save_weights(create_model("resnet8", num_classes=100), root / f"m{i}.safetensors", dtype=torch.float32)
        entries.append(ModelEntry(id=f"m{i}", role=role, arch="resnet8", alpha=alpha, temperature=4.0,
                                  method="ce" if role == "teacher" else "kd", beta=0.0, tau=None,
                                  checkpoint=f"m{i}.safetensors", params=0, test_accuracy=0.0, train_seconds=0.0,
                                  command="", seed=i))
    manifest = ZooManifest(name="c100", task="image", dataset="cifar100", input_shape=(3, 32, 32),
                           mean=CIFAR100_MEAN, std=CIFAR100_STD, class_names=tuple(names), models=tuple(entries),
                           dtype="float32")
    (root / "zoo.json").write_text(manifest.to_json())
    return root, data_root / "cifar-100-python"


ARGS = ["--method", "saliency", "--parts", "grid:4x4", "--k", "3", "--null-copies", "0", "--batch-size", "8",
        "--quiet"]


def test_evaluate_on_a_cifar100_python_folder(cifar_zoo, tmp_path, capsys) -> None:
    zoo, data = cifar_zoo
    out = tmp_path / "r.parquet"
    assert main(["evaluate", "--zoo", str(zoo), "--data", str(data), *ARGS, "--out", str(out), "--keep-partial"]) == 0
    printed = capsys.readouterr().out
    assert "CIFAR-100 python (test)" in printed and "24 inputs" in printed
    assert "preprocessing from zoo 'c100'" in printed and "mean (0.5071, 0.4867, 0.4408)" in printed
    frame = pd.read_parquet(out)
    assert len(frame) == 48
    # accuracy against an independent computation: torchvision's reader, the zoo's normalisation, the model
    from safetensors.torch import load_file

    from tests.io.test_cifar import _torchvision

    ref = _torchvision("CIFAR100", data.parent)
    x = torch.from_numpy(ref.data.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
    x = (x - torch.tensor(CIFAR100_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR100_STD).view(1, 3, 1, 1)
    model = create_model("resnet8", num_classes=100)
    model.load_state_dict(load_file(zoo / "m0.safetensors"))
    with torch.no_grad():
        correct = (model.eval()(x).argmax(1).numpy() == np.asarray(ref.targets))
    teacher = frame[frame["model_id"] == "m0"].sort_values("input_id")
    np.testing.assert_array_equal(teacher["correct"].to_numpy(dtype=bool), correct)
    # resumable: the same command reads its finished batches back
    assert main(["evaluate", "--zoo", str(zoo), "--data", str(data), *ARGS, "--out", str(out)]) == 0
    assert "(3 batches resumed)" in capsys.readouterr().out


def test_preset_changes_the_preprocessing_and_the_resume_key(cifar_zoo, tmp_path, capsys) -> None:
    zoo, data = cifar_zoo
    out = tmp_path / "p.parquet"
    assert main(["evaluate", "--zoo", str(zoo), "--data", str(data), "--preset", "imagenet", "--limit", "8", *ARGS,
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "preprocessing from preset ImageNet: 3×224×224" in printed
    assert "(0 batches resumed)" in printed


def test_unreadable_data_is_a_clear_error(cifar_zoo, tmp_path, capsys) -> None:
    zoo, _ = cifar_zoo
    (tmp_path / "x.ts").write_text("@data\n")
    assert main(["evaluate", "--zoo", str(zoo), "--data", str(tmp_path / "x.ts"), *ARGS,
                 "--out", str(tmp_path / "o.parquet")]) == 2
    assert "holds timeseries data but the zoo's task is image" in capsys.readouterr().err
