"""Uploaded series files (.ts, .csv, .npy), decoded for a model: checked against its channels and length, a bad
file left out and said, like a bad image."""

from __future__ import annotations

import numpy as np

from kdviz.io.series import LoadedSeries, check_series_fits, load_series
from kdviz.io.untrusted import UploadError
from kdviz.ui.uploads.files import Decoded

__all__ = ["decode_series"]


def decode_series(files: tuple[tuple[str, bytes], ...], *, channels: int, length: int | None) -> Decoded:
    """Every file's series, checked against ``channels`` (and ``length`` when given) and against each other.

    A UCR-style CSV with one value more than ``length`` is read with its first column as the class label (a
    warning says so). :class:`kdviz.io.untrusted.UploadError` when no file can be used.
    """
    xs: list[np.ndarray] = []
    labels: list[np.ndarray | None] = []
    names: list[str] = []
    classes: tuple[str, ...] = ()
    warnings: list[str] = []
    errors: list[str] = []
    for name, data in files:
        try:
            s = _read_one(name, data, length, warnings)
            check_series_fits(s.x, in_channels=channels, length=length)
            if xs and s.x.shape[1:] != xs[0].shape[1:]:
                raise UploadError(f"'{name}' holds series of shape {s.x.shape[1:]} but '{names[0].rsplit(' #', 1)[0]}'"
                                  f" holds {xs[0].shape[1:]} (channels, length); upload series of one length.")
        except UploadError as err:
            errors.append(f"{name}: {err}" if name not in str(err) else str(err))
            continue
        xs.append(s.x)
        names.extend(f"{name} #{i}" for i in range(len(s.x)))
        labels.append(s.labels)
        classes = classes or tuple(s.class_names)
        warnings.extend(s.warnings)
    if not xs:
        raise UploadError("none of the uploaded series files could be used: " + " ".join(errors))
    x = np.concatenate(xs) if len(xs) > 1 else xs[0]
    lab = np.concatenate(labels) if all(v is not None for v in labels) else None
    return Decoded(x, lab, tuple(names), classes, tuple(warnings), tuple(errors))


def _read_one(name: str, data: bytes, length: int | None, warnings: list[str]) -> LoadedSeries:
    """One file's series; UCR's layout (the class label in the first column, a number) when it has one value more
    than the model's ``length``."""
    s = load_series(data, name=name)
    if length and s.labels is None and s.x.shape[-1] == length + 1 and name.lower().endswith((".csv", ".tsv", ".txt")):
        s = load_series(data, name=name, label_column="first")
        warnings.append(f"'{name}': one value more than the model's length {length}, so the first column was read "
                        "as the class label (the UCR layout).")
    return s
