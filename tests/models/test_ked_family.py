"""The KED explaining architectures (kdviz/models/ked_family.py): parameter counts, branches, registry names."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kdviz.models import create_model
from kdviz.models.ked_family import (
    ExplainingMLP,
    branch_mlp_params,
    explaining_mlp_name,
    is_explaining,
    mlp_params,
    solve_branch_width,
    solve_resnet_branch_filters,
)


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("width", "m"), [(20, 2), (20, 4), (60, 4), (500, 4)])
def test_ked_and_kd_students_have_the_same_parameter_count(width: int, m: int) -> None:
    """The solved branch width is the largest whose count does not exceed the plain MLP's (the authors'
    ``solve``); the count is exactly the quadratic's, measured on the built modules."""
    plain = create_model(f"mlp_h{width}", num_classes=10, in_channels=1)
    name = explaining_mlp_name(width, m=m)
    explaining = create_model(name, num_classes=10, in_channels=1)
    h = int(name.rsplit("_h", 1)[1])
    assert _count(plain) == mlp_params(784, width, 10)
    assert _count(explaining) == branch_mlp_params(784, h, 10, m)
    assert _count(explaining) <= _count(plain) < branch_mlp_params(784, h + 1, 10, m)
    assert (_count(plain) - _count(explaining)) / _count(plain) < 0.02


def test_solver_matches_the_authors_quadratic() -> None:
    """Fashion-MNIST student 784-60-60-10 (51,370 parameters), M = 4: positive root 49.7 → 49 (their int())."""
    a, b, c = 4, 4 * (2 + 10) + 784, 4 * 10 - 51370
    root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert solve_branch_width(51370, d=784, c=10, m=4) == int(root) == 49


def test_branches_see_only_their_superfeature_and_combine_with_the_prior() -> None:
    torch.manual_seed(0)
    model = create_model("ked_mlp_m3_h5", num_classes=4, in_channels=1, input_size=12)
    assert isinstance(model, ExplainingMLP) and is_explaining(model)
    labels = np.array([2, 0, 1, 0, 2, 1, 1, 0, 2, 2, 0, 1])
    prior = np.log([0.1, 0.2, 0.3, 0.4])
    model.set_superfeatures(labels, prior, generator=torch.Generator().manual_seed(1))
    x = torch.randn(6, 1, 12)
    lp = model.branch_log_probs(x)
    assert lp.shape == (6, 3, 4)
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(6, 3))
    torch.testing.assert_close(model(x), lp.sum(1) - 2 * torch.tensor(prior, dtype=torch.float32))
    changed = x.clone()
    changed[..., labels != 1] += torch.randn(int((labels != 1).sum()))
    lp2 = model.branch_log_probs(changed)
    torch.testing.assert_close(lp2[:, 1], lp[:, 1])  # branch 1 sees only superfeature 1
    assert not torch.allclose(lp2[:, 0], lp[:, 0])


def test_set_superfeatures_rejects_a_labelling_that_leaves_a_branch_empty() -> None:
    model = create_model("ked_mlp_m3_h4", num_classes=2, in_channels=1, input_size=6)
    with pytest.raises(ValueError, match="every superfeature"):
        model.set_superfeatures(np.array([0, 0, 1, 1, 0, 1]), np.log([0.5, 0.5]))


def test_checkpoint_round_trip_keeps_superfeatures_and_prior(tmp_path) -> None:
    from kdviz.io.checkpoints import load_checkpoint
    from kdviz.io.zoo.manifest import save_weights

    model = create_model("ked_mlp_m2_h3", num_classes=10, in_channels=1)
    labels = (np.arange(784) % 7 == 0).astype(np.int64)
    model.set_superfeatures(labels, np.log(np.full(10, 0.1)))
    save_weights(model, tmp_path / "m.safetensors", dtype=torch.float32)
    loaded = load_checkpoint(tmp_path / "m.safetensors", arch="ked_mlp_m2_h3", num_classes=10, in_channels=1).module
    assert torch.equal(loaded.superfeatures, torch.as_tensor(labels))
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model(x))


def test_explaining_resnet_branches_and_filter_solver() -> None:
    plain = _count(create_model("resnet8", num_classes=10, in_channels=1))
    f = solve_resnet_branch_filters(plain, depth=8, m=4, num_classes=10, in_channels=1)
    model = create_model(f"ked_resnet8_m4_f{f}", num_classes=10, in_channels=1)
    bigger = create_model(f"ked_resnet8_m4_f{f + 1}", num_classes=10, in_channels=1)
    assert _count(model) <= plain < _count(bigger)
    model.eval()
    logits, lp = model.forward_with_branches(torch.rand(2, 1, 28, 28))
    assert lp.shape == (2, 4, 10)
    torch.testing.assert_close(logits, lp.sum(1))
