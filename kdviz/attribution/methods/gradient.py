"""Gradient methods: saliency, input × gradient, integrated gradients, SmoothGrad, GradientSHAP, DeepLIFT.

Each class wraps one captum method and makes exactly one captum call on the batch it is given.
"""

from __future__ import annotations

from typing import Any

import torch
from captum import attr as captum_attr
from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR
from torch import nn

from kdviz.attribution.methods.common import BASELINE, BLUR_SIGMA, INTERNAL_BATCH_SIZE, N_STEPS, SEED, baseline_of
from kdviz.attribution.registry import AttributionMethod, ParamSpec, register_method
from kdviz.errors import UnsupportedModelError

__all__ = [
    "DeepLift",
    "GradientShap",
    "InputXGradient",
    "IntegratedGradients",
    "Saliency",
    "SmoothGrad",
    "reused_nonlinearities",
]

Result = tuple[torch.Tensor, torch.Tensor | None]


@register_method
class Saliency(AttributionMethod):
    """Gradient of the target logit with respect to the input."""

    name = "saliency"
    label = "Saliency"
    captum_class = captum_attr.Saliency
    params = (ParamSpec("abs", "bool", True, help="absolute value of the gradient"),)
    description = "gradient of the target logit with respect to the input"
    needs_input_grad = True
    input_gradient_only = True

    def run(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any],
            rows: int) -> Result:
        """Captum ``Saliency`` on the batch (see :meth:`AttributionMethod.run`)."""
        return captum_attr.Saliency(model).attribute(x, target=target, abs=params["abs"]), None


@register_method
class IntegratedGradients(AttributionMethod):
    """Path integral of gradients from a baseline to the input."""

    name = "integrated_gradients"
    label = "Integrated Gradients"
    aliases = ("ig",)
    captum_class = captum_attr.IntegratedGradients
    params = (
        N_STEPS, BASELINE, BLUR_SIGMA,
        ParamSpec("integration", "choice", "gausslegendre",
                  choices=("gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right"),
                  help="quadrature rule for the path integral"),
        INTERNAL_BATCH_SIZE, SEED,
        ParamSpec("auto_steps", "bool", False,
                  help="raise the steps per input (n_steps, doubled up to 512) until the completeness error is "
                       "below tolerance"),
        ParamSpec("tolerance", "float", 0.01, min=1e-4, max=0.5,
                  help="completeness error |Σ A − (f(x) − f(baseline))| / |f(x) − f(baseline)| auto_steps aims for"),
    )
    description = "path integral of gradients from a baseline; sums to f(x) − f(baseline)"
    has_delta = True
    input_gradient_only = True

    def internal_batch_size(self, params: dict[str, Any], n_inputs: int, rows: int) -> int:
        """The row budget, at most all N × n_steps rows, at least N (captum's minimum)."""
        return max(n_inputs, min(rows, n_inputs * params["n_steps"]))

    def run(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any],
            rows: int) -> Result:
        """Captum ``IntegratedGradients`` with its convergence delta (see :meth:`AttributionMethod.run`)."""
        return captum_attr.IntegratedGradients(model).attribute(
            x, baselines=baseline_of(x, params), target=target, n_steps=params["n_steps"],
            method=params["integration"], internal_batch_size=self.internal_batch_size(params, x.shape[0], rows),
            return_convergence_delta=True,
        )


@register_method
class InputXGradient(AttributionMethod):
    """The input times the gradient of the target logit."""

    name = "input_x_gradient"
    label = "Input × Gradient"
    aliases = ("ixg",)
    captum_class = captum_attr.InputXGradient
    description = "input times the gradient of the target logit"
    needs_input_grad = True
    input_gradient_only = True

    def run(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any],
            rows: int) -> Result:
        """Captum ``InputXGradient`` on the batch (see :meth:`AttributionMethod.run`)."""
        return captum_attr.InputXGradient(model).attribute(x, target=target), None


@register_method
class SmoothGrad(AttributionMethod):
    """Saliency or IG averaged over Gaussian-noised copies of the input (captum ``NoiseTunnel``)."""

    name = "smoothgrad"
    label = "SmoothGrad"
    aliases = ("sg",)
    captum_class = captum_attr.NoiseTunnel
    params = (
        ParamSpec("base", "choice", "saliency", choices=("saliency", "integrated_gradients"),
                  help="method averaged over noisy copies"),
        ParamSpec("nt_type", "choice", "smoothgrad", choices=("smoothgrad", "smoothgrad_sq", "vargrad"),
                  help="how the noisy attributions are combined"),
        ParamSpec("nt_samples", "int", 10, min=1, max=256, help="noisy copies per input"),
        ParamSpec("stdevs", "float", 0.15, min=0.0, max=10.0, help="noise σ in input units"),
        ParamSpec("n_steps", "int", 16, min=2, max=512, help="IG steps (base='integrated_gradients')"),
        SEED,
    )
    description = "attribution averaged over Gaussian-noised copies of the input"
    stochastic = True
    input_gradient_only = True

    def run(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any],
            rows: int) -> Result:
        """Captum ``NoiseTunnel``, as many noisy copies per pass as the row budget allows."""
        n = x.shape[0]
        ig = params["base"] == "integrated_gradients"
        per_sample = params["n_steps"] if ig else 1
        nt_batch = int(min(params["nt_samples"], max(1, rows // (n * per_sample))))
        kwargs: dict[str, Any] = {}
        if ig:
            base = captum_attr.IntegratedGradients(model)
            kwargs = {"baselines": torch.zeros_like(x), "n_steps": params["n_steps"],
                      "internal_batch_size": max(n * nt_batch, min(rows, n * nt_batch * params["n_steps"]))}
        else:
            base = captum_attr.Saliency(model)
        attr = captum_attr.NoiseTunnel(base).attribute(
            x, nt_type=params["nt_type"], nt_samples=params["nt_samples"], nt_samples_batch_size=nt_batch,
            stdevs=params["stdevs"], target=target, **kwargs,
        )
        return attr, None


@register_method
class GradientShap(AttributionMethod):
    """Expected gradients × (input − baseline) at random points between baseline and input."""

    name = "gradient_shap"
    label = "GradientSHAP"
    aliases = ("shap",)
    captum_class = captum_attr.GradientShap
    params = (
        ParamSpec("n_samples", "int", 16, min=1, max=512, help="random points per input"),
        ParamSpec("stdevs", "float", 0.0, min=0.0, max=10.0, help="noise σ added to each sample"),
        BASELINE, BLUR_SIGMA, SEED,
    )
    description = "expected gradients × (input − baseline) at random points between baseline and input"
    stochastic = True
    input_gradient_only = True

    def run(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any],
            rows: int) -> Result:
        """Captum ``GradientShap`` on the batch (see :meth:`AttributionMethod.run`)."""
        attr = captum_attr.GradientShap(model).attribute(
            x, baselines=baseline_of(x, params), n_samples=params["n_samples"], stdevs=params["stdevs"],
            target=target,
        )
        return attr, None


def reused_nonlinearities(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Names of non-linearity modules (ReLU, …) called more than once in one forward pass on ``x[:1]``.

    captum's DeepLIFT hooks each such module and needs it used exactly once: a reused one either raises
    deep inside captum or silently gives wrong attributions. torchvision ResNets reuse ``self.relu`` in
    every block.

    Parameters
    ----------
    model : nn.Module
    x : torch.Tensor
        A batch; only its first input is run.

    Returns
    -------
    list of str
    """
    names = {m: n for n, m in model.named_modules() if type(m) in SUPPORTED_NON_LINEAR}  # captum's own test
    calls: dict[nn.Module, int] = dict.fromkeys(names, 0)

    def count(module: nn.Module, _inputs: Any) -> None:
        calls[module] += 1

    handles = [m.register_forward_pre_hook(count) for m in names]
    try:
        with torch.no_grad():
            model(x[:1].detach())
    finally:
        for h in handles:
            h.remove()
    return [names[m] or type(m).__name__ for m, c in calls.items() if c > 1]


@register_method
class DeepLift(AttributionMethod):
    """Difference-from-reference rules through the network's non-linearities."""

    name = "deeplift"
    label = "DeepLIFT"
    captum_class = captum_attr.DeepLift
    params = (BASELINE, BLUR_SIGMA, SEED)
    description = "difference-from-reference rules through the network's non-linearities"
    applies_to = ("cnn", "series", "other")
    not_applicable = ("its rules cover ReLU-type non-linearities; a transformer's softmax attention, GELU and "
                      "LayerNorm fall outside them")
    needs_input_grad = True

    def run(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any],
            rows: int) -> Result:
        """Captum ``DeepLift``; refused for a model that reuses a non-linearity module."""
        reused = reused_nonlinearities(model, x)
        if reused:
            raise UnsupportedModelError(
                f"deeplift needs every non-linearity module used once, but this model reuses {reused[:3]}"
                f"{' …' if len(reused) > 3 else ''} (e.g. torchvision ResNets); use integrated_gradients or "
                "gradient_shap for this model"
            )
        return captum_attr.DeepLift(model).attribute(x, baselines=baseline_of(x, params), target=target), None
