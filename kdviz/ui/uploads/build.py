"""A model set from the uploaded checkpoints and the edited table: the teacher, the students that fit it, the
input shape and normalisation, and the class names the data's labels are matched to."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from kdviz.errors import InvalidInputError
from kdviz.io.checkpoints import LoadedCheckpoint
from kdviz.io.class_names import guess_class_names, match_labels
from kdviz.ui.sets import UPLOADED, InputPool, ModelSet, SetModel
from kdviz.ui.uploads.checkpoints import FileStatus, input_kind
from kdviz.vocab import Modality, TrainingMethod

__all__ = ["build_set", "label_space"]


def build_set(statuses: list[FileStatus], table: pd.DataFrame, *, size: tuple[int, int] | None,
              mean: tuple[float, ...], std: tuple[float, ...], pool: InputPool | None,
              class_names: tuple[str, ...]) -> tuple[ModelSet, list[str]]:
    """A model set from loaded files and the edited table (columns file, label, role, architecture, α).

    Returns the set and problems (files left out). :class:`kdviz.errors.InvalidInputError` when no checkpoint
    loaded or the labels are not unique.
    """
    by_name = {s.name: s.loaded for s in statuses if s.ok and s.loaded is not None}
    rows = [r for _, r in table.iterrows() if r["file"] in by_name]
    if not rows:
        raise InvalidInputError("no checkpoint loaded; fix the files marked ✗ above.")
    teachers = [r for r in rows if r["role"] == "teacher"]
    teacher_row = teachers[0] if teachers else max(rows, key=lambda r: by_name[r["file"]].params)
    problems: list[str] = []
    if len(teachers) > 1:
        problems.append(f"several rows are marked teacher; using {teacher_row['label']}.")
    elif not teachers:
        problems.append(f"no row is marked teacher, so the largest model, {teacher_row['label']}, is used as the "
                        "teacher; mark the teacher in the role column.")
    models = _set_models(by_name, teacher_row, [r for r in rows if r is not teacher_row], problems)
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        raise InvalidInputError(f"labels must be unique, got {ids}; edit the label column.")
    t = by_name[teacher_row["file"]]
    task = input_kind(t)
    if task == Modality.IMAGE:
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


def _set_models(by_name: dict[str, LoadedCheckpoint], teacher_row: Any, student_rows: list[Any],
                problems: list[str]) -> list[SetModel]:
    """The teacher, then every student whose classes and channels are the teacher's (the others left out, each
    with a problem appended)."""
    t = by_name[teacher_row["file"]]
    models: list[SetModel] = []
    for r in [teacher_row, *student_rows]:
        ck = by_name[r["file"]]
        if (ck.num_classes, ck.in_channels) != (t.num_classes, t.in_channels):
            problems.append(f"{r['file']}: {ck.num_classes} classes / {ck.in_channels} channels, but the teacher has "
                            f"{t.num_classes} / {t.in_channels}; left out.")
            continue
        alpha = r["α"]
        no_alpha = alpha is None or pd.isna(alpha)
        teacher = r is teacher_row
        models.append(SetModel(
            id=str(r["label"]) or r["file"], arch=ck.arch, alpha=None if no_alpha else float(alpha),
            module=ck.module, role="teacher" if teacher else "student",
            method=(TrainingMethod.UPLOADED if teacher or no_alpha
                    else TrainingMethod.CE if float(alpha) == 1.0 else TrainingMethod.KD),
            sha256=ck.sha256, params=ck.params,
        ))
    return models


def label_space(num_classes: int, in_channels: int, pool: InputPool | None, label_names: tuple[str, ...],
                ) -> tuple[tuple[str, ...], InputPool | None, str | None]:
    """The model's class names and the pool with labels in them, from the data's label names (folder names).

    The model's names are the well-known ones its class count identifies (``kdviz.io.class_names``:
    ImageNet-1k, CIFAR-100, CIFAR-10), else numbers. Folder names are the truth: mapped onto the model's classes
    by name when every one is found; else, with as many folders as classes and no known names, the folders
    name the classes in sorted order (torchvision's ImageFolder); else the labels are kept under their own names
    and marked not comparable (no accuracy). Returns (class names, pool, a note for the user or None).
    """
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
