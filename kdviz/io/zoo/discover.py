"""A zoo from a folder of checkpoints: ``kdviz zoo init DIR --out ZOO``.

Every checkpoint under DIR is loaded safely (``kdviz.io.checkpoints.load_checkpoint``); its architecture and
class count come from the weights (ties reported), its role, α and temperature from the training script's
naming, metadata and config (:mod:`kdviz.io.zoo.conventions`: RepDistiller, mdistiller, torchdistill,
torchvision's reference scripts).

The teacher is the model the others name (``T:`` in RepDistiller, ``DISTILLER.TEACHER``, ``_from_<arch>``), else
the one with the most parameters. Every guess is listed with what the user should confirm.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kdviz.errors import CheckpointError, InvalidInputError
from kdviz.io.checkpoints import load_checkpoint
from kdviz.io.class_names import guess_class_names
from kdviz.io.presets import PRESETS, guess_preset
from kdviz.io.zoo.conventions import hints
from kdviz.io.zoo.manifest import MANIFEST, ModelEntry, ZooManifest, parse_manifest, save_weights
from kdviz.models import model_info
from kdviz.vocab import Modality

__all__ = ["InputOverrides", "ModelGuess", "ZooDraft", "draft_zoo", "find_checkpoints", "write_zoo"]

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors", ".tar")
# mdistiller saves without an extension; these names are checkpoints, "latest" holds teacher and student
EXTENSIONLESS = re.compile(r"^(student_)?(best|latest|last|\d+)$|^student_")
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


def _model_id(path: Path, root: Path, arch: str, alpha: float, role: str, taken: set[str]) -> str:
    base = f"{arch}_teacher" if role == "teacher" else f"{arch}_a{alpha:g}"
    out, i = base, 2
    while out in taken:
        out, i = f"{base}_{i}", i + 1
    taken.add(out)
    return out


@dataclass(frozen=True)
class InputOverrides:
    """The inputs' size and normalisation as given (``--preset``, ``--mean``/``--std``, ``--input-size``); None
    fields are guessed from the teacher's family."""

    preset: str | None = None  # CIFAR-10, CIFAR-100, ImageNet
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    size: Sequence[int] | None = None  # (H, W) for images, (L,) for series


def draft_zoo(root: str | os.PathLike[str], *, name: str | None = None, dataset: str | None = None,
              inputs: InputOverrides | None = None, class_names: Sequence[str] | None = None,
              teacher: str | None = None) -> ZooDraft:
    """Read every checkpoint under ``root`` and guess a zoo manifest (nothing is written).

    ``dataset``, ``inputs`` (preset, mean/std, size) and ``class_names`` override the guesses; ``teacher`` names
    the teacher's file or id.
    """
    base = Path(root)
    guesses, skipped, confirm = _read_guesses(base)
    chosen, why = _choose_teacher(guesses, base, teacher, confirm)
    counts = {g.num_classes for g in guesses}
    if len(counts) > 1:
        confirm.append(f"the models have different class counts {sorted(counts)}: the teacher's "
                       f"{chosen.num_classes} is used; the others will be left out by evaluate")
    final = _with_roles(guesses, chosen, base)
    t = final[0]
    task = Modality.parse(model_info(t.arch).input_kind)
    shape, mean, std = _input_spec(t, task, inputs or InputOverrides(), confirm)
    class_names = _class_names(t.num_classes, t.in_channels, class_names, confirm)
    dataset = dataset or ("cifar100" if t.num_classes == 100 and task == Modality.IMAGE else "cifar10"
                          if t.num_classes == 10 and shape[1:] == (32, 32) else "unknown")
    if dataset == "unknown":
        confirm.append("dataset unknown: pass --dataset (a name, or evaluate with --data PATH)")
    if any(g.test_accuracy is None for g in final):
        confirm.append("test accuracy not recorded in some files (0 in zoo.json): kdviz evaluate --data measures it")
    conventions = sorted({g.alpha_source.split(" ")[0] for g in final if "RepDistiller" in g.alpha_source
                          or "mdistiller" in g.alpha_source or "CE_WEIGHT" in g.alpha_source})
    description = (f"made by `kdviz zoo init` from {base}; teacher: {why}. α is kdviz's (CE weight share)"
                   + (f"; converted from {', '.join(conventions)} (KL-weight convention: α = CE/(CE+KL))"
                      if conventions else "") + ".")
    manifest = ZooManifest(name=name or base.name, task=task, dataset=dataset, input_shape=tuple(shape),
                           mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
                           class_names=tuple(str(c) for c in class_names), models=_entries(final, base),
                           dtype="float32", description=description)
    return ZooDraft(manifest, tuple(final), tuple(skipped), tuple(dict.fromkeys(confirm)))


def _read_guesses(base: Path) -> tuple[list[ModelGuess], list[str], list[str]]:
    """Every loadable checkpoint under ``base`` with what its weights, name and config say; the files skipped and
    what to confirm. :class:`kdviz.errors.InvalidInputError` when none loads."""
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
        h = hints(path, base, ck.metadata)
        if h.arch and ck.arch not in h.arch and h.arch[0] not in ck.arch_ties:
            confirm.append(f"{rel}: its name says {h.arch[0]} but the weights are {ck.arch}; the weights win")
        if ck.arch_ties:
            confirm.append(f"{rel}: the weights fit {ck.arch} and {', '.join(ck.arch_ties)} exactly as well")
        acc = next((ck.metadata[k] for k in ("best_acc", "accuracy", "acc", "best_value", "acc1")
                    if isinstance(ck.metadata.get(k), (int, float))), None)
        accuracy = None if acc is None else float(acc) / (100.0 if float(acc) > 1 else 1.0)
        alpha = 1.0 if h.alpha is None else h.alpha
        source = h.alpha_source or "assumed 1.0 (no KD found in names or metadata)"
        guesses.append(ModelGuess(
            file=path, id="", arch=ck.arch, ties=ck.arch_ties, num_classes=ck.num_classes, in_channels=ck.in_channels,
            params=ck.params, sha256=ck.sha256, role=h.role or "student", alpha=alpha, alpha_source=source,
            temperature=h.temperature or 4.0, method=h.method or ("ce" if alpha == 1.0 else "kd"),
            names_teacher=h.teacher, test_accuracy=accuracy, confirm=tuple(h.confirm), module=ck.module))
        confirm += h.confirm
    if not guesses:
        raise InvalidInputError(f"no loadable checkpoint under {base}"
                                + (f" (skipped: {'; '.join(skipped)})" if skipped else ""))
    return guesses, skipped, confirm


def _choose_teacher(guesses: list[ModelGuess], base: Path, teacher: str | None,
                    confirm: list[str]) -> tuple[ModelGuess, str]:
    """The teacher and why: named by the user, else the architecture the students name, else the largest."""
    if teacher is not None:
        pick = [g for g in guesses if teacher in (g.file.name, g.file.relative_to(base).as_posix(), g.arch)]
        if len(pick) != 1:
            raise InvalidInputError(f"teacher={teacher!r} matches {len(pick)} checkpoints; give its file name")
        return pick[0], "given with --teacher"
    named = [g.names_teacher for g in guesses if g.names_teacher]
    pool = [g for g in guesses if named and g.arch == max(set(named), key=named.count)]
    pool = sorted(pool, key=lambda g: (g.role != "teacher?", -g.params))
    if pool:
        return pool[0], f"the students name {pool[0].arch} as their teacher"
    chosen = max(guesses, key=lambda g: g.params)
    why = "the largest model (no student names a teacher)"
    confirm.append(f"teacher {chosen.file.relative_to(base)} chosen as {why}; pass --teacher to change it")
    return chosen, why


def _with_roles(guesses: list[ModelGuess], chosen: ModelGuess, base: Path) -> list[ModelGuess]:
    """The guesses with their final roles and ids, teacher first (a teacher is trained with CE, never KD)."""
    taken: set[str] = set()
    final = []
    for g in guesses:
        role = "teacher" if g is chosen else "student"
        method = "ce" if role == "teacher" and g.method == "kd" else g.method
        final.append(ModelGuess(**{**g.__dict__, "role": role, "method": method,
                                   "id": _model_id(g.file, base, g.arch, g.alpha, role, taken)}))
    final.sort(key=lambda g: (g.role != "teacher", g.arch, -g.alpha, g.id))
    return final


def _input_spec(t: ModelGuess, task: Modality, given: InputOverrides, confirm: list[str],
                ) -> tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...]]:
    """Input shape, mean and std: as given, else from the preset of the teacher's family (images); series need
    their length given and default to zeros and ones."""
    channels = t.in_channels
    if task != Modality.IMAGE:
        if not given.size:
            raise InvalidInputError("a time-series zoo needs the series length: pass --input-size L")
        return ((channels, int(given.size[-1])), tuple(given.mean or (0.0,) * channels),
                tuple(given.std or (1.0,) * channels))
    guessed = PRESETS.get(given.preset) if given.preset else guess_preset(t.arch, t.num_classes)
    if given.preset and guessed is None:
        raise InvalidInputError(f"preset={given.preset!r} is not one of {', '.join(PRESETS)}")
    if guessed is None:
        guessed = PRESETS["ImageNet"]
    p_mean, p_std = guessed.for_channels(channels)
    size = tuple(int(v) for v in given.size) if given.size else guessed.size
    shape = (channels, *size)
    mean, std = tuple(given.mean or p_mean), tuple(given.std or p_std)
    if not given.preset and not (mean and std and given.size):
        confirm.append(f"input {'×'.join(map(str, shape))}, mean {mean}, std {std} from the {guessed.name} preset "
                       "(guessed from the teacher's family); pass --preset or --mean/--std/--input-size")
    return shape, mean, std


def _class_names(num_classes: int, channels: int, given: Sequence[str] | None, confirm: list[str]) -> Sequence[str]:
    """The class names as given, else the well-known ones the class count identifies, else numbers."""
    names = given
    if names is None:
        known = guess_class_names(num_classes, in_channels=channels)
        if known is not None:
            names, source = known
            confirm.append(f"class names: {source} (guessed from {num_classes} classes); pass --class-names")
        else:
            names = [str(i) for i in range(num_classes)]
            confirm.append(f"class names are 0…{num_classes - 1}; pass --class-names FILE (one per line)")
    if len(names) != num_classes:
        raise InvalidInputError(f"{len(names)} class names given but the teacher has {num_classes} outputs")
    return names


def _entries(final: list[ModelGuess], base: Path) -> tuple[ModelEntry, ...]:
    """The manifest's model records of the final guesses (weights to be written as ``<id>.safetensors``)."""
    return tuple(ModelEntry(
        id=g.id, role=g.role, arch=g.arch, alpha=g.alpha, temperature=g.temperature, method=g.method, beta=0.0,
        tau=None, checkpoint=f"{g.id}.safetensors", params=g.params, test_accuracy=g.test_accuracy or 0.0,
        train_seconds=0.0, command=f"kdviz zoo init: {g.file.relative_to(base).as_posix()}", seed=0,
    ) for g in final)


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
