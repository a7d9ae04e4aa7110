"""CIFAR-10/100 readers against torchvision's (python format) and the published record layout (binary).

The files are synthetic, written in the official layouts: the python batches with ``pickle.dump`` of the
official dicts (str keys, as Python 2 pickles decode with ``encoding='latin1'``), the binary batches byte by
byte from the layout on https://www.cs.toronto.edu/~kriz/cifar.html.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from kdviz.io.cifar import (
    CifarError,
    UnsafePickleError,
    read_cifar_binary,
    read_cifar_python,
    read_restricted_pickle,
)

N = 24
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_cifar10_python(root: Path, *, protocol: int = 2) -> tuple[np.ndarray, list[int]]:
    """``cifar-10-batches-py/test_batch`` and ``batches.meta`` as the official files hold them."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    data, labels = _images(N, 0), [int(v) for v in np.random.default_rng(1).integers(0, 10, N)]
    batch = {"batch_label": "testing batch 1 of 1", "labels": labels, "data": data,
             "filenames": [f"img_{i}.png" for i in range(N)]}
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(batch, fh, protocol=protocol)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"num_cases_per_batch": N, "label_names": CIFAR10_NAMES, "num_vis": 3072}, fh, protocol=protocol)
    return data, labels


def write_cifar100_python(root: Path, *, protocol: int = 2) -> tuple[np.ndarray, list[int], list[str]]:
    """``cifar-100-python/test`` and ``meta`` (fine and coarse labels, fine names used)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    data = _images(N, 2)
    fine = [int(v) for v in np.random.default_rng(3).integers(0, 100, N)]
    names = [f"fine_{i:02d}" for i in range(100)]
    batch = {"filenames": [f"f{i}.png" for i in range(N)], "batch_label": "testing batch 1 of 1",
             "fine_labels": fine, "coarse_labels": [v // 5 for v in fine], "data": data}
    with open(folder / "test", "wb") as fh:
        pickle.dump(batch, fh, protocol=protocol)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": names, "coarse_label_names": [f"c{i}" for i in range(20)]}, fh,
                    protocol=protocol)
    return data, fine, names


def _torchvision(cls_name: str, root: Path):
    """torchvision's own reader; its checksums are of the real files, so they are set to None (= exists)."""
    import torchvision.datasets as tvd

    base = getattr(tvd, cls_name)
    ours = type(f"Synthetic{cls_name}", (base,), {
        "train_list": [], "test_list": [[base.test_list[0][0], None]],
        "meta": {**base.meta, "md5": None},
    })
    return ours(str(root), train=False, download=False)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_python_matches_torchvision(tmp_path: Path, protocol: int) -> None:
    write_cifar10_python(tmp_path, protocol=protocol)
    ref = _torchvision("CIFAR10", tmp_path)
    got = read_cifar_python(tmp_path / "cifar-10-batches-py" / "test_batch")
    assert got.flavour == "cifar10"
    assert list(got.class_names) == ref.classes
    np.testing.assert_array_equal(got.labels, ref.targets)
    np.testing.assert_array_equal(got.images(0, N).transpose(0, 2, 3, 1), ref.data)  # torchvision keeps HWC
    np.testing.assert_array_equal(got.images(5, 9), got.images(0, N)[5:9])


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar100_python_matches_torchvision(tmp_path: Path, protocol: int) -> None:
    write_cifar100_python(tmp_path, protocol=protocol)
    ref = _torchvision("CIFAR100", tmp_path)
    got = read_cifar_python(tmp_path / "cifar-100-python" / "test")
    assert got.flavour == "cifar100"
    assert list(got.class_names) == ref.classes
    np.testing.assert_array_equal(got.labels, ref.targets)
    np.testing.assert_array_equal(got.images(0, N).transpose(0, 2, 3, 1), ref.data)


def _record_bytes(data: np.ndarray, labels: list[bytes]) -> bytes:
    """Records as published: label byte(s), then 1,024 red, 1,024 green, 1,024 blue bytes, row-major."""
    out = bytearray()
    for img, label in zip(data, labels, strict=True):
        out += label
        for channel in range(3):
            for row in range(32):
                for col in range(32):
                    out.append(int(img[channel * 1024 + row * 32 + col]))
    return bytes(out)


def test_cifar10_binary_record_layout(tmp_path: Path) -> None:
    data, labels = _images(N, 4), [int(v) for v in np.random.default_rng(5).integers(0, 10, N)]
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(_record_bytes(data, [bytes([v]) for v in labels]))
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_NAMES) + "\n\n")
    got = read_cifar_binary(folder / "test_batch.bin")
    assert got.flavour == "cifar10" and got.class_names == tuple(CIFAR10_NAMES)
    np.testing.assert_array_equal(got.labels, labels)
    images = got.images(0, N)
    assert images.shape == (N, 3, 32, 32)
    i, row, col = 7, 3, 30
    for channel in range(3):  # pixel (row, col) of plane c is byte 1 + c·1024 + row·32 + col of the record
        assert images[i, channel, row, col] == data[i, channel * 1024 + row * 32 + col]
    np.testing.assert_array_equal(images.reshape(N, -1), data)


def test_cifar100_binary_uses_the_fine_label(tmp_path: Path) -> None:
    data = _images(N, 6)
    fine = [int(v) for v in np.random.default_rng(7).integers(0, 100, N)]
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    (folder / "test.bin").write_bytes(_record_bytes(data, [bytes([v // 5, v]) for v in fine]))
    (folder / "fine_label_names.txt").write_text("\n".join(f"fine_{i:02d}" for i in range(100)) + "\n")
    got = read_cifar_binary(folder / "test.bin")
    assert got.flavour == "cifar100" and len(got.class_names) == 100
    np.testing.assert_array_equal(got.labels, fine)
    np.testing.assert_array_equal(got.images(0, N).reshape(N, -1), data)


def test_binary_and_python_agree(tmp_path: Path) -> None:
    data, labels = write_cifar10_python(tmp_path)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "test_batch.bin").write_bytes(_record_bytes(data, [bytes([v]) for v in labels]))
    py = read_cifar_python(tmp_path / "cifar-10-batches-py" / "test_batch")
    binary = read_cifar_binary(tmp_path / "bin" / "test_batch.bin")
    np.testing.assert_array_equal(py.images(0, N), binary.images(0, N))
    np.testing.assert_array_equal(py.labels, binary.labels)


def test_wrong_record_size_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "test_batch.bin"
    bad.write_bytes(bytes(3073 * 3 + 5))
    with pytest.raises(CifarError, match=r"not a whole number of 3,073-byte CIFAR10 records"):
        read_cifar_binary(bad)
    hundred = tmp_path / "c100" / "test_batch.bin"  # CIFAR-100 records under a CIFAR-10 name
    hundred.parent.mkdir()
    hundred.write_bytes(bytes(3074 * 4))
    with pytest.raises(CifarError, match="3074-byte records: is it CIFAR-100"):
        read_cifar_binary(hundred)


class _Gadget:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # what an attacker's pickle does: call os.system on load
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_pickle_gadget_named_test_batch_is_refused_and_never_runs(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "PWNED"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    payload = {"labels": [0], "data": _Gadget(marker)}
    (folder / "test_batch").write_bytes(pickle.dumps(payload, protocol=protocol))
    with pytest.raises(UnsafePickleError, match=r"refused 'test_batch'.*(posix|os)\.system"):
        read_cifar_python(folder / "test_batch")
    from kdviz.io.user_datasets import preprocessing_for, read_data

    pre = preprocessing_for(task="image", preset="CIFAR-10")
    with pytest.raises(UnsafePickleError):
        read_data(folder, preprocessing=pre, task="image")
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    b"cbuiltins\neval\n(S'1+1'\ntR.",  # GLOBAL + REDUCE
    b"\x80\x02cbuiltins\nobject\n)\x81.",  # NEWOBJ
    b"(cos\nsystem\nS'true'\no.",  # OBJ
    b"(S'true'\nios\nsystem\n.",  # INST
    b"\x80\x02cnumpy\nload\nq\x00.",  # a numpy name outside an array's pickle
])
def test_restricted_decoder_refuses_objects_and_code(payload: bytes) -> None:
    with pytest.raises(UnsafePickleError, match="refused"):
        read_restricted_pickle(payload, name="test_batch")


def test_restricted_decoder_refuses_object_arrays() -> None:
    arr = np.array([1, "a"], dtype=object)
    with pytest.raises(UnsafePickleError):
        read_restricted_pickle(pickle.dumps({"data": arr}, protocol=2), name="x")


def test_restricted_decoder_reads_plain_values() -> None:
    value = {"a": [1, 2.5, None, True], "b": (b"xy", "z"), 3: {"n": np.arange(6, dtype="<i4").reshape(2, 3)},
             "f": np.asfortranarray(np.ones((2, 3), dtype=">f8"))}
    for protocol in (2, 3, 4, 5):
        got = read_restricted_pickle(pickle.dumps(value, protocol=protocol))
        assert got["a"] == value["a"] and got["b"] == value["b"]
        np.testing.assert_array_equal(got[3]["n"], value[3]["n"])
        np.testing.assert_array_equal(got["f"], value["f"])


def test_truncated_pickle_is_a_clear_error(tmp_path: Path) -> None:
    write_cifar10_python(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CifarError, match="not a valid pickle"):
        read_cifar_python(path)
