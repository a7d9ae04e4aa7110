"""The active model set: a teacher, its students and a pool of inputs, whatever they came from.

Demo zoos (``assets/zoo/mnist``, ``assets/zoo/gunpoint``) and the user's uploads are all turned into one
:class:`ModelSet`, so every page draws the same way. Zoos are loaded lazily, once per process, through
``st.cache_resource`` keyed by the manifest's content hash.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from kdviz.errors import MissingDataError
from kdviz.io.builtin_datasets import load_dataset
from kdviz.io.zoo.manifest import load_zoo
from kdviz.vocab import Modality, TrainingMethod

__all__ = ["DEMO_MODEL_KINDS", "DEMO_SETS", "InputPool", "ModelSet", "array_hash", "demo_set"]

ROOT = Path(__file__).resolve().parents[2]
ZOO_ROOT_ENV = "KDVIZ_DEMO_ZOOS"  # folder holding mnist/, gunpoint/, mnist-seeds/ (default: assets/zoo)
DEMO_SETS: dict[str, tuple[str, str]] = {
    "demo-image": ("Demo: MNIST digits (image zoo)", "mnist"),
    "demo-series": ("Demo: GunPoint (time-series zoo)", "gunpoint"),
    "demo-seeds": ("Demo: MNIST resnet8 / resnet20 × 3 training seeds", "mnist-seeds"),
    "demo-ked": ("Demo: Fashion-MNIST, KED as in the paper (explaining MLPs × 3 seeds)", "fashion-mnist-ked"),
}
# Model kind of each demo set's networks where it is not 'cnn' (greys out methods that do not apply, e.g. Grad-CAM)
DEMO_MODEL_KINDS: dict[str, str] = {"demo-series": "series", "demo-ked": "other"}


def demo_folder(key: str) -> Path:
    """Folder of demo zoo ``key``: ``$KDVIZ_DEMO_ZOOS/<name>`` or ``assets/zoo/<name>``."""
    base = Path(os.environ.get(ZOO_ROOT_ENV) or ROOT / "assets" / "zoo")
    return base / DEMO_SETS[key][1]
UPLOADED = "uploaded"
UNKNOWN = TrainingMethod.UPLOADED  # the method of an uploaded model whose recipe kdviz does not know (shown "—")
# Building models from checkpoints is serialised across sessions: kdviz.models' shape probing patches
# nn.Module registration process-wide while it runs, so two loads at once could interfere.
LOAD_LOCK = threading.Lock()


def array_hash(*arrays: np.ndarray) -> str:
    """Short content hash of arrays (shape and dtype included): the input part of cache keys."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class InputPool:
    """Inputs to explain: ``x`` as displayed (images in [0, 1], (N, C, H, W); series (N, C, L)), labels
    (N,) or None, and a name per input."""

    x: np.ndarray
    labels: np.ndarray | None
    names: tuple[str, ...]
    source: str = "test split"
    # The labels' own names when they are not the models' classes (an ImageFolder whose folder names are no
    # class of the model): ``labels`` index these, and ``comparable`` is False (no accuracy is computed).
    label_names: tuple[str, ...] = ()
    comparable: bool = True

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class SetModel:
    """One model of a set, with what ``compare_models`` needs (id, arch, alpha, module, role, method)."""

    id: str
    arch: str
    alpha: float | None
    module: Any
    role: str
    method: str  # a TrainingMethod value
    sha256: str
    params: int = 0
    test_accuracy: float | None = None
    seed: int | None = None  # the training seed (zoo manifests record it): replicates differ only in it


@dataclass(frozen=True, eq=False)
class ModelSet:
    """A teacher and students (teacher first), how to normalise inputs, and the default input pool."""

    key: str
    name: str
    task: Modality  # image or series (text sets are kdviz.ui.text's)
    models: tuple[SetModel, ...]
    input_shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    pool: InputPool | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    dataset: str = ""  # the zoo's data set name (mnist, gunpoint …); "" for uploads

    @property
    def teacher(self) -> SetModel:
        return self.models[0]

    @property
    def students(self) -> tuple[SetModel, ...]:
        return self.models[1:]

    @property
    def hashes(self) -> tuple[str, ...]:
        return tuple(f"{m.id}:{m.role}:{m.alpha}:{m.sha256}" for m in self.models)

    def model_input(self, x: np.ndarray) -> np.ndarray:
        """Normalise displayed inputs for the models: ``(x − mean) / std`` per channel (new float32 array)."""
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.std, dtype=np.float32).reshape(shape)
        return ((np.asarray(x, dtype=np.float32) - mean) / std).astype(np.float32)

    def table(self) -> pd.DataFrame:
        """One row per model, ready to show: id, role, architecture, α, training, parameters, test accuracy.

        Unknown values read "—" (never "None"); the teacher's training says what it was trained with
        (cross-entropy for a zoo's teacher), never "kd".
        """
        def training(m: SetModel) -> str:
            if m.role == "teacher":
                return {"ce": "cross-entropy"}.get(m.method, "—" if m.method in ("kd", "", UNKNOWN) else m.method)
            return {"ce": "cross-entropy (no KD)", "kd": "KD", "kd+sd": "KD + saliency distillation",
                    "ked": "KED as in the paper (explaining branches over superfeatures)",
                    "ked-blackbox": "KED, black-box (KD + masked explanations over superfeatures)",
                    UNKNOWN: "—"}.get(m.method, m.method or "—")

        return pd.DataFrame(
            [
                {"id": m.id, "role": m.role, "architecture": m.arch,
                 "α": "—" if m.alpha is None or m.role == "teacher" else f"{m.alpha:g}", "training": training(m),
                 "parameters": f"{m.params / 1e6:.2f} M" if m.params else "—",
                 "test accuracy": "—" if m.test_accuracy is None else f"{m.test_accuracy:.1%}"}
                for m in self.models
            ]
        )

    def seed_replicates(self) -> dict[int, list[str]]:
        """Training seed -> the ids of its students, when some variant (architecture, α, training) holds
        several students (training-seed replicates); empty otherwise. Students of a variant with one model
        are listed under every seed."""
        variants: dict[tuple, list[SetModel]] = {}
        for m in self.students:
            variants.setdefault((m.arch, m.alpha, m.method), []).append(m)
        if not any(len(v) > 1 for v in variants.values()):
            return {}
        seeds = sorted({int(m.seed) if m.seed is not None else i for v in variants.values() if len(v) > 1
                        for i, m in enumerate(v)})
        out: dict[int, list[str]] = {s: [] for s in seeds}
        for v in variants.values():
            for i, m in enumerate(v):
                own = int(m.seed) if m.seed is not None else i
                for s in (seeds if len(v) == 1 else [own]):
                    out[s].append(m.id)
        return out

    def class_name(self, index: int) -> str:
        return self.class_names[index] if 0 <= index < len(self.class_names) else str(index)

    def true_name(self, label: int) -> str:
        """The name of a label of this set's pool: its own label name where the labels are not the models'
        classes, else the class name."""
        names = self.pool.label_names if self.pool is not None else ()
        if names:
            return names[label] if 0 <= label < len(names) else str(label)
        return self.class_name(label)

    @property
    def labels_comparable(self) -> bool:
        """Whether the pool's labels are classes of the models (so predictions can be scored against them)."""
        return self.pool is None or self.pool.comparable


def _manifest_hash(folder: Path) -> str:
    manifest = folder / "zoo.json"
    return hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else ""


def _model_hash(m: Any) -> str:
    """SHA-256 of a zoo model's checkpoint file (the cache key of everything computed from it)."""
    digest = getattr(m, "sha256", None)
    if digest:
        return str(digest)
    path = Path(getattr(m, "path", "") or "")
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{m.id}:{id(m.module)}"


def zoo_to_set(zoo: Any, *, key: str, name: str, pool: InputPool | None) -> ModelSet:
    """A :class:`ModelSet` from a ``kdviz.io.zoo.manifest.Zoo`` (teacher first, then the students as listed)."""
    models = [zoo.teacher, *zoo.students]
    items = tuple(
        SetModel(
            id=str(m.id), arch=str(m.arch), alpha=None if m.alpha is None else float(m.alpha), module=m.module,
            role="teacher" if i == 0 else "student", method=str(getattr(m, "method", "kd") or "kd"),
            sha256=_model_hash(m), params=int(getattr(m, "params", 0) or 0),
            test_accuracy=getattr(m, "test_accuracy", None), seed=getattr(m, "seed", None),
        )
        for i, m in enumerate(models)
    )
    return ModelSet(
        key=key, name=name, task=Modality.parse(zoo.task), models=items, input_shape=tuple(zoo.input_shape),
        mean=tuple(float(v) for v in zoo.mean), std=tuple(float(v) for v in zoo.std),
        class_names=tuple(str(c) for c in zoo.class_names), pool=pool,
        dataset=str(zoo.dataset if isinstance(zoo.dataset, str) else getattr(zoo.dataset, "name", "")),
    )


@st.cache_resource(show_spinner=False, max_entries=4)
def _load_demo(key: str, folder: str, manifest_hash: str) -> ModelSet:
    """Load a demo zoo and its test split once per process (keyed by the manifest's hash)."""
    with LOAD_LOCK:
        zoo = load_zoo(folder)
    ds = load_dataset(zoo.dataset if isinstance(zoo.dataset, str) else zoo.dataset.name)
    names = tuple(f"test #{i} ({ds.class_names[int(y)]})" for i, y in enumerate(ds.y_test))
    pool = InputPool(x=np.asarray(ds.x_test), labels=np.asarray(ds.y_test), names=names)
    for m in [zoo.teacher, *zoo.students]:
        m.module.eval()
    return zoo_to_set(zoo, key=key, name=DEMO_SETS[key][0], pool=pool)


def demo_set(key: str) -> ModelSet:
    """The demo zoo ``key`` (a key of :data:`DEMO_SETS`); :class:`MissingDataError` with a fix when it is missing."""
    folder = demo_folder(key)
    digest = _manifest_hash(folder)
    if not digest:
        raise MissingDataError(
            f"the demo zoo is missing ({folder}/zoo.json not found); build it with "
            f"`kdviz zoo build {folder.name} --out {folder}`."
        )
    return _load_demo(key, str(folder), digest)
