"""Uploaded images, decoded for a model: image files one by one (a bad one is left out and said), or one
ImageFolder zip (a folder per class, the folder names as labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kdviz.io.images import load_image, load_image_folder
from kdviz.io.presets import preview_strip
from kdviz.io.untrusted import UploadError
from kdviz.ui.sets import InputPool
from kdviz.ui.uploads.files import Decoded

__all__ = ["decode_image_folder", "decode_images", "preview"]


def decode_images(files: tuple[tuple[str, bytes], ...], *, mode: str, size: tuple[int, int] | None) -> Decoded:
    """Image files converted to ``mode`` ('L' or 'RGB') and resized to ``size``; a file that cannot be read is
    left out with its error. :class:`kdviz.io.untrusted.UploadError` when none can be read."""
    arrays, names, warnings, errors = [], [], [], []
    for name, data in files:
        try:
            img = load_image(data, name=name, mode=mode, size=size)
        except UploadError as err:
            errors.append(str(err))
            continue
        arrays.append(img.array)
        names.append(name)
        warnings.extend(img.warnings)
    if not arrays:
        raise UploadError("none of the uploaded images could be read: " + " ".join(errors))
    return Decoded(np.stack(arrays), None, tuple(names), (), tuple(warnings), tuple(errors))


def decode_image_folder(name: str, data: bytes, *, mode: str, size: tuple[int, int] | None) -> Decoded:
    """An ImageFolder zip: every image, labelled by its folder, each named ``folder/file`` (its true class)."""
    try:
        folder = load_image_folder(data, mode=mode, size=size)
    except UploadError as err:  # name the uploaded zip: the library's message names the entry inside it
        raise type(err)(f"'{name}': {err}") from None
    names = tuple(f"{Path(f).parent.name}/{Path(f).name}" for f in folder.files)
    return Decoded(folder.images, folder.labels, names, folder.class_names, tuple(folder.warnings))


def preview(pool: InputPool) -> np.ndarray:
    """The first uploaded images side by side, each pixel enlarged so 28×28 and 32×32 inputs can be read."""
    return preview_strip(pool.x)
