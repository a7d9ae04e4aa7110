"""Tests for kdviz/parts.py: coverage of every pixel/timestep, contiguity, and part importance by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data, transform

from kdviz.modalities.parts import (
    grid_labels,
    mask_labels,
    part_importance,
    relabel_contiguous,
    segment_labels,
    slic_labels,
    top_k_parts,
)


def assert_partition(labels: np.ndarray, k: int | None = None) -> None:
    """Labels are 0..K-1 with every part non-empty (each pixel has exactly one label by construction)."""
    values = np.unique(labels)
    np.testing.assert_array_equal(values, np.arange(values.size))
    if k is not None:
        assert values.size == k


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), data_=st.data())
def test_grid_covers_every_pixel_once(h: int, w: int, data_) -> None:
    rows = data_.draw(st.integers(1, h))
    cols = data_.draw(st.integers(1, w))
    labels = grid_labels(h, w, rows=rows, cols=cols)
    assert labels.shape == (h, w)
    assert_partition(labels, rows * cols)
    sizes = np.bincount(labels.ravel())
    assert sizes.max() - sizes.min() <= (h // rows + 1) * (w // cols + 1) - (h // rows) * (w // cols)


def test_grid_by_hand() -> None:
    np.testing.assert_array_equal(
        grid_labels(4, 4, rows=2, cols=2),
        [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]],
    )
    with pytest.raises(ValueError, match="rows=5"):
        grid_labels(4, 4, rows=5, cols=2)
    with pytest.raises(ValueError, match="cols=0"):
        grid_labels(4, 4, rows=2, cols=0)


@settings(max_examples=40, deadline=None)
@given(length=st.integers(1, 300), data_=st.data())
def test_segments_cover_every_timestep_once(length: int, data_) -> None:
    k = data_.draw(st.integers(1, length))
    labels = segment_labels(length, n_segments=k)
    assert labels.shape == (length,)
    assert_partition(labels, k)
    assert np.all(np.diff(labels) >= 0)  # contiguous in time
    sizes = np.bincount(labels)
    assert sizes.max() - sizes.min() <= 1


def test_segments_by_hand_and_errors() -> None:
    np.testing.assert_array_equal(segment_labels(6, n_segments=3), [0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="n_segments=7"):
        segment_labels(6, n_segments=7)


@pytest.fixture
def rgb_images() -> np.ndarray:
    img = transform.resize(data.astronaut(), (48, 48), anti_aliasing=True)  # float in [0, 1]
    return np.stack([img, img[::-1]])


def test_slic_rgb_and_grey_are_contiguous(rgb_images: np.ndarray) -> None:
    for labels in (
        slic_labels(rgb_images, n_segments=20),  # (N, H, W, 3)
        slic_labels(rgb_images.mean(axis=-1), n_segments=20),  # grey (N, H, W)
        slic_labels(rgb_images[..., :1] * 255, n_segments=20),  # grey (N, H, W, 1), any intensity range
    ):
        assert labels.shape == (2, 48, 48) and labels.dtype == np.int64
        for lab in labels:
            assert_partition(lab)
            assert 5 <= lab.max() + 1 <= 60


def test_slic_channel_first_equals_channel_last(rgb_images: np.ndarray) -> None:
    last = slic_labels(rgb_images, n_segments=20)
    first = slic_labels(np.moveaxis(rgb_images, -1, 1), n_segments=20)
    np.testing.assert_array_equal(first, last)


def test_slic_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        slic_labels(np.zeros((4, 4)), n_segments=3)
    with pytest.raises(ValueError, match="n_segments"):
        slic_labels(np.zeros((1, 4, 4)), n_segments=0)


def test_mask_labels_validated_and_relabelled() -> None:
    mask = np.array([[5, 5, 9], [0, 9, 9]])
    labels = mask_labels(mask, shape=(3, 2, 3))
    assert labels.shape == (3, 2, 3)
    np.testing.assert_array_equal(labels[2], [[1, 1, 2], [0, 2, 2]])
    with pytest.raises(ValueError, match="dtype"):
        mask_labels(mask.astype(float), shape=(3, 2, 3))
    with pytest.raises(ValueError, match="shape"):
        mask_labels(mask, shape=(3, 3, 3))
    np.testing.assert_array_equal(relabel_contiguous(np.array([7, 3, 7, 10])), [1, 0, 1, 2])


def test_part_importance_matches_a_loop() -> None:
    rng = np.random.default_rng(0)
    importance = rng.random((4, 6, 7))
    labels = rng.integers(0, 5, size=(4, 6, 7))
    labels[:, 0, :5] = np.arange(5)  # every part present
    v = part_importance(importance, labels)
    expected = np.array([[importance[i][labels[i] == k].sum() for k in range(5)] for i in range(4)])
    np.testing.assert_allclose(v, expected)
    np.testing.assert_allclose(v.sum(axis=1), importance.sum(axis=(1, 2)))  # every pixel counted once


def test_part_importance_shared_labels_series_and_absent_parts() -> None:
    imp = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 1.0, 1.0]])
    np.testing.assert_allclose(part_importance(imp, np.array([0, 0, 1, 1])), [[3, 7], [0, 2]])
    labels = np.array([[0, 0, 1, 1], [0, 0, 0, 0]])  # part 1 absent from the second input
    v = part_importance(imp, labels)
    assert v[0, 1] == 7 and np.isnan(v[1, 1])
    with pytest.raises(ValueError, match="shape"):
        part_importance(imp, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="n_parts=1"):
        part_importance(imp, np.array([0, 0, 1, 1]), n_parts=1)


def test_top_k_ties_nan_and_errors() -> None:
    v = np.array([[1.0, 3.0, 3.0, 2.0], [np.nan, 0.0, 5.0, 0.0]])
    np.testing.assert_array_equal(top_k_parts(v, 2), [[1, 2], [2, 1]])  # ties: lower index first
    np.testing.assert_array_equal(top_k_parts(v, 4)[1], [2, 1, 3, 0])  # NaN last
    np.testing.assert_array_equal(top_k_parts(v[0], 1), [1])
    with pytest.raises(ValueError, match=r"k=5.*K=4"):
        top_k_parts(v, 5)
    with pytest.raises(ValueError, match="k=0"):
        top_k_parts(v, 0)
