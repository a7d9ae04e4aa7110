"""Zoos in and out of the Models page: a zipped zoo uploaded as a model set, and a model set saved as a zoo zip.

A zoo zip holds a folder with ``zoo.json`` (:mod:`kdviz.io.zoo.manifest`) and its weights, and optionally the
labelled inputs it was saved with (``test_inputs.npz``, :mod:`kdviz.io.zoo.export`). An uploaded zip is extracted by
the safe extractor into a private scratch folder and cached by content hash.
"""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import streamlit as st

from kdviz.io.builtin_datasets import load_dataset
from kdviz.io.safezip import extract_zip
from kdviz.io.untrusted import UploadError, content_hash, upload_workspace
from kdviz.io.zoo.export import INPUTS_FILE, ExportedZoo, ZooSpec, export_zoo_zip
from kdviz.io.zoo.manifest import Zoo, load_zoo
from kdviz.models import model_info
from kdviz.models.timm_family import is_timm_name
from kdviz.ui.sets import LOAD_LOCK, UPLOADED, InputPool, ModelSet, zoo_to_set
from kdviz.ui.uploads.files import check_upload_size
from kdviz.vocab import Modality

__all__ = ["export_problem", "export_set", "load_uploaded_zoo", "save_zoo_button", "zip_kind"]


def zip_kind(data: bytes) -> str:
    """What an uploaded zip holds, from its entry names only (nothing is extracted): 'zoo' (a zoo.json),
    'text' (a Hugging Face folder: config.json), else 'other'."""
    try:
        names = [Path(n).name for n in zipfile.ZipFile(io.BytesIO(data)).namelist()]
    except (zipfile.BadZipFile, OSError, ValueError):
        return "other"
    return "zoo" if "zoo.json" in names else "text" if "config.json" in names else "other"


def _zoo_inputs(folder: Path, zoo: Zoo) -> InputPool | None:
    """The labelled inputs a saved zoo carries (``test_inputs.npz``), when they fit it."""
    path = folder / INPUTS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            x, y = np.asarray(npz["x"], dtype=np.float32), np.asarray(npz["y"], dtype=np.int64)
    except Exception:  # noqa: BLE001 - a damaged or hostile file: the zoo is still usable without inputs
        return None
    if x.shape[1:] != tuple(zoo.input_shape) or len(x) != len(y) or (len(y) and (y.min() < 0 or
                                                                               y.max() >= len(zoo.class_names))):
        return None
    return InputPool(x, y, tuple(f"{INPUTS_FILE} #{i}" for i in range(len(y))), source="the zoo's inputs")


def export_set(mset: ModelSet) -> ExportedZoo:
    """``mset`` as a zoo zip: its models with their roles, α and architectures (for uploads: as edited in the
    table), normalisation and class names; the inputs too when the set has no named data set and its inputs are
    labelled with its classes."""
    inputs = None
    if not mset.dataset and mset.pool is not None and mset.pool.labels is not None and mset.labels_comparable:
        inputs = (mset.pool.x, mset.pool.labels)
    with LOAD_LOCK:  # the round-trip check builds models
        spec = ZooSpec(name=mset.name.removeprefix("Uploaded zoo: "), task=mset.task, input_shape=mset.input_shape,
                       mean=mset.mean, std=mset.std, class_names=mset.class_names, dataset=mset.dataset)
        return export_zoo_zip(mset.models, spec, inputs=inputs)


def _buildable(arch: str) -> bool:
    """Whether kdviz builds ``arch`` by name: registered, resolved on demand (``ked_mlp_m4_h49``, ``fcn_w32``) or
    a timm name."""
    try:
        model_info(arch)
        return True
    except ValueError:  # an unknown name (UnknownModelError), or one a family's resolver refuses
        return is_timm_name(arch.removeprefix("timm/"))


def export_problem(mset: ModelSet) -> str | None:
    """Why ``mset`` cannot be saved as a zoo (a model whose architecture kdviz cannot build by name), else None."""
    if mset.task not in (Modality.IMAGE, Modality.SERIES):
        return f"a {mset.task} set is not saved this way"
    odd = [m.id for m in mset.models if not _buildable(m.arch)]
    if odd:
        return (f"{', '.join(odd)}: the architecture is not one kdviz can build by name (a TorchScript program?), so "
                "a zoo could not load it")
    return None


def save_zoo_button(mset: ModelSet, *, key: str) -> None:
    """A download button: ``mset`` as a zipped zoo that ``kdviz evaluate --zoo``, the Report and this page's
    zipped-zoo upload take back. The zip is built when clicked (Streamlit's deferred download)."""
    problem = export_problem(mset)
    folder = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", mset.name.removeprefix("Uploaded zoo: ")).strip("._") or "zoo"
    st.download_button(
        "Save this set as a zoo (.zip)", data=lambda: export_set(mset).data, file_name=f"{folder}.zip",
        mime="application/zip", key=key, disabled=problem is not None, on_click="ignore",
        icon=":material/download:",
        help=problem or ("zoo.json + one .safetensors per model (float32), with the roles, α and architectures "
                         "shown" + (" and the labelled inputs (test_inputs.npz)" if not mset.dataset else "")
                         + "; `kdviz evaluate --zoo FOLDER`"
                         + ("" if mset.dataset else " --data FOLDER/test_inputs.npz")
                         + ", the Report and this page's zoo upload read it back"))


@st.cache_resource(show_spinner=False, max_entries=4)
def _zoo_cached(digest: str, _data: bytes) -> ModelSet:
    with upload_workspace() as folder:
        extract_zip(_data, folder)
        manifests = sorted(folder.rglob("zoo.json"))
        if not manifests:
            raise UploadError("the zip has no zoo.json; upload checkpoint files instead, or a zoo folder zipped.")
        with LOAD_LOCK:
            zoo = load_zoo(manifests[0].parent)
        pool = _zoo_inputs(manifests[0].parent, zoo)
    if pool is None:
        pool = _dataset_pool(zoo)
    mset = zoo_to_set(zoo, key=UPLOADED, name=f"Uploaded zoo: {zoo.name}", pool=pool)
    return dataclasses.replace(mset, dataset="" if zoo.dataset == "unknown" else mset.dataset)


def _dataset_pool(zoo: Zoo) -> InputPool | None:
    """The test split of the built-in data set the zoo names, None when kdviz has none of that name here."""
    try:
        ds = load_dataset(zoo.dataset if isinstance(zoo.dataset, str) else zoo.dataset.name)
    except (ValueError, OSError):  # not a data set kdviz has here: the zoo is still usable without inputs
        return None
    return InputPool(np.asarray(ds.x_test), np.asarray(ds.y_test), tuple(f"test #{i}" for i in range(len(ds.y_test))))


def load_uploaded_zoo(name: str, data: bytes) -> tuple[ModelSet | None, str]:
    """A zoo zip (with ``zoo.json``) as a model set, or None and why not (any failure of the file is reported)."""
    try:
        check_upload_size(name, data)
        return _zoo_cached(content_hash(data), data), "zoo loaded"
    except Exception as err:  # noqa: BLE001 - the user's file: whatever breaks on it is reported, the app keeps running
        return None, str(err) if name in str(err) else f"{name}: {err}"
