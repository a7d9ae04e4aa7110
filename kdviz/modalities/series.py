"""The series modality: (N, C, L) batches, equal time segments, masks and superfeatures as parts."""

from __future__ import annotations

from typing import Any

import numpy as np

from kdviz.modalities.base import DisplayHints, register_modality
from kdviz.modalities.tensor import TensorModality
from kdviz.vocab import Modality

__all__ = ["SeriesModality"]


def _interpolate(row: np.ndarray, gone: np.ndarray) -> np.ndarray:
    """One channel with the ``gone`` timesteps linearly interpolated from the kept ones (held constant past the
    ends); all zero when nothing is kept."""
    kept = np.flatnonzero(~gone)
    if kept.size == 0:
        return np.zeros_like(row)
    out = row.copy()
    out[gone] = np.interp(np.flatnonzero(gone), kept, row[kept])
    return out


@register_modality
class SeriesModality(TensorModality):
    """Series (N, C, L), normalised as the models expect."""

    modality = Modality.SERIES
    ndim = 3
    part_kinds = ("segments", "mask", "superfeatures")
    default_parts = "segments:10"
    baselines = ("zero", "mean", "linear")
    null_metrics = ("attention_rho", "topk_overlap", "focus_ratio")
    display = DisplayHints("series", "segment", ("time step", "value"))

    def remove_parts(self, batch: np.ndarray, labels: np.ndarray, removed: np.ndarray, baseline: Any) -> np.ndarray:
        """Timesteps of the removed segments replaced, in every channel, by a number, ``zero``, ``mean`` (the
        series' per-channel mean) or ``linear`` (interpolated across the gap from the timesteps kept)."""
        x = np.asarray(batch)
        mask = self.removal_mask(labels, removed, x)
        fill = self.constant_baseline(x, baseline)
        if fill is not None:
            return np.where(mask, fill, x)
        if baseline != "linear":
            raise self.unknown_baseline(baseline)
        out = x.copy()
        for i in range(x.shape[0]):
            for c in range(x.shape[1]):
                out[i, c] = _interpolate(x[i, c], mask[i, 0])
        return out
