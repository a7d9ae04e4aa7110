"""An uploaded labelled test set (.npz, .arff, a CIFAR batch with its class-name file), read by the same reader as
``kdviz evaluate --data`` (:func:`kdviz.io.user_datasets.read_data`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kdviz.io.class_names import CIFAR10, CIFAR100
from kdviz.io.untrusted import upload_workspace
from kdviz.io.user_datasets import DataFileError, Preprocessing, read_data
from kdviz.ui.uploads.files import Decoded
from kdviz.vocab import Modality

__all__ = ["DATASET_MAX_INPUTS", "read_dataset_upload"]

DATASET_MAX_INPUTS = 2000  # an upload set is browsed, not evaluated in full: its first inputs are kept


def read_dataset_upload(files: tuple[tuple[str, bytes], ...], *, channels: int, size: tuple[int, int] | None,
                        max_inputs: int = DATASET_MAX_INPUTS) -> Decoded:
    """A labelled test set uploaded as files: the first is the set (.npz, .arff, a CIFAR batch), the others its
    class-name files, written side by side into a private scratch folder and read by
    :func:`kdviz.io.user_datasets.read_data`. Images at ``size`` and ``channels`` (without a size: series).

    The first ``max_inputs`` inputs are kept, each named ``<file> #i``. A CIFAR batch without its class-name file
    gets the CIFAR-10 / CIFAR-100 names (a warning says so), so its labels compare with models of those classes.
    """
    safe = [Path(n).name for n, _ in files]
    if any(not n or n.startswith(".") for n in safe) or len(set(safe)) != len(safe):
        raise DataFileError(f"{', '.join(repr(n) for n, _ in files)}: not usable file names")
    task = Modality.IMAGE if size is not None else Modality.SERIES
    pre = Preprocessing("the model set", (0.0,) * channels, (1.0,) * channels, size, channels,
                        znorm=task == Modality.SERIES)
    with upload_workspace() as folder:
        for name, (_, data) in zip(safe, files, strict=True):
            (folder / name).write_bytes(bytes(data))
        ds = read_data(folder / safe[0], preprocessing=pre, task=task)
        n = min(len(ds.y_test), max_inputs)
        x = np.asarray(ds.x_test[:n], dtype=np.float32)
    notes = list(ds.warnings)
    if n < len(ds.y_test):
        notes.append(f"'{safe[0]}' holds {len(ds.y_test):,} inputs; the first {n:,} are used")
    names = tuple(ds.class_names)
    if ds.format.startswith("CIFAR-") and names == tuple(str(i) for i in range(len(names))):
        known = CIFAR10 if len(names) == 10 else CIFAR100 if len(names) == 100 else None
        if known is not None:
            names = known
            which = "CIFAR-10" if len(known) == 10 else "CIFAR-100"
            notes.append(f"'{safe[0]}': no {'batches.meta' if len(known) == 10 else 'meta'} / "
                         f"{'batches.meta.txt' if len(known) == 10 else 'fine_label_names.txt'} uploaded with it, so "
                         f"its classes are named as in {which} ({', '.join(known[:3])} …)")
    inputs = tuple(f"{files[0][0]} #{i}" for i in range(n))
    return Decoded(x, np.asarray(ds.y_test[:n]), inputs, names, tuple(notes))
