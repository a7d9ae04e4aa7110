"""The inputs upload decoded for a model set: by kind (images, an ImageFolder zip, series, a labelled test set),
cached by content, checked against the set's input kind, and what became of each file shown on the Models page."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from kdviz.io.untrusted import UploadError
from kdviz.ui.sets import InputPool, ModelSet
from kdviz.ui.uploads.datasets import read_dataset_upload
from kdviz.ui.uploads.files import DataUpload, Decoded, UploadKind
from kdviz.ui.uploads.images import decode_image_folder, decode_images
from kdviz.ui.uploads.series import decode_series
from kdviz.ui.uploads.text import show_text_inputs
from kdviz.vocab import Modality

__all__ = ["DecodedInputs", "check_inputs", "decode_data", "fit_pool", "show_inputs_status"]


@dataclass(frozen=True, eq=False)
class DecodedInputs:
    """Uploaded inputs ready for a model set: the pool, the class names the files gave (folder names, a data
    set's names; empty for bare images), warnings about inputs used, and errors naming the files left out."""

    pool: InputPool
    class_names: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@st.cache_data(show_spinner=False, max_entries=32)
def _decode(kind: UploadKind, files: tuple[tuple[str, bytes], ...], channels: int, size: tuple[int, ...] | None,
            length: int | None = None) -> Decoded:
    """Decode uploads for ``channels`` and ``size`` (series: ``length``), keyed by the files' bytes (content),
    never by their names alone."""
    mode = "L" if channels == 1 else "RGB"
    if kind == UploadKind.DATASET:  # image sets get the model's size; without one (series models) the file is series
        return read_dataset_upload(files, channels=channels, size=size)
    if kind == UploadKind.TEXT:
        raise UploadError("the uploaded inputs are sentences: they are for the Token rationales page, not for "
                          "image or series models")
    if kind == UploadKind.IMAGE_FOLDER:
        return decode_image_folder(files[0][0], files[0][1], mode=mode, size=size)
    if kind == UploadKind.IMAGES:
        return decode_images(files, mode=mode, size=size)
    return decode_series(files, channels=channels, length=length)


def decode_data(upload: DataUpload, *, channels: int, size: tuple[int, int] | None,
                length: int | None = None) -> DecodedInputs:
    """Inputs for a model set: images converted to ``channels`` and resized to ``size``; series checked
    against ``channels`` (and ``length`` when given).

    A file that cannot be used is left out and named in ``errors``; :class:`kdviz.io.untrusted.UploadError` when
    nothing can be used.
    """
    series = upload.kind == UploadKind.SERIES
    d = _decode(upload.kind, upload.files, channels, None if series else size, length if series else None)
    if upload.kind == UploadKind.DATASET and size is None and length is not None and d.x.shape[-1] != length:
        raise UploadError(f"the series have length {d.x.shape[-1]} but the model takes {length}.")
    pool = InputPool(d.x, d.labels, d.names, source="uploaded")
    return DecodedInputs(pool, d.class_names, d.warnings, d.errors)


def check_inputs(upload: DataUpload, mset: ModelSet) -> DecodedInputs:
    """The uploaded inputs decoded for ``mset``.

    :class:`kdviz.io.untrusted.UploadError` when the inputs are of the wrong kind for the set or none can be used.
    """
    channels = mset.input_shape[0]
    if upload.kind == UploadKind.DATASET:  # the file says what it holds; a mismatch is the reader's clear error
        image = mset.task == Modality.IMAGE
        size = tuple(mset.input_shape[1:]) if image else None
        length = int(mset.input_shape[-1]) if not image and mset.input_shape[-1] > 0 else None
        return decode_data(upload, channels=channels, size=size, length=length)
    if mset.task == Modality.IMAGE:
        if upload.kind == UploadKind.SERIES:
            raise UploadError("the uploaded inputs are series but this model set takes images; pick a time-series "
                              "model set in the sidebar, or upload images.")
        return decode_data(upload, channels=channels, size=tuple(mset.input_shape[1:]))
    if upload.kind != UploadKind.SERIES:
        raise UploadError("the uploaded inputs are images but this model set takes series; pick an image model "
                          "set in the sidebar, or upload series (.ts, .csv, .npy).")
    length = int(mset.input_shape[-1]) if len(mset.input_shape) > 1 and mset.input_shape[-1] > 0 else None
    return decode_data(upload, channels=channels, size=None, length=length)


def fit_pool(upload: DataUpload, mset: ModelSet) -> tuple[np.ndarray, list[str]]:
    """The uploaded inputs shaped for ``mset`` (images to its channels and size; series checked)."""
    pool = check_inputs(upload, mset).pool
    return pool.x, list(pool.names)


def show_inputs_status(upload: DataUpload, mset: ModelSet | None) -> None:
    """Draw what became of each uploaded input file for ``mset``: an error per file left out, notes, a count.

    Sentences are shown on their own (they are not for ``mset``, which may then be None).
    """
    if upload.kind == UploadKind.TEXT:
        show_text_inputs(upload)
        return
    assert mset is not None
    got = check_inputs(upload, mset)
    for msg in got.errors:
        st.error(msg, icon=":material/error:")
    for msg in got.warnings[:5]:
        st.caption(f":material/warning: {msg}")
    st.success(f"{len(got.pool)} uploaded input(s) ready for {mset.name} (choose **uploaded** inputs on its pages).")
