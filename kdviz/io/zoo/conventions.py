"""What the training scripts of the distillation literature say about a checkpoint: its role, α, temperature,
method and the teacher it names, from the path's naming, the container's metadata and a nearby YAML config.

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
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kdviz.models.cifar_kd import UPSTREAM_NAMES

__all__ = ["Hints", "arch_name", "hints", "read_safe_yaml"]

REPDISTILLER = re.compile(r"S:(?P<s>[^_/]+(?:_[0-9]+)*(?:x4)?)_T:(?P<t>.+?)_(?P<data>cifar100|cifar10|imagenet)_"
                          r"(?P<distill>[a-z]+)_r:(?P<r>[0-9.]+)_a:(?P<a>[0-9.]+)_b:(?P<b>[0-9.e-]+)_(?P<trial>\w+)")
ALPHA_IN_NAME = re.compile(r"(?:^|[_\-. ])(?:alpha|a)[=_-]?(\d*\.\d+|\d+)(?:$|[_\-. ])", re.IGNORECASE)
MDISTILLER_ARCHS = {"res32x4": "resnet32x4", "res8x4": "resnet8x4", "res56": "resnet56", "res20": "resnet20",
                    "res110": "resnet110", "res32": "resnet32", "res44": "resnet44", "res8": "resnet8",
                    "wrn40_2": "wrn_40_2", "wrn16_2": "wrn_16_2", "wrn40_1": "wrn_40_1", "mv2": "MobileNetV2",
                    "shuv1": "ShuffleV1", "shuv2": "ShuffleV2", "vgg13": "cifar_vgg13", "vgg8": "cifar_vgg8"}


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


def arch_name(name: str) -> str:
    """A training script's architecture name (mdistiller's ``res8x4``, RepDistiller's ``vgg13``) as kdviz's."""
    upstream = {v.split(" ")[0]: k for k, v in UPSTREAM_NAMES.items()}
    name = MDISTILLER_ARCHS.get(name, name)
    return upstream.get(name, name)


@dataclass
class Hints:
    """What a checkpoint's path, container metadata and nearby config say about it (None: nothing said)."""

    role: str | None = None
    alpha: float | None = None
    alpha_source: str = ""
    temperature: float | None = None
    method: str | None = None
    teacher: str | None = None
    arch: list[str] = field(default_factory=list)
    confirm: list[str] = field(default_factory=list)


def hints(path: Path, root: Path, metadata: Mapping[str, object]) -> Hints:
    """Role, α, T, method and named teacher from the path, the container's metadata and a nearby config."""
    rel = path.relative_to(root).as_posix()
    rep = REPDISTILLER.search(rel)
    if rep:
        return _repdistiller(rep, rel, metadata)
    h = Hints()
    if re.search(r"(^|/)[^/]*_vanilla(/|$)", rel):  # RepDistiller's train_teacher.py / the CRD teachers
        h.role, h.alpha, h.alpha_source, h.method = "teacher?", 1.0, "vanilla: cross-entropy only", "ce"
        h.arch = [arch_name(re.search(r"([^/]*)_vanilla", rel)[1])]  # type: ignore[index]
    found = _yaml_near(path, root)
    if found is not None:
        cfg_path, cfg = found
        where = cfg_path.relative_to(root).as_posix()
        if _get(cfg, "DISTILLER") is not None:
            return _mdistiller(h, cfg, where, rel)
        models = _get(cfg, "models")
        if isinstance(models, Mapping) and "student_model" in models:
            return _torchdistill(h, cfg, models, where)
    tag = re.search(r"(?:^|/)kd,([a-z0-9_]+),([a-z0-9_]+)(?:/|$)", rel)  # mdistiller tag without its config
    if tag:
        h.role, h.teacher, h.arch, h.method = "student", arch_name(tag[1]), [arch_name(tag[2])], "kd"
        h.alpha, h.temperature = 0.1, 4.0
        h.alpha_source = "mdistiller defaults CE 0.1, KD 0.9 (no config found) → α = 0.1"
        h.confirm.append(f"{rel}: no mdistiller config next to it; CE 0.1 / KD 0.9 / T 4 assumed")
        return h
    _from_names(h, path, rel, metadata)
    return h


def _repdistiller(rep: re.Match[str], rel: str, metadata: Mapping[str, object]) -> Hints:
    """RepDistiller's folder name: r is the CE weight and a the KL weight, so α = r / (r + a); T from ``opt``."""
    h = Hints()
    r, a = float(rep["r"]), float(rep["a"])
    h.role, h.teacher, h.arch = "student", arch_name(rep["t"]), [arch_name(rep["s"])]
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


def _mdistiller(h: Hints, cfg: Any, where: str, rel: str) -> Hints:
    """mdistiller's YAML config: ``DISTILLER`` (type, student, teacher), ``KD.LOSS`` weights, ``KD.TEMPERATURE``."""
    kind = str(_get(cfg, "DISTILLER", "TYPE") or "")
    student, teacher = _get(cfg, "DISTILLER", "STUDENT"), _get(cfg, "DISTILLER", "TEACHER")
    h.arch = [arch_name(str(student))] if student else h.arch
    if kind.upper() == "NONE":
        h.alpha, h.method, h.alpha_source = 1.0, "ce", f"{where}: DISTILLER.TYPE NONE"
    else:
        ce = _get(cfg, "KD", "LOSS", "CE_WEIGHT")
        kl = _get(cfg, "KD", "LOSS", "KD_WEIGHT")
        ce, kl = (0.1 if ce is None else float(ce)), (0.9 if kl is None else float(kl))
        h.alpha, h.method = round(ce / (ce + kl), 6), "kd"
        h.teacher = arch_name(str(teacher)) if teacher else None
        h.alpha_source = f"{where}: CE_WEIGHT {ce:g}, KD_WEIGHT {kl:g} → α = CE/(CE+KD)"
        if kind.upper() != "KD":
            h.confirm.append(f"{rel}: mdistiller {kind} — recorded as kd (its CE and KD weights)")
    temp = _get(cfg, "KD", "TEMPERATURE")
    h.temperature = float(temp) if temp is not None else 4.0
    h.role = "student"
    return h


def _torchdistill(h: Hints, cfg: Any, models: Mapping[str, Any], where: str) -> Hints:
    """torchdistill's YAML config: student and teacher models, ``KDLoss`` ``alpha`` (CE weight, as kdviz's α)."""
    student = _get(models, "student_model", "key") or _get(models, "student_model", "name")
    teacher = _get(models, "teacher_model", "key") or _get(models, "teacher_model", "name")
    kd = _find_key(cfg, "KDLoss")
    h.arch = [arch_name(str(student))] if student else h.arch
    h.teacher = arch_name(str(teacher)) if teacher else None
    if kd is not None:
        alpha = _get(kd, "kwargs", "alpha")
        h.alpha = 1.0 if alpha is None else float(alpha)
        h.alpha_source = f"{where}: KDLoss alpha (torchdistill weights CE like kdviz)"
        h.temperature = float(_get(kd, "kwargs", "temperature") or 4.0)
        h.method, h.role = "kd", "student"
    return h


def _from_names(h: Hints, path: Path, rel: str, metadata: Mapping[str, object]) -> None:
    """What the file's name and plain metadata say: torchdistill's ``<student>_from_<teacher>``, ``alpha`` in a
    name or in the metadata, ``teacher`` in the path, timm's / torchvision's ``args.model``."""
    td = re.search(r"([A-Za-z0-9_]+?)_from_([A-Za-z0-9_]+?)(?:[-.]|$)", path.stem)  # torchdistill checkpoint name
    if td and h.role is None:
        h.role, h.teacher, h.arch, h.method = "student", arch_name(td[2]), [arch_name(td[1].split("-")[-1])], "kd"
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
        h.arch = [arch_name(str(metadata["args.model"]))] + h.arch


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
