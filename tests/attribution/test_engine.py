"""Tests for kdviz/attribution.py: against torch.autograd and captum called directly, on tiny models."""

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

from kdviz.attribution import engine as attr_mod
from kdviz.attribution.engine import METHODS, Attribution, attribute, find_last_conv, make_baseline, resolve_device

ROOT = Path(__file__).resolve().parents[2]

# Small parameters so the whole file stays fast; defaults are validated separately.
FAST = {
    "integrated_gradients": {"n_steps": 8},
    "smoothgrad": {"nt_samples": 3, "seed": 3},
    "gradient_shap": {"n_samples": 4, "seed": 5},
    "occlusion": {"window": 3, "stride": 2},
}


class TinyCNN(nn.Module):
    """Two convs (separate ReLU modules, as DeepLIFT wants), global pooling, linear head."""

    def __init__(self, in_channels: int = 2, n_classes: int = 3, dims: int = 2) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        pool = nn.AdaptiveAvgPool2d(1) if dims == 2 else nn.AdaptiveAvgPool1d(1)
        self.features = nn.Sequential(
            conv(in_channels, 4, 3, padding=1), nn.ReLU(), conv(4, 5, 3, padding=1), nn.ReLU(), pool, nn.Flatten()
        )
        self.head = nn.Linear(5, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class LinearModel(nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.fill_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


@pytest.fixture
def image_case() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return TinyCNN(dims=2), torch.randn(3, 2, 8, 8), torch.tensor([0, 2, 1])


@pytest.fixture
def series_case() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return TinyCNN(dims=1), torch.randn(3, 2, 16), torch.tensor([1, 0, 2])


def no_hooks(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
        and not getattr(m, "_backward_pre_hooks", {})
        for m in model.modules()
    )


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
@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_matches_captum_on_a_batch(method: str, kind: str, request: pytest.FixtureRequest) -> None:
    if METHODS[method].reason_not_applicable("cnn" if kind == "image" else "series"):
        pytest.skip(f"{method} does not apply to this model kind (tests/attribution/test_vision_transformer.py)")
    model, x, t = request.getfixturevalue(f"{kind}_case")
    x_before = x.clone()
    result = attribute(model, x, method=method, target=t, device="cpu", **FAST.get(method, {}))
    p = METHODS[method].resolve(FAST.get(method, {}))
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


def test_method_table_is_consistent() -> None:
    for name, spec in METHODS.items():
        assert spec.name == name and spec.params == tuple(spec.params)
        defaults = spec.resolve({})
        assert defaults == spec.defaults()
        for p in spec.params:
            assert p.kind in ("int", "float", "choice", "bool")
            if p.kind == "choice":
                assert p.default in p.choices
            if p.min is not None:
                assert p.min <= p.default <= p.max


def test_baselines() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 10, 10, generator=gen)
    assert torch.equal(make_baseline(x, "zeros"), torch.zeros_like(x))
    mean = make_baseline(x, "mean")
    torch.testing.assert_close(mean[:, :, 4, 7], x.mean(dim=(2, 3)))
    blurred = make_baseline(x, "blurred", blur_sigma=2.0)
    assert blurred.shape == x.shape and blurred.std() < x.std()
    noise = make_baseline(x, "noise", seed=1)
    assert torch.equal(noise, make_baseline(x, "noise", seed=1))
    assert noise.min() >= x.min() and noise.max() <= x.max()
    with pytest.raises(ValueError, match="baseline='ones'"):
        make_baseline(x, "ones")


def test_ig_baseline_and_internal_batch_reported(image_case) -> None:
    model, x, t = image_case
    a = attribute(model, x, method="integrated_gradients", target=t, device="cpu", n_steps=6, baseline="blurred",
                  internal_batch_size=5)
    b = attribute(model, x, method="integrated_gradients", target=t, device="cpu", n_steps=6, baseline="blurred")
    assert a.internal_batch_size == 5 and b.internal_batch_size == 18  # auto: all 3 × 6 rows fit in one pass
    np.testing.assert_allclose(a.raw, b.raw, rtol=1e-4, atol=1e-6)


def test_oom_halves_and_retries(monkeypatch: pytest.MonkeyPatch, image_case) -> None:
    """A fake OOM above 2 rows: the engine halves its row budget, chunks the batch and says so."""
    model, x, t = image_case

    class FakeOOM(RuntimeError):
        pass

    real = attr_mod._RUNNERS["saliency"]
    seen: list[int] = []

    def flaky(model, xb, tb, p, rows):
        seen.append(rows)
        if rows > 2 or xb.shape[0] > 2:
            raise FakeOOM("CUDA out of memory")
        return real(model, xb, tb, p, rows)

    monkeypatch.setitem(attr_mod._RUNNERS, "saliency", flaky)
    monkeypatch.setattr(attr_mod, "_is_cuda_oom", lambda err: isinstance(err, FakeOOM))
    out = attribute(model, x, method="saliency", target=t, device="cpu", abs=True)
    expected = Saliency(model).attribute(x.clone().requires_grad_(), target=t).numpy()
    np.testing.assert_allclose(out.raw, expected, rtol=1e-5, atol=1e-9)
    assert out.warnings and "out of memory" in out.warnings[-1]
    assert seen[-1] <= 2
    assert no_hooks(model)


def test_find_last_conv_and_device(image_case) -> None:
    model, _, _ = image_case
    assert find_last_conv(model) is model.features[2]
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda", "mps")


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion", "grad_cam"])
def test_one_captum_call_for_the_whole_batch(method: str, image_case, monkeypatch: pytest.MonkeyPatch) -> None:
    model, x, t = image_case
    cls = METHODS[method].captum_class
    calls: list[int] = []
    real = cls.attribute

    def counted(self, inputs, *args, **kwargs):
        calls.append(inputs.shape[0])
        return real(self, inputs, *args, **kwargs)

    monkeypatch.setattr(cls, "attribute", counted)
    attribute(model, x, method=method, target=t, device="cpu", **FAST.get(method, {}))
    assert calls == [len(x)]


def test_inference_twin_folds_batchnorm_and_tracks_weight_changes() -> None:
    """The fast copy used for input-gradient methods gives the original model's attributions and
    follows in-place weight updates; the original keeps its parameters trainable."""
    from captum.attr import IntegratedGradients

    from kdviz.attribution.engine import inference_twin
    from kdviz.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet8", num_classes=10, in_channels=1).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    twin = inference_twin(model, torch.device("cpu"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in twin.modules())
    assert all(p.requires_grad for p in model.parameters())
    assert inference_twin(model, torch.device("cpu")) is twin  # cached
    reference = IntegratedGradients(model).attribute(x, target=2, n_steps=16)
    fast = attribute(model, x, method="integrated_gradients", target=2, device="cpu", n_steps=16)
    scale = reference.abs().max().item()
    np.testing.assert_allclose(fast.raw, reference.numpy(), atol=1e-4 * scale)

    with torch.no_grad():
        model.fc.weight.mul_(-1.0)
    rebuilt = inference_twin(model, torch.device("cpu"))
    assert rebuilt is not twin
    flipped = attribute(model, x, method="integrated_gradients", target=2, device="cpu", n_steps=16)
    reference = IntegratedGradients(model).attribute(x, target=2, n_steps=16)
    np.testing.assert_allclose(flipped.raw, reference.numpy(), atol=1e-4 * reference.abs().max().item())


def test_inference_twin_is_built_only_when_the_work_pays_for_it() -> None:
    """Saliency on one input makes one gradient pass: folding the model would cost more than it saves.
    IG over 32 steps × 2 inputs (64 passes) builds the twin, and from then on every method uses it."""
    from captum.attr import Saliency

    from kdviz.attribution.engine import _TWINS, TWIN_MIN_PASSES, _gradient_passes
    from kdviz.models import create_model

    assert _gradient_passes({"n_steps": 32}, 2) == 64 >= TWIN_MIN_PASSES
    assert _gradient_passes({"nt_samples": 10, "base": "saliency", "n_steps": 16}, 1) == 10
    assert _gradient_passes({"nt_samples": 10, "base": "integrated_gradients", "n_steps": 16}, 1) == 160
    assert _gradient_passes({"n_samples": 16}, 3) == 48
    torch.manual_seed(0)
    model = create_model("resnet8", num_classes=10, in_channels=1).eval()
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    one = attribute(model, x[:1], method="saliency", target=3, device="cpu")
    assert model not in _TWINS
    np.testing.assert_allclose(one.raw, Saliency(model).attribute(x[:1], target=3, abs=True).numpy(), rtol=1e-5,
                               atol=1e-7)
    attribute(model, x, method="integrated_gradients", target=3, device="cpu", n_steps=32)
    assert model in _TWINS
