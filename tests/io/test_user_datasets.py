"""Test sets from files (kdviz.io.user_datasets) against independent readers: torchvision's ImageFolder, aeon's
loaders, numpy; lazy batches; labels matched to a zoo's classes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kdviz.io import user_datasets
from kdviz.io.user_datasets import DataFileError, Preprocessing, preprocessing_for, read_data

SIZE = (12, 10)  # (H, W)


def _pre(channels: int = 3, size: tuple[int, int] = SIZE) -> Preprocessing:
    return Preprocessing("test", (0.5,) * channels, (0.25,) * channels, size, channels)


def write_image_folder(root: Path) -> None:
    """Classes whose sort order is case-sensitive, a nested folder, upper-case extensions, a non-image file."""
    rng = np.random.default_rng(0)
    layout = {"cat": ["b.png", "a.png", "sub/c.png"], "Dog": ["x.PNG", "y.bmp"], "bird": ["only.png"]}
    for cls, files in layout.items():
        for name in files:
            path = root / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, size=(*SIZE, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path, format="BMP" if name.endswith("bmp") else "PNG")
    (root / "cat" / "notes.txt").write_text("not an image")


def test_image_folder_matches_torchvision(tmp_path: Path) -> None:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms.functional import to_tensor

    write_image_folder(tmp_path / "data")
    ref = ImageFolder(str(tmp_path / "data"))
    got = read_data(tmp_path / "data", preprocessing=_pre(), task="image")
    assert list(got.class_names) == ref.classes == ["Dog", "bird", "cat"]
    np.testing.assert_array_equal(got.y_test, ref.targets)
    x = got.x_test[0 : len(ref)]
    assert x.shape == (len(ref), 3, *SIZE)
    for i, (img, _label) in enumerate(ref):
        np.testing.assert_allclose(x[i], to_tensor(img).numpy(), atol=1e-6)


def test_image_folder_zip_equals_the_folder(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "data")
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((tmp_path / "data").rglob("*")):
            if path.is_file():
                zf.write(path, Path("mydata") / path.relative_to(tmp_path / "data"))  # one wrapping folder
    folder = read_data(tmp_path / "data", preprocessing=_pre(), task="image")
    zipped = read_data(archive, preprocessing=_pre(), task="image")
    assert zipped.class_names == folder.class_names and zipped.format == "ImageFolder zip"
    np.testing.assert_array_equal(zipped.y_test, folder.y_test)
    np.testing.assert_array_equal(zipped.x_test[:], folder.x_test[:])


def test_image_folder_is_decoded_batch_by_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_image_folder(tmp_path / "data")
    decoded: list[str] = []
    real = user_datasets.load_image

    def counting(data: bytes, **kwargs: object):  # a spy around the real decoder, not a stand-in
        decoded.append(str(kwargs["name"]))
        return real(data, **kwargs)

    monkeypatch.setattr(user_datasets, "load_image", counting)
    ds = read_data(tmp_path / "data", preprocessing=_pre(1, (8, 8)), task="image")
    assert decoded == []  # reading the set decodes nothing
    batch = ds.x_test[2:4]
    assert batch.shape == (2, 1, 8, 8) and len(decoded) == 2
    assert ds.x_test.shape == (6, 1, 8, 8) and ds.x_test.ndim == 4


def test_cifar_folder_through_read_data(tmp_path: Path) -> None:
    from tests.io.test_cifar import write_cifar100_python

    data, fine, names = write_cifar100_python(tmp_path)
    pre = preprocessing_for(task="image", preset="CIFAR-100")
    ds = read_data(tmp_path / "cifar-100-python", preprocessing=pre, task="image", class_names=names)
    assert ds.format == "CIFAR-100 python (test)" and ds.class_names == tuple(names)
    np.testing.assert_array_equal(ds.y_test, fine)
    np.testing.assert_allclose(ds.x_test[0:3], data[:3].reshape(3, 3, 32, 32) / 255.0, atol=1e-7)
    grey = read_data(tmp_path / "cifar-100-python", preprocessing=_pre(1, (28, 28)), task="image")
    assert grey.x_test[0:2].shape == (2, 1, 28, 28)


def test_class_names_matched_to_the_zoo(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "data")
    ds = read_data(tmp_path / "data", preprocessing=_pre(), task="image", class_names=["cat", "bird", "Dog", "fish"])
    assert ds.class_names == ("cat", "bird", "Dog", "fish")
    assert list(ds.y_test) == [2, 2, 1, 0, 0, 0]  # Dog ×2, bird, cat ×3 in torchvision's order
    with pytest.raises(DataFileError, match="3 classes but the zoo's models have 2"):
        read_data(tmp_path / "data", preprocessing=_pre(), task="image", class_names=["a", "b"])


def test_npz_images_and_series(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(5, *SIZE, 3), dtype=np.uint8)  # channels last
    np.savez(tmp_path / "img.npz", x=x, y=np.array([0, 1, 2, 1, 0]))
    ds = read_data(tmp_path / "img.npz", preprocessing=_pre(), task="image")
    np.testing.assert_allclose(ds.x_test[:], x.transpose(0, 3, 1, 2) / 255.0, atol=1e-7)
    np.testing.assert_array_equal(ds.y_test, [0, 1, 2, 1, 0])
    series = rng.standard_normal((4, 50))
    np.savez(tmp_path / "ser.npz", x=series, y=np.array(["b", "a", "b", "a"]))
    pre = preprocessing_for(task="timeseries", input_shape=(1, 50), mean=(0.0,), std=(1.0,))
    got = read_data(tmp_path / "ser.npz", preprocessing=pre, task="timeseries")
    assert got.class_names == ("a", "b") and list(got.y_test) == [1, 0, 1, 0]
    z = (series - series.mean(1, keepdims=True)) / series.std(1, keepdims=True)
    np.testing.assert_allclose(got.x_test[:, 0], z, atol=1e-5)


def test_npz_with_objects_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "obj.npz", x=np.array([object()] * 2, dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataFileError, match="never unpickles"):
        read_data(tmp_path / "obj.npz", preprocessing=_pre(), task="image")


def _aeon_file(name: str) -> Path:
    import aeon.datasets

    return Path(aeon.datasets.__file__).parent / "data" / "GunPoint" / name


def test_ts_matches_aeon_load_classification() -> None:
    from aeon.datasets import load_classification

    x_ref, y_ref = load_classification("GunPoint", split="test")
    raw = Preprocessing("test", (0.0,), (1.0,), None, 1, znorm=False)
    got = read_data(_aeon_file("GunPoint_TEST.ts"), preprocessing=raw, task="timeseries")
    np.testing.assert_allclose(got.x_test, x_ref, rtol=1e-6)
    assert [got.class_names[i] for i in got.y_test] == [str(v) for v in y_ref]
    from kdviz.io.builtin_datasets import load_dataset

    zoo_pre = preprocessing_for(task="timeseries", input_shape=(1, 150), mean=(0.0,), std=(1.0,))
    ours = read_data(_aeon_file("GunPoint_TEST.ts"), preprocessing=zoo_pre, task="timeseries",
                     class_names=["Gun", "Point"])
    gunpoint = load_dataset("gunpoint")
    np.testing.assert_allclose(ours.x_test, gunpoint.x_test, atol=1e-6)  # kdviz's own UCR loader
    np.testing.assert_array_equal(ours.y_test, gunpoint.y_test)


@pytest.mark.parametrize("other", ["GunPoint_TRAIN.arff", "GunPoint_TRAIN.tsv"])
def test_arff_and_tsv_equal_the_ts_file(other: str, tmp_path: Path) -> None:
    raw = Preprocessing("test", (0.0,), (1.0,), None, 1, znorm=False)
    ref = read_data(_aeon_file("GunPoint_TRAIN.ts"), preprocessing=raw, task="timeseries")
    source = _aeon_file(other)
    if other.endswith(".tsv"):  # UCR's .tsv: label first, no header, numeric labels
        (tmp_path / other).write_text("label\t" + "\t".join(f"t{i}" for i in range(150)) + "\n" + source.read_text())
        source = tmp_path / other
    got = read_data(source, preprocessing=raw, task="timeseries")
    np.testing.assert_allclose(got.x_test, ref.x_test, rtol=1e-6)
    np.testing.assert_array_equal(got.y_test, ref.y_test)
    assert got.class_names == ref.class_names


def test_wrong_task_and_unknown_format(tmp_path: Path) -> None:
    raw = Preprocessing("test", (0.0,), (1.0,), None, 1, znorm=False)
    with pytest.raises(DataFileError, match="holds timeseries data but the zoo's task is image"):
        read_data(_aeon_file("GunPoint_TRAIN.ts"), preprocessing=_pre(), task="image")
    (tmp_path / "a.xyz").write_text("?")
    with pytest.raises(DataFileError, match="not a format"):
        read_data(tmp_path / "a.xyz", preprocessing=raw, task="timeseries")
