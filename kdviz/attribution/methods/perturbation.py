"""Perturbation methods: how much the target logit drops when part of the input is replaced by a baseline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from captum import attr as captum_attr
from torch import nn

from kdviz.attribution.methods.common import BASELINE, BLUR_SIGMA, SEED, baseline_of
from kdviz.attribution.registry import AttributionMethod, ParamSpec, register_method

__all__ = ["Occlusion", "occlusion_windows"]


def occlusion_windows(x_shape: Sequence[int], window: int, stride: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Captum ``sliding_window_shapes`` and ``strides`` for a square window (images) or a segment (series).

    The window spans every channel and is clipped to the input size.

    Parameters
    ----------
    x_shape : sequence of int
        (N, C, H, W) or (N, C, L).
    window, stride : int
        Window side (segment length) and step.

    Returns
    -------
    tuple
        The window shape and the strides, each over (C, ...).
    """
    c, *spatial = x_shape[1:]
    shapes = (c, *(min(window, s) for s in spatial))
    strides = (1, *(min(stride, s) for s in spatial))
    return shapes, strides


@register_method
class Occlusion(AttributionMethod):
    """Drop in the target logit when a window is replaced by the baseline."""

    name = "occlusion"
    label = "Occlusion"
    captum_class = captum_attr.Occlusion
    params = (
        ParamSpec("window", "int", 4, min=1, max=4096, help="square window side (images) or segment length (series)"),
        ParamSpec("stride", "int", 2, min=1, max=4096, help="step between windows"),
        BASELINE, BLUR_SIGMA, SEED,
    )
    description = "drop in the target logit when a window is replaced by the baseline"

    def run(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, params: dict[str, Any],
            rows: int) -> tuple[torch.Tensor, None]:
        """Captum ``Occlusion``, as many windows per pass as the row budget allows."""
        shapes, strides = occlusion_windows(x.shape, params["window"], params["stride"])
        n_windows = math.prod(
            (s - w) // st + 1 for s, w, st in zip(x.shape[2:], shapes[1:], strides[1:], strict=True)
        )
        per_eval = int(min(n_windows, max(1, rows // x.shape[0])))
        attr = captum_attr.Occlusion(model).attribute(
            x, sliding_window_shapes=shapes, strides=strides, baselines=baseline_of(x, params), target=target,
            perturbations_per_eval=per_eval,
        )
        return attr, None
