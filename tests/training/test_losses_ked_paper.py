"""kdviz.training.losses: the KED loss as the authors build it (ked_paper_loss, kd_paper_loss)."""

from __future__ import annotations

import numpy as np
import torch

from kdviz.training.losses import ExplainedOutputs, kd_loss, kd_paper_loss, ked_paper_loss


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float((p * np.log(p / q)).sum(-1).mean())


def test_ked_loss_equals_a_hand_computation() -> None:
    """(1−λ)·CE + λ(1−μ)·T²·KL(t‖s) + Σ_i (λμ/M)·τ²·KL(b_i^T‖b_i^S), softened as softmax(log p / T)."""
    rng = np.random.default_rng(0)
    n, m, c = 5, 3, 4
    sb = np.log(_softmax(rng.normal(size=(n, m, c))))  # student branch log-probabilities
    tb = np.log(_softmax(rng.normal(size=(n, m, c))))
    prior = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    s_logits = sb.sum(1) - (m - 1) * prior
    t_logits = tb.sum(1) - (m - 1) * prior
    y = rng.integers(0, c, size=n)
    lam, mu, T, tau = 0.7, 0.7, 10.0, 10.0
    ce = float(-np.log(_softmax(s_logits)[np.arange(n), y]).mean())
    soft = lambda logp, temp: _softmax(logp / temp)  # noqa: E731  (the authors' custom_T)
    kl_pred = _kl(soft(np.log(_softmax(t_logits)), T), soft(np.log(_softmax(s_logits)), T))
    kl_branch = sum(_kl(soft(tb[:, i], tau), soft(sb[:, i], tau)) for i in range(m))
    expected = (1 - lam) * ce + lam * (1 - mu) * T**2 * kl_pred + lam * mu / m * tau**2 * kl_branch
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    got = ked_paper_loss(ExplainedOutputs(t(s_logits), t(sb)), ExplainedOutputs(t(t_logits), t(tb)), torch.tensor(y),
                         lam=lam, mu=mu, temperature=T, tau=tau)
    assert abs(float(got) - expected) < 1e-10


def test_ked_loss_gradient_reaches_the_student_only() -> None:
    torch.manual_seed(0)
    sb = torch.log_softmax(torch.randn(4, 2, 3), -1).requires_grad_(True)
    tb = torch.log_softmax(torch.randn(4, 2, 3), -1).requires_grad_(True)
    loss = ked_paper_loss(ExplainedOutputs(sb.sum(1), sb), ExplainedOutputs(tb.sum(1), tb), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert sb.grad is not None and sb.grad.abs().sum() > 0
    assert tb.grad is None


def test_kd_paper_loss_is_kd_loss_at_alpha_one_minus_lambda() -> None:
    torch.manual_seed(0)
    s, t, y = torch.randn(6, 5), torch.randn(6, 5), torch.randint(0, 5, (6,))
    torch.testing.assert_close(kd_paper_loss(s, t, y, lam=0.7, temperature=10.0),
                               kd_loss(s, t, y, alpha=0.3, temperature=10.0))


def test_ked_loss_at_lambda_zero_is_cross_entropy() -> None:
    torch.manual_seed(1)
    sb = torch.log_softmax(torch.randn(4, 2, 3), -1)
    tb = torch.log_softmax(torch.randn(4, 2, 3), -1)
    y = torch.tensor([0, 1, 2, 0])
    torch.testing.assert_close(ked_paper_loss(ExplainedOutputs(sb.sum(1), sb), ExplainedOutputs(tb.sum(1), tb), y, lam=0.0),
                               torch.nn.functional.cross_entropy(sb.sum(1), y))
