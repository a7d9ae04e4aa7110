"""kdviz.training.inference: batched eval-mode forwards without grad, the model's mode restored."""

from __future__ import annotations

import torch
from torch import nn

from kdviz.training.inference import eval_branches, eval_logits


class _Branchy(nn.Module):
    """Two branches whose log-probabilities sum to the logits (an explaining network's interface)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)

    def forward_with_branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lp = torch.stack([self.a(x).log_softmax(-1), self.b(x).log_softmax(-1)], dim=1)
        return lp.sum(1), lp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_branches(x)[0]


def test_eval_logits_equal_one_eval_forward_and_restore_the_mode() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3))
    x = torch.randn(10, 4)
    model.train()
    got = eval_logits(model, x, batch_size=3)
    assert model.training and not got.requires_grad
    model.eval()
    torch.testing.assert_close(got, model(x))


def test_eval_branches_batch_an_explaining_network() -> None:
    torch.manual_seed(1)
    model, x = _Branchy(), torch.randn(7, 4)
    logits, branches = eval_branches(model, x, batch_size=2)
    assert branches.shape == (7, 2, 3)
    torch.testing.assert_close(logits, branches.sum(1))
    torch.testing.assert_close(logits, model(x).detach())
