"""Teacher vs students on one batch: attributions, predictions and every alignment metric in one call.

``compare_models(teacher, students, x, ...)`` attributes every model (one batched captum call each),
splits the inputs into parts once (shared by all models, so part vectors are comparable), takes the
teacher's top-k parts, and returns a ``Comparison`` whose ``frame`` is a tidy DataFrame with one row per
(model, input). The teacher has rows too: its own focus is the reference line and its alignments are 1.

All models are attributed to the same class per input (default: the teacher's prediction, as in
DESIGN.md's saliency distillation), so their maps answer the same question.

Every student's alignment comes with what chance gives (``kdviz.analysis.nulls``): R randomly initialised copies of
its architecture go through the same attribution, parts and metrics against the same teacher, and the frame
holds their per-input mean (``*_null``) and the chance-corrected excess ``(m − m_null) / (1 − m_null)``.
Each copy's own per-input values are kept too (``*_null_copies``: one array of R values per row, and
``null_copies`` = R), so a summary can treat the null as a distribution over initialisations
(``kdviz.analysis.aggregate``). Copies' part vectors are cached per (copy, inputs, method, parts, targets)
behind a lock, so Streamlit sessions (threads) and evaluation batches share them.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.special
import torch
from torch import nn

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
    predictive_divergence,
    topk_overlap,
)
from kdviz.analysis.nulls import DEFAULT_NULL_COPIES, NULL_SEED_BASE, RandomCopy, chance_corrected, random_copies
from kdviz.attribution.engine import Attribution, attribute, predict_logits, resolve_device
from kdviz.attribution.ig_steps import completeness_column, steps_column
from kdviz.modalities.parts import PartSpec, label_parts, parse_parts, part_importance, top_k_parts
from kdviz.modalities.superfeatures import load_superfeatures

__all__ = ["COPY_COLUMNS", "FRAME_COLUMNS", "NULL_COLUMNS", "NULL_METRICS", "Comparison", "ModelEntry", "PartSpec", "compare_models", "label_parts", "parse_parts"]

FRAME_COLUMNS = (
    "model_id", "role", "arch", "alpha", "method", "attr_method", "input_id", "label", "pred", "correct",
    "confidence", "attention_rho", "logit_rho", "logit_margin", "focus_ratio", "focus_fraction", "topk_overlap",
    "kl_to_teacher", "agree", "ssim", "pearson",
    "attention_rho_null", "attention_rho_excess", "topk_overlap_null", "topk_overlap_excess", "focus_ratio_null",
    "ig_completeness_error", "ig_steps",
    "null_copies", "attention_rho_null_copies", "topk_overlap_null_copies", "focus_ratio_null_copies",
)
# Columns of the random-weights reference (NaN on the teacher's rows and when the null is off).
NULL_COLUMNS = ("attention_rho_null", "attention_rho_excess", "topk_overlap_null", "topk_overlap_excess",
                "focus_ratio_null")
# Metrics the null is computed for, and the per-row arrays of each copy's value (empty on teacher rows).
NULL_METRICS = ("attention_rho", "topk_overlap", "focus_ratio")
COPY_COLUMNS = tuple(f"{m}_null_copies" for m in NULL_METRICS)
AttributeFn = Callable[[Any, np.ndarray, np.ndarray, str], Attribution]
ProgressFn = Callable[[int, int, str], None]
LogitsFn = Callable[[Any, np.ndarray, str], np.ndarray]


@dataclass(frozen=True, eq=False)
class ModelEntry:
    """A model to compare: id, architecture, distillation strength α (kdviz convention), the module.

    ``method`` is how it was trained (kd | kd+sd | ce). Anything with these attributes (a zoo model)
    works in ``compare_models`` too.
    """

    id: str
    arch: str
    alpha: float | None
    module: nn.Module
    role: str = "student"
    method: str = "kd"


@dataclass(frozen=True, eq=False)
class Comparison:
    """Result of ``compare_models`` (numpy and pandas inside, picklable).

    frame : one row per (model, input), columns ``FRAME_COLUMNS``.
    attributions, logits, part_vectors : per model id; logits (N, n_classes), part_vectors (N, K).
    part_labels : (N, H, W) or (N, L); teacher_topk : (N, k) the teacher's top-k part indices.
    """

    frame: pd.DataFrame
    attributions: dict[str, Attribution]
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
    null_ids: dict[str, tuple[str, ...]] = field(default_factory=dict)  # architecture -> its copies' ids
    notes: tuple[str, ...] = ()  # what could not be computed and why (e.g. no null for an unknown arch)


def _entry_fields(entry: Any) -> tuple[str, str, Any, nn.Module, str, str]:
    try:
        return (str(entry.id), str(entry.arch), entry.alpha, entry.module,
                str(getattr(entry, "role", "student")), str(getattr(entry, "method", "kd")))
    except AttributeError as err:
        raise ValueError(f"model entries need id, arch, alpha and module attributes: {err}") from None


def _stored_superfeatures(spec: PartSpec, teacher: Any) -> PartSpec:
    """``superfeatures:M`` without labels: those stored next to a zoo teacher's checkpoint (its ``path``)."""
    if spec.kind != "superfeatures" or spec.masks is not None or not getattr(teacher, "path", None):
        return spec
    return PartSpec("superfeatures", n=spec.n, masks=load_superfeatures(Path(teacher.path).parent, spec.n).labels)


def _checked_labels(labels: np.ndarray, x: np.ndarray) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.shape != (x.shape[0], *x.shape[2:]) or not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0:
        raise ValueError(f"part_labels must be non-negative integers of shape {(x.shape[0], *x.shape[2:])}, "
                         f"got {lab.dtype} {lab.shape}")
    return lab


def _null_entries(entries: list[tuple], *, n_classes: int, in_channels: int, copies: int,
                  notes: list[str], first_seed: int = NULL_SEED_BASE) -> dict[str, tuple[RandomCopy, ...]]:
    """Random copies for each student architecture (once per architecture); unknown ones noted, not raised."""
    out: dict[str, tuple[RandomCopy, ...]] = {}
    if copies == 0:
        return out
    for _mid, arch, _alpha, module, role, _m in entries:
        if role == "teacher" or arch in out:
            continue
        try:
            out[arch] = random_copies(arch, num_classes=n_classes, in_channels=in_channels, copies=copies,
                                      first_seed=first_seed, like=module)
        except ValueError as err:
            notes.append(f"no random-weights reference for {arch}: {err}")
    return out


def _copy_metrics(copy_vectors: list[np.ndarray], v_teacher: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per copy and input (R, N), each null metric against the teacher (infinite focus made NaN)."""
    rho = np.stack([attention_rank_alignment(v, v_teacher) for v in copy_vectors])
    overlap = np.stack([topk_overlap(v, v_teacher, k=k) for v in copy_vectors]).astype(np.float64)
    focus = np.stack([focus_ratio(v, v_teacher, k=k) for v in copy_vectors])
    return {"attention_rho": rho, "topk_overlap": overlap, "focus_ratio": np.where(np.isinf(focus), np.nan, focus)}


def _null_metrics(per_copy: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per input, the mean over random copies of each metric (NaN copies left out)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN inputs give NaN, as they should
        return {m: np.nanmean(v, axis=0) for m, v in per_copy.items()}


_COPY_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
_COPY_CACHE_LOCK = threading.Lock()
_COPY_CACHE_MAX_BYTES = 256 << 20


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:24]


def _autocast_state(dev: torch.device) -> str:
    """Autocast dtype in force on ``dev`` ('' when off): part of a cached copy's key."""
    try:
        on = torch.is_autocast_enabled(dev.type)
        return str(torch.get_autocast_dtype(dev.type)) if on else ""
    except (TypeError, RuntimeError, AttributeError):
        return ""


def _copy_vectors_cached(key: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """A copy's part vectors per (copy id, inputs, method, parameters, parts, targets), computed once.

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


def compare_models(
    teacher: Any,
    students: Sequence[Any],
    inputs: torch.Tensor | np.ndarray,
    *,
    labels: Sequence[int] | np.ndarray | None = None,
    method: str = "integrated_gradients",
    method_params: dict[str, Any] | None = None,
    parts: str | PartSpec = "slic:50",
    k: int = 5,
    target: Literal["teacher", "label", "own"] | int = "teacher",
    device: str | torch.device | None = None,
    images_for_slic: np.ndarray | None = None,
    input_ids: Sequence[Any] | None = None,
    null_copies: int = DEFAULT_NULL_COPIES,
    null_first_seed: int = NULL_SEED_BASE,
    attribute_fn: AttributeFn | None = None,
    logits_fn: LogitsFn | None = None,
    progress: ProgressFn | None = None,
    part_labels: np.ndarray | None = None,
) -> Comparison:
    """Attribute teacher and students on a batch and compute every alignment metric against the teacher.

    Parameters
    ----------
    teacher, students : ModelEntry or anything with ``id, arch, alpha, module`` (``role``, ``method``)
    inputs : (N, C, H, W) images or (N, C, L) series, normalised as the models expect
    labels : (N,) true classes, optional (``correct`` is NA without them)
    method, method_params : attribution method (``kdviz.attribution.engine.METHODS``) and its parameters
    parts : ``'slic:N'``, ``'grid:RxC'``, ``'segments:N'`` or a PartSpec
    k : number of teacher's top parts for the focus ratio and top-k overlap (k > K raises ValueError)
    target : explain the teacher's predicted class (default), the true label, each model's own prediction, or
        one class (an ``int``: its index) for every input
    images_for_slic : display images (un-normalised) for SLIC, (N, H, W[, C]) or (N, C, H, W);
        default: the inputs themselves, min-max scaled
    input_ids : identifiers for the ``input_id`` column; default 0..N-1
    null_copies : R, randomly initialised copies per student architecture for the random-weights reference
        (``kdviz.analysis.nulls``); 0 turns it off (the ``*_null`` / ``*_excess`` columns are then NaN)
    null_first_seed : seed of the first copy (``NULL_SEED_BASE``); a later seed adds copies to earlier ones
    attribute_fn : ``(entry, x, targets, device) -> Attribution`` used instead of ``kdviz.attribution.engine.attribute``
        for every model and null copy (a UI passes a cached one); ``entry.id`` identifies the model
    logits_fn : ``(entry, x, device) -> logits (N, classes)`` used instead of ``predict_logits``, likewise
    progress : ``(done, total, model_id)`` called before each model is attributed, and once at the end with
        ``model_id=""``; an exception it raises stops the comparison between models
    part_labels : precomputed labels (N, H, W) / (N, L) (e.g. cached SLIC); ``parts`` then only names them

    Returns
    -------
    Comparison
    """
    x = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
    n = x.shape[0]
    if x.ndim not in (3, 4):
        raise ValueError(f"inputs must be (N, C, H, W) or (N, C, L), got shape {x.shape}")
    fixed = isinstance(target, (int, np.integer)) and not isinstance(target, bool)
    if not fixed and target not in ("teacher", "label", "own"):
        raise ValueError(f"target={target!r} is not one of ['teacher', 'label', 'own'] or a class index")
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    if y is not None and y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {y.shape}")
    if target == "label" and y is None:
        raise ValueError("target='label' needs labels")
    ids = list(range(n)) if input_ids is None else list(input_ids)
    if len(ids) != n:
        raise ValueError(f"input_ids has {len(ids)} entries for {n} inputs")

    entries = [_entry_fields(teacher)] + [_entry_fields(s) for s in students]
    entries[0] = (*entries[0][:4], "teacher", entries[0][5])
    model_ids = [e[0] for e in entries]
    if len(set(model_ids)) != len(model_ids):
        raise ValueError(f"model ids must be unique, got {model_ids}")

    spec = parse_parts(parts)
    if part_labels is None:
        part_lab = label_parts(_stored_superfeatures(spec, teacher), x, images_for_slic)
    else:
        part_lab = _checked_labels(part_labels, x)
    n_parts = int(part_lab.max()) + 1
    if k > n_parts:
        why = (f": SLIC found at most {n_parts} superpixel(s) in these inputs (noise-like or very small images); use grid "
               "parts (e.g. grid:4x4) or a smaller k" if spec.kind == "slic" else "")
        raise ValueError(f"k={k} exceeds the number of parts K={n_parts}{why}")
    if null_copies < 0:
        raise ValueError(f"null_copies={null_copies} must be ≥ 0 (0 turns the random-weights reference off)")
    dev = resolve_device(device)
    params = dict(method_params or {})

    def default_attribute(entry: Any, xb: np.ndarray, targets: np.ndarray, device_name: str) -> Attribution:
        return attribute(entry.module, xb, method=method, target=targets, device=device_name, **params)

    def default_logits(entry: Any, xb: np.ndarray, device_name: str) -> np.ndarray:
        return predict_logits(entry.module, xb, device=device_name)

    run_attribution = attribute_fn or default_attribute
    run_logits = logits_fn or default_logits
    tid = model_ids[0]
    logits: dict[str, np.ndarray] = {}
    for entry, (mid, *_rest) in zip([teacher, *students], entries, strict=True):
        logits[mid] = run_logits(entry, x, str(dev))
    teacher_pred = logits[tid].argmax(axis=1)

    def targets_for(lg: np.ndarray) -> np.ndarray:
        if fixed:
            if not 0 <= int(target) < lg.shape[1]:
                raise ValueError(f"target class {int(target)} is not one of the model's {lg.shape[1]} classes")
            return np.full(lg.shape[0], int(target), dtype=np.int64)
        return {"teacher": teacher_pred, "label": y, "own": lg.argmax(axis=1)}[target]

    notes: list[str] = []
    null_entries = _null_entries(entries, n_classes=logits[tid].shape[1], in_channels=x.shape[1],
                                 copies=null_copies, notes=notes, first_seed=null_first_seed)
    total = len(entries) + sum(len(v) for v in null_entries.values())
    done = 0
    attrs: dict[str, Attribution] = {}
    vectors: dict[str, np.ndarray] = {}
    for entry, (mid, *_rest) in zip([teacher, *students], entries, strict=True):
        if progress is not None:
            progress(done, total, mid)
        attrs[mid] = run_attribution(entry, x, targets_for(logits[mid]), str(dev))
        vectors[mid] = part_importance(attrs[mid].importance, part_lab, n_parts=n_parts)
        done += 1
    null_vectors: dict[str, np.ndarray] = {}
    # cached only for the built-in attribution (a caller's attribute_fn keeps its own cache, e.g. the UI's)
    cache = attribute_fn is None and logits_fn is None
    base_key = (_digest(x), method, repr(sorted(params.items())), _digest(part_lab), target,
                _digest(teacher_pred) if target == "teacher" else "", str(dev), _autocast_state(dev))
    for copies in null_entries.values():
        for copy in copies:
            if progress is not None:
                progress(done, total, copy.id)

            def attribute_copy(copy: RandomCopy = copy) -> np.ndarray:
                lg = run_logits(copy, x, str(dev))
                attr = run_attribution(copy, x, targets_for(lg), str(dev))
                return part_importance(attr.importance, part_lab, n_parts=n_parts)

            null_vectors[copy.id] = (_copy_vectors_cached((copy.id, *base_key), attribute_copy) if cache
                                     else attribute_copy())
            done += 1
    if progress is not None:
        progress(done, total, "")

    v_t, lg_t, map_t = vectors[tid], logits[tid], attrs[tid].importance
    teacher_topk = top_k_parts(v_t, k)
    margin_class = output_margin_class(lg_t)
    copies_by_arch = {arch: _copy_metrics([null_vectors[c.id] for c in copies], v_t, k)
                      for arch, copies in null_entries.items() if copies}
    null_by_arch = {arch: _null_metrics(per_copy) for arch, per_copy in copies_by_arch.items()}
    no_copies = np.empty(n, dtype=object)
    no_copies[:] = [np.empty(0)] * n
    rows = []
    for mid, arch, alpha, _module, role, train_method in entries:
        lg = logits[mid]
        pred = lg.argmax(axis=1)
        probs = scipy.special.softmax(lg, axis=1)
        rho = attention_rank_alignment(vectors[mid], v_t)
        overlap = topk_overlap(vectors[mid], v_t, k=k)
        nan = np.full(n, np.nan)
        null = null_by_arch.get(arch) if role != "teacher" else None
        cols = {
            "model_id": mid, "role": role, "arch": arch,
            "alpha": np.nan if alpha is None else float(alpha),
            "method": train_method, "attr_method": method, "input_id": ids,
            "label": pd.array(y if y is not None else [pd.NA] * n, dtype="Int64"),
            "pred": pred,
            "correct": pd.array(pred == y if y is not None else [pd.NA] * n, dtype="boolean"),
            "confidence": probs.max(axis=1),
            "attention_rho": rho,
            "logit_rho": logit_alignment(lg, lg_t),
            "logit_margin": logit_margin(lg, margin_class),
            "focus_ratio": focus_ratio(vectors[mid], v_t, k=k),
            "focus_fraction": focus_fraction(vectors[mid], v_t, k=k),
            "topk_overlap": overlap,
            "kl_to_teacher": predictive_divergence(lg, lg_t),
            "agree": agreement(lg, lg_t).astype(bool),
            "ssim": map_ssim(attrs[mid].importance, map_t),
            "pearson": map_pearson(attrs[mid].importance, map_t),
            "attention_rho_null": nan if null is None else null["attention_rho"],
            "attention_rho_excess": nan if null is None else chance_corrected(rho, null["attention_rho"]),
            "topk_overlap_null": nan if null is None else null["topk_overlap"],
            "topk_overlap_excess": nan if null is None else chance_corrected(overlap, null["topk_overlap"]),
            "focus_ratio_null": nan if null is None else null["focus_ratio"],
            # IG only (NaN/NA otherwise): |Σ A − (f(x) − f(baseline))| / |f(x) − f(baseline)| and the steps used
            "ig_completeness_error": completeness_column(attrs[mid], n),
            "ig_steps": steps_column(attrs[mid], n),
            "null_copies": 0 if null is None else len(null_entries[arch]),
        }
        per_copy = copies_by_arch.get(arch) if null is not None else None
        for m in NULL_METRICS:
            if per_copy is None:
                cols[f"{m}_null_copies"] = no_copies
            else:
                arr = np.empty(n, dtype=object)
                arr[:] = list(np.ascontiguousarray(per_copy[m].T))  # row i: the R copies' values on input i
                cols[f"{m}_null_copies"] = arr
        rows.append(pd.DataFrame(cols))
    frame = pd.concat(rows, ignore_index=True)[list(FRAME_COLUMNS)]
    return Comparison(
        frame=frame, attributions=attrs, logits=logits, part_vectors=vectors, part_labels=part_lab,
        teacher_topk=teacher_topk, teacher_id=tid, parts=str(spec), k=k, attr_method=method,
        method_params=attrs[tid].params, null_part_vectors=null_vectors,
        null_ids={arch: tuple(c.id for c in copies) for arch, copies in null_entries.items()},
        notes=tuple(notes),
    )
