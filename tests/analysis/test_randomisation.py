"""Teacher randomisation test (Adebayo et al. 2018): copies, verdict rule, and known outcomes on MNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.analysis.randomisation import (
    PASS_MAX_RHO,
    RandomisationOptions,
    model_blocks,
    randomisation_test,
    randomised_copy,
    verdict,
)
from kdviz.models import seeded_model

ZOO = Path(__file__).resolve().parents[2] / "assets" / "zoo" / "mnist"


def test_model_blocks_in_forward_order() -> None:
    model = seeded_model("resnet8", seed=0, num_classes=10, in_channels=1)
    assert model_blocks(model) == ["conv1", "bn1", "layer1", "layer2", "layer3", "fc"]
    assert model_blocks(seeded_model("fcn_w8", seed=0, num_classes=2, in_channels=1)) == ["features", "fc"]


def test_randomised_copy_replaces_exactly_the_chosen_blocks() -> None:
    trained = seeded_model("resnet8", seed=1, num_classes=10, in_channels=1).eval()
    with torch.no_grad():  # make BN statistics non-default, so copying buffers is visible
        trained.layer3[0].bn1.running_mean.fill_(0.5)
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    random = seeded_model("resnet8", seed=99, num_classes=10, in_channels=1)
    out = randomised_copy(trained, random, ["fc", "layer3"])
    for name, value in out.state_dict().items():
        source = random if name.startswith(("fc.", "layer3.")) else trained
        assert torch.equal(value, source.state_dict()[name]), name
    assert all(torch.equal(v, before[k]) for k, v in trained.state_dict().items())  # original untouched
    assert not out.training
    with pytest.raises(ValueError, match="not children"):
        randomised_copy(trained, random, ["layer9"])


def test_verdict_rule_threshold() -> None:
    assert verdict(PASS_MAX_RHO) == "passes" and verdict(0.1) == "passes"
    assert verdict(PASS_MAX_RHO + 0.01) == "fails"
    assert verdict(float("nan")) == "undefined"


@pytest.fixture(scope="module")
def mnist_digits():
    from kdviz.io.builtin_datasets import load_dataset
    from kdviz.io.zoo.manifest import load_zoo
    from kdviz.modalities.parts import slic_labels

    zoo = load_zoo(ZOO)
    ds = load_dataset("mnist")
    display = ds.x_test[:12]
    return zoo.get("resnet8_a0.5"), ds.model_input(display), slic_labels(display, n_segments=50)


@pytest.mark.slow
def test_flags_input_x_gradient_and_passes_grad_cam_on_mnist(mnist_digits) -> None:
    """Known outcomes: gradient × input maps of MNIST digits follow the strokes whatever the weights
    (Adebayo et al.), Grad-CAM's follow the trained weights."""
    model, x, labels = mnist_digits
    ixg = randomisation_test(model.module, model.arch, x, part_labels=labels, method="input_x_gradient",
                             options=RandomisationOptions(seeds=(20_000,), parts_name="slic:50"))
    cam = randomisation_test(model.module, model.arch, x, part_labels=labels, method="grad_cam",
                             options=RandomisationOptions(seeds=(20_000,), parts_name="slic:50"))
    assert ixg.blocks == ("fc", "layer3", "layer2", "layer1", "bn1", "conv1")
    assert ixg.cascading_rho.shape == ixg.independent_rho.shape == (6, 12)
    assert ixg.verdict == "fails" and ixg.full_rho > 0.6, ixg.cascading_means()
    assert cam.verdict == "passes" and cam.full_rho < PASS_MAX_RHO, cam.cascading_means()
    # re-initialising from the top lowers Grad-CAM's ρ (from 1 for the trained model) on average over inputs,
    # and far below what the same cascade leaves of gradient × input's
    assert np.all(cam.cascading_means() < 0.75)
    assert cam.cascading_means().mean() < ixg.cascading_means().mean() - 0.3
    assert "fails on this data" in ixg.explanation() and "passes" in cam.explanation()


def test_full_only_equals_the_last_cascading_step() -> None:
    from kdviz.modalities.parts import grid_labels

    model = seeded_model("resnet8", seed=5, num_classes=10, in_channels=1).eval()
    x = np.random.default_rng(0).normal(size=(4, 1, 16, 16)).astype(np.float32)
    labels = np.broadcast_to(grid_labels(16, 16, rows=4, cols=4), (4, 16, 16)).copy()
    full = randomisation_test(model, "resnet8", x, part_labels=labels, method="saliency",
                              options=RandomisationOptions(seeds=(7,)))
    quick = randomisation_test(model, "resnet8", x, part_labels=labels, method="saliency",
                               options=RandomisationOptions(seeds=(7,), full_only=True))
    assert quick.cascading_rho.shape == (1, 4) and quick.independent_rho.shape == (0, 4)
    np.testing.assert_allclose(quick.cascading_rho[0], full.cascading_rho[-1])
    assert quick.verdict == full.verdict and quick.full_rho == pytest.approx(full.full_rho)


def test_explanation_of_a_single_input_gives_no_interval() -> None:
    from kdviz.analysis.randomisation import RandomisationResult

    one = RandomisationResult(method="grad_cam", parts="grid:4x4", blocks=("fc", "conv1"),
                              cascading_rho=np.array([[0.6], [0.3]]), independent_rho=np.array([[0.7], [0.4]]),
                              seeds=(1,), n_inputs=1)
    assert one.verdict == "passes" and "nan" not in one.explanation()
    assert "no interval from 1 input" in one.explanation()


def test_an_interval_straddling_the_threshold_is_undecided() -> None:
    """Issue 23 item 9: mean ρ 0.47 with an interval reaching past 0.5 is not shown as a plain pass."""
    from kdviz.analysis.randomisation import RandomisationResult

    rho = np.array([[0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.65, 0.5]])
    result = RandomisationResult("saliency", "slic:50", ("fc",), rho, rho, (0,), rho.shape[1])
    assert result.verdict == "passes" and result.full_rho_low <= PASS_MAX_RHO < result.full_rho_high
    assert result.undecided and result.explanation().startswith("undecided — passes on the mean")
    clear = RandomisationResult("saliency", "slic:50", ("fc",), rho * 0.3, rho * 0.3, (0,), rho.shape[1])
    assert not clear.undecided and clear.explanation().startswith("passes")
