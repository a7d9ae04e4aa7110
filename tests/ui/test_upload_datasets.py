"""The Models page's upload set reads whole data set files with the same readers as ``kdviz evaluate --data``."""

from __future__ import annotations

import numpy as np
import pytest

from kdviz.io.untrusted import UploadError
from kdviz.ui import uploads as up


def _cifar10_bin(n: int) -> bytes:
    rng = np.random.default_rng(0)
    return b"".join(bytes([i % 10]) + rng.integers(0, 256, 3072, dtype=np.uint8).tobytes() for i in range(n))


def test_cifar_bin_upload_fits_the_model_set(tiny_image_set) -> None:
    mset = tiny_image_set
    upload = up.load_data_files([("test_batch.bin", _cifar10_bin(6))])
    assert upload.kind == "dataset"
    pool, _warnings, errors = up.check_inputs(upload, mset)
    assert pool.x.shape == (6, *mset.input_shape) and not errors
    np.testing.assert_array_equal(pool.labels, [0, 1, 2, 3, 4, 5])


def test_a_gadget_uploaded_as_npz_is_refused(tiny_image_set, tmp_path) -> None:
    import io

    mset = tiny_image_set
    buf = io.BytesIO()
    np.savez(buf, x=np.array([object()], dtype=object), y=np.array([0]))
    upload = up.load_data_files([("set.npz", buf.getvalue())])
    with pytest.raises(UploadError, match="never unpickles"):
        up.check_inputs(upload, mset)
