"""A zoo = ``zoo.json`` (plain JSON, never code) + one ``.safetensors`` file per model.

:func:`parse_manifest` checks a manifest field by field (never code: a zoo is data); :func:`load_zoo` reads a
zoo back into eval-mode models; :func:`save_weights` writes a model as float16 safetensors, the format of the
shipped zoos (``kdviz.training.zoo_build`` trains them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import save_file
from torch import nn

from kdviz.errors import InvalidInputError, UnknownNameError
from kdviz.io.checkpoints import load_checkpoint

__all__ = [
    "ModelEntry",
    "Recommendation",
    "Zoo",
    "ZooManifest",
    "ZooModel",
    "load_zoo",
    "parse_manifest",
    "parse_model",
    "read_manifest",
    "replace_recommendation",
    "save_weights",
]

MANIFEST = "zoo.json"
FORMAT_VERSION = 1
Role = Literal["teacher", "student"]
Method = Literal["ce", "kd", "kd+sd", "ked", "ked-blackbox", "rationale"]


# --------------------------------------------------------------------------------------------------
# Manifest schema


@dataclass(frozen=True)
class ModelEntry:
    """One model of a zoo as ``zoo.json`` records it. α follows the zoo's ``alpha_convention``."""

    id: str
    role: Role
    arch: str
    alpha: float  # weight of the hard-label CE term (kdviz convention); 1.0 = no KD
    temperature: float
    method: Method
    beta: float  # weight of saliency distillation; 0 unless method is 'kd+sd'
    tau: float | None  # saliency temperature; None unless method is 'kd+sd'
    checkpoint: str  # file name inside the zoo folder
    params: int
    test_accuracy: float  # in [0, 1], of the stored weights
    train_seconds: float
    command: str  # the exact `kdviz distill …` that reproduces the model
    seed: int
    sha256: str = ""
    parts: int | None = None  # K of saliency distillation (grid cells / time segments)
    epochs: int | None = None
    # Test accuracy after each evaluated epoch (reporting only, never used to pick a model): the evidence
    # that training ran long enough for accuracy to level off. NaN-free; empty when not recorded.
    accuracy_curve: tuple[float, ...] = ()
    # KED (kdviz.training.losses): μ, the paper's λ = (1−α)/α, and the superfeature file; τ is in ``tau``, M in ``parts``
    ked_mu: float | None = None
    ked_lambda: float | None = None
    superfeatures: str | None = None


@dataclass(frozen=True)
class Recommendation:
    """The attribution setting ``kdviz sanity --write`` found trustworthy on this zoo, and its evidence.

    ``table`` holds the sanity table's rows (method, params, parts, randomised-teacher ρ, verdict, null ρ,
    students' ρ and excess …), so a reader sees what else was tried and which settings failed.
    """

    method: str
    params: dict  # the method's parameters that were set (e.g. {"baseline": "zeros", "n_steps": 32})
    parts: str
    table: tuple[dict, ...] = ()
    n_inputs: int = 0
    command: str = ""
    created: str = ""


@dataclass(frozen=True)
class ZooManifest:
    """The whole ``zoo.json``."""

    name: str
    task: Literal["image", "timeseries", "text"]
    dataset: str
    input_shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    models: tuple[ModelEntry, ...]
    alpha_convention: str = "kdviz"
    dtype: str = "float16"
    format_version: int = FORMAT_VERSION
    description: str = ""
    # superfeature labellings stored with the zoo (kdviz.modalities.superfeatures): {m, file, teacher, base, sizes, …}
    superfeatures: tuple[dict, ...] = ()
    # the evidence-based attribution setting for this zoo (kdviz sanity --write); None: library defaults
    recommended: Recommendation | None = None

    def to_json(self) -> str:
        """Write the manifest as ``zoo.json``'s text."""
        return json.dumps(asdict(self), indent=2) + "\n"


def _need(obj: Mapping[str, object], key: str, where: str) -> object:
    if key not in obj:
        raise InvalidInputError(f"{where}: missing field {key!r}")
    return obj[key]


def _number(value: object, where: str, *, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{where} must be a number, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InvalidInputError(f"{where} must be in [{lo}, {hi}], got {value!r}")
    return float(value)


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _choice(value: object, options: Sequence[str], where: str) -> str:
    if value not in options:
        raise InvalidInputError(f"{where} must be one of {', '.join(options)}, got {value!r}")
    return str(value)


def _int_list(value: object, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InvalidInputError(f"{where} must be a non-empty list of integers, got {value!r}")
    return tuple(value)


def _float_list(value: object, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidInputError(f"{where} must be a non-empty list of numbers, got {value!r}")
    return tuple(_number(v, f"{where}[{i}]") for i, v in enumerate(value))


def parse_model(obj: object, where: str) -> ModelEntry:
    """Check one model record of a manifest (``where`` names it in messages) and return it as a ModelEntry."""
    if not isinstance(obj, dict):
        raise InvalidInputError(f"{where} must be an object, got {type(obj).__name__}")
    method = _choice(_need(obj, "method", where), ("ce", "kd", "kd+sd", "ked", "ked-blackbox", "rationale"), f"{where}.method")
    tau = obj.get("tau")
    parts = obj.get("parts")
    checkpoint = _string(_need(obj, "checkpoint", where), f"{where}.checkpoint")
    if Path(checkpoint).name != checkpoint or checkpoint.startswith("."):
        raise InvalidInputError(f"{where}.checkpoint must be a file name inside the zoo folder, got {checkpoint!r}")
    epochs = obj.get("epochs")
    return ModelEntry(
        id=_string(_need(obj, "id", where), f"{where}.id"),
        role=_choice(_need(obj, "role", where), ("teacher", "student"), f"{where}.role"),  # type: ignore[arg-type]
        arch=_string(_need(obj, "arch", where), f"{where}.arch"),
        alpha=_number(_need(obj, "alpha", where), f"{where}.alpha", lo=0.0, hi=1.0),
        temperature=_number(_need(obj, "temperature", where), f"{where}.temperature", lo=1e-6),
        method=method,  # type: ignore[arg-type]
        beta=_number(obj.get("beta", 0.0), f"{where}.beta", lo=0.0),
        tau=None if tau is None else _number(tau, f"{where}.tau", lo=1e-6),
        checkpoint=checkpoint,
        params=int(_number(_need(obj, "params", where), f"{where}.params", lo=0)),
        test_accuracy=_number(_need(obj, "test_accuracy", where), f"{where}.test_accuracy", lo=0.0, hi=1.0),
        train_seconds=_number(obj.get("train_seconds", 0.0), f"{where}.train_seconds", lo=0.0),
        command=str(obj.get("command", "")),
        seed=int(_number(obj.get("seed", 0), f"{where}.seed")),
        sha256=str(obj.get("sha256", "")),
        parts=None if parts is None else int(_number(parts, f"{where}.parts", lo=1)),
        epochs=None if epochs is None else int(_number(epochs, f"{where}.epochs", lo=1)),
        accuracy_curve=tuple(_number(v, f"{where}.accuracy_curve[{i}]", lo=0.0, hi=1.0)
                             for i, v in enumerate(_list_or_empty(obj.get("accuracy_curve"), f"{where}.accuracy_curve"))),
        ked_mu=None if obj.get("ked_mu") is None else _number(obj["ked_mu"], f"{where}.ked_mu", lo=0.0, hi=1.0),
        ked_lambda=None if obj.get("ked_lambda") is None else _number(obj["ked_lambda"], f"{where}.ked_lambda", lo=0.0),
        superfeatures=None if obj.get("superfeatures") is None else _file_name(obj["superfeatures"],
                                                                               f"{where}.superfeatures"),
    )


def _file_name(value: object, where: str) -> str:
    name = _string(value, where)
    if Path(name).name != name or name.startswith("."):
        raise InvalidInputError(f"{where} must be a file name inside the zoo folder, got {name!r}")
    return name


def _superfeature_records(value: object, where: str) -> tuple[dict, ...]:
    records = []
    for i, rec in enumerate(_list_or_empty(value, where)):
        if not isinstance(rec, dict):
            raise InvalidInputError(f"{where}[{i}] must be an object, got {type(rec).__name__}")
        _number(_need(rec, "m", f"{where}[{i}]"), f"{where}[{i}].m", lo=1)
        _file_name(_need(rec, "file", f"{where}[{i}]"), f"{where}[{i}].file")
        records.append(dict(rec))
    return tuple(records)


def _list_or_empty(value: object, where: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInputError(f"{where} must be a list, got {type(value).__name__}")
    return value


def _recommendation(value: object, where: str) -> Recommendation | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where} must be an object, got {type(value).__name__}")
    params = value.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise InvalidInputError(f"{where}.params must be an object, got {params!r}")
    table = _list_or_empty(value.get("table"), f"{where}.table")
    if not all(isinstance(r, dict) for r in table):
        raise InvalidInputError(f"{where}.table must be a list of objects")
    return Recommendation(
        method=_string(_need(value, "method", where), f"{where}.method"), params=dict(params),
        parts=_string(_need(value, "parts", where), f"{where}.parts"), table=tuple(dict(r) for r in table),
        n_inputs=int(_number(value.get("n_inputs", 0), f"{where}.n_inputs", lo=0)),
        command=str(value.get("command", "")), created=str(value.get("created", "")),
    )


def parse_manifest(obj: object, *, source: str = MANIFEST) -> ZooManifest:
    """Validate a decoded ``zoo.json``; a ``ValueError`` names the first bad field."""
    if not isinstance(obj, dict):
        raise InvalidInputError(f"{source}: top level must be a JSON object")
    raw_models = _need(obj, "models", source)
    if not isinstance(raw_models, list) or not raw_models:
        raise InvalidInputError(f"{source}: field 'models' must be a non-empty list")
    models = tuple(parse_model(m, f"{source}: models[{i}]") for i, m in enumerate(raw_models))
    ids = [m.id for m in models]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise InvalidInputError(f"{source}: field 'models' has duplicate id(s) {', '.join(dup)}")
    if sum(m.role == "teacher" for m in models) != 1:
        raise InvalidInputError(f"{source}: field 'models' must hold exactly one model with role 'teacher'")
    class_names = _need(obj, "class_names", source)
    if not isinstance(class_names, list) or not class_names or not all(isinstance(c, str) for c in class_names):
        raise InvalidInputError(f"{source}: field 'class_names' must be a non-empty list of strings")
    text = obj.get("task") == "text"  # kdviz.io.hf_text.load_text_zoo: one Hugging Face folder per model
    manifest = ZooManifest(
        name=_string(_need(obj, "name", source), f"{source}: name"),
        task=_choice(_need(obj, "task", source), ("image", "timeseries", "text"), f"{source}: task"),  # type: ignore[arg-type]
        dataset=_string(_need(obj, "dataset", source), f"{source}: dataset"),
        input_shape=_int_list(_need(obj, "input_shape", source), f"{source}: input_shape"),
        mean=() if text else _float_list(_need(obj, "mean", source), f"{source}: mean"),  # text: no normalisation
        std=() if text else _float_list(_need(obj, "std", source), f"{source}: std"),
        class_names=tuple(class_names),
        models=models,
        alpha_convention=_choice(obj.get("alpha_convention", "kdviz"), ("kdviz", "kl_weight"), f"{source}: alpha_convention"),
        dtype=_choice(obj.get("dtype", "float16"), ("float16", "float32", "bfloat16"), f"{source}: dtype"),
        format_version=int(_number(obj.get("format_version", FORMAT_VERSION), f"{source}: format_version")),
        description=str(obj.get("description", "")),
        superfeatures=_superfeature_records(obj.get("superfeatures"), f"{source}: superfeatures"),
        recommended=_recommendation(obj.get("recommended"), f"{source}: recommended"),
    )
    if not text and (len(manifest.mean) != manifest.input_shape[0] or len(manifest.std) != manifest.input_shape[0]):
        raise InvalidInputError(f"{source}: fields 'mean' and 'std' need one value per input channel ({manifest.input_shape[0]})")
    if any(s <= 0 for s in manifest.std):
        raise InvalidInputError(f"{source}: field 'std' must be positive, got {list(manifest.std)}")
    return manifest


# --------------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class ZooModel(ModelEntry):
    """A manifest entry with its loaded eval-mode model."""

    path: Path = Path()
    module: nn.Module = field(default=None, repr=False, compare=False)  # type: ignore[assignment]


@dataclass(frozen=True)
class Zoo:
    """A loaded zoo: its manifest fields plus ready-to-use models."""

    root: Path
    manifest: ZooManifest
    models: tuple[ZooModel, ...]

    name = property(lambda self: self.manifest.name)
    task = property(lambda self: self.manifest.task)
    dataset = property(lambda self: self.manifest.dataset)
    input_shape = property(lambda self: self.manifest.input_shape)
    mean = property(lambda self: self.manifest.mean)
    std = property(lambda self: self.manifest.std)
    class_names = property(lambda self: self.manifest.class_names)
    alpha_convention = property(lambda self: self.manifest.alpha_convention)

    @property
    def teacher(self) -> ZooModel:
        """The zoo's teacher."""
        return next(m for m in self.models if m.role == "teacher")

    @property
    def students(self) -> tuple[ZooModel, ...]:
        """The zoo's students, in manifest order."""
        return tuple(m for m in self.models if m.role == "student")

    def get(self, model_id: str) -> ZooModel:
        """Return the model of id ``model_id``; :class:`kdviz.errors.UnknownNameError` listing the ids otherwise."""
        for m in self.models:
            if m.id == model_id:
                return m
        raise UnknownNameError(f"model_id {model_id!r} is not in zoo {self.name!r}: {', '.join(m.id for m in self.models)}")


def read_manifest(root: str | os.PathLike[str]) -> ZooManifest:
    """Parse ``root/zoo.json`` without loading any weights."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise InvalidInputError(f"dir {str(root)!r} has no {MANIFEST}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path}: not valid JSON ({exc})") from exc
    return parse_manifest(obj, source=str(path))


def load_zoo(root: str | os.PathLike[str]) -> Zoo:
    """Read ``root/zoo.json`` and load every checkpoint into an eval-mode float32 model."""
    root = Path(root)
    manifest = read_manifest(root)
    loaded = []
    for entry in manifest.models:
        path = root / entry.checkpoint
        if not path.is_file():
            raise InvalidInputError(f"{root / MANIFEST}: checkpoint of model {entry.id!r} not found: {entry.checkpoint}")
        ckpt = load_checkpoint(
            path, arch=entry.arch, num_classes=len(manifest.class_names), in_channels=manifest.input_shape[0]
        )
        module = ckpt.module.float().eval()
        loaded.append(ZooModel(**{f.name: getattr(entry, f.name) for f in fields(ModelEntry)}, path=path, module=module))
    return Zoo(root, manifest, tuple(loaded))


# --------------------------------------------------------------------------------------------------
# Writing


def save_weights(model: nn.Module, path: str | os.PathLike[str], *, dtype: torch.dtype = torch.float16,
                 metadata: Mapping[str, str] | None = None) -> None:
    """Store ``model``'s state dict as safetensors, floating-point tensors cast to ``dtype``."""
    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=dict(metadata or {}))


def replace_recommendation(manifest: ZooManifest, recommended: Recommendation | None) -> ZooManifest:
    """Return ``manifest`` with its recommended attribution setting replaced (checked by a parse round trip)."""
    out = replace(manifest, recommended=recommended)
    return parse_manifest(json.loads(out.to_json()))
