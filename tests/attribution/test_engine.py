"""kdviz.attribution.engine: every registered tensor method against torch.autograd and captum called directly, on
tiny models."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from captum.attr import (
    DeepLift,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import nn

from kdviz.attribution.engine import Attribution, attribute
from kdviz.attribution.methods import get_method, method_names
from kdviz.attribution.runtime import make_baseline
from tests.attribution.helpers import LinearModel, no_hooks

ROOT = Path(__file__).resolve().parents[2]

# Small parameters so the whole file stays fast; defaults are validated separately.
FAST = {
    "integrated_gradients": {"n_steps": 8},
    "smoothgrad": {"nt_samples": 3, "seed": 3},
    "gradient_shap": {"n_samples": 4, "seed": 5},
    "occlusion": {"window": 3, "stride": 2},
}


def captum_direct(method: str, model: nn.Module, x: torch.Tensor, t: torch.Tensor, p: dict) -> torch.Tensor:
    """The same attribution, computed by calling captum the documented way."""
    x = x.clone()
    base = make_baseline(x, p["baseline"], blur_sigma=p["blur_sigma"], seed=p["seed"]) if "baseline" in p else None
    if method == "saliency":
        return Saliency(model).attribute(x, target=t, abs=p["abs"])
    if method == "input_x_gradient":
        return InputXGradient(model).attribute(x, target=t)
    if method == "integrated_gradients":
        return IntegratedGradients(model).attribute(x, baselines=base, target=t, n_steps=p["n_steps"],
                                                    method=p["integration"])
    if method == "smoothgrad":
        torch.manual_seed(p["seed"])
        np.random.seed(p["seed"])
        return NoiseTunnel(Saliency(model)).attribute(x, nt_type=p["nt_type"], nt_samples=p["nt_samples"],
                                                      stdevs=p["stdevs"], target=t)
    if method == "gradient_shap":
        torch.manual_seed(p["seed"])
        np.random.seed(p["seed"])
        return GradientShap(model).attribute(x, baselines=base, n_samples=p["n_samples"], stdevs=p["stdevs"],
                                             target=t)
    if method == "deeplift":
        return DeepLift(model).attribute(x, baselines=base, target=t)
    if method == "occlusion":
        window = (x.shape[1],) + (p["window"],) * (x.ndim - 2)
        stride = (1,) + (p["stride"],) * (x.ndim - 2)
        return Occlusion(model).attribute(x, sliding_window_shapes=window, strides=stride, baselines=base, target=t)
    if method == "grad_cam":
        layer = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))][-1]
        cam = LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=p["relu"])
        mode = "bilinear" if x.ndim == 4 else "linear"
        return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode=mode)
    raise AssertionError(method)


@pytest.mark.parametrize("kind", ["image", "series"])
@pytest.mark.parametrize("method", method_names())
def test_method_matches_captum_on_a_batch(method: str, kind: str, request: pytest.FixtureRequest) -> None:
    if get_method(method).reason_not_applicable("cnn" if kind == "image" else "series"):
        pytest.skip(f"{method} does not apply to this model kind (tests/attribution/test_vision_transformer.py)")
    model, x, t = request.getfixturevalue(f"{kind}_case")
    x_before = x.clone()
    result = attribute(model, x, method=method, target=t, device="cpu", **FAST.get(method, {}))
    p = get_method(method).resolve(FAST.get(method, {}))
    expected = captum_direct(method, model, x, t, p).detach().numpy()

    assert isinstance(result, Attribution) and result.method == method and result.params == p
    channels = 1 if method == "grad_cam" else x.shape[1]
    assert result.raw.shape == (x.shape[0], channels, *x.shape[2:])
    np.testing.assert_allclose(result.raw, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(result.importance, np.abs(expected).sum(axis=1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(result.signed, expected.sum(axis=1), rtol=1e-4, atol=1e-6)
    assert result.importance.shape == (x.shape[0], *x.shape[2:])
    assert (result.delta is not None) == (method == "integrated_gradients")
    np.testing.assert_array_equal(result.target, t.numpy())
    assert no_hooks(model)
    assert torch.equal(x, x_before) and not x.requires_grad


def test_saliency_equals_autograd_grad(image_case) -> None:
    model, x, t = image_case
    xg = x.clone().requires_grad_()
    logits = model(xg)
    (grad,) = torch.autograd.grad(logits.gather(1, t[:, None]).sum(), xg)
    result = attribute(model, x, method="saliency", target=t, device="cpu")
    np.testing.assert_allclose(result.raw, grad.abs().numpy(), rtol=1e-5, atol=1e-7)


def test_linear_model_answers_known_by_hand() -> None:
    torch.manual_seed(0)
    w = torch.randn(3, 2 * 5)
    model = LinearModel(w)
    x = torch.randn(4, 2, 5)
    t = [2, 0, 1, 2]
    w_t = w[t].reshape(4, 2, 5).numpy()
    sal = attribute(model, x, method="saliency", target=t, device="cpu")
    np.testing.assert_allclose(sal.raw, np.abs(w_t), rtol=1e-6)
    ixg = attribute(model, x, method="input_x_gradient", target=t, device="cpu")
    np.testing.assert_allclose(ixg.raw, x.numpy() * w_t, rtol=1e-5, atol=1e-7)
    # IG from a zero baseline on a linear model is exactly input × weight, with zero convergence delta.
    ig = attribute(model, x, method="integrated_gradients", target=t, device="cpu", n_steps=4)
    np.testing.assert_allclose(ig.raw, x.numpy() * w_t, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ig.delta, 0.0, atol=1e-5)


def test_ig_completeness_on_demo_model() -> None:
    """Σ attributions = f(x) − f(baseline) within 1% at 64 steps, on real digits and a shipped model.

    The shipped resnet8 (α=0.5) is used: deeper ReLU nets need more steps for the same error (measured
    at 64 steps on 8 test digits, median relative error: resnet8 0.1–0.6%, resnet20 0.7–1.1%,
    resnet56 teacher 1.1%); that is the integral's convergence, not the engine's, which
    ``test_method_matches_captum_on_a_batch`` pins to captum itself.
    """
    from kdviz.io.builtin_datasets import load_dataset
    from kdviz.io.zoo.manifest import load_zoo

    zoo = load_zoo(ROOT / "assets" / "zoo" / "mnist")
    model = zoo.get("resnet8_a0.5").module.eval()
    ds = load_dataset("mnist")
    x = torch.as_tensor(ds.model_input(ds.x_test[:8]))
    result = attribute(model, x, method="integrated_gradients", target=None, device="cpu", n_steps=64)
    with torch.no_grad():
        logits_x = model(x)
        logits_b = model(torch.zeros_like(x))
    t = torch.as_tensor(result.target)
    gap = (logits_x.gather(1, t[:, None]) - logits_b.gather(1, t[:, None])).squeeze(1).numpy()
    total = result.raw.reshape(len(x), -1).sum(axis=1)
    rel = np.abs(total - gap) / np.abs(gap)
    assert np.all(np.abs(gap) > 1e-3), gap
    assert np.all(rel < 0.01), rel
    np.testing.assert_allclose(result.delta, total - gap, atol=1e-4)


class Exploding(nn.Module):
    """Fails in a forward pass with autograd on (captum's), after captum has hooked the model."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            raise RuntimeError("boom")
        return x.flatten(1)[:, :3]


def test_no_hook_left_after_a_failure(image_case) -> None:
    _, x, _ = image_case
    flat = nn.Sequential(nn.Flatten(), nn.Linear(2 * 8 * 8, 3))
    with pytest.raises(ValueError, match="Conv2d"):
        attribute(flat, x, method="grad_cam", target=0, device="cpu")
    assert no_hooks(flat)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), Exploding())
    for method in ("grad_cam", "deeplift", "integrated_gradients"):
        with pytest.raises(RuntimeError, match="boom"):
            attribute(model, x, method=method, target=0, device="cpu")
        assert no_hooks(model), method


class ReusedReLU(nn.Module):
    """One ReLU module called twice, as torchvision's BasicBlock does: DeepLIFT cannot handle it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv2(self.relu(self.conv1(x))))
        return self.head(x.mean(dim=(2, 3)))


def test_deeplift_refuses_reused_nonlinearities(image_case) -> None:
    _, x, _ = image_case
    torch.manual_seed(0)
    model = ReusedReLU()
    with pytest.raises(ValueError, match=r"deeplift.*\['relu'\]"):
        attribute(model, x, method="deeplift", target=0, device="cpu")
    assert no_hooks(model)
    assert attribute(model, x, method="integrated_gradients", target=0, device="cpu", n_steps=4).raw.shape == x.shape


def test_mode_restored_and_eval_used(image_case) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.LazyLinear(2))
    x = torch.randn(3, 2, 8, 8)
    model(x)  # materialise the lazy layer
    model.train()
    out = attribute(model, x, method="saliency", target=0, device="cpu")
    assert model.training
    model.eval()
    again = attribute(model, x, method="saliency", target=0, device="cpu")
    np.testing.assert_allclose(out.raw, again.raw, rtol=1e-6)  # BN used running stats both times


def test_threads_share_one_model(image_case) -> None:
    model, x, t = image_case
    expected = {m: attribute(model, x, method=m, target=t, device="cpu").raw for m in ("deeplift", "grad_cam")}
    results: list[tuple[str, np.ndarray]] = []
    errors: list[BaseException] = []

    def work(method: str) -> None:
        try:
            for _ in range(3):
                results.append((method, attribute(model, x, method=method, target=t, device="cpu").raw))
        except BaseException as err:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(m,)) for m in ("deeplift", "grad_cam") * 2]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(results) == 12
    for method, raw in results:
        np.testing.assert_allclose(raw, expected[method], rtol=1e-5, atol=1e-7)
    assert no_hooks(model)


def test_target_forms(image_case) -> None:
    model, x, _ = image_case
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
    np.testing.assert_array_equal(attribute(model, x, method="saliency", target=None, device="cpu").target, pred)
    np.testing.assert_array_equal(attribute(model, x, method="saliency", target=2, device="cpu").target, [2, 2, 2])
    from_list = attribute(model, x, method="saliency", target=[0, 1, 2], device="cpu")
    from_array = attribute(model, x.numpy(), method="saliency", target=np.array([0, 1, 2]), device="cpu")
    np.testing.assert_allclose(from_list.raw, from_array.raw)
    with pytest.raises(ValueError, match="target"):
        attribute(model, x, method="saliency", target=[0, 1], device="cpu")


def test_bad_method_and_params_name_the_option(image_case) -> None:
    model, x, t = image_case
    with pytest.raises(ValueError, match="'lime'"):
        attribute(model, x, method="lime", target=t)
    with pytest.raises(ValueError, match="n_stepz"):
        attribute(model, x, method="integrated_gradients", target=t, n_stepz=3)
    with pytest.raises(ValueError, match="n_steps"):
        attribute(model, x, method="integrated_gradients", target=t, n_steps=1)
    with pytest.raises(ValueError, match="baseline"):
        attribute(model, x, method="integrated_gradients", target=t, baseline="ones")
    with pytest.raises(ValueError, match="n_steps"):
        attribute(model, x, method="integrated_gradients", target=t, n_steps="many")
    with pytest.raises(ValueError, match="stdevs"):
        attribute(model, x, method="smoothgrad", target=t, stdevs=float("nan"))
    with pytest.raises(ValueError, match="abs"):
        attribute(model, x, method="saliency", target=t, abs=1)
    with pytest.raises(ValueError, match="shape"):
        attribute(model, x[0, 0], method="saliency", target=0)


def test_ig_baseline_and_internal_batch_reported(image_case) -> None:
    model, x, t = image_case
    a = attribute(model, x, method="integrated_gradients", target=t, device="cpu", n_steps=6, baseline="blurred",
                  internal_batch_size=5)
    b = attribute(model, x, method="integrated_gradients", target=t, device="cpu", n_steps=6, baseline="blurred")
    assert a.internal_batch_size == 5 and b.internal_batch_size == 18  # auto: all 3 × 6 rows fit in one pass
    np.testing.assert_allclose(a.raw, b.raw, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion", "grad_cam"])
def test_one_captum_call_for_the_whole_batch(method: str, image_case, monkeypatch: pytest.MonkeyPatch) -> None:
    model, x, t = image_case
    cls = get_method(method).captum_class
    calls: list[int] = []
    real = cls.attribute

    def counted(self, inputs, *args, **kwargs):
        calls.append(inputs.shape[0])
        return real(self, inputs, *args, **kwargs)

    monkeypatch.setattr(cls, "attribute", counted)
    attribute(model, x, method=method, target=t, device="cpu", **FAST.get(method, {}))
    assert calls == [len(x)]
