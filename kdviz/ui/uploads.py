"""Uploaded checkpoints, zoos and inputs, turned into a :class:`~kdviz.ui.sets.ModelSet`.

Every file gets a status (loaded / why not); a bad file never stops the others. Models are cached with
``st.cache_resource`` keyed by the file's SHA-256 (and the architecture the user chose), decoded inputs
with ``st.cache_data`` keyed by content hash and target size.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from kdviz.io.checkpoints import CheckpointError, LoadedCheckpoint, checkpoint_parts, load_checkpoint
from kdviz.io.presets import PRESETS, guess_preset, preset_names, preview_strip
from kdviz.io.untrusted import UploadError, check_size, content_hash
from kdviz.models import list_models, model_info
from kdviz.ui.sets import LOAD_LOCK, UPLOADED, InputPool, ModelSet, SetModel, zoo_to_set

__all__ = ["ACCEPTED_INPUTS", "DataUpload", "FileStatus", "check_inputs", "default_normalisation", "fit_pool",
           "normalisation_controls",
           "guess_from_filename", "is_text_csv", "load_data_files", "load_uploaded_checkpoint", "load_uploaded_zoo",
           "read_dataset_upload", "text_inputs", "trust_programs", "upload_limit_bytes"]

TRUST_ENV = "KDVIZ_TRUST_PROGRAMS"
PROGRAM_REFUSED = (
    "it is a TorchScript or torch.export program, and programs run their own code when loaded, so the dashboard "
    "refuses them. Upload a state dict (.pth/.pt saved from model.state_dict()) or .safetensors instead; an "
    f"operator who trusts every user can allow programs by starting kdviz with {TRUST_ENV}=1."
)

CHECKPOINT_TYPES = ["pth", "pt", "bin", "ckpt", "safetensors", "zip"]
# The inputs uploader takes any name (CIFAR's python batches have no extension: test_batch, batches.meta);
# load_data_files accepts these extensions and the CIFAR names below, and refuses anything else.
DATA_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "zip", "ts", "csv", "npy",
              "npz", "arff", "bin", "txt"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
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
DATASET_MAX_INPUTS = 2000  # an upload set is browsed, not evaluated in full: its first inputs are kept
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN, CIFAR_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
_ALPHA_RE = re.compile(r"(?:alpha|a)[=_-]?(\d*\.\d+|\d+)", re.IGNORECASE)


@dataclass
class FileStatus:
    """What happened to one uploaded checkpoint."""

    name: str
    digest: str
    ok: bool
    message: str
    loaded: LoadedCheckpoint | None = None


@dataclass(frozen=True)
class DataUpload:
    """The user's uploaded inputs, kept as bytes so they can be decoded for any model set."""

    kind: str  # 'images' | 'image_folder' | 'series' | 'dataset' (a labelled test set) | 'text' (sentences)
    files: tuple[tuple[str, bytes], ...]


def guess_from_filename(name: str) -> dict[str, Any]:
    """Prefill from a file name like ``resnet18_alpha0.5.pth``: architecture, α, role, label."""
    stem = Path(name).name
    for suffix in (".safetensors", ".pth", ".pt", ".bin", ".ckpt"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    arch = None
    for candidate in sorted(list_models(), key=len, reverse=True):
        if re.search(rf"(^|[_\-. ]){re.escape(candidate)}($|[_\-. ])", stem.lower()):
            arch = candidate
            break
    if arch is None:  # a timm name as the file's name (mobilenetv3_small_100.pth), its α suffix left out
        head = _ALPHA_RE.split(stem)[0].rstrip("_-. ")
        arch = head if head and _is_timm_name(head) else None
    m = _ALPHA_RE.search(stem)
    alpha = float(m.group(1)) if m and 0.0 <= float(m.group(1)) <= 1.0 else None
    role = "teacher" if "teacher" in stem.lower() else "student"
    return {"label": stem, "arch": arch, "alpha": alpha, "role": role}


def trust_programs() -> bool:
    """True when the operator allows TorchScript / torch.export uploads (``KDVIZ_TRUST_PROGRAMS=1``)."""
    return os.environ.get(TRUST_ENV, "").strip() == "1"


def upload_limit_bytes() -> int:
    """The per-file limit: Streamlit's ``server.maxUploadSize`` (MB, .streamlit/config.toml) in bytes."""
    return int(float(st.get_option("server.maxUploadSize")) * 1024**2)


def _check_upload_size(name: str, data: bytes) -> None:
    check_size(len(data), limit_bytes=upload_limit_bytes(), name=f"'{name}'")


@st.cache_resource(show_spinner=False, max_entries=32)
def _load_cached(digest: str, arch: str | None, trust: bool, _data: bytes, part: str | None = None,
                 name: str | None = None) -> LoadedCheckpoint:
    with LOAD_LOCK:
        return load_checkpoint(_data, arch=arch, trust_code=trust, part=part, name=name)


_PART_NAME = re.compile(r"^(?P<base>.*) \[(?P<part>student|teacher)\]$")


class PartFile:
    """One model of a file that holds a student and a teacher (mdistiller): ``best [teacher]``, same bytes."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


@st.cache_data(show_spinner=False, max_entries=64)
def _parts_cached(digest: str, _data: bytes) -> tuple[str, ...]:
    try:
        return checkpoint_parts(_data)
    except Exception:  # noqa: BLE001 - a bad file is reported by load_uploaded_checkpoint, not here
        return ()


def with_parts(files: list[Any]) -> list[Any]:
    """Checkpoint uploads with a distiller's file (student and teacher together) offered as two models."""
    out: list[Any] = []
    for f in files:
        data = f.getvalue()
        parts = () if f.name.lower().endswith(".zip") else _parts_cached(content_hash(data), data)
        out += [PartFile(f"{f.name} [{p}]", data) for p in parts] if len(parts) > 1 else [f]
    return out


def load_uploaded_checkpoint(name: str, data: bytes, arch: str | None = None) -> FileStatus:
    """Load one checkpoint (cached by content hash, arch and the trust setting); a failure becomes a status.

    Programs (TorchScript, torch.export) load only when the operator set ``KDVIZ_TRUST_PROGRAMS=1``.
    """
    digest = content_hash(data)
    trust = trust_programs()
    try:
        _check_upload_size(name, data)
        match = _PART_NAME.match(name)
        part, base = (match["part"], match["base"]) if match else (None, name)
        try:
            ck = _load_cached(digest, arch, trust, data, part, base)
        except CheckpointError as err:
            # timm's model of a name another family registered too (efficientnet_b0 is torchvision's): its keys
            # differ, so the same name under timm's own prefix is tried before giving up
            if not (arch and "unexpected keys" in str(err) and _is_timm_name(arch)):
                raise
            ck = _load_cached(digest, f"timm/{arch}", trust, data, part, base)
    except CheckpointError as err:
        text = for_the_browser(str(err))
        return FileStatus(name, digest, False, PROGRAM_REFUSED if not trust and "trust_code" in text else text)
    except (UploadError, ValueError) as err:
        return FileStatus(name, digest, False, str(err))
    except Exception as err:  # noqa: BLE001 - any other failure of a hostile file is reported, not raised
        return FileStatus(name, digest, False, f"could not be read ({type(err).__name__}: {err})")
    note = f"{ck.arch}, {ck.num_classes} classes, {ck.in_channels} input channel(s), {ck.params / 1e6:.2f} M parameters"
    if ck.warnings:
        note += " — " + "; ".join(ck.warnings)
    if ck.details():
        note += " — " + "; ".join(ck.details())
    return FileStatus(name, digest, True, note, ck)


ARCH_HELP = ("a kdviz architecture (resnet18, resnet8x4, vgg8, fcn …) or any timm model name "
             "(mobilenetv3_small_100, deit_tiny_patch16_224 …); timm/<name> for timm's model where torchvision has "
             "the same name (timm/efficientnet_b0)")


def _is_timm_name(arch: str) -> bool:
    try:
        import timm
    except ImportError:
        return False
    return bool(timm.is_model(arch))


def for_the_browser(message: str) -> str:
    """A loader's message with the command line's advice (``--arch``, ``kdviz.models.list_models()``) said as the
    Models page offers it: the table's architecture column, which takes a kdviz name or any timm model name."""
    message = message.replace(
        "pass the architecture explicitly (--arch) if it is a registered one (kdviz.models.list_models())",
        "type it in the table's architecture column below: a kdviz name (resnet18, resnet8x4, fcn …) or any timm "
        "model name (mobilenetv3_small_100; timm/efficientnet_b0 for timm's model of a name torchvision also has)")
    return message.replace("explicitly (--arch)", "in the table's architecture column")


def zip_kind(data: bytes) -> str:
    """What an uploaded zip holds, from its entry names only (nothing is extracted): 'zoo' (a zoo.json),
    'text' (a Hugging Face folder: config.json), else 'other'."""
    import io
    import zipfile

    try:
        names = [Path(n).name for n in zipfile.ZipFile(io.BytesIO(data)).namelist()]
    except (zipfile.BadZipFile, OSError, ValueError):
        return "other"
    return "zoo" if "zoo.json" in names else "text" if "config.json" in names else "other"


def _zoo_inputs(folder: Path, zoo: Any) -> InputPool | None:
    """The labelled inputs a saved zoo carries (``test_inputs.npz``, kdviz.io.zoo.export), when they fit it."""
    from kdviz.io.zoo.export import INPUTS_FILE

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


def export_set(mset: ModelSet) -> Any:
    """``mset`` as a zoo zip (kdviz.io.zoo.export.ExportedZoo): its models with their roles, α and architectures
    (for uploads: as edited in the table), normalisation and class names; the inputs too when the set has no
    named data set and its inputs are labelled with its classes."""
    from kdviz.io.zoo.export import export_zoo_zip

    inputs = None
    if not mset.dataset and mset.pool is not None and mset.pool.labels is not None and mset.labels_comparable:
        inputs = (mset.pool.x, mset.pool.labels)
    with LOAD_LOCK:  # the round-trip check builds models
        return export_zoo_zip(mset.models, name=mset.name.removeprefix("Uploaded zoo: "), task=mset.task,
                              input_shape=mset.input_shape, mean=mset.mean, std=mset.std,
                              class_names=mset.class_names, dataset=mset.dataset, inputs=inputs)


def _buildable(arch: str) -> bool:
    """Whether kdviz builds ``arch`` by name: registered, resolved on demand (``ked_mlp_m4_h49``, ``fcn_w32``) or
    a timm name."""
    try:
        model_info(arch)
        return True
    except ValueError:  # kdviz.models.UnknownModelError
        return _is_timm_name(arch.removeprefix("timm/"))


def export_problem(mset: ModelSet) -> str | None:
    """Why ``mset`` cannot be saved as a zoo (a model whose architecture kdviz cannot build by name), else None."""
    if mset.task not in ("image", "timeseries"):
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
    from kdviz.io.safezip import extract_zip
    from kdviz.io.untrusted import upload_workspace
    from kdviz.io.zoo.manifest import load_zoo

    with upload_workspace() as folder:
        extract_zip(_data, folder)
        manifests = sorted(folder.rglob("zoo.json"))
        if not manifests:
            raise UploadError("the zip has no zoo.json; upload checkpoint files instead, or a zoo folder zipped.")
        with LOAD_LOCK:
            zoo = load_zoo(manifests[0].parent)
        pool = _zoo_inputs(manifests[0].parent, zoo)
    if pool is None:
        try:
            from kdviz.io.builtin_datasets import load_dataset

            ds = load_dataset(zoo.dataset if isinstance(zoo.dataset, str) else zoo.dataset.name)
            pool = InputPool(np.asarray(ds.x_test), np.asarray(ds.y_test),
                             tuple(f"test #{i}" for i in range(len(ds.y_test))))
        except (ValueError, OSError):
            pool = None
    mset = zoo_to_set(zoo, key=UPLOADED, name=f"Uploaded zoo: {zoo.name}", pool=pool)
    return dataclasses.replace(mset, dataset="" if zoo.dataset == "unknown" else mset.dataset)


def load_uploaded_zoo(name: str, data: bytes) -> tuple[ModelSet | None, str]:
    """A zoo zip (with ``zoo.json``) as a model set, or None and why not."""
    try:
        _check_upload_size(name, data)
        return _zoo_cached(content_hash(data), data), "zoo loaded"
    except Exception as err:  # noqa: BLE001 - reported to the user, the app keeps running
        return None, str(err) if name in str(err) else f"{name}: {err}"


def _program_kind(module: Any) -> str:
    """'series' when a (trusted, unregistered) program has 1-D convolution weights, else 'image'."""
    shapes = [tuple(v.shape) for k, v in module.state_dict().items() if k.endswith("weight")]
    return "series" if any(len(sh) == 3 for sh in shapes) and not any(len(sh) == 4 for sh in shapes) else "image"


def input_kind(ck: LoadedCheckpoint) -> str:
    """'image' or 'series': from the registry, or for a trusted program from its weights' shapes."""
    if ck.arch in list_models():
        return model_info(ck.arch).input_kind
    return _program_kind(ck.module)


def default_normalisation(arch: str, in_channels: int, *, kind: str | None = None, num_classes: int | None = None,
                          preset: str | None = None,
                          ) -> tuple[tuple[int, int] | None, tuple[float, ...], tuple[float, ...]]:
    """Input size and mean/std: the named ``preset``, else the one guessed from the architecture family
    (kdviz.io.presets: CIFAR-10/100 for the CIFAR benchmark zoo, ImageNet for timm and torchvision; CIFAR-100 for
    programs); zeros and ones for series."""
    if kind == "series" or (arch in list_models() and model_info(arch).input_kind == "series"):
        return None, (0.0,) * in_channels, (1.0,) * in_channels
    chosen = PRESETS.get(preset or "") or guess_preset(arch, num_classes or 100) or PRESETS["CIFAR-100"]
    mean, std = chosen.for_channels(in_channels)
    return chosen.size, mean, std


def input_presets(ck: LoadedCheckpoint) -> list[str]:
    """Normalisation presets for the teacher ``ck``, the guessed one first ([] for series models)."""
    return preset_names(ck.arch, ck.num_classes) if input_kind(ck) == "image" else []


def preview(pool: InputPool) -> np.ndarray:
    """The first uploaded images side by side, each pixel enlarged so 28×28 and 32×32 inputs can be read."""
    return preview_strip(pool.x)


@st.cache_data(show_spinner=False, max_entries=32)
def _decode(kind: str, files: tuple[tuple[str, bytes], ...], channels: int, size: tuple[int, ...] | None,
            length: int | None = None,
            ) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Decode uploads to (x, labels, names, class_names, notes) for ``channels`` and ``size`` (series: ``length``).

    Keyed by the files' bytes (content), never by their names alone. A bad image or series file becomes an
    ``"ERROR …"`` note and is skipped; UploadError when no file can be used.
    """
    from kdviz.io.images import load_image, load_image_folder
    from kdviz.io.series import check_series_fits, load_series

    mode = "L" if channels == 1 else "RGB"
    notes: list[str] = []
    if kind == "dataset":  # image sets get the model's size; without one (series models) the file is series
        x, y, class_names, warnings = read_dataset_upload(files, channels=channels, size=size)
        return x, y, tuple(f"{files[0][0]} #{i}" for i in range(len(y))), class_names, warnings
    if kind == "text":
        raise UploadError("the uploaded inputs are sentences: they are for the Token rationales page, not for "
                          "image or series models")
    if kind == "image_folder":
        try:
            folder = load_image_folder(files[0][1], mode=mode, size=size)
        except UploadError as err:  # name the uploaded zip: the library's message names the entry inside it
            raise type(err)(f"'{files[0][0]}': {err}") from None
        # each input named with its folder (its true class): "cat/IMG_01.jpg"
        return (folder.images, folder.labels, tuple(f"{Path(f).parent.name}/{Path(f).name}" for f in folder.files),
                folder.class_names,
                tuple(folder.warnings))
    if kind == "images":  # a bad image is reported and skipped; the others are used
        arrays, names = [], []
        for name, data in files:
            try:
                img = load_image(data, name=name, mode=mode, size=size)
            except UploadError as err:
                notes.append(f"ERROR {err}")
                continue
            arrays.append(img.array)
            names.append(name)
            notes.extend(img.warnings)
        if not arrays:
            raise UploadError("none of the uploaded images could be read: " + " ".join(n[6:] for n in notes))
        return np.stack(arrays), None, tuple(names), (), tuple(notes)
    xs, labels, names, classes = [], [], [], ()
    for name, data in files:  # a bad series file is reported and skipped, like a bad image
        try:
            s = load_series(data, name=name)
            if length and s.labels is None and s.x.shape[-1] == length + 1 and name.lower().endswith(
                    (".csv", ".tsv", ".txt")):  # UCR's layout: the class label in the first column, a number
                s = load_series(data, name=name, label_column="first")
                notes.append(f"'{name}': one value more than the model's length {length}, so the first column "
                             "was read as the class label (the UCR layout).")
            check_series_fits(s.x, in_channels=channels, length=length)
            if xs and s.x.shape[1:] != xs[0].shape[1:]:
                raise UploadError(f"'{name}' holds series of shape {s.x.shape[1:]} but '{names[0].rsplit(' #', 1)[0]}'"
                                  f" holds {xs[0].shape[1:]} (channels, length); upload series of one length.")
        except UploadError as err:
            notes.append(f"ERROR {name}: {err}" if name not in str(err) else f"ERROR {err}")
            continue
        xs.append(s.x)
        names.extend(f"{name} #{i}" for i in range(len(s.x)))
        labels.append(s.labels)
        classes = classes or s.class_names
        notes.extend(s.warnings)
    if not xs:
        raise UploadError("none of the uploaded series files could be used: " + " ".join(n[6:] for n in notes))
    x = np.concatenate(xs) if len(xs) > 1 else xs[0]
    lab = np.concatenate(labels) if all(v is not None for v in labels) else None
    return x, lab, tuple(names), tuple(classes), tuple(notes)


def _is_cifar_python(name: str) -> bool:
    return name in CIFAR_PYTHON_NAMES or name.startswith("data_batch")


def is_text_csv(data: bytes) -> bool:
    """True for a CSV of sentences: a column named ``text`` (any case), or a column of mostly non-numeric
    values with spaces (a series CSV holds numbers, and at most a short label column)."""
    import io

    try:
        df = pd.read_csv(io.BytesIO(data), dtype=str, nrows=50)
    except Exception:  # noqa: BLE001 - not a readable CSV: the series reader reports it
        return False
    if any(str(c).strip().lower() == "text" for c in df.columns):
        return True
    for col in df.columns:
        values = [str(v) for v in df[col].dropna()]
        if not values:
            continue
        wordy = sum(not _is_number(v) and " " in v.strip() for v in values)
        if wordy / len(values) > 0.5:
            return True
    return False


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_data_files(files: list[tuple[str, bytes]]) -> DataUpload:
    """Classify uploaded data files: several images, one ImageFolder zip, series files, one labelled test set
    (.npz, .arff, a CIFAR batch with its class-name file) or sentences (.txt, a text .csv); size-checked."""
    for name, data in files:
        _check_upload_size(name, data)
    names = [Path(n).name for n, _ in files]
    exts = {Path(n).suffix.lower() for n in names}
    cifar = [n for n in names if _is_cifar_python(n) or n.lower().endswith(".bin")]
    name_files = [n for n in names if n in CIFAR_NAME_FILES]
    if cifar or name_files:  # a CIFAR batch, with the file naming its classes
        if len(cifar) != 1 or len(cifar) + len(name_files) != len(files):
            raise UploadError("upload one CIFAR batch (test_batch.bin or test.bin; or the python test_batch or test) "
                              "and, to name its classes, its batches.meta.txt / fine_label_names.txt (binary) or "
                              f"batches.meta / meta (python) — not {', '.join(names)}.")
        main = next(f for f in files if Path(f[0]).name == cifar[0])
        return DataUpload("dataset", (main, *[f for f in files if f is not main]))
    for name in names:
        if Path(name).suffix.lower()[1:] not in DATA_TYPES:
            raise UploadError(f"'{name}' is not an input format kdviz reads; upload {ACCEPTED_INPUTS}.")
    if exts <= IMAGE_SUFFIXES:
        return DataUpload("images", tuple(files))
    if len(exts) == 1 and next(iter(exts)) in DATASET_SUFFIXES:
        if len(files) > 1:
            raise UploadError("upload one data set file (.npz, .arff, CIFAR .bin) at a time.")
        return DataUpload("dataset", tuple(files))
    if exts == {".zip"}:
        if len(files) > 1:
            raise UploadError("upload one ImageFolder zip at a time.")
        return DataUpload("image_folder", tuple(files))
    text = [n for (n, d) in files if n.lower().endswith(".txt") or (n.lower().endswith(".csv") and is_text_csv(d))]
    if text:
        if len(text) != len(files):
            raise UploadError("upload sentences (.txt, or a .csv with a text column) on their own, not with "
                              f"{', '.join(n for n in names if n not in text)}.")
        return DataUpload("text", tuple(files))
    if exts <= {".ts", ".csv", ".npy"}:
        return DataUpload("series", tuple(files))
    raise UploadError("upload either images (png/jpg, or one zip ImageFolder) or series (.ts, .csv, .npy), "
                      "not a mix.")


def text_inputs(upload: DataUpload) -> list[str]:
    """The sentences of a ``text`` upload (every file, in order): kdviz.io.text.read_text_upload's rules."""
    from kdviz.io.text import read_text_upload

    if upload.kind != "text":
        raise UploadError("the uploaded inputs are not sentences")
    out: list[str] = []
    for name, data in upload.files:
        out += read_text_upload(data, name)
    return out


def labelled_text_inputs(upload: DataUpload, class_names: tuple[str, ...]) -> Any:
    """The sentences of a ``text`` upload with their labels where every file has a label column
    (``kdviz.io.text.parse_labelled_texts``), as one ``LabelledTexts`` for an evaluation."""
    from kdviz.io.text import LabelledTexts, parse_labelled_texts, texts_fingerprint

    if upload.kind != "text":
        raise UploadError("the uploaded inputs are not sentences")
    parts = []
    for name, data in upload.files:
        try:
            parts.append(parse_labelled_texts(data, name, class_names))
        except ValueError as exc:
            raise UploadError(str(exc)) from exc
    texts = tuple(t for p in parts for t in p.texts)
    labelled = all(p.labels is not None for p in parts)
    labels = np.concatenate([p.labels for p in parts]) if labelled else None
    notes = tuple(dict.fromkeys(n for p in parts for n in p.notes))
    if not labelled and any(p.labels is not None for p in parts):
        notes += ("some files have no labels: accuracy is not computed",)
    name = parts[0].name if len(parts) == 1 else f"uploads#{texts_fingerprint(texts, labels)}"
    return LabelledTexts(name, texts, labels, notes)


def read_dataset_upload(files: tuple[tuple[str, bytes], ...], *, channels: int, size: tuple[int, int] | None,
                        max_inputs: int = DATASET_MAX_INPUTS,
                        ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """A labelled test set uploaded as files: the first is the set (.npz, .arff, a CIFAR batch), the others its
    class-name files, written side by side into a private scratch folder and read by
    :func:`kdviz.io.user_datasets.read_data` (the reader of ``kdviz evaluate --data``). Images at ``size`` and
    ``channels`` (without a size: series). Returns (x, labels, class names, notes); the first ``max_inputs``
    inputs are kept. A CIFAR batch without its class-name file gets the CIFAR-10 / CIFAR-100 names (a note says
    so), so its labels compare with models of those classes."""
    from kdviz.io.class_names import CIFAR10, CIFAR100
    from kdviz.io.untrusted import upload_workspace
    from kdviz.io.user_datasets import DataFileError, Preprocessing, read_data

    safe = [Path(n).name for n, _ in files]
    if any(not n or n.startswith(".") for n in safe) or len(set(safe)) != len(safe):
        raise DataFileError(f"{', '.join(repr(n) for n, _ in files)}: not usable file names")
    task = "image" if size is not None else "timeseries"
    pre = Preprocessing("the model set", (0.0,) * channels, (1.0,) * channels, size, channels,
                        znorm=task == "timeseries")
    with upload_workspace() as folder:
        for name, (_, data) in zip(safe, files, strict=True):
            (folder / name).write_bytes(bytes(data))
        ds = read_data(folder / safe[0], preprocessing=pre, task=task)  # type: ignore[arg-type]
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
    return x, np.asarray(ds.y_test[:n]), names, tuple(notes)


def decode_data(upload: DataUpload, *, channels: int, size: tuple[int, int] | None, length: int | None = None,
                ) -> tuple[InputPool, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Inputs for a model set: images converted to ``channels`` and resized to ``size``; series checked
    against ``channels`` (and ``length`` when given).

    Returns the pool, class names, warnings, and errors (files left out). Raises UploadError when nothing
    can be used.
    """
    x, labels, names, classes, notes = _decode(upload.kind, upload.files, channels,
                                               None if upload.kind == "series" else size,
                                               length if upload.kind == "series" else None)
    if upload.kind == "dataset" and size is None and length is not None and x.shape[-1] != length:
        raise UploadError(f"the series have length {x.shape[-1]} but the model takes {length}.")
    errors = tuple(n[6:] for n in notes if n.startswith("ERROR "))
    warnings = tuple(n for n in notes if not n.startswith("ERROR "))
    return InputPool(x, labels, names, source="uploaded"), classes, warnings, errors


def check_inputs(upload: DataUpload, mset: ModelSet,
                 ) -> tuple[InputPool, tuple[str, ...], tuple[str, ...]]:
    """The uploaded inputs decoded for ``mset``: (pool, warnings, errors of files left out).

    UploadError when the inputs are of the wrong kind for the set or none can be used.
    """
    channels = mset.input_shape[0]
    if upload.kind == "dataset":  # the file says what it holds; a mismatch is the reader's clear error
        size = tuple(mset.input_shape[1:]) if mset.task == "image" else None
        length = int(mset.input_shape[-1]) if mset.task != "image" and mset.input_shape[-1] > 0 else None
        pool, _, warnings, errors = decode_data(upload, channels=channels, size=size, length=length)
        return pool, warnings, errors
    if mset.task == "image":
        if upload.kind == "series":
            raise UploadError("the uploaded inputs are series but this model set takes images; pick a time-series "
                              "model set in the sidebar, or upload images.")
        pool, _, warnings, errors = decode_data(upload, channels=channels, size=tuple(mset.input_shape[1:]))
        return pool, warnings, errors
    if upload.kind != "series":
        raise UploadError("the uploaded inputs are images but this model set takes series; pick an image model "
                          "set in the sidebar, or upload series (.ts, .csv, .npy).")
    length = int(mset.input_shape[-1]) if len(mset.input_shape) > 1 and mset.input_shape[-1] > 0 else None
    pool, _, warnings, errors = decode_data(upload, channels=channels, size=None, length=length)
    return pool, warnings, errors


def fit_pool(upload: DataUpload, mset: ModelSet) -> tuple[np.ndarray, list[str]]:
    """The uploaded inputs shaped for ``mset`` (images to its channels and size; series checked)."""
    pool, _, _ = check_inputs(upload, mset)
    return pool.x, list(pool.names)


def show_inputs_status(upload: DataUpload, mset: ModelSet) -> None:
    """Draw what became of each uploaded input file for ``mset``: an error per file left out, notes, a count."""
    if upload.kind == "text":
        show_text_inputs(upload)
        return
    pool, warnings, errors = check_inputs(upload, mset)
    for msg in errors:
        st.error(msg, icon=":material/error:")
    for msg in warnings[:5]:
        st.caption(f":material/warning: {msg}")
    st.success(f"{len(pool)} uploaded input(s) ready for {mset.name} (choose **uploaded** inputs on its pages).")


def show_text_inputs(upload: DataUpload) -> None:
    """Sentences uploaded as inputs: how many, the first few, and where they are used."""
    texts = text_inputs(upload)
    st.success(f"{len(texts)} sentence(s) ready for the Token rationales page (choose **Uploaded on the Models "
               "page** as its sentence source) and for the Report's text-zoo evaluation (a .csv's label column, with "
               "class names or indices, gives its accuracy).", icon=":material/check_circle:")
    st.dataframe(pd.DataFrame({"sentence": texts[:5]}), hide_index=True)


def show_file_status(status: FileStatus) -> None:
    """One uploaded checkpoint's outcome: a Material icon (emoji need a font many systems lack) and the message,
    as plain text (a message's ``*`` or ``_`` is not markdown)."""
    if status.ok:
        st.markdown(f":material/check_circle: **{status.name}** — {_plain(status.message)}")
    else:
        st.error(f"**{status.name}** — {_plain(status.message)}", icon=":material/error:")


def _plain(text: str) -> str:
    """``text`` with ``*`` escaped, so markdown shows it as written (``*.pth`` is not the start of italics;
    an underscore inside a word never is)."""
    return str(text).replace("*", "\\*")


def editor_rows(names: list[str], statuses: list[FileStatus]) -> pd.DataFrame:
    """The editable table prefilled from file names and weights; the largest loaded model teaches by default."""
    rows = []
    for name, s in zip(names, statuses, strict=True):
        g = guess_from_filename(name)
        arch = s.loaded.arch if s.ok else (g["arch"] or "")
        rows.append({"file": name, "label": g["label"], "role": g["role"], "architecture": arch, "α": g["alpha"]})
    if not any(r["role"] == "teacher" for r in rows):
        ok = [i for i, s in enumerate(statuses) if s.ok]
        if ok:
            rows[max(ok, key=lambda i: statuses[i].loaded.params)]["role"] = "teacher"
    return pd.DataFrame(rows)


def build_set(statuses: list[FileStatus], table: pd.DataFrame, *, size: tuple[int, int] | None,
              mean: tuple[float, ...], std: tuple[float, ...], pool: InputPool | None,
              class_names: tuple[str, ...]) -> tuple[ModelSet, list[str]]:
    """A model set from loaded files and the edited table (columns file, label, role, architecture, α).

    Returns the set and problems (files left out). ValueError when no teacher can be chosen.
    """
    by_name = {s.name: s for s in statuses if s.ok and s.loaded is not None}
    rows = [r for _, r in table.iterrows() if r["file"] in by_name]
    if not rows:
        raise ValueError("no checkpoint loaded; fix the files marked ✗ above.")
    teachers = [r for r in rows if r["role"] == "teacher"]
    teacher_row = teachers[0] if teachers else max(rows, key=lambda r: by_name[r["file"]].loaded.params)
    t = by_name[teacher_row["file"]].loaded
    problems: list[str] = []
    if len(teachers) > 1:
        problems.append(f"several rows are marked teacher; using {teacher_row['label']}.")
    elif not teachers:
        problems.append(f"no row is marked teacher, so the largest model, {teacher_row['label']}, is used as the "
                        "teacher; mark the teacher in the role column.")
    models: list[SetModel] = []
    for r in [teacher_row] + [r for r in rows if r is not teacher_row]:
        ck = by_name[r["file"]].loaded
        if (ck.num_classes, ck.in_channels) != (t.num_classes, t.in_channels):
            problems.append(f"{r['file']}: {ck.num_classes} classes / {ck.in_channels} channels, but the teacher has "
                            f"{t.num_classes} / {t.in_channels}; left out.")
            continue
        alpha = r["α"]
        models.append(SetModel(
            id=str(r["label"]) or r["file"], arch=ck.arch, alpha=None if pd.isna(alpha) else float(alpha),
            module=ck.module, role="teacher" if r is teacher_row else "student",
            method="—" if r is teacher_row or alpha is None or pd.isna(alpha) else ("ce" if float(alpha) == 1.0 else "kd"),
            sha256=ck.sha256, params=ck.params,
        ))
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        raise ValueError(f"labels must be unique, got {ids}; edit the label column.")
    task = "timeseries" if input_kind(t) == "series" else "image"
    if task == "image":
        assert size is not None
        shape: tuple[int, ...] = (t.in_channels, *size)
    else:
        shape = (t.in_channels, int(pool.x.shape[-1]) if pool is not None else 0)
    names, pool, note = label_space(t.num_classes, t.in_channels, pool, class_names)
    if note:
        problems.append(note)
    mset = ModelSet(key=UPLOADED, name="Uploaded models", task=task, models=tuple(models), input_shape=shape,
                    mean=tuple(mean), std=tuple(std), class_names=names, pool=pool, notes=tuple(problems))
    return mset, problems


def label_space(num_classes: int, in_channels: int, pool: InputPool | None, label_names: tuple[str, ...],
                ) -> tuple[tuple[str, ...], InputPool | None, str | None]:
    """The model's class names and the pool with labels in them, from the data's label names (folder names).

    The model's names are the well-known ones its class count identifies (``kdviz.io.class_names``:
    ImageNet-1k, CIFAR-100, CIFAR-10), else numbers. Folder names are the truth: mapped onto the model's classes
    by name when every one is found; else, with as many folders as classes and no known names, the folders
    name the classes in sorted order (torchvision's ImageFolder); else the labels are kept under their own names
    and marked not comparable (no accuracy). Returns (class names, pool, a note for the user or None).
    """
    from kdviz.io.class_names import guess_class_names, match_labels

    guessed = guess_class_names(num_classes, in_channels=in_channels)
    if guessed is not None and num_classes == 10 and in_channels == 1:
        guessed = None  # grey 10-class: MNIST or Fashion-MNIST alike; numbers (folder names can name them)
    names = guessed[0] if guessed else tuple(str(i) for i in range(num_classes))
    if pool is None or pool.labels is None or not label_names:
        return names, pool, None
    match = match_labels(label_names, names)
    if match.comparable:
        labels = match.model_labels(pool.labels)
        return names, dataclasses.replace(pool, labels=labels), None
    if guessed is None and len(label_names) == num_classes:
        return tuple(label_names), pool, None
    where = f" ({guessed[1]})" if guessed else ""
    note = (f"labels not comparable: the folder name(s) {', '.join(repr(n) for n in match.missing[:5])} are not "
            f"among the model's {num_classes} classes{where}; the folders are shown as the true classes, and no "
            "accuracy is computed.")
    return names, dataclasses.replace(pool, label_names=tuple(label_names), comparable=False), note


REMEMBERED = "kdviz_upload_files"  # session state: uploader key -> ((name, bytes), ...)
EDITOR_TABLE = "kdviz_upload_editor_table"  # session state: (file digests, edited role/arch/α table)


class RememberedFile:
    """An uploaded file kept for the session (name and bytes), with the uploader's ``getvalue()``."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


def remembered_files(key: str, files: list[Any] | None) -> list[Any]:
    """The uploader's files, kept for the session: Streamlit empties a file uploader when the user leaves
    the page, so the files last uploaded come back from session state until new ones are uploaded or
    :func:`forget_files` is called."""
    store = st.session_state.setdefault(REMEMBERED, {})
    if files:
        store[key] = tuple((f.name, f.getvalue()) for f in files)
        return list(files)
    return [RememberedFile(name, data) for name, data in store.get(key, ())]


def forget_files() -> None:
    """Drop the remembered uploads and the editor's table (the "clear" button's callback)."""
    st.session_state.pop(REMEMBERED, None)
    st.session_state.pop(EDITOR_TABLE, None)


def editor_start(digests: tuple[str, ...], fresh: pd.DataFrame, editor_key: str) -> pd.DataFrame:
    """The table the role / architecture / α editor starts from: the user's last edits for these files
    when coming back to the page (the editor's own state is gone then), else ``fresh``."""
    saved = st.session_state.get(EDITOR_TABLE)
    if editor_key not in st.session_state and saved is not None and saved[0] == digests:
        st.session_state[EDITOR_TABLE + "_base"] = saved[1]
    base = st.session_state.get(EDITOR_TABLE + "_base")
    return base if base is not None and list(base["file"]) == list(fresh["file"]) else fresh


def remember_editor(digests: tuple[str, ...], table: pd.DataFrame) -> None:
    st.session_state[EDITOR_TABLE] = (digests, table.copy())


def normalisation_controls(t: Any) -> tuple[tuple[int, int] | None, tuple[float, ...], tuple[float, ...]]:
    """Input size and mean/std for an uploaded set, started from a preset guessed from the teacher ``t`` (a
    ``LoadedCheckpoint``) and every number editable; ValueError for a wrong count or a non-positive std."""
    st.subheader("Input size and normalisation")
    presets = input_presets(t)  # guessed from the teacher's family first; every number stays editable
    preset = st.selectbox("preset", presets, key=f"up_preset_{t.arch}", help="guessed from the architecture") if presets else None
    size, mean, std = default_normalisation(t.arch, t.in_channels, kind=input_kind(t), num_classes=t.num_classes, preset=preset)
    sfx = f"_{preset}" if presets and preset != presets[0] else ""  # another preset: fields start from it
    c1, c2, c3, c4 = st.columns(4)
    if size is not None:
        size = (int(c1.number_input("height", 8, 1024, size[0], key=f"up_h_{t.arch}{sfx}")),
                int(c2.number_input("width", 8, 1024, size[1], key=f"up_w_{t.arch}{sfx}")))
    mean_s = c3.text_input("mean per channel", ", ".join(f"{v:g}" for v in mean), key=f"up_mean_{t.arch}{sfx}")
    std_s = c4.text_input("std per channel", ", ".join(f"{v:g}" for v in std), key=f"up_std_{t.arch}{sfx}")
    mean, std = tuple(float(v) for v in mean_s.split(",")), tuple(float(v) for v in std_s.split(","))
    if len(mean) != t.in_channels or len(std) != t.in_channels or min(std) <= 0:
        raise ValueError(f"give {t.in_channels} mean and {t.in_channels} positive std value(s)")
    return size, mean, std
