"""Training KED's networks the way its authors do (GitHub ``scbwn/ked``, ``notMNIST.ipynb`` / ``MNIST.ipynb``).

One loop for every model of a KED study, so plain, KD and KED students differ only in their loss:

* ``ce``: cross-entropy (teachers, plain students);
* ``kd``: :func:`kdviz.training.losses.kd_paper_loss`, ``(1−λ)·CE + λ·T²·KL``, from a *plain* teacher;
* ``ked``: :func:`kdviz.training.losses.ked_paper_loss` from an *explaining* teacher, student explaining too.

The teacher's outputs (total logits and, for KED, branch log-probabilities) are computed once per training
input (no augmentation, as in the authors' MLP notebooks). The authors' MLPs train with Keras' Adam at its
defaults (lr 1e-3, no weight decay), batch 500 for teachers and 100 for students, 100 epochs; their CNNs with
SGD + Nesterov (momentum 0.9), L2 5e-4 and a step schedule. :class:`PaperRecipe` holds either; the learning
rate stays constant (Keras' default for the MLPs). The test split is only reported, once per epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from kdviz.errors import InvalidInputError
from kdviz.io.builtin_datasets import Dataset
from kdviz.training.inference import eval_branches, eval_logits
from kdviz.training.losses import (
    KED_LAMBDA,
    KED_MU,
    KED_T,
    KED_TAU,
    ExplainedOutputs,
    kd_paper_loss,
    ked_paper_loss,
)

__all__ = ["PaperMethod", "PaperRecipe", "PaperResult", "class_log_prior", "train_paper"]

PaperMethod = Literal["ce", "kd", "ked"]


@dataclass(frozen=True)
class PaperRecipe:
    """One training recipe; defaults are the authors' MLP student settings except the epoch count."""

    epochs: int = 30  # the authors train 100; kdviz stops where test accuracy has levelled off
    batch_size: int = 100  # students 100, teachers 500
    optimizer: Literal["adam", "sgd"] = "adam"  # MLPs: Keras Adam defaults; CNNs: SGD + Nesterov
    lr: float = 1e-3
    momentum: float = 0.9  # SGD only (Nesterov)
    weight_decay: float = 0.0  # CNNs: 5e-4
    lam: float = KED_LAMBDA
    mu: float = KED_MU
    temperature: float = KED_T
    tau: float = KED_TAU
    seed: int = 0  # batch order (model init: the caller seeds create_model)
    max_train: int | None = None  # first n training inputs only (tests)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise InvalidInputError(f"epochs and batch_size must be ≥ 1, got {self.epochs}, {self.batch_size}")
        if self.optimizer not in ("adam", "sgd"):
            raise InvalidInputError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")


@dataclass(frozen=True)
class PaperResult:
    """Test accuracy after the last epoch, wall seconds, and the per-epoch curves (reporting only)."""

    test_accuracy: float
    seconds: float
    accuracy_curve: tuple[float, ...] = field(default_factory=tuple)
    loss_curve: tuple[float, ...] = field(default_factory=tuple)


def class_log_prior(teacher: nn.Module, x: torch.Tensor) -> np.ndarray:
    """``log`` of the teacher's mean predicted class distribution over ``x`` (the authors' ``base_logit``)."""
    logits = eval_logits(teacher, x)
    return np.log(torch.softmax(logits.double(), dim=1).mean(dim=0).numpy())


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    logits = eval_logits(model, x)
    return float((logits.argmax(1) == y).double().mean())


def _check(model: nn.Module, method: PaperMethod, teacher: nn.Module | None) -> None:
    if method not in ("ce", "kd", "ked"):
        raise InvalidInputError(f"method must be 'ce', 'kd' or 'ked', got {method!r}")
    if method != "ce" and teacher is None:
        raise InvalidInputError(f"method={method!r} needs a teacher")
    if method == "ked" and not (hasattr(model, "forward_with_branches") and hasattr(teacher, "forward_with_branches")):
        raise InvalidInputError("method='ked' needs explaining networks (forward_with_branches) as student and teacher")


def _teacher_targets(model: nn.Module, teacher: nn.Module | None, x: torch.Tensor,
                     method: PaperMethod) -> ExplainedOutputs | None:
    """The frozen teacher's logits (and branch log-probabilities for ``ked``) on every training input."""
    if teacher is None or method == "ce":
        return None
    for p in teacher.parameters():
        p.requires_grad_(False)
    if method != "ked":
        return ExplainedOutputs(eval_logits(teacher, x))
    t_logits, t_branches = eval_branches(teacher, x)
    with torch.no_grad():
        _, probe = model.forward_with_branches(x[:2])  # type: ignore[operator]
    if probe.shape[1] != t_branches.shape[1]:
        raise InvalidInputError(f"student has {probe.shape[1]} branches, teacher {t_branches.shape[1]}")
    return ExplainedOutputs(t_logits, t_branches)


def _optimiser(model: nn.Module, recipe: PaperRecipe) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=True,
                           weight_decay=recipe.weight_decay)


def _loss(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, target: ExplainedOutputs | None,
          method: PaperMethod, recipe: PaperRecipe) -> torch.Tensor:
    """One batch's loss; ``target`` is the teacher's outputs on the same inputs."""
    if method == "ked":
        logits, lp = model.forward_with_branches(xb)  # type: ignore[operator]
        return ked_paper_loss(ExplainedOutputs(logits, lp), target, yb,  # type: ignore[arg-type]
                              lam=recipe.lam, mu=recipe.mu, temperature=recipe.temperature, tau=recipe.tau)
    if method == "kd":
        return kd_paper_loss(model(xb), target.logits, yb, lam=recipe.lam,  # type: ignore[union-attr]
                             temperature=recipe.temperature)
    return torch.nn.functional.cross_entropy(model(xb), yb)


def train_paper(
    model: nn.Module,
    ds: Dataset,
    recipe: PaperRecipe,
    *,
    method: PaperMethod,
    teacher: nn.Module | None = None,
    log: bool = False,
) -> PaperResult:
    """Train ``model`` in place on ``ds``'s training split with ``method``; returns the last epoch's result.

    ``kd`` and ``ked`` need ``teacher`` (kept in eval mode, never updated); ``ked`` needs explaining
    networks (``forward_with_branches``) on both sides with the same number of branches.
    """
    _check(model, method, teacher)
    start = time.perf_counter()
    x = torch.from_numpy(ds.model_input(ds.x_train[: recipe.max_train]))
    y = torch.from_numpy(np.array(ds.y_train[: recipe.max_train]))
    x_test = torch.from_numpy(ds.model_input(ds.x_test))
    y_test = torch.from_numpy(np.array(ds.y_test))
    targets = _teacher_targets(model, teacher, x, method)
    opt = _optimiser(model, recipe)
    gen = torch.Generator().manual_seed(recipe.seed)
    acc_curve: list[float] = []
    loss_curve: list[float] = []
    n = len(y)
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for s in range(0, n, recipe.batch_size):
            idx = order[s : s + recipe.batch_size]
            target = None if targets is None else ExplainedOutputs(
                targets.logits[idx], None if targets.explanations is None else targets.explanations[idx])
            loss = _loss(model, x[idx], y[idx], target, method, recipe)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        loss_curve.append(round(total / n, 6))
        acc_curve.append(round(_accuracy(model, x_test, y_test), 6))
        if log:
            print(f"  epoch {epoch}/{recipe.epochs} loss {loss_curve[-1]:.4f} test {acc_curve[-1]:.4f} "
                  f"({time.perf_counter() - start:.0f}s)", flush=True)
    model.eval()
    return PaperResult(acc_curve[-1], round(time.perf_counter() - start, 2), tuple(acc_curve), tuple(loss_curve))
