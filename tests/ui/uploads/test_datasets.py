"""The Models page's upload set reads whole data set files with the same readers as ``kdviz evaluate --data``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kdviz.io.untrusted import UploadError
from kdviz.ui.uploads.build import label_space
from kdviz.ui.uploads.datasets import read_dataset_upload
from kdviz.ui.uploads.files import load_data_files
from kdviz.ui.uploads.inputs import check_inputs, decode_data


def _cifar10_bin(n: int) -> bytes:
    rng = np.random.default_rng(0)
    return b"".join(bytes([i % 10]) + rng.integers(0, 256, 3072, dtype=np.uint8).tobytes() for i in range(n))


def test_cifar_bin_upload_fits_the_model_set(tiny_image_set) -> None:
    mset = tiny_image_set
    upload = load_data_files([("test_batch.bin", _cifar10_bin(6))])
    assert upload.kind == "dataset"
    got = check_inputs(upload, mset)
    pool, errors = got.pool, got.errors
    assert pool.x.shape == (6, *mset.input_shape) and not errors
    np.testing.assert_array_equal(pool.labels, [0, 1, 2, 3, 4, 5])


def test_a_gadget_uploaded_as_npz_is_refused(tiny_image_set, tmp_path) -> None:
    import io

    mset = tiny_image_set
    buf = io.BytesIO()
    np.savez(buf, x=np.array([object()], dtype=object), y=np.array([0]))
    upload = load_data_files([("set.npz", buf.getvalue())])
    with pytest.raises(UploadError, match="never unpickles"):
        check_inputs(upload, mset)


# ---- every accepted input format through the Models page's classification and decoding -------------------------


def _rgb_set(tiny_image_set):
    """The tiny set as a 3-channel, 32×32, 10-class set (CIFAR-10-shaped), models untouched (inputs only)."""
    import dataclasses

    from kdviz.io.class_names import CIFAR10

    return dataclasses.replace(tiny_image_set, input_shape=(3, 32, 32), mean=(0.5,) * 3, std=(0.25,) * 3,
                               class_names=CIFAR10, pool=None)


def _cifar_python(n: int, *, names: bool) -> list[tuple[str, bytes]]:
    """CIFAR-10's python layout: pickle.dump of the official dicts (what the data set's tarball holds)."""
    import pickle

    rng = np.random.default_rng(1)
    batch = {"batch_label": "testing batch 1 of 1", "labels": [i % 10 for i in range(n)],
             "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "filenames": [f"img{i}.png" for i in range(n)]}
    files = [("test_batch", pickle.dumps(batch, protocol=2))]
    if names:
        from kdviz.io.class_names import CIFAR10

        files.append(("batches.meta", pickle.dumps({"label_names": list(CIFAR10), "num_vis": 3072}, protocol=2)))
    return files


@pytest.mark.parametrize("with_meta", [True, False])
def test_cifar_python_upload_without_extension(tiny_image_set, with_meta: bool) -> None:
    import pickle

    files = _cifar_python(7, names=with_meta)
    upload = load_data_files(files)
    assert upload.kind == "dataset" and upload.files[0][0] == "test_batch"
    got = read_dataset_upload(upload.files, channels=3, size=(32, 32))
    x, y, names, notes = got.x, got.labels, got.class_names, got.warnings
    batch = pickle.loads(files[0][1])  # the test's own file, decoded by the standard library for reference
    expected = batch["data"].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    np.testing.assert_allclose(x, expected, atol=1e-6)
    np.testing.assert_array_equal(y, batch["labels"])
    assert names[:3] == ("airplane", "automobile", "bird")
    assert any("named as in CIFAR-10" in n for n in notes) != with_meta
    got = check_inputs(upload, _rgb_set(tiny_image_set))
    assert len(got.pool) == 7 and not got.errors


def test_cifar_bin_with_unnamed_cifar10_models_has_comparable_labels(tiny_image_set) -> None:
    """The defect: a .bin without batches.meta.txt said "labels not comparable … folder names" for CIFAR-10
    models; its classes are CIFAR-10's, so the labels map onto the models' classes one to one."""
    upload = load_data_files([("test_batch.bin", _cifar10_bin(6))])
    got = decode_data(upload, channels=3, size=(32, 32))
    names, mapped, note = label_space(10, 3, got.pool, got.class_names)
    assert note is None and mapped.comparable
    np.testing.assert_array_equal(mapped.labels, [0, 1, 2, 3, 4, 5])
    assert names[0] == "airplane"


def test_cifar_bin_with_its_names_file(tiny_image_set) -> None:
    names = "\n".join(f"kind{i}" for i in range(10)) + "\n"
    upload = load_data_files([("batches.meta.txt", names.encode()), ("test_batch.bin", _cifar10_bin(4))])
    assert upload.kind == "dataset" and upload.files[0][0] == "test_batch.bin"
    got = read_dataset_upload(upload.files, channels=3, size=(32, 32))
    classes, notes = got.class_names, got.warnings
    assert classes == tuple(f"kind{i}" for i in range(10)) and not any("named as in" in n for n in notes)


def test_npz_and_arff_uploads(tiny_image_set, tmp_path) -> None:
    import io

    rng = np.random.default_rng(2)
    buf = io.BytesIO()
    x = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    np.savez(buf, x=x, y=np.array([0, 1, 2, 3, 4]))
    upload = load_data_files([("digits.npz", buf.getvalue())])
    got = check_inputs(upload, tiny_image_set)
    pool, errors = got.pool, got.errors
    np.testing.assert_allclose(pool.x[:, 0], x / 255.0, atol=1e-6)
    assert not errors and list(pool.labels) == [0, 1, 2, 3, 4]
    import aeon
    from aeon.datasets import load_classification

    arff = Path(aeon.__file__).parent / "datasets" / "data" / "GunPoint" / "GunPoint_TRAIN.arff"  # aeon's own file
    upload = load_data_files([(arff.name, arff.read_bytes())])
    assert upload.kind == "dataset"
    got = read_dataset_upload(upload.files, channels=1, size=None)
    x2, y2, names = got.x, got.labels, got.class_names
    xs, ys = load_classification("GunPoint", split="train")  # aeon's loader of the same split, for reference
    assert x2.shape == (len(ys), 1, 150) and names == ("1", "2")
    np.testing.assert_array_equal(np.asarray(names)[y2], ys)
