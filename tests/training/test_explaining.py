"""kdviz.training.explaining: the paper's KED training loop on a few MNIST digits with tiny MLPs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz.io.builtin_datasets import load_dataset
from kdviz.models import seeded_model
from kdviz.training.explaining import PaperRecipe, class_log_prior, train_paper


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


def test_ce_kd_and_ked_students_train_and_report_each_epoch(mnist) -> None:
    recipe = PaperRecipe(epochs=2, batch_size=50, max_train=300, seed=1)
    teacher = seeded_model("mlp_h16", seed=0, num_classes=10, in_channels=1)
    assert train_paper(teacher, mnist, recipe, method="ce").accuracy_curve.__len__() == 2
    x = torch.from_numpy(mnist.model_input(mnist.x_train[:300]))
    prior = class_log_prior(teacher, x)
    assert prior.shape == (10,) and abs(np.exp(prior).sum() - 1) < 1e-9
    labels = np.arange(784) % 2
    xt = seeded_model("ked_mlp_m2_h8", seed=0, num_classes=10, in_channels=1)
    xt.set_superfeatures(labels, prior)
    train_paper(xt, mnist, recipe, method="ce")
    kd = seeded_model("mlp_h4", seed=1, num_classes=10, in_channels=1)
    res_kd = train_paper(kd, mnist, recipe, method="kd", teacher=teacher)
    ked = seeded_model("ked_mlp_m2_h4", seed=1, num_classes=10, in_channels=1)
    ked.set_superfeatures(labels, prior)
    before = [p.detach().clone() for p in xt.parameters()]
    res_ked = train_paper(ked, mnist, recipe, method="ked", teacher=xt)
    assert all(torch.equal(a, b) for a, b in zip(before, xt.parameters(), strict=True))  # teacher untouched
    for res in (res_kd, res_ked):
        assert len(res.accuracy_curve) == 2 and 0.0 <= res.test_accuracy <= 1.0
        assert res.loss_curve[1] < res.loss_curve[0]


def test_ked_needs_explaining_networks(mnist) -> None:
    teacher = seeded_model("mlp_h4", seed=0, num_classes=10, in_channels=1)
    student = seeded_model("mlp_h4", seed=1, num_classes=10, in_channels=1)
    with pytest.raises(ValueError, match="explaining"):
        train_paper(student, mnist, PaperRecipe(epochs=1, max_train=20), method="ked", teacher=teacher)
