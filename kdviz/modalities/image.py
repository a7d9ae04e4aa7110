"""The image modality: (N, C, H, W) batches, SLIC superpixels, grids, masks and superfeatures as parts."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from kdviz.errors import InvalidInputError
from kdviz.modalities.base import DisplayHints, register_modality
from kdviz.modalities.parts import PartSpec
from kdviz.modalities.tensor import TensorModality
from kdviz.vocab import Modality

__all__ = ["ImageModality"]


@register_modality
class ImageModality(TensorModality):
    """Images (N, C, H, W), normalised as the models expect."""

    modality = Modality.IMAGE
    ndim = 4
    part_kinds = ("slic", "grid", "mask", "superfeatures")
    default_parts = "slic:50"
    baselines = ("zero", "mean", "blur")
    null_metrics = ("attention_rho", "topk_overlap", "focus_ratio")
    display = DisplayHints("image", "superpixel", ("x (pixels)", "y (pixels)"))

    def check_k(self, k: int, n_parts: int, spec: PartSpec) -> None:
        """k > K raises; with SLIC parts the message says SLIC found that few superpixels and what to use."""
        if k > n_parts:
            why = (f": SLIC found at most {n_parts} superpixel(s) in these inputs (noise-like or very small images); "
                   "use grid parts (e.g. grid:4x4) or a smaller k" if spec.kind == "slic" else "")
            raise InvalidInputError(f"k={k} exceeds the number of parts K={n_parts}{why}")

    def remove_parts(self, batch: np.ndarray, labels: np.ndarray, removed: np.ndarray, baseline: Any) -> np.ndarray:
        """Pixels of the removed parts replaced, in every channel, by a number, ``zero``, ``mean`` (the image's
        per-channel mean), ``blur`` (a Gaussian blur of the image, σ = an eighth of its shorter side) or
        ``blur:σ``."""
        x = np.asarray(batch)
        fill = self.constant_baseline(x, baseline)
        if fill is None and isinstance(baseline, str) and baseline.split(":")[0] == "blur":
            sigma = float(baseline.split(":")[1]) if ":" in baseline else max(1.0, min(x.shape[2:]) / 8)
            fill = gaussian_filter(x.astype(np.float64), sigma=(0, 0, sigma, sigma), mode="nearest").astype(x.dtype)
        if fill is None:
            raise self.unknown_baseline(baseline)
        return np.where(self.removal_mask(labels, removed, x), fill, x)
