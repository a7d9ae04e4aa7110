"""What the inputs uploader was given: its files classified by kind (images, an ImageFolder zip, series, a labelled
test set, sentences), the size limit every upload is checked against, and the record a decoder returns.

Classification reads names and, for a CSV, its first rows; nothing is decoded here, so a bad file is reported by
the decoder of its kind (``images``, ``series``, ``datasets``, ``text`` in this package).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import streamlit as st

from kdviz.io.images import IMAGE_SUFFIXES
from kdviz.io.untrusted import UploadError, check_size
from kdviz.modalities import get_modality
from kdviz.vocab import Modality

__all__ = ["ACCEPTED_INPUTS", "DATA_TYPES", "DataUpload", "Decoded", "KeptFile", "UploadKind", "check_upload_size",
           "load_data_files", "upload_limit_bytes"]

# The inputs uploader takes any name (CIFAR's python batches have no extension: test_batch, batches.meta);
# load_data_files accepts these extensions and the CIFAR names below, and refuses anything else.
DATA_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "zip", "ts", "csv", "npy",
              "npz", "arff", "bin", "txt"]

# Whole labelled test sets read by kdviz.io.user_datasets (the readers behind `kdviz evaluate --data`).
DATASET_SUFFIXES = (".npz", ".arff", ".bin")
# CIFAR-10/100 python batches (read by kdviz.io.cifar's restricted decoder, never pickle.load) and the files that
# name the classes next to a batch (python: batches.meta / meta; binary: batches.meta.txt / fine_label_names.txt)
CIFAR_PYTHON_NAMES = ("test_batch", "test", "train")
CIFAR_NAME_FILES = ("batches.meta", "meta", "batches.meta.txt", "fine_label_names.txt", "coarse_label_names.txt")
ACCEPTED_INPUTS = (
    "images (png, jpg, gif, bmp, tif, webp) or one ImageFolder .zip (a folder per class); series (.ts, .csv, .npy); "
    "one labelled test set: .npz with x and y, .arff, a CIFAR-10/100 binary batch (.bin, with batches.meta.txt or "
    "fine_label_names.txt) or python batch (test_batch or test, with batches.meta or meta; read without "
    "unpickling); sentences for the Token rationales page and the Report's text-zoo evaluation (.txt, one per "
    "line, or a .csv with a text column and, for accuracy, a label column)"
)


class UploadKind(StrEnum):
    """What an inputs upload holds."""

    IMAGES = "images"  # image files, decoded one by one
    IMAGE_FOLDER = "image_folder"  # one zip with a folder per class
    SERIES = "series"  # .ts / .csv / .npy series files
    DATASET = "dataset"  # one labelled test set (.npz, .arff, a CIFAR batch with its class-name file)
    TEXT = "text"  # sentences (.txt, a text .csv)


@dataclass(frozen=True)
class DataUpload:
    """The user's uploaded inputs, kept as bytes so they can be decoded for any model set."""

    kind: UploadKind
    files: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, eq=False)
class Decoded:
    """Uploaded inputs decoded for a model: arrays, labels, a name per input, and what to tell the user.

    ``warnings`` are notes about inputs that were used (resized, converted, the first N kept); ``errors`` name the
    files that were left out and why. A decoder raises :class:`kdviz.io.untrusted.UploadError` instead when no
    file at all can be used.
    """

    x: np.ndarray
    labels: np.ndarray | None
    names: tuple[str, ...]
    class_names: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


class KeptFile:
    """An uploaded file held as name and bytes, with the uploader's ``getvalue()`` (a file remembered for the
    session, or one model of a file that holds two)."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        """The file's bytes, as Streamlit's ``UploadedFile.getvalue`` gives them."""
        return self._data


def upload_limit_bytes() -> int:
    """The per-file limit: Streamlit's ``server.maxUploadSize`` (MB, .streamlit/config.toml) in bytes."""
    return int(float(st.get_option("server.maxUploadSize")) * 1024**2)


def check_upload_size(name: str, data: bytes) -> None:
    """Refuse an upload over :func:`upload_limit_bytes` (:class:`kdviz.io.untrusted.UploadTooLargeError`)."""
    check_size(len(data), limit_bytes=upload_limit_bytes(), name=f"'{name}'")


def _is_cifar_python(name: str) -> bool:
    return name in CIFAR_PYTHON_NAMES or name.startswith("data_batch")


def load_data_files(files: list[tuple[str, bytes]]) -> DataUpload:
    """Classify uploaded data files: several images, one ImageFolder zip, series files, one labelled test set
    (.npz, .arff, a CIFAR batch with its class-name file) or sentences (.txt, a text .csv); size-checked.

    Raises :class:`kdviz.io.untrusted.UploadError` for a format kdviz does not read or a mix it cannot use.
    """
    for name, data in files:
        check_upload_size(name, data)
    names = [Path(n).name for n, _ in files]
    cifar = _cifar_upload(files, names)
    if cifar is not None:
        return cifar
    unknown = [n for n in names if Path(n).suffix.lower()[1:] not in DATA_TYPES]
    if unknown:
        raise UploadError(f"'{unknown[0]}' is not an input format kdviz reads; upload {ACCEPTED_INPUTS}.")
    exts = {Path(n).suffix.lower() for n in names}
    if exts <= IMAGE_SUFFIXES:
        return DataUpload(UploadKind.IMAGES, tuple(files))
    if len(exts) == 1 and next(iter(exts)) in DATASET_SUFFIXES:
        if len(files) > 1:
            raise UploadError("upload one data set file (.npz, .arff, CIFAR .bin) at a time.")
        return DataUpload(UploadKind.DATASET, tuple(files))
    if exts == {".zip"}:
        if len(files) > 1:
            raise UploadError("upload one ImageFolder zip at a time.")
        return DataUpload(UploadKind.IMAGE_FOLDER, tuple(files))
    text = [n for (n, d) in files if get_modality(Modality.TEXT).accepts_file(n, d)]
    if text:
        if len(text) != len(files):
            raise UploadError("upload sentences (.txt, or a .csv with a text column) on their own, not with "
                              f"{', '.join(n for n in names if n not in text)}.")
        return DataUpload(UploadKind.TEXT, tuple(files))
    if exts <= {".ts", ".csv", ".npy"}:
        return DataUpload(UploadKind.SERIES, tuple(files))
    raise UploadError("upload either images (png/jpg, or one zip ImageFolder) or series (.ts, .csv, .npy), "
                      "not a mix.")


def _cifar_upload(files: list[tuple[str, bytes]], names: list[str]) -> DataUpload | None:
    """A CIFAR batch with the files naming its classes (the batch first), None when no CIFAR file was uploaded."""
    cifar = [n for n in names if _is_cifar_python(n) or n.lower().endswith(".bin")]
    name_files = [n for n in names if n in CIFAR_NAME_FILES]
    if not (cifar or name_files):
        return None
    if len(cifar) != 1 or len(cifar) + len(name_files) != len(files):
        raise UploadError("upload one CIFAR batch (test_batch.bin or test.bin; or the python test_batch or test) "
                          "and, to name its classes, its batches.meta.txt / fine_label_names.txt (binary) or "
                          f"batches.meta / meta (python) — not {', '.join(names)}.")
    main = next(f for f in files if Path(f[0]).name == cifar[0])
    return DataUpload(UploadKind.DATASET, (main, *[f for f in files if f is not main]))
