"""A lab's own test set from files: what ``kdviz evaluate --data PATH`` and the Models page's upload set read.

Formats (:func:`read_data` picks by content and name):

==========================  =====================================================================
ImageFolder dir or ``.zip``  one folder per class, classes sorted as torchvision's ``ImageFolder`` sorts them;
                             images decoded batch by batch when asked for (never all at once)
CIFAR-10/100 binary          ``*.bin`` records (:mod:`kdviz.io.cifar`), memory-mapped
CIFAR-10/100 python          pickled batches through kdviz's restricted decoder (never ``pickle.load``)
``.npz``                     arrays ``x`` and ``y`` (``allow_pickle=False``), optional ``class_names``
``.ts`` / ``.arff``          aeon/UCR series files (aeon's readers)
``.csv`` / ``.tsv``          one series per row, optional label column (:func:`kdviz.io.series.load_series`)
==========================  =====================================================================

Images are returned as displayed (float32 in [0, 1], (N, C, H, W)) at the size and channel count of a
:class:`Preprocessing`; the model input is ``(x − mean) / std``. Series are z-normalised per series and
channel when the preprocessing says so (kdviz's UCR convention), and are small enough to hold in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kdviz.errors import InvalidInputError
from kdviz.io.builtin_datasets import load_dataset
from kdviz.io.cifar import CifarSet, find_cifar, read_cifar_binary, read_cifar_python
from kdviz.io.images import IMAGE_SUFFIXES, class_root, load_image
from kdviz.io.presets import PRESETS
from kdviz.io.safezip import extract_zip
from kdviz.io.series import encode_labels, load_series
from kdviz.io.untrusted import UploadError
from kdviz.vocab import Modality

__all__ = [
    "DATA_FORMATS",
    "DataFileError",
    "FileDataset",
    "LazyImages",
    "Preprocessing",
    "align_labels",
    "image_folder_files",
    "preprocessing_for",
    "read_data",
    "test_set_for_zoo",
]


# (format, reader, what it is checked against in the tests): the README's table.
DATA_FORMATS: tuple[tuple[str, str, str], ...] = (
    ("ImageFolder folder or .zip", "kdviz.io.user_datasets (decoded per batch)", "torchvision.datasets.ImageFolder"),
    ("CIFAR-10/100 binary (*.bin)", "kdviz.io.cifar.read_cifar_binary (memory map)",
     "the published record layout, written byte by byte"),
    ("CIFAR-10/100 python", "kdviz.io.cifar.read_cifar_python (restricted decoder)",
     "torchvision.datasets.CIFAR10 / CIFAR100"),
    (".npz (x, y)", "numpy.load(allow_pickle=False)", "the arrays written"),
    (".ts", "aeon.datasets.load_from_ts_file", "aeon.datasets.load_classification"),
    (".arff", "aeon.datasets.load_from_arff_file", "aeon's bundled GunPoint .ts"),
    (".csv / .tsv", "kdviz.io.series.load_series", "aeon's GunPoint .tsv"),
)


class DataFileError(UploadError):
    """A data path kdviz cannot read as a labelled test set; the message says what it expected."""


@dataclass(frozen=True)
class Preprocessing:
    """How files become model inputs: image size (H, W) and channels, per-channel mean / std, where they came
    from; for series, whether each series is z-normalised."""

    source: str  # "zoo 'mnist'", "preset CIFAR-100", …
    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: tuple[int, int] | None = None
    channels: int | None = None
    znorm: bool = False

    def describe(self) -> str:
        """One line for the run's output."""
        parts = [f"preprocessing from {self.source}:"]
        if self.size is not None:
            parts.append(f"{self.channels or 3}×{self.size[0]}×{self.size[1]}, pixels in [0, 1],")
        if self.znorm:
            parts.append("each series z-normalised,")
        parts.append(f"then (x − mean) / std with mean {_fmt(self.mean)}, std {_fmt(self.std)}")
        return " ".join(parts)


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def preprocessing_for(*, task: Modality | str, input_shape: Sequence[int] | None = None, mean: Sequence[float] | None = None,
                      std: Sequence[float] | None = None, source: str = "the zoo", preset: str | None = None
                      ) -> Preprocessing:
    """The zoo's preprocessing (``input_shape`` (C, H, W) or (C, L), mean, std), or a named preset's
    (``CIFAR-10``, ``CIFAR-100``, ``ImageNet``) at the zoo's channel count."""
    if preset is not None:
        key = {k.lower(): k for k in PRESETS}.get(preset.strip().lower())
        if key is None:
            raise InvalidInputError(f"preset={preset!r} is not one of {', '.join(PRESETS)}")
        if task != Modality.IMAGE:
            raise InvalidInputError(f"preset {key} is for images; a {task} zoo uses its own normalisation")
        channels = int(input_shape[0]) if input_shape else 3
        p = PRESETS[key]
        p_mean, p_std = p.for_channels(channels)
        return Preprocessing(f"preset {key}", tuple(p_mean), tuple(p_std), p.size, channels)
    if input_shape is None or mean is None or std is None:
        raise InvalidInputError("preprocessing needs the zoo's input_shape, mean and std, or a preset")
    if task == Modality.IMAGE:
        return Preprocessing(source, tuple(mean), tuple(std), (int(input_shape[1]), int(input_shape[2])),
                             int(input_shape[0]))
    return Preprocessing(source, tuple(mean), tuple(std), None, int(input_shape[0]), znorm=True)


class LazyImages:
    """(N, C, H, W) float32 images in [0, 1] decoded only when sliced: ``x[lo:hi]`` is a numpy array.

    Enough of an array for ``kdviz.evaluation.evaluate.evaluate_zoo`` (``len``, ``ndim``, ``shape``,
    slicing), which walks a test set batch by batch, in this process or sending each batch to a Ray worker: a
    50,000-image folder is never in memory at once. ``np.asarray(x)`` decodes everything.
    """

    def __init__(self, n: int, item_shape: tuple[int, ...], load: Callable[[int, int], np.ndarray]) -> None:
        self._n, self._item_shape, self._load = int(n), tuple(item_shape), load

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._n, *self._item_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self._item_shape)

    dtype = np.dtype(np.float32)

    def __getitem__(self, key: slice | int) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self._n if key < 0 else 0)
            if not 0 <= i < self._n:
                raise IndexError(f"index {key} out of range for {self._n} images")
            return self._load(i, i + 1)[0]
        if not isinstance(key, slice):
            raise TypeError(f"LazyImages takes an int or a slice, not {type(key).__name__}")
        lo, hi, step = key.indices(self._n)
        if step != 1:
            return np.stack([self[i] for i in range(lo, hi, step)])
        if hi <= lo:
            return np.zeros((0, *self._item_shape), dtype=np.float32)
        return self._load(lo, hi)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


@dataclass(frozen=True, eq=False)
class FileDataset:
    """A labelled test set read from files; quacks like ``kdviz.io.builtin_datasets.Dataset`` for evaluation
    (``name``, ``x_test``, ``y_test``, ``class_names``)."""

    name: str
    task: Modality
    format: str
    x_test: Any  # LazyImages or a float32 array
    y_test: np.ndarray
    class_names: tuple[str, ...]
    preprocessing: Preprocessing
    path: str = ""
    warnings: tuple[str, ...] = ()
    _keep: Any = field(default=None, repr=False)  # a scratch folder that lives as long as the data set

    def describe(self) -> str:
        """``name: N inputs, K classes (format)`` for the run's output."""
        return (f"{self.name}: {len(self.y_test):,} inputs of shape {'×'.join(map(str, self.x_test.shape[1:]))}, "
                f"{len(self.class_names)} classes ({self.format})")


# --------------------------------------------------------------------------------------------------
# Labels


def align_labels(labels: np.ndarray, names: Sequence[str], target: Sequence[str] | None
                 ) -> tuple[np.ndarray, tuple[str, ...], list[str]]:
    """Map labels indexing ``names`` onto the zoo's class list ``target`` by name when every name is in it;
    otherwise keep the file's order (a note says so). Returns labels, class names, notes."""
    names = tuple(str(n) for n in names)
    if target is None:
        return labels, names, []
    target = tuple(str(t) for t in target)
    if names == target:
        return labels, target, []
    index = {n: i for i, n in enumerate(target)}
    if all(n in index for n in names):
        lookup = np.asarray([index[n] for n in names], dtype=np.int64)
        return lookup[labels] if len(labels) else labels, target, [
            "labels matched to the zoo's class names by name"]
    if len(names) > len(target):
        raise DataFileError(f"the data has {len(names)} classes but the zoo's models have {len(target)}")
    pairs = ", ".join(f"{a}→{b}" for a, b in list(zip(names, target, strict=False))[:4])
    return labels, target[: len(names)] if len(names) == len(target) else target, [
        f"the data's class names differ from the zoo's; matched by order ({pairs}{' …' if len(names) > 4 else ''})"]


# --------------------------------------------------------------------------------------------------
# Images


def image_folder_files(root: Path) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """(classes, [(file, class index)]) in torchvision ``ImageFolder``'s order: class folders sorted by name,
    then ``os.walk`` sorted, file names sorted; image extensions matched case-insensitively. Hidden files and
    folders (and ``__MACOSX``) are skipped, where torchvision would take them."""
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")
                     and e.name != "__MACOSX")
    if not classes:
        raise DataFileError(f"'{root}' has no class folders; lay it out as class_name/image.png (one folder per "
                            "class), like torchvision's ImageFolder.")
    files: list[tuple[Path, int]] = []
    for index, cls in enumerate(classes):
        for folder, dirs, names in sorted(os.walk(root / cls, followlinks=True)):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for fname in sorted(names):
                if not fname.startswith(".") and Path(fname).suffix.lower() in IMAGE_SUFFIXES:
                    files.append((Path(folder) / fname, index))
    if not files:
        raise DataFileError(f"the class folders of '{root}' hold no images; add PNG or JPEG files.")
    return tuple(classes), files


def _image_folder(root: Path, pre: Preprocessing, name: str, fmt: str, keep: Any = None) -> FileDataset:
    if pre.size is None:
        raise DataFileError("an image folder needs an image size: evaluate it with an image zoo or a preset")
    classes, files = image_folder_files(class_root(root))
    mode = "L" if pre.channels == 1 else "RGB"
    channels = 1 if mode == "L" else 3

    def load(lo: int, hi: int) -> np.ndarray:
        out = [load_image(path.read_bytes(), name=path.relative_to(root).as_posix(), mode=mode, size=pre.size).array
               for path, _ in files[lo:hi]]
        return np.stack(out).astype(np.float32, copy=False)

    x = LazyImages(len(files), (channels, *pre.size), load)
    labels = np.asarray([label for _, label in files], dtype=np.int64)
    return FileDataset(name, Modality.IMAGE, fmt, x, labels, classes, pre, str(root), (), keep)


def _cifar_images(cifar: CifarSet, pre: Preprocessing) -> LazyImages:
    size = pre.size or (32, 32)
    channels = pre.channels or 3

    def load(lo: int, hi: int) -> np.ndarray:
        x = cifar.images(lo, hi).astype(np.float32) / 255.0
        return fit_images(x, size=size, channels=channels)

    return LazyImages(len(cifar), (channels, *size), load)


def fit_images(x: np.ndarray, *, size: tuple[int, int], channels: int) -> np.ndarray:
    """Images (n, C, H, W) in [0, 1] at ``channels`` (RGB → grey with PIL's ITU-R 601-2 weights) and ``size``
    (bilinear with antialiasing, as ``kdviz.io.images.load_image`` resizes)."""
    if x.shape[1] == 3 and channels == 1:
        x = (x[:, 0:1] * 299 + x[:, 1:2] * 587 + x[:, 2:3] * 114) / 1000
    elif x.shape[1] == 1 and channels == 3:
        x = np.repeat(x, 3, axis=1)
    elif x.shape[1] != channels:
        raise DataFileError(f"images have {x.shape[1]} channels; the models take {channels}")
    if tuple(x.shape[2:]) != tuple(size):
        x = F.interpolate(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), size=tuple(size),
                          mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1).numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# Series and arrays


def _znorm(x: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    sd = x.std(axis=-1, keepdims=True)
    return ((x - mu) / np.where(sd > 1e-8, sd, 1.0)).astype(np.float32)


def _aeon_series(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from aeon.datasets import load_from_arff_file, load_from_ts_file  # noqa: PLC0415 - aeon is heavy: only for .arff/.ts files

    try:
        x, y = (load_from_ts_file(str(path)) if path.suffix.lower() == ".ts" else load_from_arff_file(str(path)))
    except Exception as exc:  # aeon raises IOError, ValueError, IndexError … on malformed files
        raise DataFileError(f"'{path.name}' is not a readable {path.suffix} file ({exc})") from exc
    if isinstance(x, list):
        raise DataFileError(f"'{path.name}' has series of different lengths; pad or resample them to one length")
    if y is None or len(y) != len(x):
        raise DataFileError(f"'{path.name}' has no class labels; a test set needs them")
    labels, names = encode_labels(list(y))
    return np.asarray(x, dtype=np.float64), labels, names


def _series_dataset(x: np.ndarray, labels: np.ndarray, names: tuple[str, ...], pre: Preprocessing, *, name: str,
                    fmt: str, path: Path, notes: Sequence[str] = ()) -> FileDataset:
    if not np.isfinite(x).all():
        raise DataFileError(f"'{path.name}' holds missing or infinite values; fill or drop those series")
    x = x.astype(np.float32)
    if pre.channels is not None and x.shape[1] != pre.channels:
        raise DataFileError(f"'{path.name}' has {x.shape[1]}-channel series; the models take {pre.channels}")
    return FileDataset(name, Modality.SERIES, fmt, _znorm(x) if pre.znorm else x, labels, names, pre, str(path),
                       tuple(notes))


def _npz(path: Path, pre: Preprocessing, task: Modality, name: str) -> FileDataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except ValueError as exc:
        raise DataFileError(f"'{path.name}' holds Python objects (it would need unpickling); kdviz never unpickles "
                            "data. Save numeric arrays: np.savez(path, x=x, y=y).") from exc
    except Exception as exc:  # noqa: BLE001 - BadZipFile, OSError …
        raise DataFileError(f"'{path.name}' is not a readable .npz file ({exc})") from exc
    xk = next((k for k in ("x", "X", "images", "data") if k in arrays), None)
    yk = next((k for k in ("y", "Y", "labels", "targets") if k in arrays), None)
    if xk is None or yk is None:
        raise DataFileError(f"'{path.name}' needs arrays 'x' and 'y'; it has {', '.join(arrays) or 'none'}")
    x, y = arrays[xk], arrays[yk]
    if x.dtype.kind not in "biuf" or len(x) != len(y) or y.ndim != 1:
        raise DataFileError(f"'{path.name}': x must be numeric and y hold one label per input (x {x.shape}, "
                            f"y {y.shape})")
    if y.dtype.kind in "iu":
        labels = y.astype(np.int64)
        n_names = int(labels.max()) + 1 if len(labels) else 0
        names = tuple(str(v) for v in arrays["class_names"]) if "class_names" in arrays else \
            tuple(str(i) for i in range(n_names))
    else:
        labels, names = encode_labels(list(y))
    if task == Modality.SERIES:
        series = x[:, None, :] if x.ndim == 2 else x
        if series.ndim != 3:
            raise DataFileError(f"'{path.name}': series must be (N, L) or (N, C, L), got {x.shape}")
        return _series_dataset(series.astype(np.float64), labels, names, pre, name=name, fmt=".npz", path=path)
    images = x[:, None] if x.ndim == 3 else x
    if images.ndim != 4:
        raise DataFileError(f"'{path.name}': images must be (N, H, W), (N, C, H, W) or (N, H, W, C), got {x.shape}")
    if images.shape[1] not in (1, 3) and images.shape[3] in (1, 3):
        images = images.transpose(0, 3, 1, 2)  # channels last → first
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    size, channels = pre.size or tuple(images.shape[2:]), pre.channels or images.shape[1]

    def load(lo: int, hi: int) -> np.ndarray:
        return fit_images(images[lo:hi].astype(np.float32) / scale, size=size, channels=channels)

    notes = []
    if scale == 1.0 and len(images) and (float(images.min()) < 0 or float(images.max()) > 1):
        notes.append(f"'{path.name}': float images outside [0, 1] were used as they are (expected raw pixels / 255)")
    return FileDataset(name, Modality.IMAGE, ".npz", LazyImages(len(images), (channels, *size), load), labels, names, pre,
                       str(path), tuple(notes))


# --------------------------------------------------------------------------------------------------
# Entry point


def _scratch() -> tuple[Path, Any]:
    folder = tempfile.TemporaryDirectory(prefix="kdviz-data-", ignore_cleanup_errors=True)
    return Path(folder.name), folder


def read_data(path: str | os.PathLike[str], *, preprocessing: Preprocessing, task: Modality | str = Modality.IMAGE,
              class_names: Sequence[str] | None = None) -> FileDataset:
    """Read the labelled test set at ``path`` (a folder or file in any of :data:`DATA_FORMATS`).

    ``task`` is the zoo's (a ``.npz`` or ``.csv`` holds either); ``class_names`` the zoo's, which the data's
    labels are matched to (by name when they agree, else by order, with a note). Raises
    :class:`DataFileError` (a ``ValueError``) with what was expected.
    """
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"no such file or folder: {p}")
    name = p.name or str(p)
    cifar = find_cifar(p)
    if cifar is not None:
        file, kind = cifar
        data = read_cifar_binary(file) if kind == "binary" else read_cifar_python(file)
        if task != Modality.IMAGE:
            raise DataFileError(f"'{name}' is a CIFAR set but the zoo's task is {task}")
        fmt = f"{'CIFAR-10' if data.flavour == 'cifar10' else 'CIFAR-100'} {kind} ({file.name})"
        labels, names, notes = align_labels(data.labels, data.class_names, class_names)
        return FileDataset(name, Modality.IMAGE, fmt, _cifar_images(data, preprocessing), labels, names, preprocessing,
                           str(file), tuple(notes))
    series_suffix = p.suffix.lower() in (".ts", ".arff", ".csv", ".tsv", ".txt")
    if (p.is_dir() or p.suffix.lower() == ".zip" or series_suffix) and task != (Modality.SERIES if series_suffix
                                                                                 else Modality.IMAGE):
        raise DataFileError(f"'{name}' holds {'timeseries' if series_suffix else 'image'} data but the zoo's task is "
                            f"{task}")
    if p.is_dir():
        ds = _image_folder(p, preprocessing, name, "ImageFolder folder")
    elif p.suffix.lower() == ".zip":
        folder, keep = _scratch()
        extract_zip(p, folder)
        ds = _image_folder(folder, preprocessing, name, "ImageFolder zip", keep)
    elif p.suffix.lower() == ".npz":
        ds = _npz(p, preprocessing, task, name)
    elif p.suffix.lower() in (".ts", ".arff"):
        x, labels, names = _aeon_series(p)
        ds = _series_dataset(x, labels, names, preprocessing, name=name, fmt=p.suffix.lower(), path=p)
    elif p.suffix.lower() in (".csv", ".tsv", ".txt"):
        loaded = load_series(p.read_bytes(), name=p.name, label_column="auto")
        if loaded.labels is None:
            raise DataFileError(f"'{p.name}' has no label column; a test set needs one (header 'label', or text "
                                "labels in the first column)")
        ds = _series_dataset(loaded.x.astype(np.float64), loaded.labels, loaded.class_names, preprocessing,
                             name=name, fmt=p.suffix.lower(), path=p, notes=loaded.warnings)
    else:
        raise DataFileError(f"'{name}': not a format kdviz reads as a test set ("
                            + "; ".join(f for f, _, _ in DATA_FORMATS) + ")")
    if ds.task != task:
        raise DataFileError(f"'{name}' holds {ds.task} data but the zoo's task is {task}")
    labels, names, notes = align_labels(ds.y_test, ds.class_names, class_names)
    return FileDataset(ds.name, ds.task, ds.format, ds.x_test, labels, names, ds.preprocessing, ds.path,
                       ds.warnings + tuple(notes), ds._keep)


def _fingerprint(path: Path, pre: Preprocessing) -> str:
    """8 hex digits of the path, its size and time, and the preprocessing: part of the data set's name, so a
    resumed ``evaluate`` never reuses batches made from other files or another preprocessing."""
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{pre!r}"
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def test_set_for_zoo(data: str, zoo: Any, *, preset: str | None = None) -> tuple[Any, Any, list[str]]:
    """(data set, zoo, lines to print) for ``kdviz evaluate --zoo Z --data DATA [--preset P]``.

    ``data`` is a built-in name (``mnist``, ``gunpoint`` …) or a path in any of :data:`DATA_FORMATS`. Files are
    read with the zoo's input size, channels and normalisation, or with ``preset``'s (the returned zoo then
    carries the preset's mean and std); the lines say which, and what was read.
    """
    path = Path(data).expanduser()
    if not path.exists():
        if preset is not None:
            raise InvalidInputError("--preset applies to data read from files; a built-in data set has its own")

        return load_dataset(data), zoo, []
    task = Modality.parse(getattr(zoo, "task", Modality.IMAGE))
    pre = preprocessing_for(task=task, input_shape=zoo.input_shape, mean=zoo.mean, std=zoo.std,
                            source=f"zoo '{zoo.name}'", preset=preset)
    ds = read_data(path, preprocessing=pre, task=task, class_names=zoo.class_names)
    ds = dataclasses.replace(ds, name=f"{ds.name}#{_fingerprint(path, pre)}")
    if preset is not None:
        manifest = dataclasses.replace(zoo.manifest, mean=pre.mean, std=pre.std)
        zoo = dataclasses.replace(zoo, manifest=manifest)
    return ds, zoo, [ds.describe(), pre.describe(), *ds.warnings]
