"""Group explanations: exact Shapley against captum's exact ShapleyValues, efficiency, symmetry, sampling, exp_m."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import ShapleyValues
from torch import nn

from kdviz.attribution.groups import (
    explain_groups,
    group_distributions,
    group_logits,
    group_shapley,
    shapley_exact,
    shapley_sampled,
)

LABELS6 = np.array([0, 0, 1, 1, 2, 3, 4, 5, 5, 4, 3, 2])  # 6 groups over 12 timesteps, two positions each


def _net(length: int = 12, classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(length, 16), nn.Tanh(), nn.Linear(16, classes)).eval()


def _x(n: int = 4, length: int = 12) -> torch.Tensor:
    return torch.randn(n, 1, length, generator=torch.Generator().manual_seed(1))


def test_exact_matches_captum_shapley_values():
    net, x = _net(), _x()
    target = torch.tensor([0, 1, 2, 0])
    ours = shapley_exact(net, x, labels=LABELS6, target=target, baseline=0.3)
    ref = ShapleyValues(net).attribute(x, baselines=0.3, target=target,
                                       feature_mask=torch.as_tensor(LABELS6).view(1, 1, -1))
    first = [int(np.flatnonzero(k == LABELS6)[0]) for k in range(6)]
    np.testing.assert_allclose(ours, ref[:, 0, first].double().numpy(), atol=1e-5)


def test_efficiency_sum_is_output_minus_baseline_output():
    net, x = _net(), _x()
    target = torch.tensor([2, 2, 1, 0])
    phi = shapley_exact(net, x, labels=LABELS6, target=target, baseline=-0.5)
    with torch.no_grad():
        full = net(x).gather(1, target.view(-1, 1)).squeeze(1)
        empty = net(torch.full_like(x, -0.5)).gather(1, target.view(-1, 1)).squeeze(1)
    np.testing.assert_allclose(phi.sum(1), (full - empty).numpy(), atol=1e-5)


class Symmetric(nn.Module):
    """f = (a + b)² + c on three groups; a and b enter symmetrically, so φ_a = φ_b when a's and b's inputs match."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, c = x[:, 0, 0:2].sum(1), x[:, 0, 2:4].sum(1), x[:, 0, 4:6].sum(1)
        return ((a + b) ** 2 + c).unsqueeze(1)


def test_symmetry_and_known_values():
    x = torch.tensor([[[1.0, 0.5, 0.5, 1.0, 2.0, 0.0]]])  # a = b = 1.5, c = 2
    phi = shapley_exact(Symmetric(), x, labels=np.array([0, 0, 1, 1, 2, 2]), target=0)
    # v(a)=v(b)=2.25, v(ab)=9: φ_a = φ_b = ½(2.25) + ½(9 − 2.25) = 4.5; φ_c = 2
    np.testing.assert_allclose(phi[0], [4.5, 4.5, 2.0], atol=1e-9)


def test_sampled_agrees_with_exact_for_six_groups():
    net, x = _net(), _x()
    exact = shapley_exact(net, x, labels=LABELS6, target=0)
    sampled = shapley_sampled(net, x, labels=LABELS6, target=0, n_samples=150, seed=0, perturbations_per_eval=128)
    assert np.abs(exact).max() > 0.05
    np.testing.assert_allclose(sampled, exact, atol=0.03 * np.abs(exact).max())  # measured: 0.9%
    again = shapley_sampled(net, x, labels=LABELS6, target=0, n_samples=150, seed=0, perturbations_per_eval=128)
    np.testing.assert_array_equal(sampled, again)


def test_group_shapley_dispatches_on_m():
    net, x = _net(length=24), _x(2, 24)
    labels = np.arange(24) // 2  # 12 groups > 10
    values, exact = group_shapley(net, x, labels=labels, target=1, n_samples=8)
    assert not exact and values.shape == (2, 12)
    values, exact = group_shapley(net, x, labels=np.arange(24) // 4, target=1)
    assert exact and values.shape == (2, 6)


def test_group_distribution_keeps_only_one_group():
    net, x = _net(), _x(2)
    logits = group_logits(net, x, labels=LABELS6, baseline=0.0)
    keep2 = torch.where(torch.as_tensor(LABELS6 == 2), x, torch.zeros_like(x))
    with torch.no_grad():
        np.testing.assert_allclose(logits[:, 2].detach().numpy(), net(keep2).numpy(), atol=1e-6)
    dist = group_distributions(net, x, labels=LABELS6, tau=2.0)
    np.testing.assert_allclose(dist.detach().sum(2).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(dist[:, 2].detach().numpy(), torch.softmax(net(keep2) / 2, 1).detach().numpy(),
                               atol=1e-6)
    dist.sum().backward()  # differentiable w.r.t. the model
    assert net[1].weight.grad is not None


def test_explain_groups_per_channel_baseline_and_shapes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 16, 4)).eval()
    x = torch.randn(3, 2, 4, 4)
    labels = (np.arange(16).reshape(4, 4) // 4)  # 4 row groups
    baseline = torch.tensor([0.5, -1.0])
    exp = explain_groups(net, x, labels=labels, tau=1.5, baseline=baseline)
    assert exp.exact and exp.shapley.shape == (3, 4) and exp.distributions.shape == (3, 4, 4)
    with torch.no_grad():
        full = net(x).gather(1, torch.as_tensor(exp.target).view(-1, 1)).squeeze(1)
        empty = net(baseline.view(1, 2, 1, 1).expand_as(x)).gather(1, torch.as_tensor(exp.target).view(-1, 1))
    np.testing.assert_allclose(exp.shapley.sum(1), (full - empty.squeeze(1)).numpy(), atol=1e-5)


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="spatial shape"):
        shapley_exact(_net(), _x(), labels=np.zeros(5, dtype=int), target=0)
