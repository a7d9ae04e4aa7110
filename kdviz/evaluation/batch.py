"""What every evaluation shares: the settings that fix its numbers, its result, and the precision a batch runs in.

A modality's batch runner (``kdviz.evaluation.arrays.ArrayBatches``, ``kdviz.evaluation.text.TextBatches``) is
the one object both a single process and every Ray worker run on a batch, so both compute exactly the same rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

import kdviz
from kdviz.analysis.compare import FRAME_COLUMNS
from kdviz.analysis.nulls import DEFAULT_NULL_COPIES
from kdviz.attribution.precision import precision_context
from kdviz.attribution.runtime import resolve_device

__all__ = ["EvalResult", "EvalSettings", "batch_copies", "with_precision"]


@dataclass(frozen=True)
class EvalSettings:
    """Everything that determines an evaluation's numbers; ``key()`` names its resume folder."""

    zoo: str
    dataset: str
    method: str  # attribution method, a registered name (kdviz.attribution.methods.method_names)
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
    null_copies: int = DEFAULT_NULL_COPIES  # random-weights copies per student architecture (kdviz.analysis.nulls); 0 = no null
    # True: null_copies is R_max of the sequential rule (kdviz.analysis.nulls.sequential_stop); the batches hold
    # the first DEFAULT_NULL_COPIES copies and undecided architectures get more afterwards
    null_sequential: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (what results files and resume folders record)."""
        d = asdict(self)
        d["models"] = [list(m) for m in self.models]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalSettings:
        """Settings read back from :meth:`to_dict` (unknown fields ignored, a missing null read as none)."""
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
        d["frame_columns"] = list(FRAME_COLUMNS)  # batches written with another frame layout are not reused
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
    return min(settings.null_copies, DEFAULT_NULL_COPIES) if settings.null_sequential else settings.null_copies


def with_precision(fn: Callable[..., Any], precision: str, device: str | None, allow_emulated: bool, /,
                    *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` under ``kdviz.attribution.precision.precision_context`` for the resolved device."""
    with precision_context(resolve_device(device), precision, allow_emulated=allow_emulated):
        return fn(*args, **kwargs)
