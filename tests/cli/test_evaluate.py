"""``kdviz evaluate`` on a tiny zoo written to disk (random resnet8s, MNIST, a small --limit)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from kdviz.cli import main
from kdviz.evaluation.evaluate import read_settings, summary_path
from kdviz.io.builtin_datasets import load_dataset
from kdviz.io.zoo.manifest import ModelEntry, ZooManifest, save_weights
from kdviz.models import create_model


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("zoo")
    ds = load_dataset("mnist")
    entries = []
    for i, (role, alpha, method) in enumerate((("teacher", 1.0, "ce"), ("student", 1.0, "kd"), ("student", 0.1, "kd"))):
        torch.manual_seed(i)
        name = f"m{i}.safetensors"
        save_weights(create_model("resnet8", num_classes=10, in_channels=1), root / name)
        entries.append(ModelEntry(
            id=f"m{i}", role=role, arch="resnet8", alpha=alpha, temperature=4.0, method=method, beta=0.0, tau=None,
            checkpoint=name, params=0, test_accuracy=0.1, train_seconds=0.0, command="", seed=i,
        ))
    manifest = ZooManifest(name="tiny", task="image", dataset="mnist", input_shape=(1, 28, 28), mean=ds.mean,
                           std=ds.std, class_names=ds.class_names, models=tuple(entries))
    (root / "zoo.json").write_text(manifest.to_json())
    return root


ARGS = ["--method", "ig", "--steps", "4", "--parts", "grid:4x4", "--k", "3", "--limit", "4", "--batch-size", "2", "--quiet"]


def test_cli_writes_results_summary_and_settings(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "results.parquet"
    assert main(["evaluate", "--zoo", str(tiny_zoo), *ARGS, "--out", str(out), "--keep-partial"]) == 0
    printed = capsys.readouterr().out
    assert "4 inputs × 3 models" in printed and "logit alignment, rows α" in printed
    frame = pd.read_parquet(out)
    assert len(frame) == 12 and set(frame["model_id"]) == {"m0", "m1", "m2"}
    summary = pd.read_csv(summary_path(out))
    assert list(summary["model_id"]) == ["m0", "m1", "m2"] and {"accuracy", "focus_ratio_low"} <= set(summary)
    settings, run = read_settings(out)
    assert (settings.zoo, settings.method, settings.parts, settings.k, settings.limit) == (
        "tiny", "integrated_gradients", "grid:4x4", 3, 4)
    assert settings.method_params["n_steps"] == 4 and all(len(sha) == 64 for _, sha in settings.models)
    assert run["batches_computed"] == 2

    # a rerun with the same settings reads the kept batches instead of recomputing them
    assert main(["evaluate", "--zoo", str(tiny_zoo), *ARGS, "--out", str(out)]) == 0
    assert "(2 batches resumed)" in capsys.readouterr().out
    assert not (tmp_path / "results.parquet.partial").exists()  # removed after success without --keep-partial


def test_cli_reports_bad_options(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "r.parquet"
    assert main(["evaluate", "--zoo", str(tiny_zoo), "--parts", "hexagons:3", "--out", str(out)]) == 2
    assert "parts='hexagons:3'" in capsys.readouterr().err
    assert main(["evaluate", "--zoo", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "zoo.json" in capsys.readouterr().err
    assert not out.exists()


def test_cli_auto_steps_and_precision(tiny_zoo, tmp_path, capsys):
    from kdviz.attribution.precision import cpu_precision_support

    out = tmp_path / "auto.parquet"
    args = ["evaluate", "--zoo", str(tiny_zoo), *ARGS, "--steps", "auto", "--tolerance", "0.05", "--device", "cpu"]
    assert main([*args, "--out", str(out)]) == 0
    settings, _run = read_settings(out)
    assert settings.method_params["auto_steps"] is True and settings.method_params["n_steps"] == 16
    assert settings.method_params["tolerance"] == 0.05 and settings.precision == "fp32"
    capsys.readouterr()

    bf16 = tmp_path / "bf16.parquet"
    status = main(["evaluate", "--zoo", str(tiny_zoo), *ARGS, "--device", "cpu", "--precision", "bf16",
                   "--out", str(bf16)])
    if cpu_precision_support("bf16").supported:
        assert status == 0 and read_settings(bf16)[0].precision == "bf16"
    else:  # this CPU cannot compute in bf16: refused with the reason, nothing written
        assert status == 2 and not bf16.exists()
        assert "avx512_bf16 or amx_bf16" in capsys.readouterr().err


def test_cli_parses_ray_and_steps_options():
    from kdviz.cli import build_parser

    parse = build_parser().parse_args
    base = ["evaluate", "--zoo", "z", "--out", "o.parquet"]
    assert parse(base).ray is None and parse(base).steps is None and parse(base).method is None
    assert parse([*base, "--ray"]).ray == "local"
    assert parse([*base, "--ray", "auto", "--workers", "4"]).workers == 4
    assert parse([*base, "--ray", "10.0.0.1:6379"]).ray == "10.0.0.1:6379"
    assert parse([*base, "--steps", "auto"]).steps == "auto"
    with pytest.raises(SystemExit):
        parse([*base, "--steps", "many"])
    with pytest.raises(SystemExit):
        parse([*base, "--precision", "int8"])


def test_cli_uses_the_zoos_recommended_method_else_the_library_constant(tiny_zoo, tmp_path, capsys):
    """No --method: the method zoo.json recommends (kdviz sanity --write); without one, the constant for images.
    A method that failed the randomisation test in the zoo's table prints a warning."""
    import json
    import shutil

    from kdviz.analysis.defaults import DEFAULT_METHODS
    from kdviz.io.zoo.manifest import read_manifest

    base = ["--parts", "grid:4x4", "--k", "3", "--limit", "2", "--batch-size", "2", "--quiet", "--null-copies", "0"]
    out = tmp_path / "plain.parquet"
    assert main(["evaluate", "--zoo", str(tiny_zoo), *base, "--out", str(out)]) == 0
    assert read_settings(out)[0].method == DEFAULT_METHODS["image"] == "grad_cam"
    capsys.readouterr()

    zoo = tmp_path / "recommending"
    shutil.copytree(tiny_zoo, zoo)
    obj = json.loads((zoo / "zoo.json").read_text())
    obj["recommended"] = {"method": "saliency", "params": {}, "parts": "grid:4x4", "n_inputs": 16, "table": [
        {"method": "saliency", "params": "", "parts": "grid:4x4", "verdict": "passes", "teacher_randomised_rho": 0.2},
        {"method": "integrated_gradients", "params": "n_steps=32, baseline=zeros", "parts": "grid:4x4",
         "verdict": "fails", "teacher_randomised_rho": 0.9}]}
    (zoo / "zoo.json").write_text(json.dumps(obj))
    assert read_manifest(zoo).recommended.method == "saliency"  # round-trips through parse_manifest
    out = tmp_path / "recommended.parquet"
    assert main(["evaluate", "--zoo", str(zoo), *base, "--out", str(out)]) == 0
    assert read_settings(out)[0].method == "saliency"
    assert "recommendation" in capsys.readouterr().err
    out = tmp_path / "ig.parquet"
    assert main(["evaluate", "--zoo", str(zoo), *base, "--method", "ig", "--steps", "4", "--out", str(out)]) == 0
    assert "fails the randomisation test on this data" in capsys.readouterr().err
