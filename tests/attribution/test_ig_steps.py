"""IG completeness error and the ``auto`` step count, checked against captum's own convergence delta."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients

from kdviz.attribution.engine import attribute
from kdviz.attribution.ig_steps import MAX_STEPS, completeness_error, step_ladder, steps_cost

ROOT = Path(__file__).resolve().parents[2]
MNIST_ZOO = ROOT / "assets" / "zoo" / "mnist"


def test_ladder_and_cost_by_hand():
    assert step_ladder(16) == (16, 32, 64, 128, 256, 512)
    assert step_ladder(100, 300) == (100, 200, 300)
    # an input that stopped at 64 cost 16 + 32 + 64 steps; one at 16 cost 16
    assert steps_cost([64, 16], 16) == 112 + 16
    with pytest.raises(ValueError, match="n_steps"):
        step_ladder(1)


def test_completeness_error_is_captums_delta_relative_to_the_output_gap():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).eval()
    x = torch.randn(4, 6)
    attr, delta = IntegratedGradients(model).attribute(x, target=1, n_steps=5, return_convergence_delta=True)
    with torch.no_grad():
        gap = (model(x) - model(torch.zeros_like(x)))[:, 1].numpy()
    expected = np.abs(delta.numpy()) / np.abs(gap)
    np.testing.assert_allclose(completeness_error(attr.numpy(), delta.numpy()), expected, rtol=1e-4)
    # an exact attribution (Σ A = f(x) − f(0), δ = 0) has no error
    assert completeness_error(np.ones((1, 2)), np.zeros(1))[0] == 0.0


@pytest.fixture(scope="module")
def demo_student():
    from safetensors.torch import load_file

    from kdviz.io.builtin_datasets import load_dataset
    from kdviz.models import create_model

    ds = load_dataset("mnist")
    model = create_model("resnet8", num_classes=10, in_channels=1)
    model.load_state_dict({k: v.float() for k, v in load_file(MNIST_ZOO / "resnet8_a0.1.safetensors").items()})
    return model.eval(), ds.model_input(ds.x_test[:6])


def test_auto_steps_meet_the_tolerance_by_captums_delta_and_cost_less_than_a_fixed_count(demo_student):
    model, x = demo_student
    tol = 0.01
    auto = attribute(model, x, method="integrated_gradients", target=None, n_steps=16, auto_steps=True,
                     tolerance=tol)
    assert auto.steps is not None and set(auto.steps) <= set(step_ladder(16))
    assert (auto.completeness_error <= tol).all()

    # Each input, recomputed by captum directly on the original model at the steps auto chose.
    xt = torch.as_tensor(x)
    ig = IntegratedGradients(model)
    for i, steps in enumerate(auto.steps):
        xi, ti = xt[i:i + 1], int(auto.target[i])
        attr, delta = ig.attribute(xi, target=ti, n_steps=int(steps), method="gausslegendre",
                                   return_convergence_delta=True)
        with torch.no_grad():
            gap = float(model(xi)[0, ti] - model(torch.zeros_like(xi))[0, ti])
        assert abs(float(delta)) / abs(gap) < tol * 1.05, (i, steps)  # BN folding moves it by ~1e-4 at most
        np.testing.assert_allclose(auto.raw[i], attr[0].detach().numpy(), atol=2e-3 * np.abs(auto.raw[i]).max())

    # The fixed step count that meets the same tolerance on every input costs more.
    fixed_needed = None
    for steps in step_ladder(16):
        fixed = attribute(model, x, method="integrated_gradients", target=auto.target, n_steps=steps)
        if (fixed.completeness_error <= tol).all():
            fixed_needed = steps
            break
    assert fixed_needed is not None and fixed_needed > 16  # some input needs more than the first rung
    assert steps_cost(auto.steps, 16) < len(x) * fixed_needed
    assert auto.steps.min() < fixed_needed  # easy inputs stayed cheap


def test_fixed_steps_report_the_error_and_no_steps(demo_student):
    model, x = demo_student
    out = attribute(model, x[:2], method="integrated_gradients", target=None, n_steps=8)
    assert out.steps is None and out.completeness_error.shape == (2,)
    assert attribute(model, x[:2], method="saliency", target=None).completeness_error is None
    assert MAX_STEPS == 512


def test_completeness_caption_names_the_worst_map_and_what_to_do():
    import pandas as pd

    from kdviz.attribution.ig_steps import completeness_caption

    frame = pd.DataFrame({"model_id": ["t", "s1", "s2"], "ig_completeness_error": [0.002, 0.036, 0.004],
                          "ig_steps": pd.array([64, 64, 64], dtype="Int64")})
    text = completeness_caption(frame)
    assert "worst 3.6% (s1)" in text and "steps 64" in text and "auto_steps" in text
    assert "auto_steps" not in completeness_caption(frame.assign(ig_completeness_error=[0.001, 0.002, 0.003]))
    assert completeness_caption(frame.assign(ig_completeness_error=np.nan)) == ""
