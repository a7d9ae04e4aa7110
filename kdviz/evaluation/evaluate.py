"""Dataset-level evaluation: every model of a zoo against its teacher over a test split, batch by batch.

``evaluate_zoo(zoo, ...)`` walks the test split in batches, calls ``kdviz.analysis.compare.compare_models`` on each
(teacher + every student on the same inputs), and returns an :class:`EvalResult`: a long DataFrame with one
row per (model, input) (``kdviz.analysis.compare.FRAME_COLUMNS``), a per-model summary (means with 95% bootstrap
intervals, accuracy) and the :class:`EvalSettings` that say how it was made.

Resumable: with ``cache_dir``, each finished batch is written to
``cache_dir/<settings key>/batch_<first>_<end>.parquet``; a rerun with the same settings reads those back instead
of recomputing them, so an interrupted run (Ctrl+C, a closed browser tab, an exception raised by the
``progress`` callback) loses at most the batch in flight.

Precision: ``precision='bf16'|'fp16'`` runs every model under autocast (``kdviz.attribution.precision``; refused where
the device does not compute in it natively). Distributed: ``cluster=ClusterOptions(...)`` (or a
``kdviz.evaluation.distributed.RayEvaluator``) computes the batches on a Ray cluster's workers; the driver still writes
the cache and orders the rows, so the table is the single-process one.

``save_results`` writes the long table as Parquet with the settings in the schema metadata (key
``kdviz.settings``) and the summary as ``<stem>_summary.csv`` next to it; ``load_results`` reads both back.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kdviz.attribution.methods import METHODS
from kdviz.evaluation.batch import EvalResult, EvalSettings, evaluate_batch
from kdviz.evaluation.resumable import EvalProgress, Job, run_batches

__all__ = [
    "METRIC_COLUMNS",
    "SETTINGS_KEY",
    "EvalProgress",
    "EvalResult",
    "EvalSettings",
    "evaluate_zoo",
    "extend_null",
    "load_results",
    "read_settings",
    "resolve_setting",
    "save_results",
    "summarize",
    "summary_path",
]

SETTINGS_KEY = b"kdviz.settings"
RUN_KEY = b"kdviz.run"

# Per-(model, input) numbers averaged in the summary (bool columns become fractions).
METRIC_COLUMNS: tuple[str, ...] = (
    "correct", "confidence", "attention_rho", "logit_rho", "focus_ratio", "focus_fraction", "topk_overlap",
    "kl_to_teacher", "agree", "ssim", "pearson",
    "attention_rho_null", "attention_rho_excess", "topk_overlap_null", "topk_overlap_excess", "focus_ratio_null",
)
_MODEL_COLUMNS = ("model_id", "role", "arch", "alpha", "method")


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------


def summarize(frame: pd.DataFrame, *, confidence: float = 0.95, n_resamples: int = 2000) -> pd.DataFrame:
    """Per-model means with percentile-bootstrap intervals: ``kdviz.analysis.aggregate.summarize_models``.

    One row per model (in order of first appearance): ``model_id, role, arch, alpha, method, n``, then for
    each metric ``m``: ``m``, ``m_low``, ``m_high``; ``accuracy`` (= mean of ``correct``) with its interval,
    the random-weights null and excess columns, and ``margin_rho`` (output alignment across inputs).
    Replicates of one variant (several seeds) are summarised together by ``kdviz.analysis.aggregate.summarize_variants``.
    """
    from kdviz.analysis.aggregate import summarize_models

    return summarize_models(frame, confidence=confidence, n_resamples=n_resamples)


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------


def canonical_method(method: str) -> str:
    aliases = {"ig": "integrated_gradients", "sg": "smoothgrad", "ixg": "input_x_gradient",
               "gradcam": "grad_cam", "shap": "gradient_shap"}
    name = aliases.get(method.strip().lower(), method.strip().lower())
    if name not in METHODS:
        raise ValueError(f"method={method!r} is not one of {sorted(METHODS)} (or {sorted(aliases)})")
    return name


def resolve_setting(zoo: Any, method: str | None, method_params: dict[str, Any] | None,
                    parts: str | None) -> tuple[str, dict[str, Any], str]:
    """Fill what the caller left out from ``kdviz.analysis.defaults.default_setting(zoo)``: the zoo's
    recommended method (with its parameters) when no method is given, its parts when none are given."""
    from kdviz.analysis.defaults import default_setting

    d = default_setting(zoo)
    if method is None:
        method, method_params = d.method, {**d.params, **dict(method_params or {})}
    return method, dict(method_params or {}), parts or d.parts


def _teacher_and_students(zoo: Any) -> tuple[Any, list[Any]]:
    teachers = [m for m in zoo.models if m.role == "teacher"]
    if len(teachers) != 1:
        raise ValueError(f"zoo {zoo.name!r} must have exactly one teacher, has {len(teachers)}")
    return teachers[0], [m for m in zoo.models if m.role != "teacher"]


def make_settings(
    zoo: Any, *, dataset: str, n_available: int, method: str = "integrated_gradients",
    method_params: dict[str, Any] | None = None, parts: str = "slic:50", k: int = 5, limit: int | None = None,
    batch_size: int = 50, precision: str = "fp32", target: str = "teacher", null_copies: int | str = "auto",
) -> EvalSettings:
    """Validated settings for evaluating ``zoo`` (method parameters resolved against the method table).

    ``null_copies='auto'`` is the R rule (``kdviz.analysis.nulls.copies_for``): R_max = enough copies for the
    Holm-corrected test of one student per architecture, reached sequentially (``sequential_stop``).
    """
    from kdviz.modalities.parts import parse_parts

    name = canonical_method(method)
    params = METHODS[name].resolve(dict(method_params or {}))
    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit} must be >= 1 (or None for the whole test split)")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if k < 1:
        raise ValueError(f"k={k} must be >= 1")
    from kdviz.attribution.precision import PRECISIONS

    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of {list(PRECISIONS)}")
    teacher, students = _teacher_and_students(zoo)
    sequential = isinstance(null_copies, str)
    if sequential:
        if null_copies != "auto":
            raise ValueError(f"null_copies={null_copies!r} must be 'auto' or an integer >= 0")
        from kdviz.analysis.nulls import copies_for

        null_copies = copies_for(max(1, len({str(m.arch) for m in students})))
    if int(null_copies) < 0:
        raise ValueError(f"null_copies={null_copies} must be >= 0 (0 = no random-weights reference)")
    n = n_available if limit is None else min(int(limit), n_available)
    return EvalSettings(
        zoo=str(zoo.name), dataset=dataset, method=name, method_params=params, parts=str(parse_parts(parts)),
        k=int(k), limit=None if limit is None else int(limit), n_inputs=int(n), batch_size=int(batch_size),
        models=tuple((str(m.id), _sha256(m)) for m in [teacher, *students]),
        precision=precision, target=target, null_copies=int(null_copies), null_sequential=sequential,
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


def _is_text_zoo(zoo: Any) -> bool:
    if isinstance(zoo, (str, Path)):
        from kdviz.evaluation.text import is_text_zoo

        return is_text_zoo(zoo)
    return getattr(getattr(zoo, "manifest", None), "task", None) == "text"


def evaluate_zoo(
    zoo: Any,
    *,
    dataset: Any = None,
    method: str | None = None,
    method_params: dict[str, Any] | None = None,
    parts: str | None = None,
    k: int = 5,
    limit: int | None = None,
    batch_size: int = 50,
    device: str | None = None,
    cache_dir: str | Path | None = None,
    progress: Callable[[EvalProgress], None] | None = None,
    progress_bar: bool = True,
    precision: str = "fp32",
    cluster: Any = None,
    allow_emulated_precision: bool = False,
    null_copies: int | str = "auto",
) -> EvalResult:
    """Evaluate every model of ``zoo`` against its teacher on the first ``limit`` test inputs.

    Parameters
    ----------
    zoo : ``kdviz.io.zoo.manifest.Zoo`` or a ``kdviz.ui.sets.ModelSet``: ``name``, ``mean``, ``std`` and ``models`` with
        id, role, arch, alpha, method, module, sha256 (``dataset`` names its data when none is given)
    dataset : ``kdviz.io.builtin_datasets.Dataset`` or anything with ``name``, ``x_test`` (N, C, ...) as displayed (images in
        [0, 1]) and ``y_test`` (N,) or None; default ``load_dataset(zoo.dataset)``
    method, method_params : attribution method (``'ig'`` is accepted for integrated_gradients) and parameters;
        None: the zoo's recommendation (``kdviz sanity --write``), else the library's constant for its input
        kind (``kdviz.analysis.defaults.default_setting``), with that setting's parameters
    parts, k : part spec (``'slic:50'``, ``'grid:4x4'``, ``'segments:10'``; None: as for the method) and the
        teacher's top-k
    limit : first N inputs of the test split (None = all); batch_size : inputs per batch (the resume unit)
    cache_dir : folder for finished batches; a rerun with the same settings skips them (None = no resume)
    progress : called after every batch with an :class:`EvalProgress`; an exception it raises stops the run
        (finished batches stay in ``cache_dir``)
    progress_bar : show a tqdm bar on stderr (one step per batch)
    precision : 'fp32' (default), 'bf16' or 'fp16' autocast; ValueError where the device lacks it
        (``allow_emulated_precision`` lets a CPU emulate it, for fidelity measurements only)
    cluster : None (this process), a ``kdviz.evaluation.distributed.ClusterOptions`` or a ``RayEvaluator``: compute
        the batches on Ray workers (same table, same cache)
    null_copies : random-weights copies per student architecture for the ``*_null`` / ``*_excess`` columns
        (``kdviz.analysis.nulls``; 0 turns the null off). ``'auto'`` (default): the R rule, R_max =
        ``copies_for(architectures)`` (19 for one, 79 for four) reached sequentially — the batches compute 19
        copies, then an architecture gets 20 more at a time while one of its students is undecided
        (``kdviz.analysis.nulls.sequential_stop``); ``run['null_copies_by_arch']`` says how many each got

    Returns
    -------
    EvalResult

    A text zoo (``task: text``: a folder or a ``kdviz.io.hf_text.TextZoo``) goes to
    ``kdviz.evaluation.text.evaluate_text_zoo``, on its recorded split or on ``dataset`` texts
    (``kdviz.io.text.read_labelled_texts``: ``name``, ``texts``, ``labels``); the image-only options must then stay
    at their defaults.
    """
    if _is_text_zoo(zoo):
        given = {name: value for name, value in (("parts", parts), ("device", device)) if value is not None}
        if precision != "fp32":
            given["precision"] = precision
        if dataset is not None and not hasattr(dataset, "texts"):
            given["dataset"] = dataset
        if given:
            raise ValueError(f"a text zoo is evaluated with words as the parts, on the CPU in fp32, on its recorded "
                             f"test split or on texts (kdviz.io.text.read_labelled_texts); {', '.join(given)} cannot "
                             "be set for it")
        from kdviz.evaluation.text import evaluate_text_zoo

        own = {} if dataset is None else {"texts": list(dataset.texts), "labels": dataset.labels,
                                          "dataset": str(dataset.name)}
        return evaluate_text_zoo(zoo, method=method, method_params=method_params, k=k, limit=limit,
                                 batch_size=batch_size, cache_dir=cache_dir, progress=progress,
                                 progress_bar=progress_bar, null_copies=null_copies, cluster=cluster, **own)
    if dataset is None:
        from kdviz.io.builtin_datasets import load_dataset

        dataset = load_dataset(zoo.dataset)
    x_all, y_all = dataset.x_test, dataset.y_test
    method, method_params, parts = resolve_setting(zoo, method, method_params, parts)
    settings = make_settings(
        zoo, dataset=str(dataset.name), n_available=len(x_all), method=method, method_params=method_params,
        parts=parts, k=k, limit=limit, batch_size=batch_size, precision=precision, null_copies=null_copies,
    )
    teacher, students = _teacher_and_students(zoo)
    folder = None if cache_dir is None else Path(cache_dir) / settings.key()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "settings.json").write_text(json.dumps(settings.to_dict(), indent=1, default=str))
        # the key leaves out the limit: the settings file says what the batches were made with

    n, bs = settings.n_inputs, settings.batch_size
    source = zoo if hasattr(zoo, "mean") else dataset  # the models' normalisation
    mean = np.asarray(source.mean, dtype=np.float32)
    std = np.asarray(source.std, dtype=np.float32)
    shape = (1, -1) + (1,) * (x_all.ndim - 2)
    if cluster is None:
        from kdviz.attribution.engine import resolve_device
        from kdviz.attribution.precision import check_precision

        check_precision(resolve_device(device), precision, allow_emulated=allow_emulated_precision)
    cluster_facts: dict[str, Any] = {}

    def compute(todo: list[Job]) -> Iterator[tuple[int, pd.DataFrame]]:
        if cluster is None:
            for b, lo, hi in todo:
                yield b, evaluate_batch(
                    teacher, students, x_all[lo:hi], None if y_all is None else y_all[lo:hi], np.arange(lo, hi),
                    mean.reshape(shape), std.reshape(shape), settings, device,
                    allow_emulated=allow_emulated_precision,
                )
        else:
            from kdviz.evaluation.distributed import evaluate_batches

            # x stays as given (a LazyImages folder is decoded one job's slice at a time, as above)
            data = {"x": x_all, "y": y_all, "mean": mean.reshape(shape), "std": std.reshape(shape)}
            yield from evaluate_batches(
                cluster, teacher=teacher, students=students, data=data, settings=settings, device=device,
                jobs=todo, allow_emulated=allow_emulated_precision, facts=cluster_facts,
            )

    batches = run_batches(n, bs, folder, compute=compute, desc=f"evaluate {settings.zoo}", progress=progress,
                          progress_bar=progress_bar)
    computed, resumed = batches.computed, batches.resumed
    frame = _order(batches.frame, settings)
    copies_by_arch: dict[str, int] = {}
    if settings.null_sequential and settings.null_copies > 0:
        frame, copies_by_arch = extend_null(
            frame, teacher, students, x_all, y_all, mean.reshape(shape), std.reshape(shape), settings, device,
            allow_emulated=allow_emulated_precision)
    from kdviz.attribution.engine import resolve_device

    run = {
        "elapsed_s": batches.elapsed_s, "device": str(resolve_device(device)), "batches_computed": computed,
        "batches_resumed": resumed, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "test_accuracy": {str(m.id): getattr(m, "test_accuracy", None) for m in zoo.models},
    }
    if copies_by_arch:
        run["null_copies_by_arch"] = copies_by_arch
    if cluster_facts:
        run["cluster"] = cluster_facts
        run["device"] = str(cluster_facts.get("device", run["device"]))
    return EvalResult(frame=frame, summary=summarize(frame), settings=settings, run=run)


NULL_BLOCK = 20  # copies added at a time by the sequential rule


def _undecided(rows: pd.DataFrame, max_copies: int) -> bool:
    """Whether some student of these rows (one architecture) still needs copies (``sequential_stop``)."""
    from kdviz.analysis.aggregate import copy_matrix
    from kdviz.analysis.nulls import null_stats, sequential_stop

    for _mid, g in rows.groupby("model_id", sort=False):
        c = copy_matrix(g, "attention_rho")
        if c is None:
            return False
        values = pd.to_numeric(g["attention_rho"], errors="coerce").to_numpy(dtype=float)
        with np.errstate(all="ignore"):
            st = null_stats(float(np.nanmean(values)), np.nanmean(c, axis=0))
        if not sequential_stop(st.at_or_above, c.shape[1], max_copies=max_copies):
            return True
    return False


def extend_null(
    frame: pd.DataFrame, teacher: Any, students: list[Any], x: np.ndarray, y: np.ndarray | None, mean: np.ndarray,
    std: np.ndarray, settings: EvalSettings, device: str | None, *, allow_emulated: bool = False,
    block: int = NULL_BLOCK,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The sequential rule on a finished frame: per student architecture, add ``block`` copies (the next seeds)
    while one of its students is undecided, up to ``settings.null_copies``; the per-input null and excess
    columns are recomputed over all copies. ``x`` is read one batch at a time (a ``LazyImages`` folder is never
    decoded whole), its first ``settings.n_inputs``. Returns the frame and the copies each architecture got."""
    from kdviz.analysis.compare import NULL_METRICS, compare_models
    from kdviz.analysis.nulls import NULL_SEED_BASE, chance_corrected
    from kdviz.evaluation.batch import with_precision

    frame = frame.copy()
    by_arch: dict[str, int] = {}
    for arch in dict.fromkeys(str(s.arch) for s in students):
        mine = [s for s in students if str(s.arch) == arch]
        ids = {str(s.id) for s in mine}
        rows = frame["model_id"].astype(str).isin(ids)
        have = int(frame.loc[rows, "null_copies"].max()) if rows.any() else 0
        while have and have < settings.null_copies and _undecided(frame[rows], settings.null_copies):
            more = min(block, settings.null_copies - have)
            parts = []
            n = min(len(x), settings.n_inputs)
            for lo in range(0, n, settings.batch_size):
                hi = min(n, lo + settings.batch_size)
                shown = x[lo:hi]  # decoded once per batch
                model_in = ((np.asarray(shown, dtype=np.float32) - mean) / std).astype(np.float32)
                comp = with_precision(
                    compare_models, settings.precision, device, allow_emulated, teacher, mine, model_in,
                    labels=None if y is None else y[lo:hi], method=settings.method,
                    method_params=settings.method_params, parts=settings.parts, k=settings.k,
                    target=settings.target, device=device, images_for_slic=shown,
                    input_ids=list(range(lo, hi)), null_copies=more, null_first_seed=NULL_SEED_BASE + have)
                parts.append(comp.frame[comp.frame["model_id"].astype(str).isin(ids)])
            extra = pd.concat(parts, ignore_index=True).set_index(["model_id", "input_id"])
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
            have += more
            frame.loc[rows, "null_copies"] = have
        by_arch[arch] = have
    return frame, by_arch


def _order(frame: pd.DataFrame, settings: EvalSettings) -> pd.DataFrame:
    """Rows grouped by model in zoo order (teacher first), inputs ascending within each model."""
    order = {mid: i for i, (mid, _sha) in enumerate(settings.models)}
    key = frame["model_id"].map(order).fillna(len(order)).astype(int)
    out = frame.assign(_m=key).sort_values(["_m", "input_id"], kind="stable").drop(columns="_m")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def summary_path(path: str | Path) -> Path:
    """Where the summary of ``results.parquet`` lives: ``results_summary.csv`` next to it."""
    p = Path(path)
    return p.with_name(f"{p.stem}_summary.csv")


def save_results(result: EvalResult, path: str | Path) -> Path:
    """Write the long table (Parquet, settings in the schema metadata) and the summary CSV next to it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(result.frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[SETTINGS_KEY] = json.dumps(result.settings.to_dict(), default=str).encode()
    meta[RUN_KEY] = json.dumps(result.run, default=str).encode()
    tmp = p.with_name(p.name + ".tmp")
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    os.replace(tmp, p)
    result.summary.to_csv(summary_path(p), index=False)
    return p


def read_settings(path: str | Path) -> tuple[EvalSettings, dict[str, Any]]:
    """Settings and run facts stored in a results file, without reading its rows."""
    meta = pq.read_schema(path).metadata or {}
    if SETTINGS_KEY not in meta:
        raise ValueError(f"{path}: not a kdviz results file (no {SETTINGS_KEY.decode()} metadata)")
    settings = EvalSettings.from_dict(json.loads(meta[SETTINGS_KEY]))
    run = json.loads(meta[RUN_KEY]) if RUN_KEY in meta else {}
    return settings, run


def load_results(path: str | Path) -> EvalResult:
    """Read a results file written by ``save_results`` (the summary is recomputed if its CSV is missing)."""
    settings, run = read_settings(path)
    frame = pq.read_table(path).to_pandas()
    sp = summary_path(path)
    summary = pd.read_csv(sp) if sp.exists() else summarize(frame)
    return EvalResult(frame=frame, summary=summary, settings=settings, run=run)
