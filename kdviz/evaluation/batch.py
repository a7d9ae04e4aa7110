"""One batch of an evaluation: the settings that fix its numbers and the function every process runs on it.

``evaluate_batch`` is shared by a single-process run (:mod:`kdviz.evaluation.evaluate`) and every Ray worker
(:mod:`kdviz.evaluation.distributed`), so both compute exactly the same rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import kdviz

__all__ = ["EvalResult", "EvalSettings", "batch_copies", "evaluate_batch", "with_precision"]


@dataclass(frozen=True)
class EvalSettings:
    """Everything that determines an evaluation's numbers; ``key()`` names its resume folder."""

    zoo: str
    dataset: str
    method: str  # attribution method, a key of kdviz.attribution.engine.METHODS
    method_params: dict[str, Any]  # every parameter, defaults filled in
    parts: str  # 'slic:50', 'grid:4x4', 'segments:10'
    k: int
    limit: int | None  # first N test inputs; None = the whole test split
    n_inputs: int
    batch_size: int
    models: tuple[tuple[str, str], ...]  # (model id, checkpoint sha256) in zoo order, teacher first
    target: str = "teacher"
    precision: str = "fp32"  # autocast precision of every model call (kdviz.attribution.precision)
    kdviz_version: str = kdviz.__version__
    null_copies: int = 19  # random-weights copies per student architecture (kdviz.analysis.nulls); 0 = no null
    # True: null_copies is R_max of the sequential rule (kdviz.analysis.nulls.sequential_stop); the batches hold
    # the first DEFAULT_NULL_COPIES copies and undecided architectures get more afterwards
    null_sequential: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["models"] = [list(m) for m in self.models]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalSettings:
        d = dict(d)
        d["models"] = tuple(tuple(m) for m in d.get("models", ()))
        d.setdefault("null_copies", 0)  # files written before the random-weights null have none
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def key(self) -> str:
        """Short hash of what changes a row's numbers (stable across runs and machines).

        ``limit`` and ``n_inputs`` are left out: batch files are named by their input range, so a longer run
        (``--limit 1000`` after ``--limit 200``) reuses the batches a shorter one finished.
        """
        d = {k: v for k, v in self.to_dict().items() if k not in ("limit", "n_inputs")}
        if d.get("precision") == "fp32":
            del d["precision"]  # fp32 runs keep the keys they had before precision was a setting
        blob = json.dumps(d, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class EvalResult:
    """A finished evaluation: long table, per-model summary, settings, and run facts (time, device)."""

    frame: pd.DataFrame
    summary: pd.DataFrame
    settings: EvalSettings
    run: dict[str, Any] = field(default_factory=dict)


def batch_copies(settings: EvalSettings) -> int:
    """Copies each batch computes: all of them, or the first block of the sequential rule."""
    from kdviz.analysis.nulls import DEFAULT_NULL_COPIES

    return min(settings.null_copies, DEFAULT_NULL_COPIES) if settings.null_sequential else settings.null_copies


def evaluate_batch(
    teacher: Any, students: Sequence[Any], x: np.ndarray, y: np.ndarray | None, ids: np.ndarray, mean: np.ndarray,
    std: np.ndarray, settings: EvalSettings, device: str | None, *, allow_emulated: bool = False,
) -> pd.DataFrame:
    """One batch through ``compare_models`` in the settings' precision; ``input_id`` is the index in the test
    split. The one function both a single process and every Ray worker run."""
    from kdviz.analysis.compare import compare_models  # imported on use: reading results stays light
    from kdviz.attribution.cache import cached_attribute_fn  # the disk cache (None when KDVIZ_CACHE_DIR=off)
    model_in = ((np.asarray(x, dtype=np.float32) - mean) / std).astype(np.float32)
    comparison = with_precision(
        compare_models, settings.precision, device, allow_emulated,
        teacher, students, model_in, labels=y, method=settings.method, method_params=settings.method_params,
        parts=settings.parts, k=settings.k, target=settings.target, device=device, images_for_slic=x,
        input_ids=[int(i) for i in ids], null_copies=batch_copies(settings),
        attribute_fn=cached_attribute_fn(settings.method, settings.method_params, precision=settings.precision),
    )
    return comparison.frame


def with_precision(fn: Callable[..., Any], precision: str, device: str | None, allow_emulated: bool, /,
                    *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` under ``kdviz.attribution.precision.precision_context`` for the resolved device."""
    from kdviz.attribution.engine import resolve_device
    from kdviz.attribution.precision import precision_context
    with precision_context(resolve_device(device), precision, allow_emulated=allow_emulated):
        return fn(*args, **kwargs)
