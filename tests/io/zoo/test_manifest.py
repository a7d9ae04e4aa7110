"""Zoo manifests: validation, the shipped demo zoos' recorded accuracies, and an end-to-end quick build."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from kdviz.io.builtin_datasets import load_dataset
from kdviz.io.zoo.manifest import load_zoo, parse_manifest, read_manifest
from kdviz.training.loop import evaluate_accuracy

ASSETS = Path(__file__).resolve().parents[3] / "assets" / "zoo"
SHIPPED = ("mnist", "gunpoint")


def _valid() -> dict:
    return json.loads((ASSETS / "gunpoint" / "zoo.json").read_text())


def _megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def test_shipped_zoos_fit_the_size_budget() -> None:
    """Image and series zoos share 50 MB (weights in float16 plus their results, which keep every one of the R = 19..79
    null copies per input: MNIST alone 16 MB);
    a text zoo has its own 80 MB (issue 20: embedding matrices dominate)."""
    text = [z for z in ASSETS.iterdir() if (z / "zoo.json").is_file() and read_manifest(z).task == "text"]
    other = _megabytes(ASSETS) - sum(_megabytes(z) for z in text)
    assert other <= 50, f"image and series zoos in assets/zoo take {other:.1f} MB"
    for zoo in text:
        assert _megabytes(zoo) <= 80, f"{zoo.name} takes {_megabytes(zoo):.1f} MB"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_zoo_accuracies_are_the_shipped_models(name: str) -> None:
    zoo = load_zoo(ASSETS / name)
    ds = load_dataset(zoo.dataset)
    assert zoo.alpha_convention == "kdviz" and zoo.manifest.dtype == "float16"
    assert zoo.teacher.role == "teacher" and zoo.teacher.method == "ce" and zoo.teacher.alpha == 1.0
    assert zoo.input_shape == ds.input_shape and zoo.class_names == ds.class_names
    for model in zoo.models:
        assert not model.module.training
        assert hashlib.sha256(model.path.read_bytes()).hexdigest() == model.sha256
        measured = evaluate_accuracy(model.module, ds)
        assert measured == pytest.approx(model.test_accuracy, abs=0.002), model.id
    floor = 0.97 if name == "mnist" else 0.95
    assert zoo.teacher.test_accuracy >= floor


def test_shipped_zoo_layout() -> None:
    mnist = read_manifest(ASSETS / "mnist")
    ids = {m.id for m in mnist.models}
    assert {f"resnet{d}_a{a}" for d in (56, 32, 20, 8) for a in ("1", "0.5", "0.1")} <= ids
    assert {"teacher_resnet56", "resnet8_a0.5_sd", "resnet8_a0.5_ked"} <= ids and len(ids) == 15
    sd = next(m for m in mnist.models if m.method == "kd+sd")
    assert (sd.arch, sd.alpha, sd.parts) == ("resnet8", 0.5, 16) and sd.beta > 0 and sd.tau
    gun = read_manifest(ASSETS / "gunpoint")
    tsd = next(m for m in gun.models if m.method == "kd+sd")
    assert tsd.parts == 10 and len(gun.models) == 9  # + fcn_w8_a0.5_ked


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("task"), "task"),
        (lambda d: d["models"][1].update(alpha=1.7), "alpha"),
        (lambda d: d["models"][1].update(role="assistant"), "role"),
        (lambda d: d["models"][1].update(method="magic"), "method"),
        (lambda d: d["models"][1].update(checkpoint="../../etc/passwd"), "checkpoint"),
        (lambda d: d["models"][1].pop("arch"), "arch"),
        (lambda d: d["models"][1].update(role="teacher"), "teacher"),
        (lambda d: d["models"][2].update(id=d["models"][1]["id"]), "duplicate"),
        (lambda d: d.update(input_shape="1x150"), "input_shape"),
        (lambda d: d.update(std=[0.0]), "std"),
    ],
)
def test_malformed_manifest_names_the_field(mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    data = _valid()
    mutate(data)
    with pytest.raises(ValueError, match=field):
        parse_manifest(data)


def test_manifest_that_is_not_json(tmp_path: Path) -> None:
    (tmp_path / "zoo.json").write_text("{'name': __import__('os')}")
    with pytest.raises(ValueError, match="JSON"):
        load_zoo(tmp_path)
    with pytest.raises(ValueError, match="zoo.json"):
        load_zoo(tmp_path / "missing")


def test_quick_builds_end_to_end(tmp_path: Path) -> None:
    from kdviz.cli.train import main

    start = time.perf_counter()
    for name, n_models in (("gunpoint", 8), ("mnist", 14)):
        assert main(["zoo", "build", name, "--quick", "--out", str(tmp_path / name), "--threads", "1"]) == 0
        zoo = load_zoo(tmp_path / name)
        assert len(zoo.models) == n_models and len(zoo.students) == n_models - 1
        assert zoo.teacher.id.startswith("teacher_") and not (tmp_path / name / ".records").exists()
        assert {m.method for m in zoo.students} == {"ce", "kd", "kd+sd"}
        assert all(m.command.startswith("kdviz distill") for m in zoo.models)
    assert time.perf_counter() - start < 120


@pytest.mark.parametrize("name", SHIPPED)
def test_recorded_commands_parse_and_match_the_manifest(name: str) -> None:
    import argparse
    import shlex

    from kdviz.cli.train import register

    parser = argparse.ArgumentParser(prog="kdviz")
    register(parser.add_subparsers(dest="command"))
    manifest = read_manifest(ASSETS / name)
    for m in manifest.models:
        argv = shlex.split(m.command)
        assert argv[:2] == ["kdviz", "distill"]
        args = parser.parse_args(argv[1:])
        assert (args.arch, args.alpha, args.seed, args.epochs, args.out) == (m.arch, m.alpha, m.seed, m.epochs, m.checkpoint)
        assert (args.teacher is None) == (m.role == "teacher")
        assert args.sd_beta == m.beta


def test_distill_command_trains_one_student(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kdviz.cli.train import main
    from kdviz.io.checkpoints import load_checkpoint

    out = tmp_path / "student.safetensors"
    teacher = read_manifest(ASSETS / "gunpoint").models[0].checkpoint
    argv = ["distill", "--teacher", str(ASSETS / "gunpoint" / teacher), "--arch", "fcn_w8", "--alpha", "0.5",
            "--sd-beta", "1", "--sd-parts", "10", "--data", "gunpoint", "--epochs", "2", "--max-train", "16",
            "--max-test", "20", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    entry = json.loads(printed[printed.index("\n{") + 1 :] if not printed.startswith("{") else printed)
    assert (entry["method"], entry["alpha"], entry["parts"], entry["checkpoint"]) == ("kd+sd", 0.5, 10, out.name)
    loaded = load_checkpoint(out, arch="fcn_w8")
    assert loaded.num_classes == 2 and loaded.params > 0
    with pytest.raises(SystemExit, match="teacher"):
        main(["distill", "--arch", "fcn_w8", "--alpha", "0.5", "--data", "gunpoint", "--out", str(out)])


def test_seed_replicates_plan() -> None:
    from kdviz.training.zoo_build import ZOO_RECIPES, _plan

    _, one = _plan(ZOO_RECIPES["mnist"], quick=False)
    _, three = _plan(ZOO_RECIPES["mnist"], quick=False, seeds=3)
    ids = [job[0] for job in three]
    assert len(three) == len(one) + 2 * 2 * 3  # resnet8 and resnet20: 3 seeds × 3 α instead of 1 × 3
    for arch in ("resnet8", "resnet20"):
        assert {f"{arch}_a{a}_s{s}" for a in ("1", "0.5", "0.1") for s in (1, 2, 3)} <= set(ids)
    assert "resnet32_a0.5" in ids and "resnet32_a0.5_s2" not in ids  # only the recipe's replicate archs
    seeds = {job[0]: job[2].seed for job in three}
    assert seeds["resnet8_a0.5_s3"] == 3 and seeds["resnet32_a0.5"] == 1
    epochs = {job[0]: job[2].epochs for job in three}
    assert epochs["resnet8_a0.1_s2"] == 12 and epochs["resnet20_a0.1_s3"] == 8 and epochs["resnet32_a0.1"] == 3
    with pytest.raises(ValueError, match="seeds"):
        _plan(ZOO_RECIPES["mnist"], quick=False, seeds=0)


def test_seed_replicate_zoo_layout() -> None:
    manifest = read_manifest(ASSETS / "mnist-seeds")
    students = [m for m in manifest.models if m.role == "student"]
    assert {(m.arch, m.alpha, m.seed) for m in students} == {
        (arch, a, s) for arch in ("resnet8", "resnet20") for a in (1.0, 0.5, 0.1) for s in (1, 2, 3)}
    for m in students:
        epochs = {"resnet8": 12, "resnet20": 8}[m.arch]
        assert m.epochs == epochs and len(m.accuracy_curve) == epochs
        # levelled off: resnet8's last five epochs stay within 2 points of the final accuracy, resnet20's
        # last three within 1 point (its cosine schedule ends sooner)
        last, tol = {"resnet8": (5, 0.02), "resnet20": (3, 0.01)}[m.arch]
        assert max(abs(a - m.accuracy_curve[-1]) for a in m.accuracy_curve[-last:]) < tol, m.id
        assert f"--seed {m.seed}" in m.command and f"--alpha {m.alpha:g}" in m.command
