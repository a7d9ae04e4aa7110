"""One evaluation pipeline for every modality; each modality's plug-in supplies what differs.

A plug-in (``register_evaluation(Modality.TEXT)(plan_text)``) turns a zoo, an optional test set and the caller's
:class:`EvalOptions` into an :class:`EvalPlan`: the validated settings, the test inputs and their labels, the
:class:`BatchRunner` that computes one batch (the same object in this process and on every Ray worker), the
summary and the run facts of its modality. :func:`run_plan` does the rest the same way for all of them: the
resume folder, the batches (here or on a cluster), the row order, and the :class:`EvalResult`.

The plug-ins live beside this module (``kdviz.evaluation.arrays`` for images and series,
``kdviz.evaluation.text`` for texts) and register themselves when imported; ``kdviz.evaluation.evaluate``
imports them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from kdviz.analysis.aggregate import summarize_models
from kdviz.analysis.nulls import copies_for
from kdviz.errors import InvalidInputError, UnknownNameError
from kdviz.evaluation.batch import EvalResult, EvalSettings
from kdviz.evaluation.distributed import evaluate_batches
from kdviz.evaluation.resumable import EvalProgress, Job, run_batches
from kdviz.io.zoo.manifest import read_manifest
from kdviz.vocab import Modality

__all__ = [
    "BatchRunner",
    "EvalOptions",
    "EvalPlan",
    "Planner",
    "check_counts",
    "evaluation_for",
    "order_rows",
    "register_evaluation",
    "resolve_null_copies",
    "result_modality",
    "run_evaluation",
    "run_plan",
    "summarize",
    "zoo_modality",
]


@dataclass(frozen=True)
class EvalOptions:
    """What the caller chooses for an evaluation; a plug-in turns it into the ``EvalSettings`` that fix the numbers.

    ``None`` leaves a choice to the modality (method and parts: the zoo's recommendation, else the library's
    default; ``k``: the zoo's, else 5). ``device``, ``precision`` and ``parts`` apply to images and series.
    """

    method: str | None = None
    method_params: dict[str, Any] | None = None
    parts: str | None = None
    k: int | None = None
    limit: int | None = None  # first N test inputs (None: all)
    batch_size: int = 50  # inputs per batch, the resume unit
    device: str | None = None
    cache_dir: str | Path | None = None  # finished batches, reused by a rerun with the same settings
    progress: Callable[[EvalProgress], None] | None = None  # called after every batch; raising stops the run
    progress_bar: bool = True
    precision: str = "fp32"
    cluster: Any = None  # None, a ClusterOptions, an address string or a RayEvaluator
    allow_emulated_precision: bool = False
    null_copies: int | str = "auto"


class BatchRunner(Protocol):
    """Computes one batch's rows; pickled to every Ray worker, so both paths run the same code on the same data."""

    device: str | None  # where its models run (None: the best available)

    def evaluate(self, lo: int, hi: int, inputs: Any, labels: np.ndarray | None) -> pd.DataFrame:
        """Rows of inputs ``lo:hi`` (``inputs`` and ``labels`` are that slice)."""
        ...

    def for_worker(self, device: str) -> BatchRunner:
        """The runner a Ray worker on ``device`` holds (the models as plain records)."""
        ...


@dataclass(frozen=True)
class EvalPlan:
    """What a modality's plug-in decided: settings, inputs, the batch runner and what to record."""

    settings: EvalSettings
    runner: BatchRunner
    inputs: Any  # sliceable: an array, a lazily decoded folder, a list of texts
    labels: np.ndarray | None
    device: str  # the device recorded in the run facts
    facts: dict[str, Any] = field(default_factory=dict)  # run facts of this modality
    # after every batch is in: more work on the whole frame (the sequential null), returning facts to record
    finish: Callable[[pd.DataFrame], tuple[pd.DataFrame, dict[str, Any]]] | None = None


Planner = Callable[[Any, Any, EvalOptions], EvalPlan]  # (zoo, test set or None, options) -> plan

_PLANNERS: dict[Modality, Planner] = {}
_PART_KINDS: dict[str, Modality] = {}


def register_evaluation(*modalities: Modality, part_kinds: dict[str, Modality]) -> Callable[[Planner], Planner]:
    """Register ``planner`` for ``modalities``; ``part_kinds`` says which modality a result made of each part kind
    (``EvalSettings.parts`` before its ``:``) belongs to. A modality registered twice is an error."""

    def add(planner: Planner) -> Planner:
        for modality in modalities:
            if modality in _PLANNERS:
                raise InvalidInputError(f"an evaluation for {modality} is registered already")
            _PLANNERS[modality] = planner
        _PART_KINDS.update(part_kinds)
        return planner

    return add


def evaluation_for(modality: Modality | str) -> Planner:
    """The planner registered for ``modality``; ``UnknownNameError`` lists the registered ones."""
    key = Modality.parse(modality)
    if key not in _PLANNERS:
        raise UnknownNameError(f"no evaluation for {key.value!r} zoos; kdviz evaluates {[m.value for m in _PLANNERS]}")
    return _PLANNERS[key]


def zoo_modality(zoo: Any) -> Modality:
    """The modality of a zoo: a folder's ``zoo.json`` task, else the object's ``task`` (its manifest's).

    A zoo-like object that names no task (one assembled in a script from models and a normalisation) is read as
    arrays of images or series, which are evaluated alike.
    """
    if isinstance(zoo, (str, Path)):
        return Modality.parse(read_manifest(zoo).task)
    task = getattr(zoo, "task", None) or getattr(getattr(zoo, "manifest", None), "task", None)
    return Modality.IMAGE if task is None else Modality.parse(task)


def result_modality(settings: EvalSettings | dict[str, Any]) -> Modality:
    """The modality of results made with these settings, from the kind of their parts (``'words'`` …)."""
    parts = settings.get("parts") if isinstance(settings, dict) else settings.parts
    kind = str(parts or "").split(":", 1)[0]
    if kind not in _PART_KINDS:
        raise UnknownNameError(f"parts {parts!r}: no registered evaluation makes them ({sorted(_PART_KINDS)})")
    return _PART_KINDS[kind]


def summarize(frame: pd.DataFrame, *, confidence: float = 0.95, n_resamples: int = 2000) -> pd.DataFrame:
    """Per-model means with percentile-bootstrap intervals: ``kdviz.analysis.aggregate.summarize_models``.

    One row per model (in order of first appearance): ``model_id, role, arch, alpha, method, n``, then for
    each metric ``m``: ``m``, ``m_low``, ``m_high``; ``accuracy`` (= mean of ``correct``) with its interval,
    the random-weights null and excess columns, ``margin_rho`` (output alignment across inputs), and what a
    modality adds (texts: the VADER share with its null, ``n_words``). Replicates of one variant (several seeds)
    are summarised together by ``kdviz.analysis.aggregate.summarize_variants``.
    """
    return summarize_models(frame, confidence=confidence, n_resamples=n_resamples)


def check_counts(limit: int | None, batch_size: int, k: int) -> None:
    """Refuse a limit, batch size or top-k below one (``InvalidInputError`` naming it)."""
    if limit is not None and limit < 1:
        raise InvalidInputError(f"limit={limit} must be >= 1 (or None for the whole test split)")
    if batch_size < 1:
        raise InvalidInputError(f"batch_size={batch_size} must be >= 1")
    if k < 1:
        raise InvalidInputError(f"k={k} must be >= 1")


def resolve_null_copies(null_copies: int | str, student_archs: list[str]) -> tuple[int, bool]:
    """Random-weights copies per student architecture and whether they are reached sequentially.

    ``'auto'`` is the R rule: R_max = ``copies_for(architectures)``, enough for the Holm-corrected test of one
    student per architecture (``kdviz.analysis.nulls``); an integer fixes R (0: no null).
    """
    sequential = isinstance(null_copies, str)
    if sequential:
        if null_copies != "auto":
            raise InvalidInputError(f"null_copies={null_copies!r} must be 'auto' or an integer >= 0")
        null_copies = copies_for(max(1, len(set(student_archs))))
    if int(null_copies) < 0:
        raise InvalidInputError(f"null_copies={null_copies} must be >= 0 (0 = no random-weights reference)")
    return int(null_copies), sequential


def order_rows(frame: pd.DataFrame, settings: EvalSettings) -> pd.DataFrame:
    """Rows grouped by model in zoo order (teacher first), inputs ascending within each model."""
    order = {mid: i for i, (mid, _sha) in enumerate(settings.models)}
    key = frame["model_id"].map(order).fillna(len(order)).astype(int)
    out = frame.assign(_m=key).sort_values(["_m", "input_id"], kind="stable").drop(columns="_m")
    return out.reset_index(drop=True)


def _resume_folder(cache_dir: str | Path | None, settings: EvalSettings) -> Path | None:
    """``cache_dir/<settings key>`` with the settings written beside the batches (the key leaves out the limit)."""
    if cache_dir is None:
        return None
    folder = Path(cache_dir) / settings.key()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(settings.to_dict(), indent=1, default=str))
    return folder


def run_plan(plan: EvalPlan, options: EvalOptions) -> EvalResult:
    """Compute a plan's batches (resuming finished ones), order the rows, finish, summarise and record the run."""
    settings, runner, labels = plan.settings, plan.runner, plan.labels
    cluster_facts: dict[str, Any] = {}

    def compute(todo: list[Job]) -> Iterator[tuple[int, pd.DataFrame]]:
        if options.cluster is None:
            for b, lo, hi in todo:
                yield b, runner.evaluate(lo, hi, plan.inputs[lo:hi], None if labels is None else labels[lo:hi])
        else:  # the inputs stay as given: each task is sent its own slice
            yield from evaluate_batches(options.cluster, runner, inputs=plan.inputs, labels=labels, jobs=todo,
                                        facts=cluster_facts)

    batches = run_batches(settings.n_inputs, settings.batch_size, _resume_folder(options.cache_dir, settings),
                          compute=compute, desc=f"evaluate {settings.zoo}", progress=options.progress,
                          progress_bar=options.progress_bar)
    frame = order_rows(batches.frame, settings)
    more: dict[str, Any] = {}
    if plan.finish is not None:
        frame, more = plan.finish(frame)
    run: dict[str, Any] = {
        "elapsed_s": batches.elapsed_s, "device": plan.device, "batches_computed": batches.computed,
        "batches_resumed": batches.resumed, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **plan.facts, **more,
    }
    if cluster_facts:
        run["cluster"] = cluster_facts
        run["device"] = str(cluster_facts.get("device", run["device"]))
    return EvalResult(frame=frame, summary=summarize(frame), settings=settings, run=run)


def run_evaluation(zoo: Any, dataset: Any, options: EvalOptions) -> EvalResult:
    """Evaluate ``zoo`` through the plug-in registered for its modality (:func:`zoo_modality`)."""
    return run_plan(evaluation_for(zoo_modality(zoo))(zoo, dataset, options), options)
