"""Map methods read on a layer: CAMs (on the last convolution, or a ViT's patch-token grid) and attention rollout.

A CAM-style method subclasses :class:`LayerCam` and overrides one hook, :meth:`LayerCam.layer_map`; finding the
layer and upsampling the map to the input are the base class's job (as in pytorch-grad-cam's ``BaseCAM``).
"""

from __future__ import annotations

from typing import Any

import torch
from captum import attr as captum_attr
from torch import nn

from kdviz.attribution.registry import AttributionMethod, ParamSpec, register_method
from kdviz.attribution.vision_transformer import attention_rollout, token_layout, vit_cam
from kdviz.errors import UnsupportedModelError

__all__ = ["INTERPOLATE", "RELU", "AttentionRollout", "GradCam", "LayerCam", "find_last_conv"]

RELU = ParamSpec("relu", "bool", True, help="keep only positive evidence (standard Grad-CAM)")
INTERPOLATE = ParamSpec("interpolate", "choice", "linear", choices=("linear", "nearest"),
                        help="upsampling to the input size (linear = bilinear for images)")
_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def find_last_conv(model: nn.Module, *, spatial_dims: int = 2) -> nn.Module:
    """The last ``Conv{1,2,3}d`` module in registration order (a CAM's layer).

    Parameters
    ----------
    model : nn.Module
    spatial_dims : int, default 2
        1 for series, 2 for images.

    Returns
    -------
    nn.Module

    Raises
    ------
    UnsupportedModelError
        When the model has no such layer.
    """
    conv_type = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[spatial_dims]
    last = None
    for module in model.modules():
        if isinstance(module, conv_type):
            last = module
    if last is None:
        raise UnsupportedModelError(f"grad_cam needs a {conv_type.__name__} layer; the model has none")
    return last


class LayerCam(AttributionMethod):
    """Base of the CAM-style methods: a map on the last convolution (or a ViT's token grid), upsampled.

    Subclasses set the registry attributes and override :meth:`layer_map`; they keep :data:`INTERPOLATE`
    among their ``params``.
    """

    params = (INTERPOLATE,)
    applies_to = ("cnn", "vit", "series")
    not_applicable = "it needs a convolution layer or a ViT token grid, and this model has neither"

    def layer_map(self, model: nn.Module, layer: nn.Module, x: torch.Tensor, target: torch.Tensor,
                  params: dict[str, Any]) -> torch.Tensor:
        """The map on ``layer``'s output grid.

        Parameters
        ----------
        model, layer : nn.Module
            The classifier and the layer the map is read on (its output is (N, D, *grid)).
        x, target : torch.Tensor
            Inputs and the (N,) classes explained.
        params : dict
            The resolved parameters.

        Returns
        -------
        torch.Tensor
            (N, 1, *grid).
        """
        raise NotImplementedError

    def run(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any],
            rows: int) -> tuple[torch.Tensor, None]:
        """:meth:`layer_map` on the model's layer, upsampled to the input (see :meth:`AttributionMethod.run`)."""
        linear = params["interpolate"] == "linear"
        if token_layout(model) is not None:  # a ViT: the map on the patch-token grid
            cam = vit_cam(model, x, lambda layer: self.layer_map(model, layer, x, target, params),
                          interpolate="bilinear" if linear else "nearest")
            return cam, None
        spatial = x.ndim - 2
        cam = self.layer_map(model, find_last_conv(model, spatial_dims=spatial), x, target, params)
        mode = _LINEAR_MODES[spatial] if linear else "nearest"
        return captum_attr.LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode=mode), None


@register_method
class GradCam(LayerCam):
    """Gradient-weighted activations of the last convolution layer (Selvaraju et al. 2017)."""

    name = "grad_cam"
    label = "Grad-CAM"
    aliases = ("gradcam",)
    captum_class = captum_attr.LayerGradCam
    params = (RELU, INTERPOLATE)
    description = ("gradient-weighted activations of the last conv layer (a ViT's patch-token grid), upsampled to "
                   "the input")

    def layer_map(self, model: nn.Module, layer: nn.Module, x: torch.Tensor, target: torch.Tensor,
                  params: dict[str, Any]) -> torch.Tensor:
        """Captum ``LayerGradCam`` on ``layer``."""
        return captum_attr.LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=params["relu"])


@register_method
class AttentionRollout(AttributionMethod):
    """Attention flow from the class token to the patches, multiplied through the layers (class-agnostic)."""

    name = "attention_rollout"
    label = "Attention rollout"
    params = (
        ParamSpec("head_fusion", "choice", "mean", choices=("mean", "max", "min"),
                  help="how each layer's heads are combined (mean as in Abnar & Zuidema 2020)"),
        ParamSpec("residual", "float", 0.5, min=0.0, max=1.0,
                  help="weight of the identity added for the residual connection (0.5 in the paper)"),
    )
    description = ("attention flow from the class token to the patches, multiplied through the layers "
                   "(Abnar & Zuidema 2020); class-agnostic")
    applies_to = ("vit",)
    not_applicable = "it needs attention layers (a ViT or DeiT); this model has none"

    def run(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any],
            rows: int) -> tuple[torch.Tensor, None]:
        """Rollout of the model's attention maps (``kdviz.attribution.vision_transformer.attention_rollout``)."""
        return attention_rollout(model, x, head_fusion=params["head_fusion"], residual=params["residual"]), None
