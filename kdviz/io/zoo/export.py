"""A model set saved as a zoo: ``zoo.json`` + one ``.safetensors`` per model (+ its inputs), zipped.

The Models page's "save this set as a zoo" download. The zip holds one folder ``<name>/`` with what
:func:`kdviz.io.zoo.manifest.load_zoo` reads (so ``kdviz evaluate --zoo``, the Report and the Models page's zipped-zoo
upload all take it back) and, when the set has labelled inputs, ``test_inputs.npz`` (``x`` in [0, 1] as displayed,
``y``, ``class_names``: plain arrays, no pickle) for ``kdviz evaluate --zoo DIR --data DIR/test_inputs.npz``.

Weights are written from the loaded modules (float32: an upload's precision is kept), so wrappers, prefixes and
optimiser state of the original files are gone and every file is a plain state dict of tensors.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdviz.errors import InvalidInputError
from kdviz.io.safezip import extract_zip
from kdviz.io.zoo.manifest import MANIFEST, ModelEntry, ZooManifest, load_zoo, parse_manifest, save_weights
from kdviz.vocab import Modality

__all__ = ["INPUTS_FILE", "ExportedZoo", "ZooSpec", "export_zoo_zip", "safe_model_id"]

INPUTS_FILE = "test_inputs.npz"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")


@dataclass(frozen=True)
class ExportedZoo:
    """The zip's bytes, the folder name inside it, its manifest and what the user should know."""

    data: bytes
    folder: str
    manifest: Any  # kdviz.io.zoo.manifest.ZooManifest
    notes: tuple[str, ...]


def safe_model_id(text: str, taken: set[str]) -> str:
    """``text`` as a model id usable as a file name (letters, digits, ``_.=+-``), unique among ``taken``."""
    base = _UNSAFE.sub("_", str(text)).strip("._") or "model"
    out, i = base, 2
    while out in taken:
        out, i = f"{base}_{i}", i + 1
    taken.add(out)
    return out


def _method(model: Any, role: str, alpha: float) -> str:
    method = str(getattr(model, "method", "") or "")
    if method in ("ce", "kd", "kd+sd", "ked", "ked-blackbox", "rationale"):
        return method
    return "ce" if role == "teacher" or alpha == 1.0 else "kd"


@dataclass(frozen=True)
class ZooSpec:
    """What a saved zoo says besides its models: name, task, input shape and normalisation, class names, the data
    set it was evaluated on (``""``: unknown), a description and the distillation temperature recorded."""

    name: str
    task: str  # 'image' | 'timeseries' (text zoos are Hugging Face folders)
    input_shape: Sequence[int]
    mean: Sequence[float]
    std: Sequence[float]
    class_names: Sequence[str]
    dataset: str = ""
    description: str = ""
    temperature: float = 4.0


def export_zoo_zip(models: Sequence[Any], spec: ZooSpec, *,
                   inputs: tuple[np.ndarray, np.ndarray | None] | None = None) -> ExportedZoo:
    """Zip ``models`` (teacher first or marked by ``role``) as a zoo that :func:`kdviz.io.zoo.manifest.load_zoo` reads.

    Each model is any object with ``id``, ``role`` ('teacher' | 'student'), ``arch``, ``alpha`` (kdviz's
    convention; None = unknown), ``module`` (an ``nn.Module``) and optionally ``method``, ``params``,
    ``test_accuracy``, ``seed``. ``inputs`` = (x as displayed, labels or None) are stored as
    ``test_inputs.npz`` when labelled. The manifest is checked by :func:`kdviz.io.zoo.manifest.parse_manifest` and the
    zip is read back through the safe extractor and :func:`~kdviz.io.zoo.manifest.load_zoo` before it is returned, so a
    set the loader would refuse raises :class:`kdviz.errors.InvalidInputError` here, not after the download.
    """
    if not models:
        raise InvalidInputError("the set has no models")
    teachers = [m for m in models if getattr(m, "role", "") == "teacher"]
    if len(teachers) != 1:
        raise InvalidInputError(f"a zoo needs exactly one teacher, the set has {len(teachers)}")
    if spec.task not in (Modality.IMAGE, Modality.SERIES):
        raise InvalidInputError(f"task must be 'image' or 'timeseries' (text zoos are Hugging Face folders), got "
                                f"{spec.task!r}")
    if len(spec.class_names) == 0:
        raise InvalidInputError("class_names is empty")
    ordered = teachers + [m for m in models if m is not teachers[0]]
    notes: list[str] = []
    entries = _entries(ordered, spec, notes)
    folder = safe_model_id(spec.name, set())
    has_inputs = inputs is not None and inputs[1] is not None and len(inputs[0]) > 0
    if inputs is not None and not has_inputs:
        notes.append("the inputs have no labels, so they are not saved (a test set needs labels)")
    if spec.dataset in ("", "unknown"):
        notes.append(f"dataset unknown: evaluate with `kdviz evaluate --zoo {folder} --data "
                     + (f"{folder}/{INPUTS_FILE}`" if has_inputs else "PATH`"))
    manifest = ZooManifest(
        name=spec.name, task=spec.task, dataset=spec.dataset or "unknown",  # type: ignore[arg-type]
        input_shape=tuple(int(v) for v in spec.input_shape), mean=tuple(float(v) for v in spec.mean),
        std=tuple(float(v) for v in spec.std), class_names=tuple(str(c) for c in spec.class_names),
        models=tuple(entries), dtype="float32",
        description=(spec.description or f"saved from kdviz's Models page (set '{spec.name}')")
        + ". α is kdviz's (the weight of the hard-label term; 1.0 = no KD)." + "".join(f" {n[0].upper()}{n[1:]}."
                                                                                  for n in notes))
    text = manifest.to_json()
    parse_manifest(json.loads(text))  # what load_zoo will accept
    modules = [(f"{e.id}.safetensors", m.module) for e, m in zip(entries, ordered, strict=True)]
    data = _zip(folder, text, modules, inputs if has_inputs else None, spec.class_names)
    _check_round_trip(data, folder)
    return ExportedZoo(data, folder, manifest, tuple(notes))


def _entries(ordered: list[Any], spec: ZooSpec, notes: list[str]) -> list[ModelEntry]:
    """The manifest records of the models (teacher first), ids made file-safe; unknown α recorded as 1.0."""
    taken: set[str] = set()
    entries = []
    for m in ordered:
        role = "teacher" if m is ordered[0] else "student"
        mid = safe_model_id(str(m.id), taken)
        if mid != str(m.id):
            notes.append(f"model {m.id!r} is saved as {mid!r} (ids are file names)")
        alpha = getattr(m, "alpha", None)
        if alpha is None or (isinstance(alpha, float) and np.isnan(alpha)):
            if role == "student":
                notes.append(f"{mid}: α unknown, recorded as 1.0 (no KD); edit zoo.json if it was distilled")
            alpha = 1.0
        acc = getattr(m, "test_accuracy", None)
        params = int(getattr(m, "params", 0) or sum(p.numel() for p in m.module.parameters()))
        entries.append(ModelEntry(
            id=mid, role=role, arch=str(m.arch), alpha=float(alpha), temperature=float(spec.temperature),  # type: ignore[arg-type]
            method=_method(m, role, float(alpha)), beta=0.0, tau=None, checkpoint=f"{mid}.safetensors",  # type: ignore[arg-type]
            params=params, test_accuracy=float(acc) if acc is not None else 0.0, train_seconds=0.0,
            command=f"kdviz Models page: saved from the set '{spec.name}'", seed=int(getattr(m, "seed", None) or 0)))
    if any(getattr(m, "test_accuracy", None) is None for m in ordered):
        notes.append("test accuracy not known for some models (0 in zoo.json): kdviz evaluate --data measures it")
    return entries


def _zip(folder: str, manifest_text: str, modules: list[tuple[str, Any]],
         inputs: tuple[np.ndarray, np.ndarray | None] | None, class_names: Sequence[str]) -> bytes:
    """The zip: ``folder/zoo.json``, one float32 safetensors per model, and the labelled inputs when given."""
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="kdviz-export-") as tmp, \
            zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{folder}/{MANIFEST}", manifest_text)
        for file, module in modules:
            path = Path(tmp) / file
            save_weights(module, path, dtype=torch.float32, metadata={"source": "kdviz Models page"})
            archive.write(path, f"{folder}/{file}", compress_type=zipfile.ZIP_STORED)
        if inputs is not None and inputs[1] is not None:
            x, y = np.asarray(inputs[0], dtype=np.float32), np.asarray(inputs[1], dtype=np.int64)
            npz = io.BytesIO()
            np.savez(npz, x=x, y=y, class_names=np.asarray([str(c) for c in class_names]))
            archive.writestr(f"{folder}/{INPUTS_FILE}", npz.getvalue())
    return buf.getvalue()


def _check_round_trip(data: bytes, folder: str) -> None:
    """Extract with the upload rules and load the zoo, as the Models page does with an uploaded zoo zip."""
    with tempfile.TemporaryDirectory(prefix="kdviz-export-check-") as tmp:
        extract_zip(data, tmp)
        try:
            load_zoo(Path(tmp) / folder)
        except Exception as exc:  # noqa: BLE001 - any loader failure: the set cannot be saved as a zoo
            raise InvalidInputError(f"the saved zoo would not load back ({exc})") from exc
