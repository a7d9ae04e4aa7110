"""KED loss: reduces to KD at μ = 0, no explanation loss for the teacher itself, decreases when trained."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdviz.attribution.groups import group_logits
from kdviz.training.loop import TrainConfig, train
from kdviz.training.losses import ExplainedOutputs, alpha_from_lambda, explanation_kl, kd_loss, ked_loss

LABELS = np.repeat(np.arange(4), 4)  # 4 superfeatures over 16 timesteps


def _net(seed: int, width: int = 8) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, width), nn.Tanh(), nn.Linear(width, 3))


def _batch(n: int = 12):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 16, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_lambda_and_alpha_conventions():
    assert alpha_from_lambda(1.0) == 0.5 and alpha_from_lambda(0.0) == 1.0
    assert alpha_from_lambda(3.0) == pytest.approx(0.25)  # α = 1/(1+λ)


def test_equals_kd_loss_when_mu_is_zero():
    s, t, y = torch.randn(5, 3), torch.randn(5, 3), torch.randint(0, 3, (5,))
    groups_s, groups_t = torch.randn(5, 4, 3), torch.randn(5, 4, 3)
    for alpha in (1.0, 0.5, 0.1):
        ked = ked_loss(ExplainedOutputs(s, groups_s), ExplainedOutputs(t, groups_t), y, alpha=alpha, mu=0.0,
                       temperature=4.0, tau=2.0)
        kd = kd_loss(s, t, y, alpha=alpha, temperature=4.0)
        assert float(ked) == pytest.approx(float(kd), rel=1e-6)


def test_matches_the_paper_form_divided_by_one_plus_lambda():
    s, t, y = torch.randn(6, 3), torch.randn(6, 3), torch.randint(0, 3, (6,))
    gs, gt = torch.randn(6, 4, 3), torch.randn(6, 4, 3)
    lam, mu, temp, tau = 3.0, 0.3, 4.0, 2.0
    ce = F.cross_entropy(s, y)
    kl_pred = F.kl_div(F.log_softmax(s / temp, 1), F.softmax(t / temp, 1), reduction="batchmean")
    kl_exp = np.mean([F.kl_div(F.log_softmax(gs[:, m] / tau, 1), F.softmax(gt[:, m] / tau, 1),
                               reduction="batchmean").item() for m in range(4)])
    paper = ce.item() + temp**2 * lam * (1 - mu) * kl_pred.item() + tau**2 * lam * mu * kl_exp
    ours = ked_loss(ExplainedOutputs(s, gs), ExplainedOutputs(t, gt), y, alpha=alpha_from_lambda(lam), mu=mu,
                    temperature=temp, tau=tau)
    assert float(ours) == pytest.approx(paper / (1 + lam), rel=1e-5)


def test_explanation_loss_is_zero_for_the_teacher_itself_and_positive_for_another_model():
    teacher, x = _net(0).eval(), _batch()[0]
    with torch.no_grad():
        t_groups = group_logits(teacher, x, labels=LABELS)
    own = explanation_kl(group_logits(teacher, x, labels=LABELS), t_groups, tau=2.0).detach()
    other = explanation_kl(group_logits(_net(1), x, labels=LABELS), t_groups, tau=2.0).detach()
    assert float(own) == pytest.approx(0.0, abs=1e-7)
    assert float(other) > 1e-3


def test_explanation_term_decreases_under_optimisation():
    teacher, student = _net(0).eval(), _net(1, width=4)
    x, _ = _batch(32)
    with torch.no_grad():
        t_groups = group_logits(teacher, x, labels=LABELS)
    opt = torch.optim.Adam(student.parameters(), lr=0.05)
    losses = []
    for _ in range(25):
        loss = explanation_kl(group_logits(student, x, labels=LABELS), t_groups, tau=2.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0]


def _tiny_dataset():
    from kdviz.io.builtin_datasets import Dataset

    g = np.random.default_rng(0)
    y = g.integers(0, 2, 64)
    x = (g.normal(size=(64, 1, 16)) + np.where(y[:, None, None] == 1, np.linspace(-1, 1, 16), 0)).astype(np.float32)
    return Dataset("tiny", "timeseries", x[:48], y[:48], x[48:], y[48:], ("a", "b"), (0.0,), (1.0,))


def test_training_with_ked_lowers_the_loss_and_needs_superfeatures():
    ds = _tiny_dataset()
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():
        teacher[1].weight.copy_(torch.stack([-torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16)]))
        teacher[1].bias.zero_()
    torch.manual_seed(0)
    student = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
    cfg = TrainConfig(epochs=20, batch_size=16, optimizer="adam", lr=3e-2, weight_decay=0.0, alpha=0.5, ked=True,
                      ked_m=4, ked_mu=0.5, ked_tau=2.0, sd_images_per_batch=8, progress=False)
    assert cfg.method == "ked-blackbox"
    with pytest.raises(ValueError, match="superfeature"):
        train(student, ds, cfg, teacher=teacher)
    result = train(student, ds, cfg, teacher=teacher, superfeatures=LABELS)
    assert result.history[-1].loss < 0.75 * result.history[0].loss
    with pytest.raises(ValueError, match="ked_m=3"):
        train(student, ds, TrainConfig(alpha=0.5, ked=True, ked_m=3, progress=False), teacher=teacher,
              superfeatures=LABELS)
