"""The evaluation plug-in for images and series: arrays through ``kdviz.analysis.compare.compare_models``.

A zoo (``kdviz.io.zoo.manifest.Zoo`` or a ``kdviz.ui.sets.ModelSet``) is evaluated on a test set's ``x_test``
(N, C, ...) as displayed (images in [0, 1]), normalised with the zoo's mean and std, batch by batch
(:class:`ArrayBatches`, the same runner in this process and on every Ray worker). The method and parts default
to the zoo's recommendation (``kdviz sanity --write``), else the library's constant for its modality
(``kdviz.analysis.defaults.default_setting``). Every model runs under the settings' autocast precision.

The random-weights null follows the R rule when ``null_copies='auto'``: the batches compute
``DEFAULT_NULL_COPIES`` copies, then an architecture gets ``NULL_BLOCK`` more at a time while one of its students
is undecided (``kdviz.analysis.nulls.sequential_stop``), up to ``copies_for(architectures)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdviz.analysis.aggregate import copy_matrix
from kdviz.analysis.compare import NULL_METRICS, ComparedModel, CompareOptions, Hooks, NullOptions, compare_models
from kdviz.analysis.defaults import default_setting
from kdviz.analysis.nulls import NULL_SEED_BASE, chance_corrected, null_stats, sequential_stop
from kdviz.attribution.cache import cached_attribute_fn
from kdviz.attribution.methods import get_method
from kdviz.attribution.precision import PRECISIONS, check_precision
from kdviz.attribution.runtime import resolve_device
from kdviz.errors import InvalidInputError
from kdviz.evaluation.batch import EvalSettings, batch_copies, with_precision
from kdviz.evaluation.pipeline import EvalOptions, EvalPlan, check_counts, register_evaluation, resolve_null_copies
from kdviz.io.builtin_datasets import load_dataset
from kdviz.modalities.parts import parse_parts
from kdviz.vocab import Modality

__all__ = [
    "NULL_BLOCK",
    "ArrayBatches",
    "canonical_method",
    "make_settings",
    "plan_arrays",
    "resolve_setting",
]

NULL_BLOCK = 20  # copies added at a time by the sequential rule


def canonical_method(method: str) -> str:
    """The registered method's name for ``method`` (``ig``, ``gradcam``… accepted); ``UnknownNameError`` otherwise."""
    return get_method(method, Modality.IMAGE).name


def resolve_setting(zoo: Any, method: str | None, method_params: dict[str, Any] | None,
                    parts: str | None) -> tuple[str, dict[str, Any], str]:
    """Fill what the caller left out from ``kdviz.analysis.defaults.default_setting(zoo)``.

    The zoo's recommended method (with its parameters) when no method is given, its parts when none are given.
    """
    d = default_setting(zoo)
    if method is None:
        method, method_params = d.method, {**d.params, **dict(method_params or {})}
    return method, dict(method_params or {}), parts or d.parts


def _teacher_and_students(zoo: Any) -> tuple[Any, list[Any]]:
    teachers = [m for m in zoo.models if m.role == "teacher"]
    if len(teachers) != 1:
        raise InvalidInputError(f"zoo {zoo.name!r} must have exactly one teacher, has {len(teachers)}")
    return teachers[0], [m for m in zoo.models if m.role != "teacher"]


def make_settings(zoo: Any, *, dataset: str, n_available: int, target: str = "teacher",
                  **options: Any) -> EvalSettings:
    """Validated settings for evaluating ``zoo`` (method parameters resolved against the method table).

    ``options`` are :class:`~kdviz.evaluation.pipeline.EvalOptions` fields; a method or parts left out is
    ``integrated_gradients`` on ``slic:50``, ``k`` 5. ``null_copies='auto'`` is the R rule
    (``kdviz.analysis.nulls.copies_for``): R_max = enough copies for the Holm-corrected test of one student per
    architecture, reached sequentially (``sequential_stop``).
    """
    opts = EvalOptions(**options)
    name = canonical_method(opts.method or "integrated_gradients")
    params = get_method(name, Modality.IMAGE).resolve(dict(opts.method_params or {}))
    k = 5 if opts.k is None else int(opts.k)
    check_counts(opts.limit, opts.batch_size, k)
    if opts.precision not in PRECISIONS:
        raise InvalidInputError(f"precision={opts.precision!r} is not one of {list(PRECISIONS)}")
    teacher, students = _teacher_and_students(zoo)
    copies, sequential = resolve_null_copies(opts.null_copies, [str(m.arch) for m in students])
    n = n_available if opts.limit is None else min(int(opts.limit), n_available)
    return EvalSettings(
        zoo=str(zoo.name), dataset=dataset, method=name, method_params=params,
        parts=str(parse_parts(opts.parts or "slic:50")), k=k, limit=None if opts.limit is None else int(opts.limit),
        n_inputs=int(n), batch_size=int(opts.batch_size), models=tuple((str(m.id), _sha256(m)) for m in [teacher, *students]),
        precision=opts.precision, target=target, null_copies=copies, null_sequential=sequential,
    )


def _sha256(model: Any) -> str:
    """The model's checkpoint sha256: from the manifest, else hashed from its file (``path``), else ""."""
    digest = str(getattr(model, "sha256", "") or "")
    path = getattr(model, "path", None)
    if not digest and path is not None and Path(path).is_file():
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
    return digest


@dataclass(frozen=True)
class ArrayBatches:
    """The batch runner of an image or series zoo: its models, the normalisation and the settings."""

    teacher: Any
    students: tuple[Any, ...]
    mean: np.ndarray  # broadcastable to a batch (1, C, 1, ...)
    std: np.ndarray
    settings: EvalSettings
    device: str | None = None
    allow_emulated: bool = False  # let a CPU emulate bf16/fp16 (fidelity measurements only)

    def _compare(self, shown: np.ndarray, labels: np.ndarray | None, lo: int, *, students: Any = None,
                 null: NullOptions, hooks: Hooks | None = None) -> Any:
        """``compare_models`` on displayed inputs ``shown`` (normalised here) in the settings' precision."""
        s = self.settings
        model_in = ((np.asarray(shown, dtype=np.float32) - self.mean) / self.std).astype(np.float32)
        options = CompareOptions(target=s.target, method_params=s.method_params, device=self.device,
                                 input_ids=list(range(lo, lo + len(model_in))), images_for_slic=shown, null=null,
                                 hooks=hooks or Hooks())
        return with_precision(compare_models, s.precision, self.device, self.allow_emulated, self.teacher,
                              list(self.students if students is None else students), model_in, labels=labels,
                              method=s.method, parts=s.parts, k=s.k, options=options)

    def evaluate(self, lo: int, hi: int, inputs: Any, labels: np.ndarray | None) -> pd.DataFrame:
        """Rows of inputs ``lo:hi``; ``input_id`` is the index in the test split. Attributions go through the
        disk cache (``cached_attribute_fn``, None when ``KDVIZ_CACHE_DIR=off``)."""
        s = self.settings
        hooks = Hooks(attribute_fn=cached_attribute_fn(s.method, s.method_params, precision=s.precision))
        return self._compare(inputs, labels, lo, null=NullOptions(copies=batch_copies(s)), hooks=hooks).frame

    def for_worker(self, device: str) -> ArrayBatches:
        """This runner with its models as plain ``ComparedModel`` records, for a Ray worker on ``device``."""
        models = [ComparedModel.of(m, role="teacher" if i == 0 else None)
                  for i, m in enumerate([self.teacher, *self.students])]
        return replace(self, teacher=models[0], students=tuple(models[1:]), device=device)

    def _undecided(self, rows: pd.DataFrame) -> bool:
        """Whether some student of these rows (one architecture) still needs copies (``sequential_stop``)."""
        for _mid, g in rows.groupby("model_id", sort=False):
            c = copy_matrix(g, "attention_rho")
            if c is None:
                return False
            values = pd.to_numeric(g["attention_rho"], errors="coerce").to_numpy(dtype=float)
            with np.errstate(all="ignore"):
                st = null_stats(float(np.nanmean(values)), np.nanmean(c, axis=0))
            if not sequential_stop(st.at_or_above, c.shape[1], max_copies=self.settings.null_copies):
                return True
        return False

    def _more_copies(self, mine: list[Any], inputs: Any, labels: np.ndarray | None, first: int,
                     more: int) -> pd.DataFrame:
        """Rows of ``more`` copies (seeds from ``first``) for the students ``mine``, one batch of inputs at a time
        (a ``LazyImages`` folder is never decoded whole)."""
        s, ids = self.settings, {str(m.id) for m in mine}
        frames = []
        n = min(len(inputs), s.n_inputs)
        for lo in range(0, n, s.batch_size):
            hi = min(n, lo + s.batch_size)
            comp = self._compare(inputs[lo:hi], None if labels is None else labels[lo:hi], lo, students=mine,
                                 null=NullOptions(copies=more, first_seed=NULL_SEED_BASE + first))
            frames.append(comp.frame[comp.frame["model_id"].astype(str).isin(ids)])
        return pd.concat(frames, ignore_index=True).set_index(["model_id", "input_id"])

    def extend_null(self, frame: pd.DataFrame, inputs: Any, labels: np.ndarray | None, *,
                    block: int = NULL_BLOCK) -> tuple[pd.DataFrame, dict[str, int]]:
        """The sequential rule on a finished frame: per student architecture, add ``block`` copies (the next
        seeds) while one of its students is undecided, up to ``settings.null_copies``; the per-input null and
        excess columns are recomputed over all copies. Returns the frame and the copies each architecture got."""
        frame = frame.copy()
        by_arch: dict[str, int] = {}
        for arch in dict.fromkeys(str(s.arch) for s in self.students):
            mine = [s for s in self.students if str(s.arch) == arch]
            rows = frame["model_id"].astype(str).isin({str(s.id) for s in mine})
            have = int(frame.loc[rows, "null_copies"].max()) if rows.any() else 0
            while have and have < self.settings.null_copies and self._undecided(frame[rows]):
                more = min(block, self.settings.null_copies - have)
                _merge_copies(frame, rows, self._more_copies(mine, inputs, labels, have, more))
                have += more
                frame.loc[rows, "null_copies"] = have
            by_arch[arch] = have
        return frame, by_arch


def _merge_copies(frame: pd.DataFrame, rows: pd.Series, extra: pd.DataFrame) -> None:
    """Append the copies of ``extra`` to ``frame``'s per-copy columns on ``rows`` and recompute null and excess."""
    keys = pd.MultiIndex.from_arrays([frame.loc[rows, "model_id"], frame.loc[rows, "input_id"].astype(int)])
    for m in NULL_METRICS:
        col = f"{m}_null_copies"
        added = extra[col].reindex(keys).to_numpy()
        merged = [np.concatenate([np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)])
                  for a, b in zip(frame.loc[rows, col].to_numpy(), added, strict=True)]
        column = frame[col].to_numpy(dtype=object, copy=True)
        for i, v in zip(np.flatnonzero(rows.to_numpy()), merged, strict=True):
            column[i] = v
        frame[col] = column
        with np.errstate(all="ignore"):
            null = np.array([np.nanmean(np.where(np.isinf(v), np.nan, v)) if np.isfinite(v).any() else np.nan
                             for v in merged])
        frame.loc[rows, f"{m}_null"] = null
        if f"{m}_excess" in frame:
            frame.loc[rows, f"{m}_excess"] = chance_corrected(
                pd.to_numeric(frame.loc[rows, m], errors="coerce").to_numpy(dtype=float), null)


@register_evaluation(Modality.IMAGE, Modality.SERIES,
                     part_kinds={"slic": Modality.IMAGE, "grid": Modality.IMAGE, "mask": Modality.IMAGE,
                                 "superfeatures": Modality.IMAGE, "segments": Modality.SERIES})
def plan_arrays(zoo: Any, dataset: Any, options: EvalOptions) -> EvalPlan:
    """The plan for an image or series zoo on ``dataset`` (default ``load_dataset(zoo.dataset)``)."""
    if dataset is None:
        dataset = load_dataset(zoo.dataset)
    x_all, y_all = dataset.x_test, dataset.y_test
    method, params, parts = resolve_setting(zoo, options.method, options.method_params, options.parts)
    options = replace(options, method=method, method_params=params, parts=parts)
    fields = {f: getattr(options, f) for f in ("method", "method_params", "parts", "k", "limit", "batch_size",
                                               "precision", "null_copies")}
    settings = make_settings(zoo, dataset=str(dataset.name), n_available=len(x_all), **fields)
    source = zoo if hasattr(zoo, "mean") else dataset  # the models' normalisation
    shape = (1, -1) + (1,) * (x_all.ndim - 2)
    teacher, students = _teacher_and_students(zoo)
    runner = ArrayBatches(teacher, tuple(students), np.asarray(source.mean, dtype=np.float32).reshape(shape),
                          np.asarray(source.std, dtype=np.float32).reshape(shape), settings, options.device,
                          options.allow_emulated_precision)
    if options.cluster is None:
        check_precision(resolve_device(options.device), options.precision,
                        allow_emulated=options.allow_emulated_precision)

    def finish(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
        if not (settings.null_sequential and settings.null_copies > 0):
            return frame, {}
        frame, by_arch = runner.extend_null(frame, x_all, y_all)
        return frame, ({"null_copies_by_arch": by_arch} if by_arch else {})

    return EvalPlan(settings=settings, runner=runner, inputs=x_all, labels=y_all,
                    device=str(resolve_device(options.device)), finish=finish,
                    facts={"test_accuracy": {str(m.id): getattr(m, "test_accuracy", None) for m in zoo.models}})
