"""``kdviz evaluate`` on a text zoo: every model against its teacher over the zoo's recorded test split, word by word.

``evaluate_text_zoo(zoo)`` walks the test snippets of ``split.npz`` (the first ``limit``) in batches, runs
``kdviz.analysis.text.compare_text_batch`` on each (teacher + every student on the same snippets, all explaining
the teacher's predicted class, words as the parts) and returns a ``kdviz.evaluation.batch.EvalResult`` in the
image/series results format: the long table has the columns of ``kdviz.analysis.compare.FRAME_COLUMNS`` where they
mean the same thing over words (``attention_rho`` = Spearman ρ over words, ``topk_overlap`` with the teacher's
top-k words, ``focus_ratio``/``focus_fraction`` on them, ``logit_rho``, ``logit_margin``, ``correct``, the
random-weights null as per-copy values ``*_null_copies``, ``*_null`` and ``*_excess``), plus ``n_words``,
``top_words`` and the VADER share ``vader`` with its null. ``settings.parts`` is ``"words"``.

The summary is ``kdviz.analysis.aggregate.summarize_models`` (means with 95% bootstrap intervals; per null metric
the copies' mean and SD, z, rank p = (1 + #{copies ≥ model}) / (R + 1), excess with its interval; ``margin_rho``,
output alignment over inputs, where logit alignment is undefined for two classes) plus the same columns for
``vader`` (:func:`summarize_text`). ``save_results`` / ``load_results`` of ``kdviz.evaluation.evaluate`` write and
read it; the Report (``kdviz.report.text_study``) draws it.

The null: ``null_copies`` untrained copies per student architecture (``'auto'``: the R rule,
``kdviz.analysis.nulls.copies_for(architectures)``, 39 for the shipped zoo's two), all computed in every batch
(no sequential stopping: gradient saliency on a copy costs about as much as on a student). Resumable exactly as
the image/series evaluation: finished batches in ``cache_dir/<settings key>/batch_<lo>_<hi>.parquet``.
``cluster`` computes the batches on Ray workers (``kdviz.evaluation.distributed.evaluate_text_batches``).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdviz.evaluation.batch import EvalResult, EvalSettings
from kdviz.evaluation.resumable import EvalProgress, Job, run_batches

__all__ = [
    "TEXT_DATASETS",
    "TEXT_METHOD_ALIASES",
    "canonical_text_method",
    "evaluate_text_batch",
    "evaluate_text_zoo",
    "is_text_zoo",
    "make_text_settings",
    "summarize_text",
    "text_entries",
    "text_test_set",
]

DEFAULT_TEXT_METHOD = "grad_x_embedding"  # the seed paper's gradient saliency
TEXT_METHOD_ALIASES = {"ig": "integrated_gradients", "gxe": "grad_x_embedding", "saliency": "grad_x_embedding",
                       "gradient": "gradient_norm", "occlusion": "word_occlusion"}
TEXT_DATASETS = ("rotten_tomatoes",)


def is_text_zoo(root: str | Path) -> bool:
    """Whether ``root/zoo.json`` declares task ``text``."""
    path = Path(root) / "zoo.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("task") == "text"
    except (OSError, ValueError, AttributeError):
        return False


def canonical_text_method(method: str | None) -> str:
    """A text attribution method's name (``ig``, ``gxe``, ``saliency`` accepted); None -> gradient saliency."""
    from kdviz.attribution.text import TEXT_METHODS

    if method is None:
        return DEFAULT_TEXT_METHOD
    name = TEXT_METHOD_ALIASES.get(method.strip().lower(), method.strip().lower())
    if name not in TEXT_METHODS:
        raise ValueError(f"method={method!r} is not a text method: {sorted(TEXT_METHODS)} (or {sorted(TEXT_METHOD_ALIASES)})")
    return name


def text_entries(zoo: Any) -> list[Any]:
    """``kdviz.analysis.text.TextEntry`` of every model of a loaded ``TextZoo``, teacher first."""
    from kdviz.analysis.text import TextEntry

    teachers = [m for m in zoo.models if m.entry.role == "teacher"]
    if len(teachers) != 1:
        raise ValueError(f"text zoo {zoo.manifest.name!r} must have exactly one teacher, has {len(teachers)}")
    return [TextEntry(m.id, str(m.entry.role), str(m.entry.arch), m.entry.alpha, str(m.entry.method), m.text.model,
                      m.text.tokenizer) for m in [teachers[0], *[m for m in zoo.models if m is not teachers[0]]]]


def text_test_set(zoo: Any) -> tuple[list[str], np.ndarray]:
    """The zoo's recorded test split: snippets and labels (``split.npz`` positions into the corpus)."""
    from kdviz.io.text import TextSplit, read_rotten_tomatoes

    dataset = str(zoo.manifest.dataset)
    if dataset not in TEXT_DATASETS:
        raise ValueError(f"text zoo dataset {dataset!r}: kdviz reads {', '.join(TEXT_DATASETS)}")
    split_file = Path(zoo.root) / str(zoo.text.get("split", "split.npz"))
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file}: the zoo's recorded test split is missing")
    split = TextSplit.load(split_file)
    df = read_rotten_tomatoes()
    rows = df.iloc[np.asarray(split.test, dtype=np.int64)]
    return rows["text"].astype(str).tolist(), rows["label"].to_numpy(dtype=np.int64)


def make_text_settings(zoo: Any, *, n_available: int, method: str | None = None,
                       method_params: dict[str, Any] | None = None, k: int | None = None, limit: int | None = None,
                       batch_size: int = 50, null_copies: int | str = "auto",
                       dataset: str | None = None) -> EvalSettings:
    """Validated settings (parameters resolved against ``TEXT_METHODS``; ``k`` default: the zoo's, else 5;
    ``dataset`` default: the zoo's, for its recorded split)."""
    from kdviz.analysis.nulls import copies_for
    from kdviz.attribution.text import TEXT_METHODS

    name = canonical_text_method(method)
    params = TEXT_METHODS[name].resolve(dict(method_params or {}))
    k = int(zoo.text.get("k", 5) if k is None else k)
    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit} must be >= 1 (or None for the whole test split)")
    if batch_size < 1 or k < 1:
        raise ValueError(f"batch_size={batch_size} and k={k} must be >= 1")
    students = [m for m in zoo.models if m.entry.role != "teacher"]
    if isinstance(null_copies, str):
        if null_copies != "auto":
            raise ValueError(f"null_copies={null_copies!r} must be 'auto' or an integer >= 0")
        null_copies = copies_for(max(1, len({str(m.entry.arch) for m in students})))
    if int(null_copies) < 0:
        raise ValueError(f"null_copies={null_copies} must be >= 0 (0 = no random-weights reference)")
    entries = text_entries(zoo)
    sha = {m.id: str(getattr(m.entry, "sha256", "") or m.text.sha256) for m in zoo.models}
    return EvalSettings(
        zoo=str(zoo.manifest.name), dataset=str(zoo.manifest.dataset if dataset is None else dataset), method=name,
        method_params=params,
        parts="words", k=k, limit=None if limit is None else int(limit),
        n_inputs=int(n_available if limit is None else min(int(limit), n_available)), batch_size=int(batch_size),
        models=tuple((e.id, sha[e.id]) for e in entries), precision="fp32", target="teacher",
        null_copies=int(null_copies), null_sequential=False,
    )


def evaluate_text_batch(teacher: Any, students: Sequence[Any], texts: Sequence[str], labels: np.ndarray | None,
                        ids: np.ndarray, settings: EvalSettings, *, lexicon: frozenset[str] | None,
                        max_length: int) -> pd.DataFrame:
    """One batch through ``compare_text_batch``: the one function a single process and every Ray worker run."""
    from kdviz.analysis.text import compare_text_batch

    return compare_text_batch(teacher, students, list(texts), labels=labels, input_ids=[int(i) for i in ids],
                              method=settings.method, k=settings.k, null_copies=settings.null_copies,
                              lexicon=lexicon, max_length=max_length, **settings.method_params)


def summarize_text(frame: pd.DataFrame, *, confidence: float = 0.95, n_resamples: int = 2000) -> pd.DataFrame:
    """``kdviz.analysis.aggregate.summarize_models`` plus the VADER share: ``vader`` with its bootstrap interval,
    ``vader_null`` (mean of the copies' means), ``vader_null_sd``, ``vader_null_low/high``, ``vader_z``,
    ``vader_p`` (``kdviz.analysis.aggregate.null_columns``), and ``n_words`` (mean words per snippet)."""
    from kdviz.analysis.aggregate import copy_matrix, null_columns, summarize_models
    from kdviz.analysis.metrics import mean_ci

    summary = summarize_models(frame, confidence=confidence, n_resamples=n_resamples)
    extra = []
    for model_id, g in frame.groupby("model_id", sort=False):
        row: dict[str, Any] = {"model_id": model_id}
        if "vader" in g:
            v = pd.to_numeric(g["vader"], errors="coerce").to_numpy(dtype=np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                row["vader"], row["vader_low"], row["vader_high"] = mean_ci(v, confidence=confidence,
                                                                            n_resamples=n_resamples)
            c = copy_matrix(g, "vader")
            if c is not None:
                row.update(null_columns(float(row["vader"]), c, "vader"))
        if "n_words" in g:
            row["n_words"] = float(pd.to_numeric(g["n_words"], errors="coerce").mean())
        extra.append(row)
    return summary.merge(pd.DataFrame(extra), on="model_id", how="left")


def _order(frame: pd.DataFrame, settings: EvalSettings) -> pd.DataFrame:
    """Rows grouped by model in zoo order (teacher first), inputs ascending within each model."""
    order = {mid: i for i, (mid, _sha) in enumerate(settings.models)}
    key = frame["model_id"].map(order).fillna(len(order)).astype(int)
    return frame.assign(_m=key).sort_values(["_m", "input_id"], kind="stable").drop(columns="_m").reset_index(drop=True)


def evaluate_text_zoo(
    zoo: Any,
    *,
    method: str | None = None,
    method_params: dict[str, Any] | None = None,
    k: int | None = None,
    limit: int | None = None,
    batch_size: int = 50,
    cache_dir: str | Path | None = None,
    progress: Callable[[EvalProgress], None] | None = None,
    progress_bar: bool = True,
    null_copies: int | str = "auto",
    cluster: Any = None,
    texts: Sequence[str] | None = None,
    labels: np.ndarray | None = None,
    dataset: str | None = None,
) -> EvalResult:
    """Evaluate every model of a text zoo (a folder or a loaded ``kdviz.io.hf_text.TextZoo``) against its teacher.

    method : a ``kdviz.attribution.text.TEXT_METHODS`` name (``ig`` accepted); default gradient saliency
        (``grad_x_embedding``); method_params e.g. ``{"n_steps": 32}`` for IG
    k : the teacher's top-k words (default: the zoo's ``text.k``, else 5); limit : first N test snippets
    cache_dir : resume folder (finished batches are reused by a rerun with the same settings)
    null_copies : untrained copies per student architecture; ``'auto'`` the R rule; 0 turns the null off
    cluster : None (this process), ``ClusterOptions``, an address string or a ``RayEvaluator``
    texts, labels : other snippets than the zoo's test split (default: the split); labels may be None
    dataset : the name recorded for ``texts`` (``kdviz.io.text.LabelledTexts.name``); default a fingerprint of
        them, so a resumed run never reuses batches of other texts
    """

    from kdviz.io.text import vader_lexicon

    if not hasattr(zoo, "models"):
        from kdviz.io.hf_text import load_text_zoo

        zoo = load_text_zoo(zoo)
    if texts is None:
        texts, labels = text_test_set(zoo)
        dataset = None
    elif dataset is None:
        from kdviz.io.text import texts_fingerprint

        dataset = f"texts#{texts_fingerprint(list(texts), labels)}"
    texts = list(texts)
    settings = make_text_settings(zoo, n_available=len(texts), method=method, method_params=method_params, k=k,
                                  limit=limit, batch_size=batch_size, null_copies=null_copies, dataset=dataset)
    entries = text_entries(zoo)
    teacher, students = entries[0], entries[1:]
    max_length = int(zoo.text.get("max_length", 64))
    lexicon = vader_lexicon()
    folder = None if cache_dir is None else Path(cache_dir) / settings.key()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "settings.json").write_text(json.dumps(settings.to_dict(), indent=1, default=str))
    n, bs = settings.n_inputs, settings.batch_size
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    cluster_facts: dict[str, Any] = {}

    def compute(todo: list[Job]) -> Iterator[tuple[int, pd.DataFrame]]:
        if cluster is None:
            for b, lo, hi in todo:
                yield b, evaluate_text_batch(teacher, students, texts[lo:hi], None if y is None else y[lo:hi],
                                             np.arange(lo, hi), settings, lexicon=lexicon, max_length=max_length)
        else:
            from kdviz.evaluation.distributed import evaluate_text_batches

            yield from evaluate_text_batches(
                cluster, teacher=teacher, students=students, texts=texts[:n], labels=None if y is None else y[:n],
                settings=settings, lexicon=lexicon, max_length=max_length, jobs=todo, facts=cluster_facts,
            )

    batches = run_batches(n, bs, folder, compute=compute, desc=f"evaluate {settings.zoo}", progress=progress,
                          progress_bar=progress_bar)
    frame = _order(batches.frame, settings)
    run: dict[str, Any] = {
        "elapsed_s": batches.elapsed_s, "device": "cpu", "batches_computed": batches.computed,
        "batches_resumed": batches.resumed, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "task": "text",
        "max_length": max_length,
        "test_accuracy": {m.id: getattr(m.entry, "test_accuracy", None) for m in zoo.models},
        "layers": {m.id: m.text.layers for m in zoo.models}, "hidden": {m.id: m.text.hidden for m in zoo.models},
        "epochs": {m.id: getattr(m.entry, "epochs", None) for m in zoo.models},
    }
    if settings.null_copies:
        run["null_copies_by_arch"] = {str(s.arch): settings.null_copies for s in students}
    if cluster_facts:
        run["cluster"] = cluster_facts
    return EvalResult(frame=frame, summary=summarize_text(frame), settings=settings, run=run)
