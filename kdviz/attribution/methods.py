"""The attribution method table: name -> captum class + parameter specs (defaults, limits, choices).

The dashboard builds its widgets from ``METHODS`` (captum insights' config pattern), and
:func:`kdviz.attribution.engine.attribute` validates keyword parameters against it. Pure data: no model runs here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from captum.attr import (
    DeepLift,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)

__all__ = ["BASELINES", "METHODS", "MethodSpec", "ParamSpec"]

ParamKind = Literal["int", "float", "choice", "bool"]
BASELINES = ("zeros", "black", "blurred", "mean", "noise")

# --------------------------------------------------------------------------------------------------
# Method table
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of an attribution method: enough for a UI to build a widget and to validate it."""

    name: str
    kind: ParamKind
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def validate(self, value: Any, *, method: str = "") -> Any:
        """Coerce ``value`` to this parameter's kind; ValueError naming the parameter if it does not fit."""
        where = f"{method}: " if method else ""
        if self.kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{where}{self.name} must be a bool, got {value!r}")
            return bool(value)
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{where}{self.name}={value!r} is not one of {list(self.choices)}")
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}{self.name} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise ValueError(f"{where}{self.name} must be a finite number, got {value!r}")
        if self.kind == "int":
            if not number.is_integer():
                raise ValueError(f"{where}{self.name} must be an integer, got {value!r}")
            value = int(number)
        else:
            value = number
        if self.min is not None and value < self.min:
            raise ValueError(f"{where}{self.name}={value} is below its minimum {self.min}")
        if self.max is not None and value > self.max:
            raise ValueError(f"{where}{self.name}={value} is above its maximum {self.max}")
        return value


@dataclass(frozen=True)
class MethodSpec:
    """A row of the method table: captum class, parameter specs, and what the result carries."""

    name: str
    label: str
    captum_class: type
    params: tuple[ParamSpec, ...]
    description: str = ""
    stochastic: bool = False
    has_delta: bool = False
    # Model kinds the method applies to (kdviz.attribution.vision_transformer.model_kind) and why not for the others.
    applies_to: tuple[str, ...] = ("cnn", "vit", "series", "other")
    not_applicable: str = ""

    def reason_not_applicable(self, kind: str) -> str | None:
        """None when the method applies to models of ``kind``, else the reason (for the UI to show)."""
        return None if kind in self.applies_to else self.not_applicable

    def defaults(self) -> dict[str, Any]:
        """Default value of every parameter."""
        return {p.name: p.default for p in self.params}

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``params``, validated; ValueError naming an unknown or bad parameter."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for method {self.name!r}; valid: {sorted(known)}"
            )
        out = self.defaults()
        for name, value in params.items():
            out[name] = known[name].validate(value, method=self.name)
        return out


_BASELINE = ParamSpec(
    "baseline", "choice", "zeros", choices=BASELINES,
    help="reference input: zeros (in the model's normalised space: the data set's mean), black (each input's "
         "per-channel minimum: a black image in pixel space), a Gaussian blur of the input, its per-channel mean, "
         "or uniform noise within its range",
)
_BLUR = ParamSpec("blur_sigma", "float", 5.0, min=0.1, max=100.0,
                  help="Gaussian blur σ in pixels/timesteps (baseline='blurred')")
_SEED = ParamSpec("seed", "int", 0, min=0, max=2**31 - 1, help="random seed (noise, sampling)")
_STEPS = ParamSpec("n_steps", "int", 32, min=2, max=512, help="integration steps")
_INTERNAL = ParamSpec(
    "internal_batch_size", "int", 0, min=0, max=1 << 20,
    help="rows per forward pass; 0 = automatic (fits the memory budget)",
)
_AUTO_STEPS = ParamSpec(
    "auto_steps", "bool", False,
    help="raise the steps per input (n_steps, doubled up to 512) until the completeness error is below tolerance",
)
_TOLERANCE = ParamSpec("tolerance", "float", 0.01, min=1e-4, max=0.5,
                       help="completeness error |Σ A − (f(x) − f(baseline))| / |f(x) − f(baseline)| auto_steps aims for")
_INTEGRATION = ParamSpec(
    "integration", "choice", "gausslegendre",
    choices=("gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right"),
    help="quadrature rule for the path integral",
)

METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "saliency", "Saliency", Saliency,
            (ParamSpec("abs", "bool", True, help="absolute value of the gradient"),),
            "gradient of the target logit with respect to the input",
        ),
        MethodSpec(
            "integrated_gradients", "Integrated Gradients", IntegratedGradients,
            (_STEPS, _BASELINE, _BLUR, _INTEGRATION, _INTERNAL, _SEED, _AUTO_STEPS, _TOLERANCE),
            "path integral of gradients from a baseline; sums to f(x) − f(baseline)",
            has_delta=True,
        ),
        MethodSpec("input_x_gradient", "Input × Gradient", InputXGradient, (),
                   "input times the gradient of the target logit"),
        MethodSpec(
            "smoothgrad", "SmoothGrad", NoiseTunnel,
            (
                ParamSpec("base", "choice", "saliency", choices=("saliency", "integrated_gradients"),
                          help="method averaged over noisy copies"),
                ParamSpec("nt_type", "choice", "smoothgrad", choices=("smoothgrad", "smoothgrad_sq", "vargrad"),
                          help="how the noisy attributions are combined"),
                ParamSpec("nt_samples", "int", 10, min=1, max=256, help="noisy copies per input"),
                ParamSpec("stdevs", "float", 0.15, min=0.0, max=10.0, help="noise σ in input units"),
                ParamSpec("n_steps", "int", 16, min=2, max=512, help="IG steps (base='integrated_gradients')"),
                _SEED,
            ),
            "attribution averaged over Gaussian-noised copies of the input",
            stochastic=True,
        ),
        MethodSpec(
            "gradient_shap", "GradientSHAP", GradientShap,
            (
                ParamSpec("n_samples", "int", 16, min=1, max=512, help="random points per input"),
                ParamSpec("stdevs", "float", 0.0, min=0.0, max=10.0, help="noise σ added to each sample"),
                _BASELINE, _BLUR, _SEED,
            ),
            "expected gradients × (input − baseline) at random points between baseline and input",
            stochastic=True,
        ),
        MethodSpec("deeplift", "DeepLIFT", DeepLift, (_BASELINE, _BLUR, _SEED),
                   "difference-from-reference rules through the network's non-linearities",
                   applies_to=("cnn", "series", "other"),
                   not_applicable="its rules cover ReLU-type non-linearities; a transformer's softmax attention, "
                                  "GELU and LayerNorm fall outside them"),
        MethodSpec(
            "occlusion", "Occlusion", Occlusion,
            (
                ParamSpec("window", "int", 4, min=1, max=4096,
                          help="square window side (images) or segment length (series)"),
                ParamSpec("stride", "int", 2, min=1, max=4096, help="step between windows"),
                _BASELINE, _BLUR, _SEED,
            ),
            "drop in the target logit when a window is replaced by the baseline",
        ),
        MethodSpec(
            "grad_cam", "Grad-CAM", LayerGradCam,
            (
                ParamSpec("relu", "bool", True, help="keep only positive evidence (standard Grad-CAM)"),
                ParamSpec("interpolate", "choice", "linear", choices=("linear", "nearest"),
                          help="upsampling to the input size (linear = bilinear for images)"),
            ),
            "gradient-weighted activations of the last conv layer (a ViT's patch-token grid), upsampled to the input",
            applies_to=("cnn", "vit", "series"),
            not_applicable="it needs a convolution layer or a ViT token grid, and this model has neither",
        ),
        MethodSpec(
            "attention_rollout", "Attention rollout", type(None),
            (
                ParamSpec("head_fusion", "choice", "mean", choices=("mean", "max", "min"),
                          help="how each layer's heads are combined (mean as in Abnar & Zuidema 2020)"),
                ParamSpec("residual", "float", 0.5, min=0.0, max=1.0,
                          help="weight of the identity added for the residual connection (0.5 in the paper)"),
            ),
            "attention flow from the class token to the patches, multiplied through the layers "
            "(Abnar & Zuidema 2020); class-agnostic",
            applies_to=("vit",),
            not_applicable="it needs attention layers (a ViT or DeiT); this model has none",
        ),
    )
}
