"""A model set saved as a zoo zip (kdviz.io.zoo.export): read back by the safe zip reader, the zoo loader, the
test-set reader behind ``kdviz evaluate --data`` and ``kdviz evaluate`` itself; weights checked with safetensors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open

from kdviz.io.safezip import extract_zip
from kdviz.io.zoo.export import INPUTS_FILE, ZooSpec, export_zoo_zip, safe_model_id
from kdviz.io.zoo.manifest import load_zoo
from kdviz.models import seeded_model

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class M:  # the fields of kdviz.ui.sets.SetModel that the export reads
    id: str
    role: str
    arch: str
    alpha: float | None
    module: Any
    method: str = "—"
    test_accuracy: float | None = None


def _set() -> list[M]:
    return [M("big teacher", "teacher", "resnet20", None, seeded_model("resnet20", seed=1, num_classes=10,
                                                                         in_channels=3).eval(), test_accuracy=0.9),
            M("resnet8_alpha0.5.pth", "student", "resnet8", 0.5, seeded_model("resnet8", seed=2, num_classes=10,
                                                                             in_channels=3).eval(), "kd"),
            M("resnet8 (no α)", "student", "resnet8", None, seeded_model("resnet8", seed=3, num_classes=10,
                                                                         in_channels=3).eval())]


def _export(models: list[M], **kw: Any):
    rng = np.random.default_rng(0)
    x = rng.random((6, 3, 32, 32), dtype=np.float32)
    y = np.array([0, 1, 2, 3, 4, 5])
    spec = ZooSpec(name="my set", task="image", input_shape=(3, 32, 32), mean=(0.5, 0.5, 0.5),
                   std=(0.25, 0.25, 0.25), class_names=[f"c{i}" for i in range(10)], **kw)
    return export_zoo_zip(models, spec, inputs=(x, y)), x, y


def test_round_trip_through_safe_zip_and_zoo_loader(tmp_path: Path) -> None:
    models = _set()
    out, x, y = _export(models)
    names = zipfile.ZipFile(io.BytesIO(out.data)).namelist()
    assert sorted(names) == sorted(f"my_set/{n}" for n in ("zoo.json", "big_teacher.safetensors", INPUTS_FILE,
                                                            "resnet8_alpha0.5.pth.safetensors",
                                                            "resnet8_no.safetensors"))
    extract_zip(out.data, tmp_path)  # the upload rules (no '..', sizes, ratios) accept it
    zoo = load_zoo(tmp_path / "my_set")
    assert [m.id for m in zoo.models] == ["big_teacher", "resnet8_alpha0.5.pth", "resnet8_no"]
    assert [(m.role, m.arch, m.alpha, m.method) for m in zoo.models] == [
        ("teacher", "resnet20", 1.0, "ce"), ("student", "resnet8", 0.5, "kd"), ("student", "resnet8", 1.0, "ce")]
    assert zoo.teacher.test_accuracy == 0.9 and zoo.mean == (0.5, 0.5, 0.5) and zoo.dataset == "unknown"
    assert "--data my_set/test_inputs.npz" in zoo.manifest.description  # how to evaluate it travels with it
    batch = torch.from_numpy(x)
    for original, loaded in zip(models, zoo.models, strict=True):
        with torch.no_grad():
            torch.testing.assert_close(loaded.module(batch), original.module(batch), rtol=0, atol=0)
        # an independent reader: the file is a plain state dict of float32 tensors equal to the module's
        with safe_open(str(loaded.path), "pt") as f:
            state = original.module.state_dict()
            assert set(f.keys()) == set(state)
            for k in f.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
                assert torch.equal(f.get_tensor(k), state[k].float() if state[k].is_floating_point() else state[k])
    assert any("α unknown" in n and "resnet8_no" in n for n in out.notes)
    assert any("0 in zoo.json" in n for n in out.notes)
    with np.load(tmp_path / "my_set" / INPUTS_FILE, allow_pickle=False) as npz:
        assert np.array_equal(npz["x"], x) and np.array_equal(npz["y"], y)
        assert list(npz["class_names"]) == [f"c{i}" for i in range(10)]


def test_inputs_read_by_the_evaluate_reader(tmp_path: Path) -> None:
    from kdviz.io.user_datasets import test_set_for_zoo

    out, x, y = _export(_set())
    extract_zip(out.data, tmp_path)
    zoo = load_zoo(tmp_path / "my_set")
    ds, _, lines = test_set_for_zoo(str(tmp_path / "my_set" / INPUTS_FILE), zoo)
    assert np.array_equal(ds.y_test, y) and ds.class_names == zoo.class_names
    np.testing.assert_allclose(np.asarray(ds.x_test), x, atol=1e-6)  # same size: stored as displayed
    assert any("zoo 'my set'" in line for line in lines)


def test_kdviz_evaluate_accepts_the_saved_zoo(tmp_path: Path) -> None:
    out, _, y = _export(_set())
    extract_zip(out.data, tmp_path)
    folder = tmp_path / "my_set"
    result = subprocess.run(
        [sys.executable, "-m", "kdviz", "evaluate", "--zoo", str(folder), "--data", str(folder / INPUTS_FILE),
         "--method", "saliency", "--parts", "grid:4x4", "--null-copies", "0", "--out", str(tmp_path / "res.parquet"),
         "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    import pandas as pd

    frame = pd.read_parquet(tmp_path / "res.parquet")
    assert set(frame["model_id"]) >= {"resnet8_alpha0.5.pth", "resnet8_no"}
    assert "6 inputs × 3 models" in result.stdout


def test_refusals() -> None:
    models = _set()
    with pytest.raises(ValueError, match="exactly one teacher"):
        _export([models[1]])
    with pytest.raises(ValueError, match="task"):
        export_zoo_zip(models, ZooSpec(name="t", task="text", input_shape=(1,), mean=(0,), std=(1,), class_names=["a"]))
    unregistered = M("odd", "student", "not_a_registered_arch", 0.5, models[1].module)
    with pytest.raises(ValueError, match="would not load back"):
        _export([models[0], unregistered])


def test_safe_model_id() -> None:
    taken: set[str] = set()
    assert safe_model_id("../etc/passwd", taken) == "etc_passwd"
    assert safe_model_id("../etc/passwd", taken) == "etc_passwd_2"
    assert safe_model_id(".hidden", taken) == "hidden" and safe_model_id("", taken) == "model"
    assert json.dumps(sorted(taken)) == '["etc_passwd", "etc_passwd_2", "hidden", "model"]'
