"""Dataset-level evaluation: every model of a zoo against its teacher over a test split, batch by batch.

``evaluate_zoo(zoo, ...)`` hands the zoo to the plug-in of its modality (``kdviz.evaluation.pipeline``: images
and series in ``kdviz.evaluation.arrays``, texts in ``kdviz.evaluation.text``) and returns an
:class:`EvalResult`: a long DataFrame with one row per (model, input) (``kdviz.analysis.compare.FRAME_COLUMNS``),
a per-model summary (means with 95% bootstrap intervals, accuracy) and the :class:`EvalSettings` that say how it
was made.

Resumable: with ``cache_dir``, each finished batch is written to
``cache_dir/<settings key>/batch_<first>_<end>.parquet``; a rerun with the same settings reads those back instead
of recomputing them, so an interrupted run (Ctrl+C, a closed browser tab, an exception raised by the
``progress`` callback) loses at most the batch in flight. Distributed: ``cluster=ClusterOptions(...)`` (or a
``kdviz.evaluation.distributed.RayEvaluator``) computes the batches on a Ray cluster's workers; the driver still
writes the cache and orders the rows, so the table is the single-process one.

``save_results`` writes the long table as Parquet with the settings in the schema metadata (key
``kdviz.settings``) and the summary as ``<stem>_summary.csv`` next to it; ``load_results`` reads both back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kdviz.errors import InvalidInputError
from kdviz.evaluation import arrays, text  # noqa: F401  (the modality plug-ins register themselves)
from kdviz.evaluation.batch import EvalResult, EvalSettings
from kdviz.evaluation.pipeline import EvalOptions, run_evaluation, summarize
from kdviz.evaluation.resumable import EvalProgress

__all__ = [
    "SETTINGS_KEY",
    "EvalOptions",
    "EvalProgress",
    "EvalResult",
    "EvalSettings",
    "evaluate_zoo",
    "load_results",
    "read_settings",
    "save_results",
    "summarize",
    "summary_path",
]

SETTINGS_KEY = b"kdviz.settings"
RUN_KEY = b"kdviz.run"


def evaluate_zoo(zoo: Any, *, dataset: Any = None, **options: Any) -> EvalResult:
    """Evaluate every model of ``zoo`` against its teacher on the first ``limit`` test inputs.

    Parameters
    ----------
    zoo : Zoo, ModelSet, TextZoo or str or Path
        A ``kdviz.io.zoo.manifest.Zoo`` or a ``kdviz.ui.sets.ModelSet`` (``name``, ``mean``, ``std`` and
        ``models`` with id, role, arch, alpha, method, module, sha256); a text zoo (``task: text``: a folder or a
        ``kdviz.io.hf_text.TextZoo``). Its modality picks the plug-in that evaluates it.
    dataset : object, optional
        Images and series: anything with ``name``, ``x_test`` (N, C, ...) as displayed (images in [0, 1]) and
        ``y_test`` (N,) or None; default ``load_dataset(zoo.dataset)``. Texts: a
        ``kdviz.io.text.LabelledTexts`` (``name``, ``texts``, ``labels``); default the zoo's recorded split.
    **options
        :class:`~kdviz.evaluation.pipeline.EvalOptions` fields. ``method``, ``method_params``: attribution
        method (``'ig'`` is accepted for integrated_gradients) and parameters; None: the zoo's recommendation
        (``kdviz sanity --write``), else the library's constant for its modality. ``parts`` (``'slic:50'``,
        ``'grid:4x4'``, ``'segments:10'``; words for texts) and ``k``, the teacher's top-k. ``limit``: first N
        inputs (None = all); ``batch_size``: inputs per batch (the resume unit). ``cache_dir``: folder for
        finished batches. ``progress``: called after every batch with an :class:`EvalProgress` (an exception it
        raises stops the run); ``progress_bar``: a tqdm bar on stderr. ``precision``: 'fp32', 'bf16' or 'fp16'
        autocast, refused where the device lacks it (``allow_emulated_precision`` lets a CPU emulate it, for
        fidelity measurements only). ``cluster``: None (this process), a ``ClusterOptions`` or a
        ``RayEvaluator``. ``null_copies``: random-weights copies per student architecture for the ``*_null`` /
        ``*_excess`` columns (0 turns the null off); ``'auto'``: the R rule, ``copies_for(architectures)``
        reached sequentially for images and series (``run['null_copies_by_arch']`` says how many each got).

    Returns
    -------
    EvalResult
        The long table, the per-model summary, the settings and the run facts.
    """
    return run_evaluation(zoo, dataset, EvalOptions(**options))


def summary_path(path: str | Path) -> Path:
    """Where the summary of ``results.parquet`` lives: ``results_summary.csv`` next to it.

    Parameters
    ----------
    path : str or Path
        The results file.

    Returns
    -------
    Path
    """
    p = Path(path)
    return p.with_name(f"{p.stem}_summary.csv")


def save_results(result: EvalResult, path: str | Path) -> Path:
    """Write the long table (Parquet, settings in the schema metadata) and the summary CSV next to it.

    Parameters
    ----------
    result : EvalResult
    path : str or Path
        The Parquet file to write (replaced atomically).

    Returns
    -------
    Path
        ``path``.
    """
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
    """Read the settings and run facts stored in a results file, without reading its rows.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`save_results`.

    Returns
    -------
    tuple of EvalSettings and dict
    """
    meta = pq.read_schema(path).metadata or {}
    if SETTINGS_KEY not in meta:
        raise InvalidInputError(f"{path}: not a kdviz results file (no {SETTINGS_KEY.decode()} metadata)")
    settings = EvalSettings.from_dict(json.loads(meta[SETTINGS_KEY]))
    run = json.loads(meta[RUN_KEY]) if RUN_KEY in meta else {}
    return settings, run


def load_results(path: str | Path) -> EvalResult:
    """Read a results file written by :func:`save_results` (the summary is recomputed if its CSV is missing).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    EvalResult
    """
    settings, run = read_settings(path)
    frame = pq.read_table(path).to_pandas()
    sp = summary_path(path)
    summary = pd.read_csv(sp) if sp.exists() else summarize(frame)
    return EvalResult(frame=frame, summary=summary, settings=settings, run=run)
