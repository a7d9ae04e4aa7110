"""explain_branches (kdviz/attribution/groups.py): an explaining network's own explanation, no masking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz.attribution.groups import explain_branches
from kdviz.models import create_model


def test_branch_shares_sum_to_the_total_logit_minus_the_prior() -> None:
    torch.manual_seed(0)
    model = create_model("ked_mlp_m3_h6", num_classes=5, in_channels=1, input_size=16).eval()
    prior = np.log(np.array([0.1, 0.15, 0.2, 0.25, 0.3]))
    model.set_superfeatures(np.arange(16) % 3, prior, generator=torch.Generator().manual_seed(2))
    x = torch.randn(4, 1, 16)
    exp = explain_branches(model, x, tau=10.0)
    logits = model(x).detach()
    c = logits.argmax(1)
    assert exp.shapley.shape == (4, 3) and exp.exact
    np.testing.assert_array_equal(exp.target, c.numpy())
    np.testing.assert_allclose(exp.shapley.sum(1), (logits[torch.arange(4), c] - torch.tensor(prior)[c]).numpy(),
                               rtol=1e-5, atol=1e-5)
    lp = model.branch_log_probs(x).detach()
    np.testing.assert_allclose(exp.distributions, torch.softmax(lp / 10.0, dim=2).numpy(), rtol=1e-6)


def test_plain_networks_have_no_branches() -> None:
    with pytest.raises(ValueError, match="no explaining branches"):
        explain_branches(create_model("mlp_h4", num_classes=3, in_channels=1), torch.rand(1, 1, 28, 28))
