"""kdviz.attribution.methods.cam: the CAM base class finds the layer and upsamples; a new CAM is one hook."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from captum.attr import LayerActivation, LayerAttribution
from torch import nn

from kdviz.attribution.engine import attribute
from kdviz.attribution.methods import register_method, unregister_method
from kdviz.attribution.methods.cam import LayerCam, find_last_conv


class ActivationMap(LayerCam):
    """A CAM without gradients: the mean activation of the last convolution over its channels."""

    name = "activation_map"
    label = "Activation map"
    description = "mean activation of the last convolution layer, upsampled to the input"

    def layer_map(self, model: nn.Module, layer: nn.Module, x: torch.Tensor, target: torch.Tensor,
                  params: dict[str, Any]) -> torch.Tensor:
        return LayerActivation(model, layer).attribute(x).mean(dim=1, keepdim=True)


@pytest.fixture
def activation_map():
    register_method(ActivationMap)
    try:
        yield
    finally:
        unregister_method("activation_map")


def test_find_last_conv(image_case) -> None:
    model, _, _ = image_case
    assert find_last_conv(model) is model.features[2]
    series = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Conv1d(2, 2, 3))
    assert find_last_conv(series, spatial_dims=1) is series[1]
    with pytest.raises(ValueError, match="Conv2d"):
        find_last_conv(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


@pytest.mark.parametrize(("kind", "mode"), [("image", "bilinear"), ("series", "linear")])
def test_a_new_cam_is_one_hook(activation_map, kind: str, mode: str, request: pytest.FixtureRequest) -> None:
    model, x, t = request.getfixturevalue(f"{kind}_case")
    got = attribute(model, x, method="activation_map", target=t, device="cpu")
    layer = find_last_conv(model, spatial_dims=x.ndim - 2)
    cam = LayerActivation(model, layer).attribute(x).mean(dim=1, keepdim=True)
    expected = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode=mode)
    np.testing.assert_allclose(got.raw, expected.detach().numpy(), rtol=1e-6, atol=1e-8)
    nearest = attribute(model, x, method="activation_map", target=t, device="cpu", interpolate="nearest")
    expected = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="nearest")
    np.testing.assert_allclose(nearest.raw, expected.detach().numpy(), rtol=1e-6, atol=1e-8)
