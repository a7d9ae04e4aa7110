"""The training-step loop of text models: seeded, length-bucketed batches; AdamW with warm-up; resumable.

Shared by the text zoo's teacher and students (:mod:`kdviz.training.text_zoo`) so both see the same schedule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kdviz.attribution.text import Encoded

__all__ = ["BATCHES_PER_BUCKET", "StepPlan", "epoch_order", "text_accuracy", "train_steps"]


def _log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


@dataclass(frozen=True)
class StepPlan:
    """How :func:`train_steps` trains: epochs, peak learning rate, batch seed and size, checkpoint interval."""

    epochs: int
    lr: float
    seed: int
    batch_size: int
    ckpt_every: int = 100


def train_steps(model: nn.Module, params: list[nn.Parameter], n: int, plan: StepPlan,
                loss_fn: Callable[[np.ndarray], torch.Tensor], state_path: Path, *,
                lengths: np.ndarray | None = None) -> float:
    """AdamW (weight decay 0.01), linear warm-up over 10% then decay, gradient clip 1.0, over ``plan.epochs`` of
    seeded batches (:func:`epoch_order`); checkpoint to / resume from ``state_path``. Returns training seconds
    (over resumes)."""
    epochs, lr, seed, batch_size, ckpt_every = plan.epochs, plan.lr, plan.seed, plan.batch_size, plan.ckpt_every
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    from transformers import get_linear_schedule_with_warmup  # noqa: PLC0415 - transformers is optional and heavy: imported where a text model is trained

    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * total), total)
    step, seconds = 0, 0.0
    if state_path.is_file():
        state = torch.load(state_path, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step, seconds = int(state["step"]), float(state["seconds"])
        _log(f"resumed at step {step}/{total}")
    model.train()
    start = last = time.perf_counter()
    while step < total:
        epoch, j = divmod(step, steps_per_epoch)
        rows = epoch_order(n, seed=seed, epoch=epoch, batch_size=batch_size, lengths=lengths)[j]
        loss = loss_fn(rows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        step += 1
        if step % 20 == 0:
            now = time.perf_counter()
            _log(f"step {step}/{total} loss {loss.item():.4f} ({(now - last) / 20:.2f} s/step)")
            last = now
        if step % ckpt_every == 0 or step == total:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "step": step, "seconds": seconds + time.perf_counter() - start}, state_path)
    model.eval()
    return seconds + time.perf_counter() - start


BATCHES_PER_BUCKET = 50  # batches per length bucket


def epoch_order(n: int, *, seed: int, epoch: int, batch_size: int, lengths: np.ndarray | None = None) -> list[np.ndarray]:
    """The batches (row indices) of one epoch: a ``default_rng([seed, epoch])`` shuffle; with ``lengths``, each
    run of ``BATCHES_PER_BUCKET`` batches is sorted by length before it is cut into batches, and the batches are shuffled
    (less padding, same randomness of which rows meet)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    if lengths is None:
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    span = BATCHES_PER_BUCKET * batch_size
    batches = []
    for start in range(0, n, span):
        chunk = order[start:start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@torch.no_grad()
def text_accuracy(model: nn.Module, enc: Encoded, labels: np.ndarray, *, batch_size: int = 128) -> float:
    """Fraction of ``labels`` an eval-mode ``model`` predicts on ``enc``."""
    model.eval()
    hits = 0
    for s in range(0, len(labels), batch_size):
        part = enc.rows(np.arange(s, min(s + batch_size, len(labels))))
        pred = model(input_ids=part.input_ids, attention_mask=part.attention_mask).logits.argmax(1).numpy()
        hits += int((pred == labels[s:s + len(pred)]).sum())
    return hits / len(labels)
