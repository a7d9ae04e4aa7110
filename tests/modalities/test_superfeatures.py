"""Superfeatures: interaction estimates against torch's exact Hessian, Louvain groups of known functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from kdviz.modalities.superfeatures import (
    base_feature_labels,
    build_superfeatures,
    feature_interactions,
    group_features,
    load_superfeatures,
    save_superfeatures,
)


class Fn(nn.Module):
    """A hand-made scalar function of 6 series features, (N, 1, 6) -> (N, 1)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x[:, 0]).unsqueeze(1)


def interacting(v: torch.Tensor) -> torch.Tensor:
    return (v[:, 0] + v[:, 1]) ** 2 + v[:, 2] * v[:, 3] + v[:, 4]


def separable(v: torch.Tensor) -> torch.Tensor:
    return (v**2).sum(1) + torch.sin(v[:, 5])


def _inputs(n: int = 8, length: int = 6) -> torch.Tensor:
    return torch.randn(n, 1, length, generator=torch.Generator().manual_seed(0))


def test_interactions_of_the_hand_made_function_are_its_hessian():
    w = feature_interactions(Fn(interacting), _inputs(), base_labels=np.arange(6), step=0.7)
    expected = np.zeros((6, 6))
    expected[0, 1] = expected[1, 0] = 2.0  # ∂²/∂x0∂x1 (x0+x1)² = 2
    expected[2, 3] = expected[3, 2] = 1.0  # ∂²/∂x2∂x3 x2·x3 = 1
    np.testing.assert_allclose(w, expected, atol=1e-5)


def test_superfeatures_recover_the_interacting_groups_exactly():
    sf = build_superfeatures(Fn(interacting), _inputs(), base="segments:6", m=None, seed=0)
    assert sf.groups == ((0, 1), (2, 3), (4,), (5,))
    np.testing.assert_array_equal(sf.labels, [0, 0, 1, 1, 2, 3])
    assert sf.sizes == (2, 2, 1, 1)


def test_separable_function_gives_singletons():
    sf = build_superfeatures(Fn(separable), _inputs(), base="segments:6", m=None, seed=0)
    assert sf.groups == tuple((i,) for i in range(6))
    assert np.abs(sf.interactions).max() < 1e-5


def test_interactions_match_torch_hessian_on_cells():
    """A smooth network on a 4×4 image with 2×2 cells: finite differences ≈ the exact Hessian summed over cells."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Softplus(), nn.Linear(12, 3)).double()
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    cells = base_feature_labels((4, 4), "grid:2x2")
    target = net(x).argmax(1)
    w = feature_interactions(net.float(), x.float(), base_labels=cells, target=target, step=1e-2)
    net = net.double()
    onehot = np.eye(4)[cells.ravel()]  # (16, 4)
    ref = np.zeros((4, 4))
    for xi, c in zip(x, target, strict=True):
        h = torch.autograd.functional.hessian(lambda v, c=c: net(v.view(1, 1, 4, 4))[0, c], xi.reshape(-1))
        ref += np.abs(onehot.T @ h.numpy() @ onehot)
    ref /= len(x)
    np.fill_diagonal(ref, 0)
    assert ref.max() > 1e-3  # the check is not vacuous
    np.testing.assert_allclose(w, ref, rtol=2e-2, atol=1e-4)


def test_merge_and_split_to_m():
    w = np.zeros((6, 6))
    w[0, 1] = w[1, 0] = 2.0
    w[2, 3] = w[3, 2] = 1.0
    w[3, 4] = w[4, 3] = 0.1
    # Louvain: {0,1}, {2,3,4} or {2,3},{4}; merging to 2 joins the weakly linked ones, never 5 alone with 0-1
    groups = group_features(w, m=3, seed=0)
    assert len(groups) == 3 and (0, 1) in groups
    assert sorted(v for g in groups for v in g) == list(range(6))
    split = group_features(w, m=6, seed=0)
    assert split == tuple((i,) for i in range(6))
    with pytest.raises(ValueError, match="m=7"):
        group_features(w, m=7)


def test_same_seed_same_groups():
    rng = np.random.default_rng(1)
    a = rng.random((20, 20))
    w = a + a.T
    np.fill_diagonal(w, 0)
    assert group_features(w, m=5, seed=3) == group_features(w, m=5, seed=3)


def test_image_base_features_are_cells_and_labels_cover_the_image():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    sf = build_superfeatures(net, torch.randn(4, 1, 8, 8), base="grid:4x4", m=5, seed=0)
    assert sf.labels.shape == (8, 8) and sf.m == 5
    assert set(np.unique(sf.labels)) == set(range(5))
    assert sum(sf.sizes) == 64
    # each 2×2 cell lies in a single superfeature
    assert all(len(np.unique(sf.labels[sf.base_labels == g])) == 1 for g in range(16))


def test_save_and_load_round_trip(tmp_path):
    sf = build_superfeatures(Fn(interacting), _inputs(), base="segments:6", m=4, seed=0)
    record = save_superfeatures(sf, tmp_path, teacher="t")
    assert record["file"] == "superfeatures_M4.npy" and record["sizes"] == [2, 2, 1, 1]
    back = load_superfeatures(tmp_path, 4)
    np.testing.assert_array_equal(back.labels, sf.labels)
    assert back.groups == sf.groups and back.base == "segments:6"
    with pytest.raises(ValueError, match="superfeatures_M5.npy"):
        load_superfeatures(tmp_path, 5)


def test_base_feature_spec_must_fit_the_input():
    with pytest.raises(ValueError, match="grid"):
        base_feature_labels((150,), "grid:7x7")


def test_superfeature_parts_in_compare_models(tmp_path):
    """``superfeatures:M`` parts: labels from a PartSpec, or stored next to a zoo teacher's checkpoint."""
    from types import SimpleNamespace

    from kdviz.analysis.compare import CompareOptions, NullOptions, compare_models
    from kdviz.modalities.parts import PartSpec, parse_parts

    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Flatten(), nn.Linear(6, 3)).eval() for _ in range(2)]
    sf = build_superfeatures(Fn(interacting), _inputs(), base="segments:6", m=4, seed=0)
    save_superfeatures(sf, tmp_path)
    teacher = SimpleNamespace(id="t", arch="lin", alpha=1.0, module=nets[0], role="teacher", method="ce",
                              path=tmp_path / "teacher.safetensors")
    student = SimpleNamespace(id="s", arch="lin", alpha=0.5, module=nets[1], method="kd")
    x = _inputs(5)
    assert str(parse_parts("superfeatures:4")) == "superfeatures:4"
    no_null = CompareOptions(null=NullOptions(copies=0))
    by_path = compare_models(teacher, [student], x, method="saliency", parts="superfeatures:4", k=2, options=no_null)
    given = compare_models(teacher, [student], x, method="saliency", k=2, options=no_null,
                           parts=PartSpec("superfeatures", n=4, masks=sf.labels))
    np.testing.assert_array_equal(by_path.part_labels, np.broadcast_to(sf.labels, (5, 6)))
    np.testing.assert_array_equal(by_path.part_vectors["s"], given.part_vectors["s"])
    # part vectors sum the importance over each superfeature's timesteps
    imp = by_path.attributions["s"].importance
    np.testing.assert_allclose(by_path.part_vectors["s"][:, 0], imp[:, :2].sum(1))
    with pytest.raises(ValueError, match="superfeatures_M5"):
        compare_models(teacher, [student], x, method="saliency", parts="superfeatures:5", k=2, options=no_null)


def test_saliency_distillation_over_superfeatures():
    """SD training takes the superfeature labelling as its parts (K = M occluded copies per input)."""
    from kdviz.io.builtin_datasets import Dataset
    from kdviz.training.loop import TrainConfig, train
    from kdviz.training.losses import occlusion_saliency

    g = np.random.default_rng(0)
    x = g.normal(size=(40, 1, 6)).astype(np.float32)
    y = (x[:, 0, 0] + x[:, 0, 1] > 0).astype(np.int64)
    ds = Dataset("tiny", "timeseries", x[:32], y[:32], x[32:], y[32:], ("a", "b"), (0.0,), (1.0,))
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(6, 2)).eval()
    student = nn.Sequential(nn.Flatten(), nn.Linear(6, 2))
    labels = np.array([0, 0, 1, 1, 2, 3])
    cfg = TrainConfig(epochs=2, batch_size=8, alpha=0.5, sd_beta=1.0, sd_on_superfeatures=True, progress=False)
    with pytest.raises(ValueError, match="superfeature"):
        train(student, ds, cfg, teacher=teacher)
    train(student, ds, cfg, teacher=teacher, superfeatures=labels)
    sal = occlusion_saliency(teacher, torch.from_numpy(x[:3]), parts=torch.as_tensor(labels), target=torch.zeros(3, dtype=torch.long))
    assert sal.shape == (3, 4)
    w = teacher[1].weight[0].detach().numpy()
    np.testing.assert_allclose(sal[:, 0].detach().numpy(), x[:3, 0, :2] @ w[:2], rtol=1e-5)
