"""kdviz.report.randomisation_figure: the teacher randomisation test drawn as Adebayo et al. draw it."""

from __future__ import annotations

import numpy as np

from kdviz.analysis.randomisation import PASS_MAX_RHO, RandomisationResult
from kdviz.report.randomisation_figure import randomisation_curve


def test_randomisation_curve_draws_the_cascade_the_independent_points_and_the_threshold() -> None:
    cascading = np.array([[0.9, 0.8, 0.7], [0.5, 0.4, 0.3], [0.2, 0.1, 0.0]])  # (blocks, inputs)
    independent = np.array([[0.9, 0.9, 0.9], [0.6, 0.6, 0.6], [0.7, 0.7, 0.7]])
    result = RandomisationResult(method="grad_cam", parts="slic:50", blocks=("fc", "layer3", "conv1"),
                                 cascading_rho=cascading, independent_rho=independent, seeds=(20_000,), n_inputs=3)
    fig = randomisation_curve(result)
    cascade, points = fig.data[0], fig.data[1]
    assert list(cascade.x) == ["trained", "fc", "+ layer3", "+ conv1"]
    np.testing.assert_allclose(cascade.y, [1.0, 0.8, 0.4, 0.1])
    np.testing.assert_allclose(points.y, [0.9, 0.6, 0.7])
    assert fig.layout.shapes[0].y0 == PASS_MAX_RHO and "passes" in fig.layout.title.text
    full_only = RandomisationResult(method="saliency", parts="grid:4x4", blocks=("fc", "layer3", "conv1"),
                                    cascading_rho=np.array([[0.9, 0.8, 0.7]]), independent_rho=np.zeros((0, 3)),
                                    seeds=(1,), n_inputs=3)
    fig = randomisation_curve(full_only)
    assert list(fig.data[0].x) == ["trained", "fully random"] and "fails" in fig.layout.title.text
