"""The random-weights reference ("null"): what an untrained network of the same architecture scores.

Attribution maps on a given input are often dominated by the input itself (edges, the digit's strokes), so
two unrelated networks can rank the same parts alike. A student's alignment to its teacher means something
only above what R randomly initialised copies of the student's architecture get against the same teacher,
on the same inputs, with the same attribution, parts and metric (DESIGN.md, "Random-weights reference").

* :func:`random_copies` builds the copies (same ``create_model`` call as a checkpoint of that architecture,
  fixed seeds ``NULL_SEED_BASE + r`` so every run and every page sees the same copies, eval mode);
* :func:`chance_corrected` is the excess ``(m − m_null) / (1 − m_null)``: 0 = what an untrained network gets,
  1 = perfect, negative = below chance; NaN where m or m_null is undefined or m_null = 1.

``kdviz.analysis.compare.compare_models(..., null_copies=R)`` uses both and adds the ``*_null`` / ``*_excess`` columns.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from torch import nn

__all__ = [
    "DEFAULT_NULL_COPIES",
    "NULL_SEED_BASE",
    "RandomCopy",
    "chance_corrected",
    "random_copies",
    "random_copy_id",
]

DEFAULT_NULL_COPIES = 3
# Seeds of the null's copies. Far from the small seeds that training runs use (seeded_model(seed=1, 2, 3) …),
# so a null copy is never the initialisation a shipped student started from.
NULL_SEED_BASE = 10_000


@dataclass(frozen=True, eq=False)
class RandomCopy:
    """One randomly initialised network of ``arch``; quacks like a ``compare.ModelEntry`` (id, arch, α, module)."""

    id: str
    arch: str
    seed: int
    module: nn.Module = field(repr=False)
    alpha: float | None = None
    role: str = "random"
    method: str = "random"


def random_copy_id(arch: str, seed: int, *, num_classes: int, in_channels: int) -> str:
    """Deterministic id of a copy (also the cache key of its attributions): ``random:resnet8:10c1ch:seed10000``."""
    return f"random:{arch}:{num_classes}c{in_channels}ch:seed{seed}"


_CACHE: dict[tuple[str, int, int, int], RandomCopy] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 48  # copies kept in memory (a torchvision ResNet-50 copy is ~100 MB; the demo's are < 4 MB)


def _build(arch: str, seed: int, num_classes: int, in_channels: int) -> nn.Module:
    from kdviz.models import seeded_model

    return seeded_model(arch, seed=seed, num_classes=num_classes, in_channels=in_channels).float().eval()


def random_copies(
    arch: str, *, num_classes: int, in_channels: int, copies: int = DEFAULT_NULL_COPIES, first_seed: int = NULL_SEED_BASE
) -> tuple[RandomCopy, ...]:
    """``copies`` untrained eval-mode networks of ``arch`` (seeds ``first_seed …``), built once and kept.

    Raises ``kdviz.models.UnknownModelError`` (a ValueError) for an architecture the registry cannot build.
    """
    if copies < 0:
        raise ValueError(f"copies={copies} must be ≥ 0")
    out = []
    for seed in range(first_seed, first_seed + copies):
        key = (arch, num_classes, in_channels, seed)
        with _CACHE_LOCK:
            copy = _CACHE.get(key)
        if copy is None:
            module = _build(arch, seed, num_classes, in_channels)
            copy = RandomCopy(random_copy_id(arch, seed, num_classes=num_classes, in_channels=in_channels), arch,
                              seed, module)
            with _CACHE_LOCK:
                if len(_CACHE) >= _CACHE_MAX:
                    _CACHE.pop(next(iter(_CACHE)))
                copy = _CACHE.setdefault(key, copy)
        out.append(copy)
    return tuple(out)


def chance_corrected(m: np.ndarray, m_null: np.ndarray, *, perfect: float = 1.0) -> np.ndarray:
    """Excess over the null, ``(m − m_null) / (perfect − m_null)``, per input.

    NaN where either value is NaN or the null is already perfect (``m_null ≥ perfect``: nothing left to
    exceed). Values below 0 mean the model aligns worse than an untrained network of its architecture.
    """
    a = np.asarray(m, dtype=np.float64)
    b = np.asarray(m_null, dtype=np.float64)
    room = perfect - b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(a) & np.isfinite(b) & (room > 1e-12), (a - b) / np.where(room > 0, room, 1.0),
                        np.nan)

