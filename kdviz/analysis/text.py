"""Deprecated: the text-only model record, kept until its last caller moves to ``ComparedModel``.

``kdviz.analysis.compare.compare_models`` compares text models (``ComparedModel`` records with a tokenizer) on
texts and returns the same frame as for images and series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TextEntry"]


@dataclass(frozen=True, eq=False)
class TextEntry:
    """A text model to compare (prefer ``kdviz.analysis.compare.ComparedModel``, which takes its fields)."""

    id: str
    role: str
    arch: str
    alpha: float | None
    method: str
    model: Any = field(repr=False)
    tokenizer: Any = field(repr=False)
