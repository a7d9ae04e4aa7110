"""Explanations over groups of features (superfeatures): Shapley values and per-group class distributions.

A group labelling is an integer array over the input's spatial positions, (H, W) or (L,), values 0..M−1,
shared by every input of the batch (a superfeature labelling is fixed per teacher and dataset). "Keeping"
a set S of groups means: positions in S keep the input's values, every other position is set to the
``baseline`` (a scalar or one value per channel, in model-input space), for all channels at once.

* :func:`shapley_exact` — the Shapley value of each group for the target class, from all 2^M coalitions
  (M ≤ 10: 1,024 forwards per input). Efficiency holds exactly: Σ_m φ_m = f_c(x) − f_c(baseline).
* :func:`shapley_sampled` — captum's ``ShapleyValueSampling`` with the groups as its ``feature_mask``.
* :func:`group_shapley` — exact up to ``exact_max`` groups, sampled above.
* :func:`group_logits` / :func:`group_distributions` — ``exp_m``: the model's output with only group m
  kept, and its softmax at temperature τ (N, M, C). Differentiable w.r.t. the model's parameters: the M
  masked copies go through the model as one batch (what KED's explanation term trains on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import ShapleyValueSampling
from torch import nn

from kdviz.errors import InvalidInputError

__all__ = [
    "EXACT_MAX",
    "GroupExplanation",
    "explain_branches",
    "explain_groups",
    "group_distributions",
    "group_logits",
    "group_shapley",
    "keep_masks",
    "shapley_exact",
    "shapley_sampled",
]

EXACT_MAX = 10  # exact Shapley up to this many groups (2^10 = 1,024 coalitions per input)


def _group_onehot(labels: np.ndarray | torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
    lab = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if tuple(lab.shape) != tuple(spatial):
        raise InvalidInputError(f"group labels have shape {tuple(lab.shape)}, inputs have spatial shape {tuple(spatial)}")
    if lab.numel() and lab.min() < 0:
        raise InvalidInputError("group labels must be >= 0")
    m = int(lab.max()) + 1
    return lab.unsqueeze(0) == torch.arange(m).view(-1, *([1] * lab.ndim))  # (M, *spatial)


def keep_masks(labels: np.ndarray | torch.Tensor, coalitions: torch.Tensor) -> torch.Tensor:
    """Position masks (S, *spatial) for coalitions (S, M) bool: True where the position's group is kept."""
    lab = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return coalitions.bool()[:, lab]  # fancy indexing: (S, *spatial)


def _masked(x: torch.Tensor, keep: torch.Tensor, baseline: float | torch.Tensor) -> torch.Tensor:
    """(N·S, C, …): each input with each of the S masks applied (kept positions keep x)."""
    n, c = x.shape[:2]
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    if base.ndim == 1:  # per-channel baseline
        base = base.view(1, 1, -1, *([1] * (x.ndim - 2)))
    k = keep.to(x.device).unsqueeze(1).unsqueeze(0)  # (1, S, 1, *spatial)
    out = torch.where(k, x.unsqueeze(1), base)  # (N, S, C, *spatial)
    return out.reshape(n * keep.shape[0], c, *x.shape[2:])


def _as_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=torch.float32)


def _targets(model: nn.Module, x: torch.Tensor, target: torch.Tensor | np.ndarray | int | None) -> torch.Tensor:
    n = x.shape[0]
    if target is None:
        with torch.no_grad():
            return model(x).argmax(1)
    t = torch.as_tensor(np.asarray(target), dtype=torch.long).view(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.shape[0] != n:
        raise InvalidInputError(f"target has {t.shape[0]} entries for {n} inputs")
    return t.to(x.device)


def _coalition_weights(m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All 2^M coalitions (2^M, M) bool and the Shapley coefficient matrix (M, 2^M): φ = C @ v."""
    codes = torch.arange(2**m)
    coal = ((codes.unsqueeze(1) >> torch.arange(m)) & 1).bool()
    size = coal.sum(1)
    w = torch.tensor([math.factorial(k) * math.factorial(m - k - 1) / math.factorial(m) for k in range(m)]
                     + [0.0], dtype=torch.float64)
    coef = torch.where(coal.T, w[(size - 1).clamp(min=0)].unsqueeze(0), -w[size].unsqueeze(0))
    return coal, coef


@torch.no_grad()
def shapley_exact(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    *,
    labels: np.ndarray | torch.Tensor,
    target: torch.Tensor | np.ndarray | int | None = None,
    baseline: float | torch.Tensor = 0.0,
    batch_size: int = 512,
) -> np.ndarray:
    """Exact Shapley values (N, M) of the groups for the target class (default: the model's prediction).

    The value of a coalition S is the target logit with S kept and the rest at ``baseline``.
    """
    xt = _as_tensor(x)
    onehot = _group_onehot(labels, tuple(xt.shape[2:]))
    m = onehot.shape[0]
    if m > EXACT_MAX + 4:
        raise InvalidInputError(f"exact Shapley over M={m} groups needs 2^{m} forwards per input; use shapley_sampled")
    tgt = _targets(model, xt, target)
    coal, coef = _coalition_weights(m)
    keep = keep_masks(labels, coal)
    per_input = max(1, batch_size // len(coal))
    values = []
    for s in range(0, xt.shape[0], per_input):
        xb = xt[s : s + per_input]
        out = torch.cat([model(chunk) for chunk in _masked(xb, keep, baseline).split(batch_size)])
        out = out.view(xb.shape[0], len(coal), -1)
        values.append(out.gather(2, tgt[s : s + per_input].view(-1, 1, 1).expand(-1, len(coal), 1)).squeeze(2))
    v = torch.cat(values).double()  # (N, 2^M)
    return (v @ coef.T).numpy()


def shapley_sampled(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    *,
    labels: np.ndarray | torch.Tensor,
    target: torch.Tensor | np.ndarray | int | None = None,
    baseline: float | torch.Tensor = 0.0,
    n_samples: int = 64,
    seed: int = 0,
    perturbations_per_eval: int = 64,
) -> np.ndarray:
    """Shapley values (N, M) estimated by captum's ``ShapleyValueSampling`` (``n_samples`` permutations),
    the groups given as its ``feature_mask``. Seeded: the same call gives the same numbers."""
    xt = _as_tensor(x)
    onehot = _group_onehot(labels, tuple(xt.shape[2:]))
    m = onehot.shape[0]
    lab = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    mask = lab.view(1, 1, *lab.shape).expand(1, xt.shape[1], *lab.shape).contiguous()
    base_t = torch.as_tensor(baseline, dtype=xt.dtype)
    base: float | torch.Tensor = float(base_t) if base_t.ndim == 0 else (
        base_t.view(1, -1, *([1] * (xt.ndim - 2))).expand(1, *xt.shape[1:]).contiguous())
    tgt = _targets(model, xt, target)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        attr = ShapleyValueSampling(model).attribute(
            xt, baselines=base, target=tgt, feature_mask=mask, n_samples=n_samples,
            perturbations_per_eval=perturbations_per_eval,
        )
    # every position of a group carries the group's value: read one position per group
    flat = attr[:, 0].reshape(xt.shape[0], -1)
    first = torch.stack([torch.nonzero(lab.view(-1) == k)[0, 0] for k in range(m)])
    return flat[:, first].double().numpy()


def group_shapley(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    *,
    labels: np.ndarray | torch.Tensor,
    target: torch.Tensor | np.ndarray | int | None = None,
    baseline: float | torch.Tensor = 0.0,
    exact_max: int = EXACT_MAX,
    n_samples: int = 64,
    seed: int = 0,
) -> tuple[np.ndarray, bool]:
    """Shapley values (N, M): exact when M ≤ ``exact_max``, else sampled. Returns (values, exact)."""
    m = int(np.asarray(labels).max()) + 1
    if m <= exact_max:
        return shapley_exact(model, x, labels=labels, target=target, baseline=baseline), True
    return shapley_sampled(model, x, labels=labels, target=target, baseline=baseline, n_samples=n_samples,
                           seed=seed), False


def group_logits(
    model: nn.Module,
    x: torch.Tensor,
    *,
    labels: np.ndarray | torch.Tensor,
    baseline: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """Outputs (N, M, C) of ``model`` with only group m kept (the rest at ``baseline``), one batch of N·M
    copies; differentiable unless called under ``torch.no_grad()``."""
    onehot = _group_onehot(labels, tuple(x.shape[2:]))
    out = model(_masked(x, onehot, baseline))
    return out.view(x.shape[0], onehot.shape[0], -1)


def group_distributions(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    *,
    labels: np.ndarray | torch.Tensor,
    tau: float = 1.0,
    baseline: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """``exp_m``: softmax(outputs with only group m kept / τ), (N, M, C)."""
    if not tau > 0:
        raise InvalidInputError(f"tau must be > 0, got {tau}")
    return torch.softmax(group_logits(model, _as_tensor(x), labels=labels, baseline=baseline) / tau, dim=2)


@dataclass(frozen=True)
class GroupExplanation:
    """One model's explanation of a batch over M groups.

    shapley : (N, M) Shapley value of each group for ``target``; exact says how it was computed.
    distributions : (N, M, C) ``exp_m`` at temperature ``tau``.
    """

    shapley: np.ndarray
    exact: bool
    distributions: np.ndarray
    target: np.ndarray
    tau: float


def explain_groups(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    *,
    labels: np.ndarray,
    target: torch.Tensor | np.ndarray | int | None = None,
    tau: float = 1.0,
    baseline: float | torch.Tensor = 0.0,
    n_samples: int = 64,
) -> GroupExplanation:
    """Shapley values and ``exp_m`` of ``model`` on ``x`` for the groups ``labels`` (eval mode, no grad)."""
    xt = _as_tensor(x)
    was_training = model.training
    model.eval()
    try:
        tgt = _targets(model, xt, target)
        values, exact = group_shapley(model, xt, labels=labels, target=tgt, baseline=baseline, n_samples=n_samples)
        with torch.no_grad():
            dist = group_distributions(model, xt, labels=labels, tau=tau, baseline=baseline)
    finally:
        model.train(was_training)
    return GroupExplanation(values, exact, dist.numpy(), tgt.numpy(), float(tau))


def explain_branches(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    *,
    target: torch.Tensor | np.ndarray | int | None = None,
    tau: float = 1.0,
) -> GroupExplanation:
    """An explaining network's own explanation (KED, arXiv 2310.02572): no masking, its branches speak.

    ``distributions`` (N, M, C): branch i's class distribution softened as in KED, ``softmax(log p_i / τ)``.
    ``shapley`` (N, M): branch i's additive share of the target's total logit, ``log p_i(c) − log π_c`` (π the
    class prior, 0 for networks without one). The total logit is ``Σ_i log p_i − (M−1)·log π``, so these are
    exactly the Shapley values of the branches when an absent branch says "the prior"; they sum to
    ``logit_c − log π_c``. ``model`` needs ``branch_log_probs`` (``kdviz.models.ked_family``).
    """
    if not tau > 0:
        raise InvalidInputError(f"tau must be > 0, got {tau}")
    if not hasattr(model, "branch_log_probs"):
        raise InvalidInputError(f"{type(model).__name__} has no explaining branches (branch_log_probs)")
    xt = _as_tensor(x)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            lp = model.branch_log_probs(xt)  # type: ignore[operator]
            tgt = _targets(model, xt, target)
            prior = getattr(model, "log_prior", None)
            prior_c = prior[tgt].unsqueeze(1) if prior is not None else torch.zeros(len(tgt), 1)
            share = lp.gather(2, tgt.view(-1, 1, 1).expand(-1, lp.shape[1], 1)).squeeze(2) - prior_c
            dist = torch.softmax(lp / tau, dim=2)
    finally:
        model.train(was_training)
    return GroupExplanation(share.numpy(), True, dist.numpy(), tgt.numpy(), float(tau))
