"""Knowledge Explaining Distillation (KED, Chowdhury et al., arXiv 2310.02572), in a black-box form.

The paper's loss, with M superfeatures and ``exp_m`` the class distribution superfeature m alone supports::

    L = CE(y, s) + T²·λ(1−μ)·KL(p_T ‖ p_S) + τ²·λμ·(1/M)·Σ_m KL(exp_m^T ‖ exp_m^S)

kdviz trains with the same loss divided by (1 + λ), so that its weights read in kdviz's α convention
(α = weight of the hard-label term, DESIGN.md): with ``α = 1/(1+λ)``::

    L_KED = α·CE + (1−α)·[(1−μ)·T²·KL(pred) + μ·τ²·(1/M)·Σ_m KL(exp_m)]

This is the paper's L times a positive constant (the same minimiser; at μ = 0 it is *exactly* kdviz's
``kd_loss`` at the same α, so a KED student at α = 0.5 (λ = 1) and its KD sibling differ only in the
explanation term, not in the effective learning rate).

How this differs from the paper
-------------------------------
* **Black-box teacher and student.** The paper builds *superfeature-explaining* teachers: networks with
  one subnetwork (head) per superfeature whose outputs are the explanations, trained for that purpose, and
  a matching student architecture. kdviz keeps any trained teacher and any student: ``exp_m`` is the
  model's own softmax (temperature τ) with only superfeature m kept and every other input position at the
  baseline (black pixel / series mean), computed by masking the input. The teacher's ``exp_m`` are
  computed once per training input without grad; the student's are differentiable, its M masked copies
  going through it as one batch (like saliency distillation). No architecture change, no extra parameters.
* **Superfeatures** come from :mod:`kdviz.superfeatures`: averaged |Hessian| between coarse cells or
  windows of the *trained* teacher (finite differences of gradients), Louvain, merged/split to M.
* **Defaults.** The paper's text was not available here (only its abstract could be found with the search
  tool), so its λ, μ, τ and M could not be checked. kdviz's defaults are its own: λ = 1 (α = 0.5, the demo
  zoos' mild KD), μ = 0.5 (predictions and explanations weighted equally), τ = 4 (= the KD temperature T
  of the demo zoos), M = 8 on MNIST and GunPoint (exact Shapley stays cheap for M ≤ 10).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdviz.group_explanations import group_logits

__all__ = [
    "DEFAULT_M",
    "DEFAULT_MU",
    "DEFAULT_TAU",
    "alpha_from_lambda",
    "explanation_kl",
    "ked_explanation_loss",
    "ked_loss",
    "lambda_from_alpha",
]

DEFAULT_MU = 0.5  # share of the distillation weight on explanations (not checked against the paper)
DEFAULT_TAU = 4.0  # explanation temperature τ (not checked against the paper)
DEFAULT_M = 8  # superfeatures per input (not checked against the paper)


def alpha_from_lambda(lam: float) -> float:
    """kdviz's α (hard-label weight) for the paper's λ: ``α = 1/(1+λ)``."""
    if not lam >= 0:
        raise ValueError(f"lambda must be ≥ 0, got {lam}")
    return 1.0 / (1.0 + lam)


def lambda_from_alpha(alpha: float) -> float:
    """The paper's λ for kdviz's α: ``λ = (1−α)/α`` (α = 0.5 → λ = 1)."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    return (1.0 - alpha) / alpha


def explanation_kl(student_group_logits: torch.Tensor, teacher_group_logits: torch.Tensor, *, tau: float) -> torch.Tensor:
    """``τ²·(1/M)·Σ_m KL(softmax(t_m/τ) ‖ softmax(s_m/τ))`` averaged over the batch; inputs (N, M, C) logits."""
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    if student_group_logits.shape != teacher_group_logits.shape or student_group_logits.ndim != 3:
        raise ValueError(f"group logits must both be (N, M, C), got {tuple(student_group_logits.shape)} and "
                         f"{tuple(teacher_group_logits.shape)}")
    n, m = student_group_logits.shape[:2]
    kl = F.kl_div(F.log_softmax(student_group_logits / tau, dim=2),
                  F.log_softmax(teacher_group_logits.detach() / tau, dim=2), reduction="sum", log_target=True)
    return (tau * tau) * kl / (n * m)


def ked_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    student_group_logits: torch.Tensor | None,
    teacher_group_logits: torch.Tensor | None,
    *,
    alpha: float,
    mu: float,
    temperature: float,
    tau: float,
) -> torch.Tensor:
    """``α·CE + (1−α)·[(1−μ)·T²·KL(pred) + μ·τ²·(1/M)·Σ_m KL(exp_m)]`` (the paper's L / (1+λ), λ = (1−α)/α).

    The group logits (N', M, C) may cover a subset of the batch (the first N' inputs): explanations cost M
    forwards per input. With μ = 0 they may be None and this is exactly ``kdviz.distill.kd_loss``.
    """
    from kdviz.distill import kd_loss

    if not 0.0 <= mu <= 1.0:
        raise ValueError(f"mu must be in [0, 1], got {mu}")
    pred = kd_loss(student_logits, teacher_logits, targets, alpha=alpha, temperature=temperature)
    if mu == 0.0:
        return pred
    if student_group_logits is None or teacher_group_logits is None:
        raise ValueError(f"group logits of student and teacher are required when mu > 0 (mu={mu})")
    ce = F.cross_entropy(student_logits, targets)
    # pred = α·CE + (1−α)·T²·KL; keep its CE and reweight its KL by (1−μ)
    return (1.0 - mu) * pred + mu * alpha * ce + (1.0 - alpha) * mu * explanation_kl(
        student_group_logits, teacher_group_logits, tau=tau)


def ked_explanation_loss(
    student: nn.Module,
    teacher_group_logits: torch.Tensor,
    x: torch.Tensor,
    *,
    labels: np.ndarray | torch.Tensor,
    tau: float,
    baseline: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """The explanation term ``τ²·(1/M)·Σ_m KL(exp_m^T ‖ exp_m^S)`` for a batch ``x``: the student's M
    masked copies go through it as one batch (differentiable); the teacher's group logits come precomputed."""
    student_groups = group_logits(student, x, labels=labels, baseline=baseline)
    return explanation_kl(student_groups, teacher_group_logits, tau=tau)
