"""Dataset-level evaluation: long table, summary, settings metadata, resuming, shipped results."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kdviz.analysis.compare import FRAME_COLUMNS
from kdviz.evaluation import batch
from kdviz.evaluation import evaluate as ev
from kdviz.evaluation.arrays import ArrayBatches, make_settings
from kdviz.models import create_model

ROOT = Path(__file__).resolve().parents[2]
FAST = {"method": "ig", "method_params": {"n_steps": 4}, "parts": "grid:4x4", "k": 3}


@dataclass
class FakeModel:
    id: str
    role: str
    arch: str
    alpha: float | None
    method: str
    module: torch.nn.Module
    sha256: str = ""
    test_accuracy: float | None = None


@dataclass
class FakeZoo:
    name: str = "tiny"
    dataset: str = "tiny"
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)
    models: list[FakeModel] = field(default_factory=list)


@dataclass
class FakeData:
    name: str
    x_test: np.ndarray
    y_test: np.ndarray
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)


@pytest.fixture(scope="module")
def tiny() -> tuple[FakeZoo, FakeData]:
    gen = torch.Generator().manual_seed(0)
    models = []
    for i, (role, alpha) in enumerate((("teacher", None), ("student", 1.0), ("student", 0.1))):
        torch.manual_seed(i)
        models.append(FakeModel(f"m{i}", role, "resnet8", alpha, "ce" if alpha is None else "kd",
                                create_model("resnet8", num_classes=10, in_channels=1).eval(), sha256=f"sha{i}"))
    x = torch.rand(7, 1, 16, 16, generator=gen).numpy()
    y = np.arange(7) % 10
    return FakeZoo(models=models), FakeData("tiny", x, y)


def test_long_table_and_summary(tiny, tmp_path):
    zoo, data = tiny
    res = ev.evaluate_zoo(zoo, dataset=data, limit=5, batch_size=2, progress_bar=False, **FAST)
    f = res.frame
    assert list(f.columns) == list(FRAME_COLUMNS)
    assert len(f) == 3 * 5
    assert list(f["model_id"].unique()) == ["m0", "m1", "m2"]
    assert f.groupby("model_id")["input_id"].apply(list).map(lambda v: v == [0, 1, 2, 3, 4]).all()
    teacher = f[f["role"] == "teacher"]
    assert np.allclose(teacher["attention_rho"], 1.0) and np.allclose(teacher["logit_rho"], 1.0)
    s = res.summary.set_index("model_id")
    for mid, g in f.groupby("model_id"):
        assert s.loc[mid, "accuracy"] == pytest.approx(g["correct"].astype(float).mean())
        assert s.loc[mid, "attention_rho_low"] <= s.loc[mid, "attention_rho"] <= s.loc[mid, "attention_rho_high"]
    assert res.settings.method == "integrated_gradients" and res.settings.method_params["n_steps"] == 4
    assert res.settings.models == (("m0", "sha0"), ("m1", "sha1"), ("m2", "sha2"))

    out = ev.save_results(res, tmp_path / "results.parquet")
    assert ev.summary_path(out).exists()
    back = ev.load_results(out)
    assert back.settings == res.settings
    pd.testing.assert_frame_equal(back.frame, res.frame)
    settings, run = ev.read_settings(out)
    assert settings.parts == "grid:4x4" and settings.limit == 5 and settings.kdviz_version
    assert run["batches_computed"] == 3


def test_resume_skips_finished_batches(tiny, tmp_path, monkeypatch):
    zoo, data = tiny
    calls: list[int] = []
    original = ArrayBatches.evaluate

    def spy(self, lo, hi, x, y):
        calls.append(lo)
        return original(self, lo, hi, x, y)

    monkeypatch.setattr(ArrayBatches, "evaluate", spy)

    def stop_after_first(p: ev.EvalProgress) -> None:
        if p.batch == 0:
            raise KeyboardInterrupt("user stopped")

    opts = dict(dataset=data, limit=4, batch_size=2, cache_dir=tmp_path, progress_bar=False, **FAST)
    with pytest.raises(KeyboardInterrupt):
        ev.evaluate_zoo(zoo, progress=stop_after_first, **opts)
    assert calls == [0]
    folder = tmp_path / make_settings(zoo, dataset="tiny", n_available=7, limit=4, batch_size=2, **FAST).key()
    assert sorted(p.name for p in folder.glob("batch_*.parquet")) == ["batch_000000_000002.parquet"]

    seen: list[ev.EvalProgress] = []
    res = ev.evaluate_zoo(zoo, progress=seen.append, **opts)
    assert calls == [0, 2]  # batch 0 (inputs 0-1) was not recomputed
    assert [p.resumed for p in seen] == [True, False]
    assert seen[-1].fraction == 1.0
    assert res.run["batches_resumed"] == 1 and res.run["batches_computed"] == 1

    fresh = ev.evaluate_zoo(zoo, dataset=data, limit=4, batch_size=4, progress_bar=False, **FAST)
    pd.testing.assert_frame_equal(res.frame, fresh.frame, check_exact=False, atol=1e-5)


def test_settings_key_depends_on_what_changes_numbers(tiny, monkeypatch):
    zoo, _ = tiny
    base = make_settings(zoo, dataset="tiny", n_available=7, **FAST)
    assert base.key() == make_settings(zoo, dataset="tiny", n_available=7, **FAST).key()
    other = dict(FAST, method_params={"n_steps": 8})
    assert base.key() != make_settings(zoo, dataset="tiny", n_available=7, **other).key()
    # a longer run reuses a shorter one's batches: the limit is not part of the key
    assert base.key() == make_settings(zoo, dataset="tiny", n_available=7, limit=3, **FAST).key()
    assert base.key() != make_settings(zoo, dataset="tiny", n_available=7, parts="grid:2x2", k=3,
                                          method_params={"n_steps": 4}).key()
    # batches written with another results layout are never reused (they would lack the new columns)
    before = base.key()
    monkeypatch.setattr(batch, "FRAME_COLUMNS", (*batch.FRAME_COLUMNS, "a_new_column"))
    assert base.key() != before
    with pytest.raises(ValueError, match="method"):
        make_settings(zoo, dataset="tiny", n_available=7, method="nope")
    with pytest.raises(ValueError, match="limit"):
        make_settings(zoo, dataset="tiny", n_available=7, limit=0)


def test_summarize_handles_undefined_and_infinite_values():
    frame = pd.DataFrame({
        "model_id": ["a"] * 4, "role": "student", "arch": "resnet8", "alpha": 0.5, "method": "kd",
        "correct": pd.array([True, False, True, True], dtype="boolean"),
        "attention_rho": [0.5, np.nan, 0.7, 0.6], "focus_ratio": [1.0, np.inf, 3.0, 2.0],
    })
    s = ev.summarize(frame).iloc[0]
    assert s["accuracy"] == pytest.approx(0.75)
    assert s["attention_rho"] == pytest.approx(0.6)  # NaN (undefined) left out
    assert s["focus_ratio"] == pytest.approx(2.0) and s["focus_ratio_n_inf"] == 1
    assert s["n"] == 4 and not math.isnan(s["focus_ratio_low"])


@pytest.mark.parametrize("name", ["mnist", "gunpoint"])
def test_shipped_results_agree_with_a_fresh_evaluation(name):
    from kdviz.io.zoo.manifest import load_zoo

    path = ROOT / "assets" / "zoo" / name / "results.parquet"
    if not path.exists():
        pytest.skip(f"shipped {name} results not built yet")
    shipped = ev.load_results(path)
    s = shipped.settings
    zoo = load_zoo(path.parent)
    assert tuple((str(m.id), str(m.sha256)) for m in [zoo.teacher, *zoo.students]) == s.models
    n = 4
    fresh = ev.evaluate_zoo(zoo, method=s.method, method_params=s.method_params, parts=s.parts, k=s.k, limit=n,
                            batch_size=n, device="cpu", progress_bar=False, null_copies=0)  # the model columns
    old = shipped.frame[shipped.frame["input_id"] < n].reset_index(drop=True)
    new = fresh.frame.reset_index(drop=True)
    assert list(old["model_id"]) == list(new["model_id"]) and list(old["input_id"]) == list(new["input_id"])
    assert (old["pred"] == new["pred"]).all()
    for col in ("confidence", "attention_rho", "logit_rho", "focus_fraction", "kl_to_teacher", "pearson", "ssim"):
        np.testing.assert_allclose(new[col], old[col], atol=2e-3, rtol=1e-3, err_msg=col)


def test_ig_completeness_and_auto_steps_are_stored_per_row(tiny):
    zoo, data = tiny
    fixed = ev.evaluate_zoo(zoo, dataset=data, limit=3, batch_size=3, progress_bar=False, **FAST)
    assert (fixed.frame["ig_steps"] == 4).all()
    err = fixed.frame["ig_completeness_error"].to_numpy(dtype=float)
    assert np.isfinite(err).all() and (err >= 0).all()
    assert "ig_completeness_error" in fixed.summary and "ig_steps" in fixed.summary

    auto = dict(FAST, method_params={"n_steps": 4, "auto_steps": True, "tolerance": 0.05})
    res = ev.evaluate_zoo(zoo, dataset=data, limit=3, batch_size=3, progress_bar=False, **auto)
    steps = res.frame["ig_steps"].to_numpy(dtype=int)
    err = res.frame["ig_completeness_error"].to_numpy(dtype=float)
    assert set(steps) <= {4, 8, 16, 32, 64, 128, 256, 512}
    assert ((err <= 0.05) | (steps == 512)).all()
    assert res.settings.key() != fixed.settings.key()


def test_precision_is_a_setting_and_unsupported_precision_is_refused(tiny):
    from kdviz.attribution.precision import cpu_precision_support

    zoo, data = tiny
    fp32 = make_settings(zoo, dataset="tiny", n_available=7, **FAST)
    bf16 = make_settings(zoo, dataset="tiny", n_available=7, precision="bf16", **FAST)
    assert fp32.precision == "fp32" and bf16.key() != fp32.key()
    # an fp32 key hashes what keys hashed before precision was a setting (plus the results layout, so batches of
    # another layout are not reused)
    old = {k: v for k, v in fp32.to_dict().items() if k not in ("limit", "n_inputs", "precision")}
    old["frame_columns"] = list(FRAME_COLUMNS)
    assert fp32.key() == hashlib.sha256(json.dumps(old, sort_keys=True, default=str).encode()).hexdigest()[:16]
    with pytest.raises(ValueError, match="precision"):
        make_settings(zoo, dataset="tiny", n_available=7, precision="int8", **FAST)
    opts = dict(dataset=data, limit=2, batch_size=2, progress_bar=False, precision="bf16", device="cpu", **FAST)
    if not cpu_precision_support("bf16").supported:
        with pytest.raises(ValueError, match="avx512_bf16"):
            ev.evaluate_zoo(zoo, **opts)
    res = ev.evaluate_zoo(zoo, allow_emulated_precision=True, **opts)
    ref = ev.evaluate_zoo(zoo, **dict(opts, precision="fp32"))
    assert res.settings.precision == "bf16"
    assert list(res.frame["input_id"]) == list(ref.frame["input_id"])
    assert not np.allclose(res.frame["pearson"], ref.frame["pearson"], atol=1e-7, rtol=0)  # bf16 really ran


def test_sequential_null_adds_copies_only_where_undecided(tiny):
    """R rule: two student architectures → R_max = 39. A student identical to the teacher beats every copy, so
    its architecture gets all 39 copies (19 in the batches, then 20 more); the null columns equal those of a
    fixed R = 39 run. An untrained resnet20 has h = ⌈0.05 · 40⌉ = 2 copies at or above it and stops at 19."""
    zoo, data = tiny
    teacher = zoo.models[0]
    twin = FakeModel("twin", "student", "resnet8", 0.1, "kd", teacher.module, sha256="twin")
    torch.manual_seed(5)
    other = FakeModel("r20", "student", "resnet20", 1.0, "kd",
                      create_model("resnet20", num_classes=10, in_channels=1).eval(), sha256="r20")
    two = FakeZoo(models=[teacher, twin, other])
    seq = ev.evaluate_zoo(two, dataset=data, limit=4, batch_size=2, progress_bar=False, **FAST)
    assert seq.settings.null_copies == 39 and seq.settings.null_sequential
    by_arch = seq.run["null_copies_by_arch"]
    assert by_arch["resnet8"] == 39
    f = seq.frame
    rows = f[f["model_id"] == "twin"]
    assert (rows["null_copies"] == 39).all() and all(len(v) == 39 for v in rows["attention_rho_null_copies"])
    np.testing.assert_allclose(rows["attention_rho_null"], [np.nanmean(v) for v in rows["attention_rho_null_copies"]])
    assert (seq.summary.set_index("model_id").loc["twin", "attention_rho_p"]) == pytest.approx(1 / 40)
    fixed = ev.evaluate_zoo(two, dataset=data, limit=4, batch_size=2, progress_bar=False, null_copies=39, **FAST)
    twin_fixed = fixed.frame[fixed.frame["model_id"] == "twin"]
    for col in ("attention_rho_null", "attention_rho_excess", "topk_overlap_null", "focus_ratio_null"):
        np.testing.assert_allclose(rows[col].to_numpy(float), twin_fixed[col].to_numpy(float), err_msg=col)
    r20 = seq.summary.set_index("model_id").loc["r20"]
    assert by_arch["resnet20"] in (19, 39)
    if by_arch["resnet20"] == 19:  # stopped: h = 2 copies at or above it, so p = (1 + c) / 20 ≥ 3 / 20
        assert r20["attention_rho_p"] >= 3 / 20


@pytest.mark.parametrize("name", ["mnist", "gunpoint", "mnist-seeds"])
def test_shipped_results_hold_the_null_as_a_distribution(name):
    """Shipped results made with the defaults: the zoo's recommended method, ≥ 19 copies per architecture with
    each copy's values in the rows, and p, z in the summary."""
    from kdviz.io.zoo.manifest import read_manifest

    path = ROOT / "assets" / "zoo" / name / "results.parquet"
    shipped = ev.load_results(path)
    if shipped.settings.null_copies < 19:
        pytest.skip(f"shipped {name} results predate the null as a distribution (R = {shipped.settings.null_copies})")
    rec = read_manifest(path.parent).recommended
    assert rec is not None and shipped.settings.method == rec.method and shipped.settings.parts == rec.parts
    s = shipped.summary[shipped.summary["role"] != "teacher"]
    assert (s["null_copies"] >= 19).all()
    assert ((s["attention_rho_p"] >= 1 / (s["null_copies"] + 1) - 1e-12) & (s["attention_rho_p"] <= 1)).all()
    assert np.isfinite(s["attention_rho_z"]).all()
    rows = shipped.frame[shipped.frame["role"] != "teacher"]
    assert all(len(v) == r for v, r in zip(rows["attention_rho_null_copies"], rows["null_copies"], strict=True))
