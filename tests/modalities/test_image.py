"""kdviz.modalities.image: removing superpixels against each baseline."""

from __future__ import annotations

import numpy as np
import pytest

from kdviz.errors import InvalidInputError
from kdviz.modalities import get_modality
from kdviz.modalities.parts import grid_labels


def test_removed_parts_take_the_baseline_and_the_rest_is_untouched():
    plugin = get_modality("image")
    x = np.random.default_rng(0).random((2, 3, 4, 4)).astype(np.float32)
    labels = np.broadcast_to(grid_labels(4, 4, rows=2, cols=2), (2, 4, 4))
    removed = np.array([[True, False, False, False], [False, False, False, True]])
    part = labels == np.where(removed)[1][:, None, None]  # the removed cell of each image
    for baseline, want in ((0.5, np.full_like(x, 0.5)), ("zero", np.zeros_like(x)),
                           ("mean", np.broadcast_to(x.mean(axis=(2, 3), keepdims=True), x.shape))):
        out = plugin.remove_parts(x, labels, removed, baseline)
        for i in range(2):
            np.testing.assert_allclose(out[i][:, part[i]], want[i][:, part[i]], rtol=1e-6)
            np.testing.assert_array_equal(out[i][:, ~part[i]], x[i][:, ~part[i]])
    blurred = plugin.remove_parts(x, labels, removed, "blur:1")
    assert blurred.dtype == x.dtype and not np.allclose(blurred[0][:, part[0]], x[0][:, part[0]])
    np.testing.assert_array_equal(blurred[0][:, ~part[0]], x[0][:, ~part[0]])
    with pytest.raises(InvalidInputError, match="baseline"):
        plugin.remove_parts(x, labels, removed, "linear")
