"""kdviz.attribution.runtime: baselines, devices, the out-of-memory retry and inference twins."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, Saliency
from torch import nn

from kdviz.attribution import runtime
from kdviz.attribution.engine import attribute
from kdviz.attribution.methods import get_method
from kdviz.attribution.runtime import (
    TWIN_MIN_PASSES,
    gradient_passes,
    has_twin,
    inference_twin,
    make_baseline,
    resolve_device,
)
from kdviz.models import create_model
from tests.attribution.helpers import no_hooks


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


def test_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda", "mps")


def test_oom_halves_and_retries(monkeypatch: pytest.MonkeyPatch, image_case) -> None:
    """A fake OOM above 2 rows: the engine halves its row budget, chunks the batch and says so."""
    model, x, t = image_case

    class FakeOOM(RuntimeError):
        pass

    saliency = get_method("saliency")
    real = saliency.run
    seen: list[int] = []

    def flaky(model, xb, tb, p, rows):
        seen.append(rows)
        if rows > 2 or xb.shape[0] > 2:
            raise FakeOOM("CUDA out of memory")
        return real(model, xb, tb, p, rows)

    monkeypatch.setattr(saliency, "run", flaky)
    monkeypatch.setattr(runtime, "is_cuda_oom", lambda err: isinstance(err, FakeOOM))
    out = attribute(model, x, method="saliency", target=t, device="cpu", abs=True)
    expected = Saliency(model).attribute(x.clone().requires_grad_(), target=t).numpy()
    np.testing.assert_allclose(out.raw, expected, rtol=1e-5, atol=1e-9)
    assert out.warnings and "out of memory" in out.warnings[-1]
    assert seen[-1] <= 2
    assert no_hooks(model)


def test_inference_twin_folds_batchnorm_and_tracks_weight_changes() -> None:
    """The fast copy used for input-gradient methods gives the original model's attributions and
    follows in-place weight updates; the original keeps its parameters trainable."""
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
    assert gradient_passes({"n_steps": 32}, 2) == 64 >= TWIN_MIN_PASSES
    assert gradient_passes({"nt_samples": 10, "base": "saliency", "n_steps": 16}, 1) == 10
    assert gradient_passes({"nt_samples": 10, "base": "integrated_gradients", "n_steps": 16}, 1) == 160
    assert gradient_passes({"n_samples": 16}, 3) == 48
    torch.manual_seed(0)
    model = create_model("resnet8", num_classes=10, in_channels=1).eval()
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    one = attribute(model, x[:1], method="saliency", target=3, device="cpu")
    assert not has_twin(model)
    np.testing.assert_allclose(one.raw, Saliency(model).attribute(x[:1], target=3, abs=True).numpy(), rtol=1e-5,
                               atol=1e-7)
    attribute(model, x, method="integrated_gradients", target=3, device="cpu", n_steps=32)
    assert has_twin(model)
