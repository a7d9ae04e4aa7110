"""Every distillation loss in one place: KD, saliency distillation (SD / TSD) and KED.

Definitions:

* ``L_KD = α·CE(y, s) + (1−α)·T²·KL(softmax(t/T) ‖ softmax(s/T))`` — α weights the hard-label term
  (α = 1 is plain cross-entropy, 0.5 mild KD, 0.1 strong KD).
* occlusion saliency ``sal_k = f_c(x) − f_c(x with part k set to the baseline)``, c = the teacher's class;
  ``L_SD = τ²·KL(softmax(sal_T/τ) ‖ softmax(sal_S/τ))``; total ``L = L_KD + β·L_SD``.
* KED (Knowledge Explaining Distillation): two forms, below — kdviz's black-box variant (manifest method
  ``ked-blackbox``) and the paper's own (method ``ked``, :func:`ked_paper_loss`).

KED as its authors build it (method ``ked``)
============================================

Read from GitHub ``scbwn/ked`` (``MNIST.ipynb``, ``notMNIST.ipynb``, ``kd/kd_resnet.py``): explaining teacher
and student (:mod:`kdviz.models.ked_family`), M branches each ending in a softmax ``p_i``, and::

    L = (1−λ)·CE + λ(1−μ)·T²·KL(t ‖ s at T) + Σ_i (λμ/M)·τ²·KL(branch_i^T ‖ branch_i^S at τ)

softened as ``softmax(log p / T)``, with λ = μ = 0.7, T = τ = 10 on every dataset. Their KD student:
``(1−λ)·CE + λ·T²·KL``, i.e. :func:`kd_loss` at α = 1 − λ = 0.3.

KED, black-box form (method ``ked-blackbox``)
=============================================

The paper's loss, with M superfeatures and ``exp_m`` the class distribution superfeature m alone supports::

    L = CE(y, s) + T²·λ(1−μ)·KL(p_T ‖ p_S) + τ²·λμ·(1/M)·Σ_m KL(exp_m^T ‖ exp_m^S)

kdviz trains with the same loss divided by (1 + λ), so that its weights read in kdviz's α convention
(α = weight of the hard-label term): with ``α = 1/(1+λ)``::

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
* **Superfeatures** come from :mod:`kdviz.modalities.superfeatures`: averaged |Hessian| between coarse cells or
  windows of the *trained* teacher (finite differences of gradients), Louvain, merged/split to M.
* **Defaults.** The black-box form's defaults are kdviz's own, not the paper's: λ = 1 (α = 0.5, the demo
  zoos' mild KD), μ = 0.5 (predictions and explanations weighted equally), τ = 4 (= the KD temperature T
  of the demo zoos), M = 8 on MNIST and GunPoint (exact Shapley stays cheap for M ≤ 10).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdviz.errors import InvalidInputError

__all__ = [
    "DEFAULT_M",
    "DEFAULT_MU",
    "DEFAULT_TAU",
    "KED_LAMBDA",
    "KED_MU",
    "KED_T",
    "KED_TAU",
    "ExplainedOutputs",
    "alpha_from_lambda",
    "explanation_kl",
    "frozen_bn_stats",
    "kd_loss",
    "kd_paper_loss",
    "ked_loss",
    "ked_paper_loss",
    "occlusion_saliency",
    "part_masks",
    "saliency_distillation_loss",
    "soften",
]


class ExplainedOutputs(NamedTuple):
    """A model's outputs for KED: total logits (N, C) and explanations (N', M, C), one class distribution per
    superfeature (the black-box form's group logits, the paper's branch log-probabilities); None where not needed."""

    logits: torch.Tensor
    explanations: torch.Tensor | None = None


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    targets: torch.Tensor,
    *,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """``α·CE(y, s) + (1−α)·T²·KL(softmax(t/T) ‖ softmax(s/T))``, averaged over the batch.

    ``teacher_logits`` are detached (no gradient reaches the teacher) and may be ``None`` only when
    ``alpha == 1`` (plain cross-entropy).
    """
    if not 0.0 <= alpha <= 1.0:
        raise InvalidInputError(f"alpha must be in [0, 1], got {alpha}")
    if not temperature > 0:
        raise InvalidInputError(f"temperature must be > 0, got {temperature}")
    ce = F.cross_entropy(student_logits, targets)
    if alpha == 1.0:
        return ce
    if teacher_logits is None:
        raise InvalidInputError(f"teacher_logits is required when alpha < 1 (alpha={alpha})")
    t = temperature
    kl = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits.detach() / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return alpha * ce + (1.0 - alpha) * t * t * kl


def part_masks(spatial_shape: tuple[int, ...], parts: int | torch.Tensor) -> torch.Tensor:
    """Boolean masks ``(K, *spatial_shape)``, one per part.

    ``parts`` is either an int K — K equal time segments for a series (``spatial_shape = (L,)``) or a
    √K × √K grid for an image (``(H, W)``, K a square) — or an integer label tensor of shape
    ``spatial_shape`` with values 0 … K−1.
    """
    if isinstance(parts, torch.Tensor):
        if tuple(parts.shape) != tuple(spatial_shape):
            raise InvalidInputError(f"parts labels have shape {tuple(parts.shape)}, expected {tuple(spatial_shape)}")
        k = int(parts.max()) + 1
        return parts.long().unsqueeze(0) == torch.arange(k).view(-1, *([1] * len(spatial_shape)))
    k = int(parts)
    if len(spatial_shape) == 1:
        (length,) = spatial_shape
        if not 1 <= k <= length:
            raise InvalidInputError(f"parts must be in [1, {length}] for series of length {length}, got {parts}")
        labels = torch.tensor(np.repeat(np.arange(k), [len(a) for a in np.array_split(np.arange(length), k)]))
        return labels.unsqueeze(0) == torch.arange(k).unsqueeze(1)
    if len(spatial_shape) == 2:
        g = math.isqrt(k)
        h, w = spatial_shape
        if g * g != k or g > min(h, w) or g < 1:
            raise InvalidInputError(f"parts must be a square number (g×g grid, g ≤ {min(h, w)}) for images, got {parts}")
        rows = torch.tensor(np.repeat(np.arange(g), [len(a) for a in np.array_split(np.arange(h), g)]))
        cols = torch.tensor(np.repeat(np.arange(g), [len(a) for a in np.array_split(np.arange(w), g)]))
        labels = rows.view(-1, 1) * g + cols.view(1, -1)
        return labels.unsqueeze(0) == torch.arange(k).view(-1, 1, 1)
    raise InvalidInputError(f"inputs must be (N, C, L) or (N, C, H, W); spatial shape {tuple(spatial_shape)}")


def _occluded_batch(
    x: torch.Tensor, masks: torch.Tensor, baseline: float | torch.Tensor
) -> torch.Tensor:
    """``(N·(K+1), C, …)``: each input followed by its K occluded copies."""
    n, c = x.shape[:2]
    k = masks.shape[0]
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    if base.ndim == 1:  # per-channel baseline
        base = base.view(1, 1, -1, *([1] * (x.ndim - 2)))
    m = masks.to(x.device).unsqueeze(1).unsqueeze(0)  # (1, K, 1, *spatial)
    occluded = torch.where(m, base, x.unsqueeze(1))  # (N, K, C, *spatial)
    return torch.cat([x.unsqueeze(1), occluded], dim=1).reshape(n * (k + 1), c, *x.shape[2:])


def occlusion_saliency(
    model: nn.Module,
    x: torch.Tensor,
    *,
    parts: int | torch.Tensor,
    target: torch.Tensor | None = None,
    baseline: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """Occlusion saliency ``(N, K)``: ``f_c(x) − f_c(x with part k set to baseline)``.

    The input and its K occluded copies go through ``model`` as one batch, so the result is
    differentiable w.r.t. the model's parameters unless called under ``torch.no_grad()``.
    ``target`` (N,) is the class c per input; default: the model's own prediction.
    """
    masks = part_masks(tuple(x.shape[2:]), parts)
    k = masks.shape[0]
    out = model(_occluded_batch(x, masks, baseline)).view(x.shape[0], k + 1, -1)
    if target is None:
        target = out[:, 0].argmax(dim=1)
    picked = out.gather(2, target.view(-1, 1, 1).expand(-1, k + 1, 1)).squeeze(2)  # (N, K+1)
    return picked[:, :1] - picked[:, 1:]


def _sd_kl(sal_teacher: torch.Tensor, sal_student: torch.Tensor, tau: float) -> torch.Tensor:
    return (tau * tau) * F.kl_div(
        F.log_softmax(sal_student / tau, dim=1),
        F.log_softmax(sal_teacher / tau, dim=1),
        reduction="batchmean",
        log_target=True,
    )


def saliency_distillation_loss(
    student: nn.Module,
    teacher: nn.Module,
    x: torch.Tensor,
    *,
    parts: int | torch.Tensor,
    tau: float,
    baseline: float | torch.Tensor = 0.0,
    teacher_saliency: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
) -> torch.Tensor:
    """``L_SD = τ²·KL(softmax(sal_T/τ) ‖ softmax(sal_S/τ))`` with c = the teacher's predicted class.

    The teacher side runs under ``no_grad`` (or is passed precomputed as ``teacher_saliency`` with its
    ``target``); the student side is differentiable, its K occluded copies evaluated as one batch.
    """
    if not tau > 0:
        raise InvalidInputError(f"tau must be > 0, got {tau}")
    if teacher_saliency is None:
        with torch.no_grad():
            logits = teacher(x)
            target = logits.argmax(dim=1)
            teacher_saliency = occlusion_saliency(teacher, x, parts=parts, target=target, baseline=baseline)
    elif target is None:
        raise InvalidInputError("target (the teacher's classes) is required with teacher_saliency")
    sal_s = occlusion_saliency(student, x, parts=parts, target=target, baseline=baseline)
    return _sd_kl(teacher_saliency.detach(), sal_s, tau)


@contextmanager
def frozen_bn_stats(model: nn.Module) -> Iterator[None]:
    """Batch-norm keeps using batch statistics but does not fold the occluded copies into its running ones."""
    saved = [(m, m.momentum) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m, _ in saved:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in saved:
            m.momentum = momentum




# --------------------------------------------------------------------------------------------------
# KED (black-box form)

DEFAULT_MU = 0.5  # share of the distillation weight on explanations (kdviz's default, not the paper's)
DEFAULT_TAU = 4.0  # explanation temperature τ (kdviz's default)
DEFAULT_M = 8  # superfeatures per input (kdviz's default)


def alpha_from_lambda(lam: float) -> float:
    """kdviz's α (hard-label weight) for the paper's λ: ``α = 1/(1+λ)``."""
    if not lam >= 0:
        raise InvalidInputError(f"lambda must be ≥ 0, got {lam}")
    return 1.0 / (1.0 + lam)


def explanation_kl(student_group_logits: torch.Tensor, teacher_group_logits: torch.Tensor, *, tau: float) -> torch.Tensor:
    """``τ²·(1/M)·Σ_m KL(softmax(t_m/τ) ‖ softmax(s_m/τ))`` averaged over the batch; inputs (N, M, C) logits."""
    if not tau > 0:
        raise InvalidInputError(f"tau must be > 0, got {tau}")
    if student_group_logits.shape != teacher_group_logits.shape or student_group_logits.ndim != 3:
        raise InvalidInputError(f"group logits must both be (N, M, C), got {tuple(student_group_logits.shape)} and "
                         f"{tuple(teacher_group_logits.shape)}")
    n, m = student_group_logits.shape[:2]
    kl = F.kl_div(F.log_softmax(student_group_logits / tau, dim=2),
                  F.log_softmax(teacher_group_logits.detach() / tau, dim=2), reduction="sum", log_target=True)
    return (tau * tau) * kl / (n * m)


def ked_loss(
    student: ExplainedOutputs,
    teacher: ExplainedOutputs,
    targets: torch.Tensor,
    *,
    alpha: float,
    mu: float,
    temperature: float,
    tau: float,
) -> torch.Tensor:
    """``α·CE + (1−α)·[(1−μ)·T²·KL(pred) + μ·τ²·(1/M)·Σ_m KL(exp_m)]`` (the paper's L / (1+λ), λ = (1−α)/α).

    The explanations are group logits (N', M, C) and may cover a subset of the batch (the first N' inputs):
    explanations cost M forwards per input. With μ = 0 they may be None and this is exactly :func:`kd_loss`.
    """
    if not 0.0 <= mu <= 1.0:
        raise InvalidInputError(f"mu must be in [0, 1], got {mu}")
    pred = kd_loss(student.logits, teacher.logits, targets, alpha=alpha, temperature=temperature)
    if mu == 0.0:
        return pred
    if student.explanations is None or teacher.explanations is None:
        raise InvalidInputError(f"group logits of student and teacher are required when mu > 0 (mu={mu})")
    ce = F.cross_entropy(student.logits, targets)
    # pred = α·CE + (1−α)·T²·KL; keep its CE and reweight its KL by (1−μ)
    return (1.0 - mu) * pred + mu * alpha * ce + (1.0 - alpha) * mu * explanation_kl(
        student.explanations, teacher.explanations, tau=tau)


# --------------------------------------------------------------------------------------------------
# KED as its authors build it (arXiv 2310.02572, GitHub scbwn/ked): explaining teacher and student


KED_LAMBDA = 0.7  # the authors' λ (L in their code), every dataset
KED_MU = 0.7  # the authors' μ
KED_T = 10.0  # the authors' T (predictions)
KED_TAU = 10.0  # the authors' τ (branch explanations)


def soften(log_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """The authors' ``custom_T``: ``log softmax(log p / T)`` for log-probabilities (…, C)."""
    return F.log_softmax(log_probs / temperature, dim=-1)


def ked_paper_loss(
    student: ExplainedOutputs,
    teacher: ExplainedOutputs,
    targets: torch.Tensor,
    *,
    lam: float = KED_LAMBDA,
    mu: float = KED_MU,
    temperature: float = KED_T,
    tau: float = KED_TAU,
) -> torch.Tensor:
    """``(1−λ)·CE + λ(1−μ)·T²·KL(t ‖ s) + Σ_i (λμ/M)·τ²·KL(branch_i^T ‖ branch_i^S)``, batch means.

    Logits are the explaining networks' total logits (N, C); their explanations the branch log-probabilities
    (N, M, C). Each
    distribution is softened as ``softmax(log p / T)`` (τ for branches); for the total prediction this equals
    ``softmax(logit / T)``. Teacher tensors are detached. ``λ = 0`` is plain cross-entropy.
    """
    if not 0.0 <= lam <= 1.0 or not 0.0 <= mu <= 1.0:
        raise InvalidInputError(f"lam and mu must be in [0, 1], got lam={lam}, mu={mu}")
    if not temperature > 0 or not tau > 0:
        raise InvalidInputError(f"temperature and tau must be > 0, got {temperature}, {tau}")
    s_branches, t_branches = student.explanations, teacher.explanations
    if s_branches is None or t_branches is None or s_branches.shape != t_branches.shape or s_branches.ndim != 3:
        raise InvalidInputError(f"branch log-probabilities must both be (N, M, C), got "
                         f"{None if s_branches is None else tuple(s_branches.shape)} and "
                         f"{None if t_branches is None else tuple(t_branches.shape)}")
    n, m = s_branches.shape[:2]
    ce = F.cross_entropy(student.logits, targets)
    kl_pred = F.kl_div(soften(F.log_softmax(student.logits, dim=1), temperature),
                       soften(F.log_softmax(teacher.logits.detach(), dim=1), temperature),
                       reduction="batchmean", log_target=True)
    kl_branches = F.kl_div(soften(s_branches, tau), soften(t_branches.detach(), tau),
                           reduction="sum", log_target=True) / n  # Σ_i of per-branch batch means
    return ((1.0 - lam) * ce + lam * (1.0 - mu) * temperature**2 * kl_pred
            + (lam * mu / m) * tau**2 * kl_branches)


def kd_paper_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, *,
                  lam: float = KED_LAMBDA, temperature: float = KED_T) -> torch.Tensor:
    """The authors' KD student: ``(1−λ)·CE + λ·T²·KL(t ‖ s)`` = :func:`kd_loss` with α = 1 − λ."""
    return kd_loss(student_logits, teacher_logits, targets, alpha=1.0 - lam, temperature=temperature)
