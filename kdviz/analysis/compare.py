"""Teacher vs students on one batch, for every modality: attributions, predictions and every alignment metric.

``compare_models(teacher, students, inputs, ...)`` reads the inputs through their modality's plug-in
(``kdviz.modalities``: images, series or texts), splits them into parts once (shared by all models, so part
vectors are comparable: superpixels, segments, words), attributes every model, takes the teacher's top-k parts
and returns a ``Comparison`` whose ``frame`` is a tidy DataFrame with one row per (model, input) and the same
columns (``FRAME_COLUMNS``) for every modality; a column that does not apply is NaN or empty. The teacher has
rows too: its own focus is the reference line and its alignments are 1.

All models are attributed to the same class per input (default: the teacher's prediction), so their maps answer
the same question.

Every student's alignment comes with what chance gives (``kdviz.analysis.nulls``): R untrained copies of its
architecture (built by the modality plug-in) go through the same attribution, parts and metrics against the same
teacher, and the frame holds their per-input mean (``*_null``) and the chance-corrected excess
``(m − m_null) / (1 − m_null)``. Each copy's own per-input values are kept too (``*_null_copies``: one array of
R values per row, and ``null_copies`` = R), so a summary can treat the null as a distribution over
initialisations (``kdviz.analysis.aggregate``). Copies' part vectors are cached per (copy, inputs, method, parts,
targets) behind a lock, so Streamlit sessions (threads) and evaluation batches share them.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.special
import torch

from kdviz.analysis.aggregate import EXCESS_METRICS, NULL_METRICS
from kdviz.analysis.metrics import (
    agreement,
    attention_rank_alignment,
    focus_fraction,
    focus_ratio,
    logit_alignment,
    logit_margin,
    map_pearson,
    map_ssim,
    output_margin_class,
    pearson_rows,
    predictive_divergence,
    topk_overlap,
)
from kdviz.analysis.nulls import DEFAULT_NULL_COPIES, NULL_SEED_BASE, chance_corrected
from kdviz.attribution.cache import array_digest
from kdviz.attribution.runtime import resolve_device
from kdviz.errors import InvalidInputError
from kdviz.io.hf_text import TextZooModel
from kdviz.modalities import get_modality, infer_modality
from kdviz.modalities.base import ModalityPlugin, RandomCopy
from kdviz.modalities.parts import PartSpec
from kdviz.vocab import Modality, TrainingMethod

__all__ = [
    "COPY_COLUMNS",
    "FRAME_COLUMNS",
    "NULL_COLUMNS",
    "CompareOptions",
    "ComparedModel",
    "Comparison",
    "Hooks",
    "NullOptions",
    "compare_models",
]

FRAME_COLUMNS = (
    "model_id", "role", "arch", "alpha", "method", "attr_method", "input_id", "label", "pred", "correct",
    "confidence", "attention_rho", "logit_rho", "logit_margin", "focus_ratio", "focus_fraction", "topk_overlap",
    "kl_to_teacher", "agree", "ssim", "pearson",
    "attention_rho_null", "attention_rho_excess", "topk_overlap_null", "topk_overlap_excess", "focus_ratio_null",
    "ig_completeness_error", "ig_steps",
    "null_copies", "attention_rho_null_copies", "topk_overlap_null_copies", "focus_ratio_null_copies",
    # text only (NaN or empty for images and series): words kept, the model's top-k words, their VADER share
    "n_words", "top_words", "vader", "vader_null", "vader_null_copies",
)
# Columns of the random-weights reference for alignment (NaN on the teacher's rows and when the null is off).
NULL_COLUMNS = ("attention_rho_null", "attention_rho_excess", "topk_overlap_null", "topk_overlap_excess",
                "focus_ratio_null")
# Per-copy values of each NULL_METRICS metric (empty on teacher rows and where a modality lacks the metric).
COPY_COLUMNS = tuple(f"{m}_null_copies" for m in NULL_METRICS)
Target = Literal["teacher", "label", "own"] | int


@dataclass(frozen=True, eq=False)
class ComparedModel:
    """A model to compare, as a typed record.

    Its id, architecture, distillation strength α (kdviz convention), the module, its role (``teacher``,
    ``student``, ``random``), how it was trained, and for text its tokenizer. ``path``: its checkpoint (a zoo
    teacher's stored superfeatures sit next to it).
    """

    id: str
    arch: str
    alpha: float | None
    module: Any = field(repr=False)
    role: str = "student"
    method: TrainingMethod = TrainingMethod.KD
    tokenizer: Any = field(default=None, repr=False)
    path: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", TrainingMethod.parse(self.method, TrainingMethod.KD))

    @classmethod
    def of(cls, model: Any, *, role: str | None = None) -> ComparedModel:
        """Return the record of a zoo model, a text zoo model, or anything with the record's attributes.

        ``model`` needs ``id, arch, alpha`` and ``module`` (or ``model``), optionally ``role``, ``method``,
        ``tokenizer``, ``path``; the ``role`` argument overrides its own.
        """
        if isinstance(model, cls):
            return model if role is None else dataclasses.replace(model, role=role)
        if isinstance(model, TextZooModel):
            e = model.entry
            return cls(model.id, str(e.arch), e.alpha, model.text.model, role or str(e.role), e.method,
                       model.text.tokenizer)
        try:
            module = model.module if hasattr(model, "module") else model.model
            ident, arch, alpha = str(model.id), str(model.arch), model.alpha
        except AttributeError as err:
            raise InvalidInputError(f"model entries need id, arch, alpha and module attributes: {err}") from None
        path = getattr(model, "path", None)
        return cls(ident, arch, alpha, module, role or str(getattr(model, "role", "student")),
                   getattr(model, "method", None), getattr(model, "tokenizer", None), None if path is None else str(path))


@dataclass(frozen=True)
class NullOptions:
    """The random-weights reference.

    ``copies`` untrained copies per student architecture (0 turns it off), seeds ``first_seed …`` (a later first
    seed adds copies to earlier ones).
    """

    copies: int = DEFAULT_NULL_COPIES
    first_seed: int = NULL_SEED_BASE


@dataclass(frozen=True)
class Hooks:
    """Callables a caller puts in place of the defaults (a UI passes cached ones).

    attribute_fn : ``(model, batch, targets, device) -> attribution`` instead of the modality's, for every model
        and null copy (``model.id`` identifies it)
    logits_fn : ``(model, batch, device) -> logits (N, classes)``, likewise
    progress : ``(done, total, model_id)`` before each model is attributed and once at the end with
        ``model_id=""``; an exception it raises stops the comparison between models
    """

    attribute_fn: Callable[[Any, Any, np.ndarray, str], Any] | None = None
    logits_fn: Callable[[Any, Any, str], np.ndarray] | None = None
    progress: Callable[[int, int, str], None] | None = None


@dataclass(frozen=True)
class CompareOptions:
    """Everything but the models, inputs, labels, method, parts and k.

    target : explain the teacher's predicted class (default), the true label, each model's own prediction, or
        one class (an ``int``: its index) for every input
    method_params : the attribution method's parameters
    device : where models run (default: the best available)
    input_ids : identifiers for the ``input_id`` column (default 0..N-1)
    images_for_slic : display images (un-normalised) for SLIC, (N, H, W[, C]) or (N, C, H, W); default: the
        inputs themselves, min-max scaled
    part_labels : precomputed part labels (e.g. cached SLIC); ``parts`` then only names them
    null, hooks : :class:`NullOptions`, :class:`Hooks`
    modality : the inputs' modality (default: inferred from them)
    reading : how the modality reads the inputs (texts: ``max_length``, ``bucket``, ``lexicon``)
    """

    target: Target = "teacher"
    method_params: Mapping[str, Any] = field(default_factory=dict)
    device: str | torch.device | None = None
    input_ids: Sequence[Any] | None = None
    images_for_slic: np.ndarray | None = None
    part_labels: np.ndarray | None = None
    null: NullOptions = NullOptions()
    hooks: Hooks = Hooks()
    modality: Modality | str | None = None
    reading: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Comparison:
    """Result of ``compare_models`` (numpy and pandas inside, picklable).

    frame : one row per (model, input), columns ``FRAME_COLUMNS``.
    attributions, logits, part_vectors : per model id; logits (N, n_classes), part_vectors (N, K).
    part_labels : (N, H, W), (N, L) or (N, W) word indices; teacher_topk : (N, k) the teacher's top-k part
    indices (-1 where an input has fewer parts). part_names : the words of each text (None for tensors).
    """

    frame: pd.DataFrame
    attributions: dict[str, Any]
    logits: dict[str, np.ndarray]
    part_vectors: dict[str, np.ndarray]
    part_labels: np.ndarray
    teacher_topk: np.ndarray
    teacher_id: str
    parts: str
    k: int
    attr_method: str
    method_params: dict[str, Any]
    null_part_vectors: dict[str, np.ndarray] = field(default_factory=dict)  # random copy id -> (N, K)
    null_ids: dict[str, tuple[str, ...]] = field(default_factory=dict)  # null key -> its copies' ids
    notes: tuple[str, ...] = ()  # what could not be computed and why (e.g. no null for an unknown arch)
    modality: str = Modality.IMAGE.value
    part_names: tuple[tuple[str, ...], ...] | None = None


@dataclass(frozen=True, eq=False)
class _Run:
    """One comparison's checked inputs and settings."""

    plugin: ModalityPlugin
    batch: Any
    n: int
    labels: np.ndarray | None
    ids: list[Any]
    models: list[ComparedModel]
    spec: PartSpec
    part_labels: np.ndarray
    n_parts: int
    k: int
    method: str
    params: dict[str, Any]
    target: Target
    device: str
    options: CompareOptions


def _check_target(target: Any, y: np.ndarray | None) -> None:
    fixed = isinstance(target, (int, np.integer)) and not isinstance(target, bool)
    if not fixed and target not in ("teacher", "label", "own"):
        raise InvalidInputError(f"target={target!r} is not one of ['teacher', 'label', 'own'] or a class index")
    if target == "label" and y is None:
        raise InvalidInputError("target='label' needs labels")


def _prepare(teacher: Any, students: Sequence[Any], inputs: Any, labels: Any, method: str, parts: Any, k: int,
             options: CompareOptions) -> _Run:
    plugin = infer_modality(inputs) if options.modality is None else get_modality(options.modality)
    batch = plugin.read(inputs, **dict(options.reading))
    n = plugin.size(batch)
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    if y is not None and y.shape != (n,):
        raise InvalidInputError(f"labels must have shape ({n},), got {y.shape}")
    _check_target(options.target, y)
    ids = list(range(n)) if options.input_ids is None else list(options.input_ids)
    if len(ids) != n:
        raise InvalidInputError(f"input_ids has {len(ids)} entries for {n} inputs")
    models = [ComparedModel.of(teacher, role="teacher"), *(ComparedModel.of(s) for s in students)]
    if len({m.id for m in models}) != len(models):
        raise InvalidInputError(f"model ids must be unique, got {[m.id for m in models]}")
    spec = plugin.parse_parts(parts)
    lab = (plugin.label_parts(spec, batch, display=options.images_for_slic, teacher=models[0])
           if options.part_labels is None else plugin.check_labels(options.part_labels, batch))
    n_parts = plugin.n_parts(lab)
    plugin.check_k(k, n_parts, spec)
    if options.null.copies < 0:
        raise InvalidInputError(f"null_copies={options.null.copies} must be ≥ 0 (0 turns the random-weights "
                                "reference off)")
    return _Run(plugin, batch, n, y, ids, models, spec, lab, n_parts, k, method, dict(options.method_params),
                options.target, str(resolve_device(options.device)), options)


def _targets(run: _Run, logits: np.ndarray, teacher_pred: np.ndarray) -> np.ndarray:
    """Return the class each input is explained for, given a model's logits."""
    if run.target in ("teacher", "label", "own"):
        return {"teacher": teacher_pred, "label": run.labels, "own": logits.argmax(axis=1)}[run.target]
    if not 0 <= int(run.target) < logits.shape[1]:
        raise InvalidInputError(f"target class {int(run.target)} is not one of the model's {logits.shape[1]} classes")
    return np.full(logits.shape[0], int(run.target), dtype=np.int64)


def _scores(run: _Run, v: np.ndarray, v_t: np.ndarray) -> dict[str, np.ndarray]:
    """Return per input ρ over parts, top-k overlap, focus ratio and fraction, and the modality's own metrics.

    Top-k metrics are on the teacher's top-k and NaN where the modality says top-k means nothing.
    """
    kk = min(run.k, v.shape[1])
    defined = run.plugin.topk_defined(run.part_labels, run.k)
    with np.errstate(all="ignore"):
        out = {"attention_rho": attention_rank_alignment(v, v_t),
               "topk_overlap": np.where(defined, topk_overlap(v, v_t, k=kk), np.nan),
               "focus_ratio": np.where(defined, focus_ratio(v, v_t, k=kk), np.nan),
               "focus_fraction": np.where(defined, focus_fraction(v, v_t, k=kk), np.nan)}
    out.update(run.plugin.extra_scores(v, run.batch, run.part_labels, run.k))
    return out


_COPY_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
_COPY_CACHE_LOCK = threading.Lock()
_COPY_CACHE_MAX_BYTES = 256 << 20


def _autocast_state(dev: str) -> str:
    """Return the autocast dtype in force on ``dev`` ('' when off): part of a cached copy's key."""
    kind = torch.device(dev).type
    try:
        return str(torch.get_autocast_dtype(kind)) if torch.is_autocast_enabled(kind) else ""
    except (TypeError, RuntimeError, AttributeError):
        return ""


def _copy_vectors_cached(key: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Return a copy's part vectors per (copy id, inputs, method, parameters, parts, targets), computed once.

    Thread-safe (a lock around the dictionary; two threads missing the same key both compute, one result
    is kept). Least recently used entries go beyond ``_COPY_CACHE_MAX_BYTES``.
    """
    with _COPY_CACHE_LOCK:
        found = _COPY_CACHE.get(key)
        if found is not None:
            _COPY_CACHE.move_to_end(key)
            return found
    value = compute()
    with _COPY_CACHE_LOCK:
        value = _COPY_CACHE.setdefault(key, value)
        held = sum(v.nbytes for v in _COPY_CACHE.values())
        while len(_COPY_CACHE) > 1 and held > _COPY_CACHE_MAX_BYTES:
            held -= _COPY_CACHE.popitem(last=False)[1].nbytes
    return value


def _null_copies(run: _Run, n_classes: int, notes: list[str]) -> dict[str, tuple[RandomCopy, ...]]:
    """Return untrained copies per null key of the students (once per key); one without copies is noted."""
    out: dict[str, tuple[RandomCopy, ...]] = {}
    if run.options.null.copies == 0:
        return out
    for m in run.models[1:]:
        key = run.plugin.null_key(m)
        if key in out:
            continue
        try:
            out[key] = run.plugin.random_copies(m, n_classes=n_classes, batch=run.batch,
                                                copies=run.options.null.copies, first_seed=run.options.null.first_seed)
        except ValueError as err:
            notes.append(f"no random-weights reference for {m.arch}: {err}")
    return out


@dataclass
class _Work:
    """What the models' and copies' attribution produced."""

    logits: dict[str, np.ndarray]
    attributions: dict[str, Any] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    null_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    copies: dict[str, tuple[RandomCopy, ...]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _attribute_all(run: _Run) -> _Work:
    """Compute logits, attributions and part vectors of every model, then of every null copy."""
    plugin, hooks = run.plugin, run.options.hooks
    run_logits = hooks.logits_fn or plugin.logits

    def run_attribution(m: Any, targets: np.ndarray) -> Any:
        if hooks.attribute_fn is not None:
            return hooks.attribute_fn(m, run.batch, targets, run.device)
        return plugin.attribute(m, run.batch, method=run.method, targets=targets, device=run.device, params=run.params)

    work = _Work({m.id: run_logits(m, run.batch, run.device) for m in run.models})
    teacher_pred = work.logits[run.models[0].id].argmax(axis=1)
    work.copies = _null_copies(run, work.logits[run.models[0].id].shape[1], work.notes)
    total, done = len(run.models) + sum(len(c) for c in work.copies.values()), 0
    for m in run.models:
        if hooks.progress is not None:
            hooks.progress(done, total, m.id)
        work.attributions[m.id] = run_attribution(m, _targets(run, work.logits[m.id], teacher_pred))
        work.vectors[m.id] = plugin.part_vectors(work.attributions[m.id], run.part_labels, run.n_parts)
        done += 1
    cache = hooks.attribute_fn is None and hooks.logits_fn is None  # a caller's hooks keep their own cache
    base_key = (plugin.digest(run.batch), run.method, repr(sorted(run.params.items())), array_digest(run.part_labels),
                run.target, array_digest(teacher_pred) if run.target == "teacher" else "", run.device,
                _autocast_state(run.device))
    for copy in (c for copies in work.copies.values() for c in copies):
        if hooks.progress is not None:
            hooks.progress(done, total, copy.id)

        def attribute_copy(copy: RandomCopy = copy) -> np.ndarray:
            lg = run_logits(copy, run.batch, run.device) if run.target == "own" else work.logits[run.models[0].id]
            attr = run_attribution(copy, _targets(run, lg, teacher_pred))
            return plugin.part_vectors(attr, run.part_labels, run.n_parts)

        work.null_vectors[copy.id] = (_copy_vectors_cached((copy.id, *base_key), attribute_copy) if cache
                                      else attribute_copy())
        done += 1
    if hooks.progress is not None:
        hooks.progress(done, total, "")
    return work


def _null_columns(run: _Run, copies: tuple[RandomCopy, ...] | None, work: _Work, scores: dict[str, np.ndarray],
                  v_t: np.ndarray) -> dict[str, Any]:
    """Return per input each copy's values of the null metrics, their mean over copies and the excess."""
    nan = np.full(run.n, np.nan)
    cols: dict[str, Any] = {"null_copies": 0 if not copies else len(copies)}
    per_copy: dict[str, np.ndarray] = {}
    if copies:
        each = [_scores(run, work.null_vectors[c.id], v_t) for c in copies]
        per_copy = {m: np.stack([e[m] for e in each]) for m in run.plugin.null_metrics}
        per_copy["focus_ratio"] = np.where(np.isinf(per_copy["focus_ratio"]), np.nan, per_copy["focus_ratio"])
    for m in NULL_METRICS:
        if m not in per_copy:
            cols[f"{m}_null_copies"], cols[f"{m}_null"] = pd.Series([np.empty(0)] * run.n, dtype=object), nan
            continue
        cols[f"{m}_null_copies"] = pd.Series(list(np.ascontiguousarray(per_copy[m].T)), dtype=object)  # R per row
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN inputs give NaN, as they should
            cols[f"{m}_null"] = np.nanmean(per_copy[m], axis=0)
    for m in EXCESS_METRICS:
        cols[f"{m}_excess"] = chance_corrected(scores[m], cols[f"{m}_null"]) if m in per_copy else nan
    return cols


def _model_rows(run: _Run, m: ComparedModel, work: _Work) -> pd.DataFrame:
    """Return the frame's rows of one model."""
    plugin, n, tid = run.plugin, run.n, run.models[0].id
    lg, lg_t, v, v_t = work.logits[m.id], work.logits[tid], work.vectors[m.id], work.vectors[tid]
    attr, attr_t = work.attributions[m.id], work.attributions[tid]
    pred, scores = lg.argmax(axis=1), _scores(run, v, v_t)
    maps, maps_t = plugin.maps(attr), plugin.maps(attr_t)
    y = run.labels
    cols: dict[str, Any] = {
        "model_id": m.id, "role": m.role, "arch": m.arch, "alpha": np.nan if m.alpha is None else float(m.alpha),
        "method": m.method.value, "attr_method": run.method, "input_id": run.ids,
        "label": pd.array(y if y is not None else [pd.NA] * n, dtype="Int64"), "pred": pred,
        "correct": pd.array(pred == y if y is not None else [pd.NA] * n, dtype="boolean"),
        "confidence": scipy.special.softmax(lg, axis=1).max(axis=1),
        "logit_rho": logit_alignment(lg, lg_t), "logit_margin": logit_margin(lg, output_margin_class(lg_t)),
        "kl_to_teacher": predictive_divergence(lg, lg_t), "agree": agreement(lg, lg_t).astype(bool),
        "ssim": np.full(n, np.nan) if maps is None else map_ssim(maps, maps_t),
        "pearson": pearson_rows(v, v_t) if maps is None else map_pearson(maps, maps_t),
        "n_words": pd.array([pd.NA] * n, dtype="Int64"), "top_words": [""] * n, "vader": np.full(n, np.nan),
        **scores, **plugin.attribution_columns(attr, n), **plugin.extra_columns(v, run.batch, run.part_labels, run.k),
    }
    copies = work.copies.get(plugin.null_key(m)) if m.role != "teacher" else None
    cols.update(_null_columns(run, copies, work, scores, v_t))
    return pd.DataFrame(cols)


def compare_models(
    teacher: Any,
    students: Sequence[Any],
    inputs: Any,
    *,
    labels: Sequence[int] | np.ndarray | None = None,
    method: str = "integrated_gradients",
    parts: str | PartSpec | None = None,
    k: int = 5,
    options: CompareOptions | None = None,
) -> Comparison:
    """Attribute teacher and students on a batch and compute every alignment metric against the teacher.

    Parameters
    ----------
    teacher, students : ComparedModel, zoo models, or anything with ``id, arch, alpha, module`` (``role``,
        ``method``; ``tokenizer`` for text)
    inputs : (N, C, H, W) images or (N, C, L) series normalised as the models expect, or a list of texts
    labels : (N,) true classes, optional (``correct`` is NA without them)
    method : attribution method of the inputs' modality (its parameters in ``options.method_params``)
    parts : ``'slic:N'``, ``'grid:RxC'``, ``'segments:N'``, ``'superfeatures:M'``, ``'words'`` or a PartSpec;
        default the modality's (``slic:50``, ``segments:10``, ``words``)
    k : number of the teacher's top parts for the focus ratio and top-k overlap (k > K raises for tensors; a
        text of at most k words has them undefined)
    options : :class:`CompareOptions` (target class, device, the null, hooks, …)

    Returns
    -------
    Comparison
    """
    run = _prepare(teacher, students, inputs, labels, method, parts, k, options or CompareOptions())
    work = _attribute_all(run)
    tid = run.models[0].id
    frame = pd.concat([_model_rows(run, m, work) for m in run.models], ignore_index=True)[list(FRAME_COLUMNS)]
    return Comparison(
        frame=frame, attributions=work.attributions, logits=work.logits, part_vectors=work.vectors,
        part_labels=run.part_labels, teacher_topk=run.plugin.top_parts(work.vectors[tid], run.part_labels, k),
        teacher_id=tid, parts=str(run.spec), k=k, attr_method=method, method_params=work.attributions[tid].params,
        null_part_vectors=work.null_vectors, null_ids={key: tuple(c.id for c in copies)
                                                       for key, copies in work.copies.items()},
        notes=tuple(work.notes), modality=run.plugin.modality.value,
        part_names=run.plugin.part_names(run.batch, run.part_labels),
    )
