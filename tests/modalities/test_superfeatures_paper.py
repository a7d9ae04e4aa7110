"""Superfeatures as the KED authors build them (kdviz/modalities/superfeatures.py): Hessian and Louvain step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from kdviz.modalities.superfeatures import (
    LouvainCountError,
    build_paper_superfeatures,
    hessian_graph,
    log_prob_hessian,
    louvain_exact,
)


def _tiny(act: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), act, nn.Linear(5, 3))


@pytest.mark.parametrize("act", [nn.Tanh(), nn.ReLU()], ids=["tanh", "relu"])
def test_averaged_hessian_equals_autograd_functional_hessian(act: nn.Module) -> None:
    model = _tiny(act).eval()
    x = torch.randn(7, 1, 2, 3)

    def objective(flat: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(model(flat.view(1, 1, 2, 3)), dim=1).sum()

    expected = torch.stack([torch.autograd.functional.hessian(objective, xi.flatten()) for xi in x]).mean(0)
    got = log_prob_hessian(model, x, batch_size=3)
    assert got.shape == (6, 6)
    np.testing.assert_allclose(got, expected.double().numpy(), rtol=1e-5, atol=1e-7)


def test_relu_hessian_is_the_log_softmax_curvature() -> None:
    """For a ReLU net only log-softmax curves: H = −C·Jᵀ(diag p − ppᵀ)J with J the logit Jacobian."""
    model = _tiny(nn.ReLU()).eval()
    x = torch.randn(1, 1, 2, 3)
    jac = torch.autograd.functional.jacobian(lambda v: model(v.view(1, 1, 2, 3))[0], x.flatten())  # (3, 6)
    p = torch.softmax(model(x)[0], 0)
    expected = (-3 * jac.T @ (torch.diag(p) - torch.outer(p, p)) @ jac).detach()
    np.testing.assert_allclose(log_prob_hessian(model, x), expected.double().numpy(), rtol=1e-5, atol=1e-7)


def test_graph_is_symmetric_absolute_with_zero_diagonal() -> None:
    h = np.array([[1.0, -2.0], [0.5, 3.0]])
    np.testing.assert_array_equal(hessian_graph(h), [[0.0, 2.5], [2.5, 0.0]])


def _planted(*, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A two-level planted partition of 48 nodes: 4 blocks of 12 (edge probability 0.9 inside a block), paired
    into 2 super-blocks (0.25 between the two blocks of a pair), 0.02 elsewhere. Returns W, blocks, pairs."""
    rng = np.random.default_rng(seed)
    blocks = np.repeat(np.arange(4), 12)
    pairs = blocks // 2
    p = np.where(blocks[:, None] == blocks[None, :], 0.9, np.where(pairs[:, None] == pairs[None, :], 0.25, 0.02))
    w = np.triu((rng.random(p.shape) < p).astype(float), 1)
    return w + w.T, blocks, pairs


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return all(len(set(b[a == k])) == 1 for k in np.unique(a)) and len(np.unique(a)) == len(np.unique(b))


def test_louvain_step_yields_exactly_m_communities_on_a_planted_partition() -> None:
    w, blocks, _ = _planted()
    labels, resolution = louvain_exact(w, 4)
    assert labels.max() + 1 == 4 and len(np.unique(labels)) == 4
    assert _same_partition(labels, blocks)
    assert resolution == pytest.approx(1.0)


def test_louvain_steps_the_resolution_down_until_the_count_is_m() -> None:
    w, _, pairs = _planted()
    labels, resolution = louvain_exact(w, 2)
    assert len(np.unique(labels)) == 2 and _same_partition(labels, pairs)
    assert resolution < 1.0
    labels3, resolution3 = louvain_exact(w, 3)
    assert len(np.unique(labels3)) == 3 and resolution < resolution3 < 1.0


def test_louvain_gives_up_after_max_tries() -> None:
    w, _, _ = _planted()
    with pytest.raises(LouvainCountError):
        louvain_exact(w, 2, max_tries=3)


def test_build_paper_superfeatures_labels_every_pixel() -> None:
    model = _tiny(nn.Tanh()).eval()
    sf = build_paper_superfeatures(model, torch.randn(20, 1, 2, 3), m=2)
    assert sf.labels.shape == (2, 3) and sf.m == 2 and sf.base == "pixels"
    assert sorted(v for g in sf.groups for v in g) == list(range(6))
