"""kdviz.modalities.series: removing segments against each baseline, linear interpolation by hand."""

from __future__ import annotations

import numpy as np

from kdviz.modalities import get_modality
from kdviz.modalities.parts import segment_labels


def test_a_removed_segment_is_interpolated_across_the_gap():
    plugin = get_modality("series")
    x = np.array([[[0.0, 1, 9, 9, 4, 5, 6, 7]]])
    labels = segment_labels(8, n_segments=4)[None]  # [0 0 1 1 2 2 3 3]
    removed = np.array([[False, True, False, False]])
    np.testing.assert_allclose(plugin.remove_parts(x, labels, removed, "linear")[0, 0], [0, 1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_allclose(plugin.remove_parts(x, labels, removed, "zero")[0, 0], [0, 1, 0, 0, 4, 5, 6, 7])
    np.testing.assert_allclose(plugin.remove_parts(x, labels, removed, "mean")[0, 0, 2:4], [x.mean()] * 2)
    ends = np.array([[True, False, False, True]])  # past the ends the nearest kept value holds
    np.testing.assert_allclose(plugin.remove_parts(x, labels, ends, "linear")[0, 0], [9, 9, 9, 9, 4, 5, 5, 5])
    everything = np.ones((1, 4), dtype=bool)
    np.testing.assert_array_equal(plugin.remove_parts(x, labels, everything, "linear"), np.zeros_like(x))
