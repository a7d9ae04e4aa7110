"""kd_loss, occlusion saliency and saliency distillation against hand-made references; a short train run."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdviz.io.builtin_datasets import load_dataset
from kdviz.models import seeded_model
from kdviz.training.loop import TrainConfig, default_config, train
from kdviz.training.losses import kd_loss, occlusion_saliency, part_masks, saliency_distillation_loss


def _logits(seed: int, n: int = 8, c: int = 5) -> torch.Tensor:
    return torch.randn(n, c, generator=torch.Generator().manual_seed(seed))


def test_kd_loss_alpha_one_is_cross_entropy() -> None:
    s, t, y = _logits(0), _logits(1), torch.arange(8) % 5
    assert torch.allclose(kd_loss(s, t, y, alpha=1.0, temperature=4.0), F.cross_entropy(s, y))
    assert torch.allclose(kd_loss(s, None, y, alpha=1.0, temperature=4.0), F.cross_entropy(s, y))


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kd_loss_alpha_zero_is_t2_kl(temperature: float) -> None:
    s, t, y = _logits(0), _logits(1), torch.arange(8) % 5
    kl = F.kl_div(F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1), reduction="batchmean")
    assert torch.allclose(kd_loss(s, t, y, alpha=0.0, temperature=temperature), temperature**2 * kl, atol=1e-6)


def test_kd_loss_mixes_linearly() -> None:
    s, t, y = _logits(0), _logits(1), torch.arange(8) % 5
    ce = kd_loss(s, t, y, alpha=1.0, temperature=4.0)
    kl = kd_loss(s, t, y, alpha=0.0, temperature=4.0)
    assert torch.allclose(kd_loss(s, t, y, alpha=0.3, temperature=4.0), 0.3 * ce + 0.7 * kl, atol=1e-6)


def test_kd_loss_gradient_reaches_only_the_student() -> None:
    s = _logits(0).requires_grad_(True)
    t = _logits(1).requires_grad_(True)
    kd_loss(s, t, torch.arange(8) % 5, alpha=0.5, temperature=4.0).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_kd_loss_rejects_bad_options() -> None:
    s, t, y = _logits(0), _logits(1), torch.arange(8) % 5
    with pytest.raises(ValueError, match="alpha"):
        kd_loss(s, t, y, alpha=1.5, temperature=4.0)
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(s, t, y, alpha=0.5, temperature=0.0)
    with pytest.raises(ValueError, match="teacher_logits"):
        kd_loss(s, None, y, alpha=0.5, temperature=4.0)


def test_part_masks_partition_series_and_images() -> None:
    seg = part_masks((150,), 10)
    assert seg.shape == (10, 150) and torch.equal(seg.sum(0), torch.ones(150, dtype=torch.long))
    assert seg[0, :15].all() and not seg[0, 15:].any()
    grid = part_masks((28, 28), 16)
    assert grid.shape == (16, 28, 28) and torch.equal(grid.sum(0), torch.ones(28, 28, dtype=torch.long))
    assert grid[5, 7:14, 7:14].all()  # row 1, column 1 of a 4×4 grid of 7×7 cells
    labels = torch.tensor([[0, 0, 1], [2, 2, 1]])
    assert part_masks((2, 3), labels).sum((1, 2)).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="parts"):
        part_masks((28, 28), 10)


def test_occlusion_saliency_matches_captum_feature_ablation() -> None:
    from captum.attr import FeatureAblation

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).eval()
    x = torch.randn(3, 1, 8, 8)
    target = torch.tensor([0, 2, 3])
    sal = occlusion_saliency(model, x, parts=4, target=target, baseline=-0.5)
    labels = (torch.arange(8).view(-1, 1) // 4) * 2 + torch.arange(8).view(1, -1) // 4
    ref = FeatureAblation(model).attribute(x, target=target, baselines=-0.5, feature_mask=labels.view(1, 1, 8, 8))
    per_part = torch.stack([ref[:, 0][:, labels == k][:, 0] for k in range(4)], dim=1)
    assert torch.allclose(sal, per_part, atol=1e-5)


def _series_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv1d(1, 8, 7, padding=3), nn.ReLU(), nn.Conv1d(8, 8, 5, padding=2), nn.ReLU(),
                         nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 3))


def _image_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 3))


CASES = [(_series_net, (8, 1, 40), 10), (_image_net, (8, 1, 12, 12), 16)]


@pytest.mark.parametrize(("make", "shape", "parts"), CASES, ids=["series", "image"])
def test_saliency_distillation_is_zero_for_the_teacher_itself(make, shape, parts) -> None:  # type: ignore[no-untyped-def]
    teacher = make(0).eval()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    loss = saliency_distillation_loss(teacher, teacher, x, parts=parts, tau=2.0, baseline=0.0)
    assert abs(float(loss.detach())) < 1e-6
    clone = copy.deepcopy(teacher)
    assert abs(float(saliency_distillation_loss(clone, teacher, x, parts=parts, tau=2.0).detach())) < 1e-6


@pytest.mark.parametrize(("make", "shape", "parts"), CASES, ids=["series", "image"])
def test_saliency_distillation_decreases_when_optimised(make, shape, parts) -> None:  # type: ignore[no-untyped-def]
    teacher, student = make(0).eval(), make(1)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(student.parameters(), lr=2e-2)
    losses = []
    for _ in range(15):
        loss = saliency_distillation_loss(student, teacher, x, parts=parts, tau=1.0, baseline=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[0] > 0
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.grad is None for p in teacher.parameters())


def test_train_config_validates_and_names_the_option() -> None:
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")  # type: ignore[arg-type]
    assert TrainConfig().method == "ce"
    assert TrainConfig(alpha=0.5).method == "kd"
    assert TrainConfig(alpha=0.5, sd_beta=1.0).method == "kd+sd"


def test_train_is_seeded_and_reports_every_epoch() -> None:
    ds = load_dataset("gunpoint")
    teacher = seeded_model("fcn_w8", seed=0, num_classes=2, in_channels=1)
    quick = dict(epochs=2, max_train=32, max_test=30, progress=False)
    train(teacher, ds, default_config("gunpoint", role="teacher", **quick))
    cfg = default_config("gunpoint", role="student", alpha=0.5, sd_beta=1.0, **quick)
    runs = []
    for _ in range(2):
        student = seeded_model("fcn_w8", seed=1, num_classes=2, in_channels=1)
        runs.append((train(student, ds, cfg, teacher=teacher), student))
    (r1, m1), (r2, m2) = runs
    assert len(r1.history) == 2 and r1.final_test_accuracy == r1.history[-1].test_accuracy
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True))
    assert not m1.training
    with pytest.raises(ValueError, match="teacher"):
        train(seeded_model("fcn_w8", seed=1, num_classes=2, in_channels=1), ds, cfg)
