"""Fashion-MNIST in kdviz/io/builtin_datasets.py: the IDX reader against files written by hand, and the dataset."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from kdviz.io.builtin_datasets import FASHION_MNIST_DIR, load_dataset, load_fashion_mnist, read_idx


def _write_idx(path, array: np.ndarray) -> None:
    """LeCun's format: 0, 0, type 0x08 (ubyte), ndim, big-endian uint32 sizes, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_read_idx_images_at_offset_16_labels_at_8(tmp_path) -> None:
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    _write_idx(tmp_path / "img-idx3-ubyte", images)
    _write_idx(tmp_path / "lab-idx1-ubyte.gz", labels)
    raw = (tmp_path / "img-idx3-ubyte").read_bytes()
    assert raw[16:] == images.tobytes() and len(raw) == 16 + images.size
    np.testing.assert_array_equal(read_idx(tmp_path / "img-idx3-ubyte"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "lab-idx1-ubyte.gz"), labels)


def test_read_idx_rejects_a_truncated_file(tmp_path) -> None:
    _write_idx(tmp_path / "x-ubyte", np.zeros((2, 3), dtype=np.uint8))
    (tmp_path / "x-ubyte").write_bytes((tmp_path / "x-ubyte").read_bytes()[:-1])
    with pytest.raises(ValueError, match="header says"):
        read_idx(tmp_path / "x-ubyte")


def test_load_fashion_mnist_from_a_folder_of_hand_written_files(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    ds = load_fashion_mnist(tmp_path)
    assert ds.x_train.shape == (6, 1, 28, 28) and ds.x_test.shape == (4, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    np.testing.assert_array_equal(ds.y_test, [0, 1, 2, 3])
    assert ds.class_names[9] == "Ankle boot" and ds.task == "image"


def test_missing_files_say_how_to_install(tmp_path) -> None:
    with pytest.raises(ValueError, match="make fashion-mnist"):
        load_fashion_mnist(tmp_path)


@pytest.mark.skipif(not (FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed (make fashion-mnist)")
def test_load_dataset_fashion_mnist() -> None:
    ds = load_dataset("fashion-mnist")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
