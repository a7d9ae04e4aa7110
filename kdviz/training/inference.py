"""Forward passes for training's own use: a teacher's targets and a model's accuracy, in eval mode, without grad,
in batches over a whole split, as tensors.

The dashboard's forward pass (``kdviz.attribution.engine.predict_logits``) serves another purpose: one batch
under the model's lock on a chosen device, as numpy for display and metrics.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["eval_branches", "eval_logits"]


@torch.no_grad()
def _in_batches(model: nn.Module, x: torch.Tensor, batch_size: int,
                forward: Callable[[torch.Tensor], object]) -> list:
    """``forward`` over ``x`` in batches with ``model`` in eval mode; its previous mode is restored."""
    was_training = model.training
    model.eval()
    try:
        return [forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)


def eval_logits(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """Eval-mode logits (N, C) of ``model`` on ``x`` (N, ...), computed without grad ``batch_size`` at a time."""
    return torch.cat(_in_batches(model, x, batch_size, model))


def eval_branches(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """An explaining network's total logits (N, C) and branch log-probabilities (N, M, C), as :func:`eval_logits`."""
    out = _in_batches(model, x, batch_size, model.forward_with_branches)  # type: ignore[arg-type]
    return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])
