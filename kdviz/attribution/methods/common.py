"""Parameter specs several tensor methods share, and the baseline they describe."""

from __future__ import annotations

from typing import Any

import torch

from kdviz.attribution.registry import ParamSpec
from kdviz.attribution.runtime import BASELINES, make_baseline

__all__ = ["BASELINE", "BLUR_SIGMA", "INTERNAL_BATCH_SIZE", "N_STEPS", "SEED", "baseline_of"]

BASELINE = ParamSpec(
    "baseline", "choice", "zeros", choices=BASELINES,
    help="reference input: zeros (in the model's normalised space: the data set's mean), black (each input's "
         "per-channel minimum: a black image in pixel space), a Gaussian blur of the input, its per-channel mean, "
         "or uniform noise within its range",
)
BLUR_SIGMA = ParamSpec("blur_sigma", "float", 5.0, min=0.1, max=100.0,
                       help="Gaussian blur σ in pixels/timesteps (baseline='blurred')")
SEED = ParamSpec("seed", "int", 0, min=0, max=2**31 - 1, help="random seed (noise, sampling)")
N_STEPS = ParamSpec("n_steps", "int", 32, min=2, max=512, help="integration steps")
INTERNAL_BATCH_SIZE = ParamSpec(
    "internal_batch_size", "int", 0, min=0, max=1 << 20,
    help="rows per forward pass; 0 = automatic (fits the memory budget)",
)


def baseline_of(x: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    """The reference input the ``baseline``, ``blur_sigma`` and ``seed`` parameters describe.

    Parameters
    ----------
    x : torch.Tensor
        The batch.
    params : dict
        Resolved parameters holding those three.

    Returns
    -------
    torch.Tensor
        Same shape as ``x``.
    """
    return make_baseline(x, params["baseline"], blur_sigma=params["blur_sigma"], seed=params["seed"])
