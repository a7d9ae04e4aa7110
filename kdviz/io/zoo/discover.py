"""A zoo from a folder of checkpoints: ``kdviz zoo init DIR --out ZOO``.

Every checkpoint under DIR is loaded safely (``kdviz.io.checkpoints.load_checkpoint``); its architecture and
class count come from the weights (ties reported), its role, α and temperature from the training script's
naming and metadata:

* **RepDistiller** (``save/student_model/S:resnet8x4_T:resnet32x4_cifar100_kd_r:0.1_a:0.9_b:0.0_1/``): r is the
  CE weight, a the KL weight, so kdviz's α = r / (r + a); teachers live in ``<arch>_vanilla`` folders
  (``train_teacher.py``), and ``opt`` in the file (``kd_T``, ``model_t``) is read when saved;
* **mdistiller** (``output/<tag>/student_best``, files without extension): its YAML config (``DISTILLER``,
  ``KD.LOSS.CE_WEIGHT`` / ``KD_WEIGHT``, ``KD.TEMPERATURE``) next to the checkpoint or in DIR, else the tag
  (``kd,res32x4,res8x4``) with mdistiller's default weights (CE 0.1, KL 0.9, T 4), flagged;
* **torchdistill** (``cifar10-resnet20_from_densenet_bc_k12_depth100.pt`` and its YAML): ``KDLoss`` ``alpha``
  weights CE like kdviz's α; YAML is read with ``yaml.safe_load`` semantics only (its ``!join`` / ``!import_call``
  tags become plain data and are never called);
* **torchvision reference scripts** and plain files (``model_89.pth`` with ``args``, ``resnet18_alpha0.5.pth``):
  ``args.model``, ``alpha`` in the name.

The teacher is the model the others name (``T:`` in RepDistiller, ``DISTILLER.TEACHER``, ``_from_<arch>``), else
the one with the most parameters. Every guess is listed with what the user should confirm.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from kdviz.errors import CheckpointError, InvalidInputError
from kdviz.io.checkpoints import load_checkpoint
from kdviz.io.class_names import guess_class_names
from kdviz.io.presets import PRESETS, guess_preset
from kdviz.io.zoo.manifest import MANIFEST, ModelEntry, ZooManifest, parse_manifest, save_weights
from kdviz.models import model_info
from kdviz.models.cifar_kd import UPSTREAM_NAMES

__all__ = ["ModelGuess", "ZooDraft", "draft_zoo", "find_checkpoints", "read_safe_yaml", "write_zoo"]

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors", ".tar")
# mdistiller saves without an extension; these names are checkpoints, "latest" holds teacher and student
EXTENSIONLESS = re.compile(r"^(student_)?(best|latest|last|\d+)$|^student_")
REPDISTILLER = re.compile(r"S:(?P<s>[^_/]+(?:_[0-9]+)*(?:x4)?)_T:(?P<t>.+?)_(?P<data>cifar100|cifar10|imagenet)_"
                          r"(?P<distill>[a-z]+)_r:(?P<r>[0-9.]+)_a:(?P<a>[0-9.]+)_b:(?P<b>[0-9.e-]+)_(?P<trial>\w+)")
ALPHA_IN_NAME = re.compile(r"(?:^|[_\-. ])(?:alpha|a)[=_-]?(\d*\.\d+|\d+)(?:$|[_\-. ])", re.IGNORECASE)
MDISTILLER_ARCHS = {"res32x4": "resnet32x4", "res8x4": "resnet8x4", "res56": "resnet56", "res20": "resnet20",
                    "res110": "resnet110", "res32": "resnet32", "res44": "resnet44", "res8": "resnet8",
                    "wrn40_2": "wrn_40_2", "wrn16_2": "wrn_16_2", "wrn40_1": "wrn_40_1", "mv2": "MobileNetV2",
                    "shuv1": "ShuffleV1", "shuv2": "ShuffleV2", "vgg13": "cifar_vgg13", "vgg8": "cifar_vgg8"}
BEST_FIRST = ("best", "last", "latest", "final")


@dataclass(frozen=True)
class ModelGuess:
    """What kdviz made of one checkpoint, and what a person should confirm."""

    file: Path
    id: str
    arch: str
    ties: tuple[str, ...]
    num_classes: int
    in_channels: int
    params: int
    sha256: str
    role: str
    alpha: float
    alpha_source: str  # how α was found (or "assumed")
    temperature: float
    method: str
    names_teacher: str | None = None  # the teacher architecture this model says it learnt from
    test_accuracy: float | None = None
    confirm: tuple[str, ...] = ()
    module: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ZooDraft:
    """A zoo manifest ready to write, with every guess and what to confirm."""

    manifest: Any  # kdviz.io.zoo.manifest.ZooManifest
    guesses: tuple[ModelGuess, ...]
    skipped: tuple[str, ...]
    confirm: tuple[str, ...]

    def report(self) -> list[str]:
        """Lines for the terminal: one per model, then what to confirm."""
        lines = [f"zoo '{self.manifest.name}': {len(self.guesses)} models, task {self.manifest.task}, dataset "
                 f"{self.manifest.dataset}, input {'×'.join(map(str, self.manifest.input_shape))}, "
                 f"{len(self.manifest.class_names)} classes"]
        for g in self.guesses:
            tie = f" (ties: {', '.join(g.ties)})" if g.ties else ""
            acc = "" if g.test_accuracy is None else f", accuracy {g.test_accuracy:.2%} (file)"
            lines.append(f"  {g.role:<7} {g.id}: {g.arch}{tie}, {g.num_classes} classes, {g.params:,} params, "
                         f"α = {g.alpha:g} [{g.alpha_source}], T = {g.temperature:g}, {g.method}{acc}  <- {g.file}")
        lines += [f"  skipped {s}" for s in self.skipped]
        if self.confirm:
            lines.append("please confirm:")
            lines += [f"  - {c}" for c in self.confirm]
        return lines


class _PlainTags(yaml.SafeLoader):
    """SafeLoader that reads unknown tags (torchdistill's ``!join``, ``!import_call``) as plain data."""


def _plain_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_PlainTags.add_multi_constructor("!", _plain_tag)


def read_safe_yaml(path: str | os.PathLike[str]) -> Any:
    """A YAML file as plain data: ``yaml.SafeLoader`` (no Python objects), unknown tags kept as plain values."""
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_PlainTags)  # noqa: S506 - SafeLoader subclass


def find_checkpoints(root: Path) -> tuple[list[Path], list[str]]:
    """One checkpoint per folder (``*_best`` before ``*_last`` / ``latest`` before the highest epoch), and what was
    left out; hidden files and folders are skipped."""
    by_folder: dict[Path, list[Path]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith("."):
                continue
            if path.suffix.lower() in CHECKPOINT_SUFFIXES or (not path.suffix and EXTENSIONLESS.match(name)):
                by_folder.setdefault(Path(folder), []).append(path)
    chosen, skipped = [], []
    for folder in sorted(by_folder):
        files = by_folder[folder]
        if len(files) == 1:
            chosen.append(files[0])
            continue

        def rank(p: Path) -> tuple[int, int, int]:
            stem = p.stem.lower()
            student = 0 if "student" in stem else 1  # mdistiller's "latest" also holds the teacher
            for i, word in enumerate(BEST_FIRST):
                if word in stem:
                    return i, student, 0
            epoch = re.findall(r"\d+", stem)
            return len(BEST_FIRST), student, -int(epoch[-1]) if epoch else 0

        ordered = sorted(files, key=lambda p: (rank(p), p.name))
        chosen.append(ordered[0])
        skipped += [f"{p.relative_to(root)} (another checkpoint of {ordered[0].relative_to(root)}'s run)"
                    for p in ordered[1:]]
    return chosen, skipped


def _yaml_near(path: Path, root: Path) -> tuple[Path, Any] | None:
    """The nearest YAML config (the checkpoint's folder, then its parents up to ``root``)."""
    folder = path.parent
    while True:
        for cfg in sorted(folder.glob("*.y*ml")):
            try:
                data = read_safe_yaml(cfg)
            except yaml.YAMLError:
                continue
            if isinstance(data, Mapping):
                return cfg, data
        if folder == root or root not in folder.parents:
            break
        folder = folder.parent
    # torchdistill keeps configs apart (configs/…/<student>_from_<teacher>.yaml, resource/ckpt/…/<data>-<same>.pt)
    for cfg in sorted(root.rglob("*.y*ml")):
        key = cfg.stem.split("-")[0]
        if "_from_" in key and key in path.stem:
            try:
                data = read_safe_yaml(cfg)
            except yaml.YAMLError:
                continue
            if isinstance(data, Mapping):
                return cfg, data
    return None


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def _arch_name(name: str) -> str:
    upstream = {v.split(" ")[0]: k for k, v in UPSTREAM_NAMES.items()}
    name = MDISTILLER_ARCHS.get(name, name)
    return upstream.get(name, name)


@dataclass
class _Hints:
    role: str | None = None
    alpha: float | None = None
    alpha_source: str = ""
    temperature: float | None = None
    method: str | None = None
    teacher: str | None = None
    arch: list[str] = field(default_factory=list)
    confirm: list[str] = field(default_factory=list)


def _hints(path: Path, root: Path, metadata: Mapping[str, object]) -> _Hints:
    """Role, α, T, method and named teacher from the path, the container's metadata and a nearby config."""
    h = _Hints()
    rel = path.relative_to(root).as_posix()
    rep = REPDISTILLER.search(rel)
    if rep:
        r, a = float(rep["r"]), float(rep["a"])
        h.role, h.teacher, h.arch = "student", _arch_name(rep["t"]), [_arch_name(rep["s"])]
        h.alpha = round(r / (r + a), 6) if r + a > 0 else 1.0
        h.alpha_source = f"RepDistiller r:{rep['r']} a:{rep['a']} → α = r/(r+a)"
        h.method = "ce" if a == 0 else "kd"
        if rep["distill"] != "kd" or float(rep["b"]) != 0:
            h.confirm.append(f"{rel}: RepDistiller distill={rep['distill']} b={rep['b']} — recorded as kd; kdviz "
                             "models only the CE and KL terms")
        kd_t = metadata.get("opt.kd_T")
        h.temperature = float(kd_t) if isinstance(kd_t, (int, float)) else None
        if h.temperature is None:
            h.confirm.append(f"{rel}: temperature T = 4 assumed (RepDistiller's default kd_T)")
            h.temperature = 4.0
        return h
    if re.search(r"(^|/)[^/]*_vanilla(/|$)", rel):  # RepDistiller's train_teacher.py / the CRD teachers
        h.role, h.alpha, h.alpha_source, h.method = "teacher?", 1.0, "vanilla: cross-entropy only", "ce"
        h.arch = [_arch_name(re.search(r"([^/]*)_vanilla", rel)[1])]  # type: ignore[index]
    found = _yaml_near(path, root)
    if found is not None:
        cfg_path, cfg = found
        cfg_name = cfg_path.relative_to(root).as_posix()
        if _get(cfg, "DISTILLER") is not None:  # mdistiller
            kind = str(_get(cfg, "DISTILLER", "TYPE") or "")
            student, teacher = _get(cfg, "DISTILLER", "STUDENT"), _get(cfg, "DISTILLER", "TEACHER")
            h.arch = [_arch_name(str(student))] if student else h.arch
            if kind.upper() == "NONE":
                h.alpha, h.method, h.alpha_source = 1.0, "ce", f"{cfg_name}: DISTILLER.TYPE NONE"
            else:
                ce = _get(cfg, "KD", "LOSS", "CE_WEIGHT")
                kl = _get(cfg, "KD", "LOSS", "KD_WEIGHT")
                ce, kl = (0.1 if ce is None else float(ce)), (0.9 if kl is None else float(kl))
                h.alpha, h.method, h.teacher = round(ce / (ce + kl), 6), "kd", _arch_name(str(teacher)) if teacher \
                    else None
                h.alpha_source = f"{cfg_name}: CE_WEIGHT {ce:g}, KD_WEIGHT {kl:g} → α = CE/(CE+KD)"
                if kind.upper() != "KD":
                    h.confirm.append(f"{rel}: mdistiller {kind} — recorded as kd (its CE and KD weights)")
            temp = _get(cfg, "KD", "TEMPERATURE")
            h.temperature = float(temp) if temp is not None else 4.0
            h.role = "student"
            return h
        models = _get(cfg, "models")
        if isinstance(models, Mapping) and "student_model" in models:  # torchdistill
            student = _get(models, "student_model", "key") or _get(models, "student_model", "name")
            teacher = _get(models, "teacher_model", "key") or _get(models, "teacher_model", "name")
            kd = _find_key(cfg, "KDLoss")
            h.arch = [_arch_name(str(student))] if student else h.arch
            h.teacher = _arch_name(str(teacher)) if teacher else None
            if kd is not None:
                alpha = _get(kd, "kwargs", "alpha")
                h.alpha = 1.0 if alpha is None else float(alpha)
                h.alpha_source = f"{cfg_name}: KDLoss alpha (torchdistill weights CE like kdviz)"
                h.temperature = float(_get(kd, "kwargs", "temperature") or 4.0)
                h.method, h.role = "kd", "student"
            return h
    tag = re.search(r"(?:^|/)kd,([a-z0-9_]+),([a-z0-9_]+)(?:/|$)", rel)  # mdistiller tag without its config
    if tag:
        h.role, h.teacher, h.arch, h.method = "student", _arch_name(tag[1]), [_arch_name(tag[2])], "kd"
        h.alpha, h.temperature = 0.1, 4.0
        h.alpha_source = "mdistiller defaults CE 0.1, KD 0.9 (no config found) → α = 0.1"
        h.confirm.append(f"{rel}: no mdistiller config next to it; CE 0.1 / KD 0.9 / T 4 assumed")
        return h
    td = re.search(r"([A-Za-z0-9_]+?)_from_([A-Za-z0-9_]+?)(?:[-.]|$)", path.stem)  # torchdistill checkpoint name
    if td and h.role is None:
        h.role, h.teacher, h.arch, h.method = "student", _arch_name(td[2]), [_arch_name(td[1].split("-")[-1])], "kd"
    alpha_meta = next((metadata[k] for k in ("args.alpha", "opt.alpha", "alpha") if k in metadata), None)
    m = next((found for part in reversed(Path(rel).with_suffix("").parts) if (found := ALPHA_IN_NAME.search(part))),
             None)
    if h.alpha is None and m and 0 <= float(m[1]) <= 1:
        h.alpha, h.alpha_source = float(m[1]), f"name '{m.string}' (read as kdviz's CE weight)"
        h.method = h.method or ("ce" if h.alpha == 1.0 else "kd")
        h.confirm.append(f"{rel}: α = {h.alpha:g} from the file name — is it the CE weight (kdviz) or the KL "
                         "weight (RepDistiller/mdistiller)?")
    elif h.alpha is None and isinstance(alpha_meta, (int, float)):
        h.alpha, h.alpha_source, h.method = float(alpha_meta), "checkpoint metadata 'alpha'", "kd"
        h.confirm.append(f"{rel}: α = {alpha_meta:g} from the file's metadata; confirm its convention")
    if "teacher" in rel.lower() and h.role is None:
        h.role = "teacher?"
    if "args.model" in metadata:
        h.arch = [_arch_name(str(metadata["args.model"]))] + h.arch
    return h


def _find_key(data: Any, key: str) -> Mapping[str, Any] | None:
    """The first mapping under ``data`` whose ``key`` (or ``type``/``name``) is ``key``."""
    if isinstance(data, Mapping):
        if any(data.get(k) == key for k in ("key", "type", "name")):
            return data
        for value in data.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    elif isinstance(data, list):
        for value in data:
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


def _model_id(path: Path, root: Path, arch: str, alpha: float, role: str, taken: set[str]) -> str:
    base = f"{arch}_teacher" if role == "teacher" else f"{arch}_a{alpha:g}"
    out, i = base, 2
    while out in taken:
        out, i = f"{base}_{i}", i + 1
    taken.add(out)
    return out


def draft_zoo(root: str | os.PathLike[str], *, name: str | None = None, dataset: str | None = None,
              preset: str | None = None, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
              input_size: Sequence[int] | None = None, class_names: Sequence[str] | None = None,
              teacher: str | None = None) -> ZooDraft:
    """Read every checkpoint under ``root`` and guess a zoo manifest (nothing is written).

    ``dataset``, ``preset`` (CIFAR-10, CIFAR-100, ImageNet), ``mean``/``std``, ``input_size`` ((H, W), or (L,)
    for series) and ``class_names`` override the guesses; ``teacher`` names the teacher's file or id.
    """
    base = Path(root)
    files, skipped = find_checkpoints(base)
    guesses: list[ModelGuess] = []
    confirm: list[str] = []
    for path in files:
        rel = path.relative_to(base).as_posix()
        try:
            ck = load_checkpoint(path, name=rel)
        except CheckpointError as err:
            skipped.append(f"{rel} ({err})")
            continue
        hints = _hints(path, base, ck.metadata)
        if hints.arch and ck.arch not in hints.arch and hints.arch[0] not in ck.arch_ties:
            confirm.append(f"{rel}: its name says {hints.arch[0]} but the weights are {ck.arch}; the weights win")
        if ck.arch_ties:
            confirm.append(f"{rel}: the weights fit {ck.arch} and {', '.join(ck.arch_ties)} exactly as well")
        acc = next((ck.metadata[k] for k in ("best_acc", "accuracy", "acc", "best_value", "acc1")
                    if isinstance(ck.metadata.get(k), (int, float))), None)
        accuracy = None if acc is None else float(acc) / (100.0 if float(acc) > 1 else 1.0)
        alpha = 1.0 if hints.alpha is None else hints.alpha
        source = hints.alpha_source or "assumed 1.0 (no KD found in names or metadata)"
        guesses.append(ModelGuess(
            file=path, id="", arch=ck.arch, ties=ck.arch_ties, num_classes=ck.num_classes, in_channels=ck.in_channels,
            params=ck.params, sha256=ck.sha256, role=hints.role or "student", alpha=alpha, alpha_source=source,
            temperature=hints.temperature or 4.0, method=hints.method or ("ce" if alpha == 1.0 else "kd"),
            names_teacher=hints.teacher, test_accuracy=accuracy, confirm=tuple(hints.confirm), module=ck.module))
        confirm += hints.confirm
    if not guesses:
        raise InvalidInputError(f"no loadable checkpoint under {base}" + (f" (skipped: {'; '.join(skipped)})" if skipped else ""))

    # the teacher: named by the user, else the architecture the students name, else the largest model
    named = [g.names_teacher for g in guesses if g.names_teacher]
    if teacher is not None:
        pick = [g for g in guesses if teacher in (g.file.name, g.file.relative_to(base).as_posix(), g.arch)]
        if len(pick) != 1:
            raise InvalidInputError(f"teacher={teacher!r} matches {len(pick)} checkpoints; give its file name")
        chosen, why = pick[0], "given with --teacher"
    else:
        pool = [g for g in guesses if named and g.arch == max(set(named), key=named.count)]
        pool = sorted(pool, key=lambda g: (g.role != "teacher?", -g.params))
        if pool:
            chosen, why = pool[0], f"the students name {pool[0].arch} as their teacher"
        else:
            chosen = max(guesses, key=lambda g: g.params)
            why = "the largest model (no student names a teacher)"
            confirm.append(f"teacher {chosen.file.relative_to(base)} chosen as {why}; pass --teacher to change it")
    counts = {g.num_classes for g in guesses}
    if len(counts) > 1:
        confirm.append(f"the models have different class counts {sorted(counts)}: the teacher's "
                       f"{chosen.num_classes} is used; the others will be left out by evaluate")
    taken: set[str] = set()
    final = []
    for g in guesses:
        role = "teacher" if g is chosen else "student"
        method = "ce" if role == "teacher" and g.method == "kd" else g.method
        final.append(ModelGuess(**{**g.__dict__, "role": role, "method": method,
                                   "id": _model_id(g.file, base, g.arch, g.alpha, role, taken)}))
    final.sort(key=lambda g: (g.role != "teacher", g.arch, -g.alpha, g.id))
    t = final[0]
    info = model_info(t.arch)
    task = "timeseries" if info.input_kind == "series" else "image"
    num_classes, channels = t.num_classes, t.in_channels
    if task == "image":
        guessed = PRESETS.get(preset) if preset else guess_preset(t.arch, num_classes)
        if preset and guessed is None:
            raise InvalidInputError(f"preset={preset!r} is not one of {', '.join(PRESETS)}")
        if guessed is None:
            guessed = PRESETS["ImageNet"]
        p_mean, p_std = guessed.for_channels(channels)
        size = tuple(int(v) for v in input_size) if input_size else guessed.size
        shape = (channels, *size)
        mean, std = tuple(mean or p_mean), tuple(std or p_std)
        if not preset and not (mean and std and input_size):
            confirm.append(f"input {'×'.join(map(str, shape))}, mean {mean}, std {std} from the {guessed.name} preset "
                           "(guessed from the teacher's family); pass --preset or --mean/--std/--input-size")
    else:
        if not input_size:
            raise InvalidInputError("a time-series zoo needs the series length: pass --input-size L")
        shape = (channels, int(input_size[-1]))
        mean, std = tuple(mean or (0.0,) * channels), tuple(std or (1.0,) * channels)
    if class_names is None:
        known = guess_class_names(num_classes, in_channels=channels)
        if known is not None:
            class_names, source = known
            confirm.append(f"class names: {source} (guessed from {num_classes} classes); pass --class-names")
        else:
            class_names = [str(i) for i in range(num_classes)]
            confirm.append(f"class names are 0…{num_classes - 1}; pass --class-names FILE (one per line)")
    if len(class_names) != num_classes:
        raise InvalidInputError(f"{len(class_names)} class names given but the teacher has {num_classes} outputs")
    dataset = dataset or ("cifar100" if num_classes == 100 and task == "image" else "cifar10"
                          if num_classes == 10 and shape[1:] == (32, 32) else "unknown")
    if dataset == "unknown":
        confirm.append("dataset unknown: pass --dataset (a name, or evaluate with --data PATH)")
    conventions = sorted({g.alpha_source.split(" ")[0] for g in final if "RepDistiller" in g.alpha_source
                          or "mdistiller" in g.alpha_source or "CE_WEIGHT" in g.alpha_source})
    entries = tuple(ModelEntry(
        id=g.id, role=g.role, arch=g.arch, alpha=g.alpha, temperature=g.temperature, method=g.method, beta=0.0,
        tau=None, checkpoint=f"{g.id}.safetensors", params=g.params, test_accuracy=g.test_accuracy or 0.0,
        train_seconds=0.0, command=f"kdviz zoo init: {g.file.relative_to(base).as_posix()}", seed=0,
    ) for g in final)
    if any(g.test_accuracy is None for g in final):
        confirm.append("test accuracy not recorded in some files (0 in zoo.json): kdviz evaluate --data measures it")
    description = (f"made by `kdviz zoo init` from {base}; teacher: {why}. α is kdviz's (CE weight share)"
                   + (f"; converted from {', '.join(conventions)} (KL-weight convention: α = CE/(CE+KL))"
                      if conventions else "") + ".")
    manifest = ZooManifest(name=name or base.name, task=task, dataset=dataset, input_shape=tuple(shape),
                           mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
                           class_names=tuple(str(c) for c in class_names), models=entries, dtype="float32",
                           description=description)
    return ZooDraft(manifest, tuple(final), tuple(skipped), tuple(dict.fromkeys(confirm)))


def write_zoo(draft: ZooDraft, out: str | os.PathLike[str]) -> Path:
    """Write ``out/zoo.json`` and each model's weights as ``out/<id>.safetensors`` (float32, rebuilt from the
    loaded model: wrappers, prefixes and optimiser state dropped). Refuses a folder that already has a zoo."""
    folder = Path(out)
    if (folder / MANIFEST).exists():
        raise InvalidInputError(f"{folder / MANIFEST} exists; choose another --out (kdviz never overwrites a zoo)")
    folder.mkdir(parents=True, exist_ok=True)
    for g in draft.guesses:
        save_weights(g.module, folder / f"{g.id}.safetensors", dtype=torch.float32,
                     metadata={"source": g.file.name, "source_sha256": g.sha256})
    text = draft.manifest.to_json()
    parse_manifest(json.loads(text))  # what load_zoo will accept
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)
    return folder / MANIFEST
