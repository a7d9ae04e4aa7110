"""kdviz.ui.compute outside a page: models that misbehave are named and left out, GPU out-of-memory falls
back to the CPU and says so (simulated: there is no GPU here)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from kdviz.ui import compute
from kdviz.ui.sets import SetModel
from kdviz.ui.state import Settings


class Raises(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom in forward")


class NaNs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 10), float("nan"))


def _with(tiny_image_set, *extra: SetModel):
    return dataclasses.replace(tiny_image_set, models=tiny_image_set.models + extra)


def _student(sid: str, module: nn.Module) -> SetModel:
    return SetModel(sid, "custom", 0.5, module.eval(), "student", "kd", f"sha-{sid}")


def _settings(device: str = "cpu") -> Settings:
    return Settings("uploaded", device, "saliency", (), "grid:2x2", "segments:4", 2)


def test_model_problems_name_each_failure(tiny_image_set) -> None:
    from kdviz.models import create_model

    rgb = create_model("resnet8", num_classes=10, in_channels=3)
    five = create_model("resnet8", num_classes=5, in_channels=1)
    mset = _with(tiny_image_set, _student("raises", Raises()), _student("nan", NaNs()), _student("rgb", rgb),
                 _student("five", five))
    x = mset.model_input(mset.pool.x[:2])
    problems = compute.model_problems(mset, x, device="cpu", n_classes=10)
    assert set(problems) == {"raises", "nan", "rgb", "five"}
    assert "RuntimeError: boom in forward" in problems["raises"]
    assert "NaN or infinite outputs on 2 of 2" in problems["nan"]
    assert "grey vs RGB" in problems["rgb"] and "1×28×28" in problems["rgb"]
    assert "5 outputs but the teacher has 10" in problems["five"]


def test_teacher_with_the_wrong_class_count_is_an_error(tiny_image_set) -> None:
    mset = dataclasses.replace(tiny_image_set, class_names=tuple("abcde"))
    x = mset.model_input(mset.pool.x[:1])
    problems = compute.model_problems(mset, x, device="cpu", n_classes=5)
    assert "has 10 outputs but the data set has 5 classes" in problems[mset.teacher.id]
    with pytest.raises(ValueError, match=f"the teacher {mset.teacher.id} has 10 outputs"):
        compute.usable_set(mset, x, "cpu")


def test_compare_leaves_out_broken_students_and_keeps_the_rest(tiny_image_set) -> None:
    mset = _with(tiny_image_set, _student("raises", Raises()), _student("nan", NaNs()))
    comp = compute.compare(mset, mset.pool.x[:2], mset.pool.labels[:2], ["a", "b"], _settings())
    assert list(comp.frame["model_id"].unique()) == [m.id for m in tiny_image_set.models]
    assert np.isfinite(comp.frame["logit_rho"].astype(float)).all()


def test_on_device_or_cpu_falls_back_once_and_says_so() -> None:
    calls: list[str] = []

    def fn(device: str) -> str:
        calls.append(device)
        if device.startswith("cuda"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "done"

    result, used, note = compute.on_device_or_cpu(fn, "cuda:0")
    assert (result, used, calls) == ("done", "cpu", ["cuda:0", "cpu"])
    assert "cuda:0 ran out of memory" in note and "on the CPU instead" in note
    # Other errors, and out-of-memory on the CPU itself, are not hidden.
    with pytest.raises(torch.cuda.OutOfMemoryError):
        compute.on_device_or_cpu(lambda d: fn("cuda:1"), "cpu")
    with pytest.raises(ValueError, match="bad"):
        compute.on_device_or_cpu(lambda d: (_ for _ in ()).throw(ValueError("bad")), "cuda:0")


def test_compare_on_gpu_oom_reruns_on_cpu(tiny_image_set, monkeypatch) -> None:
    """compare_models raising CUDA OOM once (after the engine's own halving) → the page's result comes from
    the CPU, with a warning."""
    import streamlit as st

    real = compute.compare_models
    devices: list[str] = []

    def flaky(*args, options, **kwargs):
        devices.append(str(options.device))
        if str(options.device).startswith("cuda"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(*args, options=options, **kwargs)

    warnings: list[str] = []
    monkeypatch.setattr(compute, "compare_models", flaky)
    monkeypatch.setattr(compute, "usable_set", lambda mset, x, device: mset)  # no GPU to predict on here
    monkeypatch.setattr(st, "warning", lambda msg, *a, **k: warnings.append(msg))
    mset = tiny_image_set
    comp = compute.compare(mset, mset.pool.x[3:5], None, ["c", "d"], _settings("cuda:0"))
    assert devices == ["cuda:0", "cpu"]
    assert len(comp.frame) == 2 * len(mset.models)
    assert len(warnings) == 1 and "on the CPU instead" in warnings[0]


def test_summarise_means_skip_undefined_and_infinite_values() -> None:
    """Per-model means equal numpy's nanmean over each model's rows, with +∞ focus ratios left out; the
    teacher comes first whatever the frame's order."""
    import pandas as pd

    frame = pd.DataFrame({
        "model_id": ["s", "s", "s", "t", "t", "t"], "role": ["student"] * 3 + ["teacher"] * 3,
        "arch": ["resnet8"] * 3 + ["resnet56"] * 3, "alpha": [0.5] * 3 + [None] * 3, "method": ["kd"] * 6,
        "attention_rho": [0.2, np.nan, 0.6, 1.0, 1.0, 1.0],
        "focus_ratio": [2.0, np.inf, 4.0, 3.0, 5.0, np.inf],
        "correct": [1.0, 0.0, 1.0, 1.0, 1.0, 0.0],
    })
    out = compute.summarise(frame)
    assert list(out["model_id"]) == ["t", "s"] and list(out["n_inputs"]) == [3, 3]
    s = out.set_index("model_id")
    assert s.loc["s", "attention_rho"] == pytest.approx(0.4)
    assert s.loc["s", "focus_ratio"] == pytest.approx(3.0) and s.loc["t", "focus_ratio"] == pytest.approx(4.0)
    assert s.loc["s", "correct"] == pytest.approx(2 / 3)
    assert "logit_rho" not in out.columns  # a column the frame lacks is left out, not an error
    with_ci = compute.summarise(frame, ci=True).set_index("model_id")
    assert with_ci.loc["s", "attention_rho_lo"] <= 0.4 <= with_ci.loc["s", "attention_rho_hi"]


def test_summarise_tests_each_model_against_its_copies() -> None:
    """A single-seed set's numbers carry the null as a distribution, as the Report's do: z and rank p of the
    model's mean ρ against the copies' means (hand-computed here), and R."""
    import pandas as pd

    copies = np.array([[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]])  # 2 inputs x 3 copies: copy means 0.2, 0.3, 0.4
    rows = [{"model_id": "t", "role": "teacher", "arch": "a", "alpha": None, "method": "ce", "attention_rho": 1.0,
             "attention_rho_null_copies": None}]
    rows += [{"model_id": "s", "role": "student", "arch": "a", "alpha": 0.5, "method": "kd", "attention_rho": rho,
              "attention_rho_null": float(c.mean()), "attention_rho_null_copies": c} for rho, c in zip((0.5, 0.6), copies, strict=True)]
    out = compute.summarise(pd.DataFrame(rows))
    s = out[out["model_id"] == "s"].iloc[0]
    means = copies.mean(axis=0)
    assert s["attention_rho_z"] == pytest.approx((0.55 - means.mean()) / means.std(ddof=1))
    assert s["attention_rho_p"] == pytest.approx(1 / 4)  # no copy reaches 0.55: (1 + 0) / (3 + 1)
    assert s["null_copies"] == 3
    assert np.isnan(out[out["model_id"] == "t"].iloc[0]["attention_rho_p"])
