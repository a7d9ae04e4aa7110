"""One seeded training loop for every recipe: plain CE, KD, saliency distillation (SD / TSD) and KED.

The losses live in :mod:`kdviz.training.losses`; this module feeds them batches, the teacher's outputs
(computed once per training input where they do not change) and the optimiser. KED's teacher
per-superfeature logits are computed once per training input (``TrainConfig.ked``).

The loop (:func:`train`) is used by ``kdviz distill`` and by the zoo builder (:mod:`kdviz.training.zoo_build`). The
test split is only *reported* each epoch; the model returned is always the last epoch's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from kdviz.attribution.groups import group_logits
from kdviz.errors import InvalidInputError
from kdviz.io.builtin_datasets import Dataset
from kdviz.training.inference import eval_logits
from kdviz.training.losses import (
    DEFAULT_M,
    DEFAULT_MU,
    DEFAULT_TAU,
    ExplainedOutputs,
    frozen_bn_stats,
    kd_loss,
    ked_loss,
    occlusion_saliency,
    part_masks,
    saliency_distillation_loss,
)
from kdviz.vocab import Modality, TrainingMethod

__all__ = [
    "EpochLog",
    "TrainConfig",
    "TrainResult",
    "default_config",
    "evaluate_accuracy",
    "sd_baseline",
    "train",
]


# --------------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe. Defaults are the MNIST student recipe; see :func:`default_config`."""

    epochs: int = 6
    batch_size: int = 128
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.05  # peak learning rate, cosine-annealed to 0 over all steps
    momentum: float = 0.9  # SGD only
    weight_decay: float = 5e-4
    alpha: float = 1.0  # weight of the hard-label CE term (kdviz convention); 1.0 = no KD
    temperature: float = 4.0  # KD temperature T
    sd_beta: float = 0.0  # weight β of saliency distillation; 0 = off
    sd_parts: int = 16  # K: image grid cells (a square number) or time segments
    sd_tau: float = 2.0  # saliency softmax temperature τ
    sd_images_per_batch: int = 32  # SD costs K+1 forwards per image: apply it to this many per batch
    ked: bool = False  # Knowledge Explaining Distillation (kdviz.training.losses); needs superfeatures in train()
    ked_mu: float = DEFAULT_MU  # KED: share μ of the distillation weight on explanations
    ked_tau: float = DEFAULT_TAU  # KED: explanation temperature τ
    ked_m: int = DEFAULT_M  # KED: number of superfeatures M (also applied to sd_images_per_batch inputs per batch)
    sd_on_superfeatures: bool = False  # SD over the teacher's superfeatures (passed to train) instead of sd_parts
    augment_shift: int = 0  # images: random shifts of up to this many pixels; 0 = no augmentation
    max_train: int | None = None  # use only the first n training examples (quick runs)
    max_test: int | None = None  # report accuracy on the first n test examples (quick runs)
    seed: int = 0  # shuffling, augmentation and SD subsets (model init: see seeded_model)
    eval_every: int = 1  # report test accuracy every n epochs (and after the last); reporting only
    progress: bool = True  # tqdm bar

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise InvalidInputError(f"epochs must be ≥ 1, got {self.epochs}")
        if self.optimizer not in ("sgd", "adam"):
            raise InvalidInputError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise InvalidInputError(f"alpha must be in [0, 1], got {self.alpha}")
        if not self.temperature > 0:
            raise InvalidInputError(f"temperature must be > 0, got {self.temperature}")
        if self.sd_beta < 0:
            raise InvalidInputError(f"sd_beta must be ≥ 0, got {self.sd_beta}")
        if not self.sd_tau > 0:
            raise InvalidInputError(f"sd_tau must be > 0, got {self.sd_tau}")
        if not 0.0 <= self.ked_mu <= 1.0:
            raise InvalidInputError(f"ked_mu must be in [0, 1], got {self.ked_mu}")
        if not self.ked_tau > 0:
            raise InvalidInputError(f"ked_tau must be > 0, got {self.ked_tau}")
        if self.ked_m < 1:
            raise InvalidInputError(f"ked_m must be ≥ 1, got {self.ked_m}")

    @property
    def method(self) -> TrainingMethod:
        """CE, KD, KD + SD or black-box KED: the zoo manifest's vocabulary (the paper's KED is trained by
        :mod:`kdviz.training.explaining`)."""
        if self.ked:
            return TrainingMethod.KED_BLACKBOX
        if self.sd_beta > 0:
            return TrainingMethod.KD_SD
        return TrainingMethod.CE if self.alpha == 1.0 else TrainingMethod.KD


def default_config(data: str, *, role: Literal["teacher", "student"], **overrides: object) -> TrainConfig:
    """The recipe the shipped zoos use for ``data`` and ``role``; ``overrides`` replace fields."""
    key = data.lower()
    if key == "mnist":
        base = TrainConfig(epochs=8, augment_shift=2) if role == "teacher" else TrainConfig(epochs=3, sd_images_per_batch=16)
    else:  # UCR series: tiny training sets, Adam as in Fawaz et al. 2019
        base = TrainConfig(
            epochs=300 if role == "teacher" else 200,
            batch_size=16,
            optimizer="adam",
            lr=1e-3,
            weight_decay=0.0,
            sd_parts=10,
            sd_images_per_batch=16,
            eval_every=25,
        )
    return replace(base, **overrides)  # type: ignore[arg-type]


@dataclass(frozen=True)
class EpochLog:
    """One epoch's numbers (reporting only)."""

    epoch: int
    loss: float  # mean training loss
    train_accuracy: float  # on the (possibly augmented) training batches, in train mode
    test_accuracy: float  # reported only, never used to choose a model; NaN on epochs not evaluated
    lr: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """The last epoch's test accuracy, wall seconds and every epoch's numbers."""

    final_test_accuracy: float
    seconds: float
    history: tuple[EpochLog, ...] = field(default_factory=tuple)


def sd_baseline(ds: Dataset) -> torch.Tensor:
    """The occlusion baseline kdviz's SD and KED use on ``ds``, per channel in model-input space: a black pixel
    for images, the series mean (0) for z-normalised series."""
    mean = torch.tensor(ds.mean, dtype=torch.float32)
    std = torch.tensor(ds.std, dtype=torch.float32)
    return (-mean / std) if ds.task == Modality.IMAGE else torch.zeros_like(mean)


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random translation of each image by up to ``max_shift`` pixels, zero (black) fill."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    offs = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen)
    return torch.stack([padded[i, :, a : a + h, b : b + w] for i, (a, b) in enumerate(offs.tolist())])


def evaluate_accuracy(model: nn.Module, ds: Dataset, *, split: Literal["train", "test"] = "test",
                      limit: int | None = None) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode for the call) on a split, in [0, 1]."""
    x = ds.x_test if split == "test" else ds.x_train
    y = ds.y_test if split == "test" else ds.y_train
    x, y = x[:limit], y[:limit]
    logits = eval_logits(model, torch.from_numpy(ds.model_input(x)), batch_size=500)
    return float((logits.argmax(1).numpy() == y).mean())


@dataclass
class _Batches:
    """A training split in model-input space and the teacher's outputs, computed once where they do not change."""

    x_raw: torch.Tensor  # (N, C, ...) raw inputs (augmentation shifts these)
    x_norm: torch.Tensor  # (N, C, ...) normalised
    y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    baseline: torch.Tensor
    sd_parts: int | torch.Tensor
    gen: torch.Generator
    teacher: nn.Module | None = None
    superfeatures: np.ndarray | None = None
    teacher_logits: torch.Tensor | None = None  # without augmentation, once per training input
    saliency: torch.Tensor | None = None  # the teacher's SD saliency, filled as inputs are first drawn
    saliency_done: torch.Tensor | None = None
    ked_groups: torch.Tensor | None = None  # the teacher's per-superfeature logits (N, M, C)

    @property
    def n(self) -> int:
        return len(self.y)


def _sd_parts(config: TrainConfig, ds: Dataset, superfeatures: np.ndarray | None) -> int | torch.Tensor:
    """K grid cells / segments, or the teacher's superfeature labelling with ``sd_on_superfeatures``."""
    if not config.sd_on_superfeatures:
        return config.sd_parts
    if superfeatures is None or tuple(np.shape(superfeatures)) != tuple(ds.input_shape[1:]):
        raise InvalidInputError("sd_on_superfeatures needs the teacher's superfeature labelling of the input's shape")
    return torch.as_tensor(np.asarray(superfeatures), dtype=torch.long)


def _check(config: TrainConfig, ds: Dataset, teacher: nn.Module | None) -> None:
    needs_teacher = config.alpha < 1.0 or config.sd_beta > 0 or config.ked
    if needs_teacher and teacher is None:
        raise InvalidInputError(f"teacher is required for alpha={config.alpha}, sd_beta={config.sd_beta}")
    if config.augment_shift and ds.task != Modality.IMAGE:
        raise InvalidInputError("augment_shift applies to images only")


def _prepare(ds: Dataset, config: TrainConfig, teacher: nn.Module | None,
             superfeatures: np.ndarray | None) -> _Batches:
    """The training split, normalised, and the teacher's outputs that training reuses (frozen teacher)."""
    if config.ked:
        _check_ked(config, superfeatures, ds)
    sd_parts = _sd_parts(config, ds, superfeatures)
    _check(config, ds, teacher)
    x_raw = torch.from_numpy(np.array(ds.x_train[: config.max_train]))
    y = torch.from_numpy(np.array(ds.y_train[: config.max_train]))
    mean = torch.tensor(ds.mean).view(1, -1, *([1] * (x_raw.ndim - 2)))
    std = torch.tensor(ds.std).view(1, -1, *([1] * (x_raw.ndim - 2)))
    b = _Batches(x_raw=x_raw, x_norm=(x_raw - mean) / std, y=y, mean=mean, std=std, baseline=sd_baseline(ds),
                 sd_parts=sd_parts, gen=torch.Generator().manual_seed(config.seed), teacher=teacher,
                 superfeatures=superfeatures, saliency_done=torch.zeros(len(y), dtype=torch.bool))
    needs_teacher = config.alpha < 1.0 or config.sd_beta > 0 or config.ked
    if teacher is not None:
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        if not config.augment_shift and needs_teacher:
            b.teacher_logits = eval_logits(teacher, b.x_norm, batch_size=500)
            if config.sd_beta > 0:
                b.saliency = torch.zeros(b.n, part_masks(tuple(x_raw.shape[2:]), sd_parts).shape[0])
    if config.ked:
        b.ked_groups = _teacher_group_logits(teacher, b.x_norm, superfeatures, b.baseline)
    return b


def _optimiser(model: nn.Module, config: TrainConfig,
               steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """SGD with Nesterov momentum or Adam, the learning rate cosine-annealed to 0 over ``steps``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=True
        )
    else:
        opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)


def _teacher_saliency(b: _Batches, sub: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The teacher's cached SD saliency and class for the inputs ``sub`` (computed the first time each is drawn);
    (None, None) when the teacher must see the batch as it is (augmentation)."""
    if b.saliency is None or b.teacher_logits is None:
        return None, None
    todo = sub[~b.saliency_done[sub]]  # type: ignore[index]
    if len(todo):
        with torch.no_grad():
            b.saliency[todo] = occlusion_saliency(
                b.teacher, b.x_norm[todo], parts=b.sd_parts,  # type: ignore[arg-type]
                target=b.teacher_logits[todo].argmax(1), baseline=b.baseline,
            )
        b.saliency_done[todo] = True  # type: ignore[index]
    return b.saliency[sub], b.teacher_logits[sub].argmax(1)


def _sd_term(model: nn.Module, b: _Batches, xb: torch.Tensor, idx: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Saliency distillation on the batch's first ``sd_images_per_batch`` inputs."""
    sub = idx[: config.sd_images_per_batch]
    xs = xb[torch.arange(len(sub))]
    t_sal, target = _teacher_saliency(b, sub)
    with frozen_bn_stats(model):
        return saliency_distillation_loss(
            model, b.teacher, xs, parts=b.sd_parts, tau=config.sd_tau,  # type: ignore[arg-type]
            baseline=b.baseline, teacher_saliency=t_sal, target=target,
        )


def _batch_loss(model: nn.Module, b: _Batches, idx: torch.Tensor,
                config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The recipe's loss on the inputs ``idx`` and the student's logits."""
    if config.augment_shift:
        xb = (_shift(b.x_raw[idx], config.augment_shift, b.gen) - b.mean) / b.std
    else:
        xb = b.x_norm[idx]
    logits = model(xb)
    y = b.y[idx]
    t_logits = None
    if config.alpha < 1.0:
        if b.teacher_logits is not None:
            t_logits = b.teacher_logits[idx]
        else:
            with torch.no_grad():
                t_logits = b.teacher(xb)  # type: ignore[misc]
    if config.ked:
        loss = _ked_step_loss(model, b, xb, idx, ExplainedOutputs(logits), t_logits, config)
    else:
        loss = kd_loss(logits, t_logits, y, alpha=config.alpha, temperature=config.temperature)
    if config.sd_beta > 0:
        loss = loss + config.sd_beta * _sd_term(model, b, xb, idx, config)
    return loss, logits


def _epoch(model: nn.Module, b: _Batches, config: TrainConfig, opt: torch.optim.Optimizer,
           sched: torch.optim.lr_scheduler.LRScheduler, bar: tqdm) -> tuple[float, float]:
    """One pass over the shuffled split; the summed loss and the number of correct training predictions."""
    model.train()
    steps = math.ceil(b.n / config.batch_size)
    order = torch.randperm(b.n, generator=b.gen)
    total_loss = correct = 0.0
    for s in range(steps):
        idx = order[s * config.batch_size : (s + 1) * config.batch_size]
        if len(idx) < 2 and steps > 1:  # batch-norm needs ≥ 2 examples
            continue
        loss, logits = _batch_loss(model, b, idx, config)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total_loss += float(loss.detach()) * len(idx)
        correct += float((logits.argmax(1) == b.y[idx]).sum())
        bar.update(1)
    return total_loss, correct


def train(
    model: nn.Module,
    ds: Dataset,
    config: TrainConfig,
    *,
    teacher: nn.Module | None = None,
    superfeatures: np.ndarray | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``ds``'s training split with ``config``; return the last epoch's numbers.

    With ``alpha < 1`` or ``sd_beta > 0`` a ``teacher`` is required (kept in eval mode, never updated).
    Without augmentation the teacher's logits and saliencies are computed once per training example.
    """
    b = _prepare(ds, config, teacher, superfeatures)
    start = time.perf_counter()
    steps_per_epoch = math.ceil(b.n / config.batch_size)
    opt, sched = _optimiser(model, config, config.epochs * steps_per_epoch)
    history: list[EpochLog] = []
    bar = tqdm(total=config.epochs * steps_per_epoch, disable=not config.progress, leave=False,
               desc=f"{config.method} α={config.alpha}")
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        total_loss, correct = _epoch(model, b, config, opt, sched, bar)
        due = epoch % max(1, config.eval_every) == 0 or epoch == config.epochs
        test_acc = evaluate_accuracy(model, ds, limit=config.max_test) if due else float("nan")
        log = EpochLog(epoch, total_loss / b.n, correct / b.n, test_acc, lr, time.perf_counter() - t0)
        history.append(log)
        bar.set_postfix(loss=f"{log.loss:.3f}", test=f"{test_acc:.3f}")
        if config.progress and due:
            bar.write(f"epoch {epoch}/{config.epochs} loss {log.loss:.4f} train {log.train_accuracy:.4f} "
                      f"test {test_acc:.4f} ({log.seconds:.1f}s)")
    bar.close()
    model.eval()
    return TrainResult(history[-1].test_accuracy, time.perf_counter() - start, tuple(history))


# --------------------------------------------------------------------------------------------------
# Knowledge Explaining Distillation hook (the loss lives in kdviz.training.losses)


def _check_ked(config: TrainConfig, superfeatures: np.ndarray | None, ds: Dataset) -> None:
    if superfeatures is None:
        raise InvalidInputError("KED needs the teacher's superfeature labelling (superfeatures=…)")
    if tuple(np.shape(superfeatures)) != tuple(ds.input_shape[1:]):
        raise InvalidInputError(f"superfeatures have shape {np.shape(superfeatures)}, inputs {tuple(ds.input_shape[1:])}")
    if int(np.max(superfeatures)) + 1 != config.ked_m:
        raise InvalidInputError(f"superfeatures have {int(np.max(superfeatures)) + 1} groups but ked_m={config.ked_m}")
    if config.augment_shift:
        raise InvalidInputError("KED computes the teacher's explanations once per training input: no augment_shift")
    if config.sd_beta > 0:
        raise InvalidInputError("KED and saliency distillation are separate recipes: use sd_beta=0 with ked")


@torch.no_grad()
def _teacher_group_logits(teacher: nn.Module | None, x: torch.Tensor, superfeatures: np.ndarray | None,
                          baseline: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """The teacher's logits with only superfeature m kept, (N, M, C), once for every training input."""
    assert teacher is not None and superfeatures is not None
    return torch.cat([group_logits(teacher, x[i : i + batch], labels=superfeatures, baseline=baseline)
                      for i in range(0, len(x), batch)])


def _ked_step_loss(model: nn.Module, b: _Batches, xb: torch.Tensor, idx: torch.Tensor, student: ExplainedOutputs,
                   t_logits: torch.Tensor | None, config: TrainConfig) -> torch.Tensor:
    """KED loss of one batch: explanations on the first ``sd_images_per_batch`` inputs (M forwards each)."""
    assert b.ked_groups is not None and b.superfeatures is not None
    mu = config.ked_mu if config.alpha < 1.0 else 0.0  # α = 1 (λ = 0): nothing is distilled
    sub = idx[: config.sd_images_per_batch]
    s_groups = None
    if mu > 0:
        with frozen_bn_stats(model):
            s_groups = group_logits(model, xb[: len(sub)], labels=b.superfeatures, baseline=b.baseline)
    return ked_loss(ExplainedOutputs(student.logits, s_groups), ExplainedOutputs(t_logits, b.ked_groups[sub]),
                    b.y[idx], alpha=config.alpha, mu=mu, temperature=config.temperature, tau=config.ked_tau)
