"""What images and series share: tensor batches, captum attribution, pixel/timestep parts, registry copies.

:class:`TensorModality` is the common base of the image and series plug-ins. Inputs are arrays (N, C, …)
normalised as the models expect; a model is attributed with ``kdviz.attribution.engine.attribute`` and its
parts' importance is the sum over their pixels or timesteps (``kdviz.modalities.parts.part_importance``).

The random-weights null's copies (:func:`random_copies`) are built with the same ``seeded_model`` call as a
checkpoint of that architecture, with fixed seeds so every run and page sees the same copies, in eval mode,
and kept in memory within a byte budget.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kdviz.attribution.cache import array_digest
from kdviz.attribution.engine import attribute, predict_logits
from kdviz.attribution.ig_steps import completeness_column, steps_column
from kdviz.errors import InvalidInputError
from kdviz.modalities.base import ModalityPlugin, RandomCopy
from kdviz.modalities.parts import PartSpec, label_parts, part_importance, top_k_parts
from kdviz.modalities.superfeatures import load_superfeatures
from kdviz.models import seeded_model

__all__ = ["TensorModality", "random_copies", "random_copy_id"]


def random_copy_id(arch: str, seed: int, *, num_classes: int, in_channels: int) -> str:
    """Deterministic id of a copy (also the cache key of its attributions): ``random:resnet8:10c1ch:seed10000``."""
    return f"random:{arch}:{num_classes}c{in_channels}ch:seed{seed}"


_CACHE: dict[tuple[str, int, int, int, str], RandomCopy] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX_BYTES = 768 << 20  # copies' weights kept in memory (a ResNet-50 copy is ~100 MB; the demo's < 4 MB)


def _nbytes(module: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _carries_superfeatures(module: nn.Module, like: nn.Module | None) -> bool:
    """An explaining network (KED): its superfeatures and class prior are part of its architecture, not weights
    it learnt, so an untrained copy gets those of the trained model it stands in for."""
    return (like is not None and hasattr(module, "set_superfeatures") and hasattr(like, "superfeatures")
            and hasattr(like, "log_prior") and like.superfeatures.numel() == module.superfeatures.numel())


def _build(arch: str, seed: int, num_classes: int, in_channels: int, like: nn.Module | None = None) -> nn.Module:
    module = seeded_model(arch, seed=seed, num_classes=num_classes, in_channels=in_channels)
    if like is not None and _carries_superfeatures(module, like):
        module.set_superfeatures(like.superfeatures, like.log_prior, generator=torch.Generator().manual_seed(seed))
    return module.float().eval()


def _structure_digest(like: nn.Module | None) -> str:
    """Short digest of the superfeatures and prior a copy takes from ``like`` ("" for a plain architecture)."""
    if like is None or not hasattr(like, "superfeatures"):
        return ""
    h = hashlib.sha256(like.superfeatures.detach().cpu().numpy().tobytes())
    h.update(like.log_prior.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()[:12]


def random_copies(arch: str, *, num_classes: int, in_channels: int, copies: int, first_seed: int,
                  like: nn.Module | None = None) -> tuple[RandomCopy, ...]:
    """``copies`` untrained eval-mode networks of ``arch`` (seeds ``first_seed …``), built once and kept.

    ``like``: a trained model of ``arch``; an explaining (KED) architecture's copies take its superfeatures and
    class prior (they are part of the architecture), and their ids name them.

    Raises ``kdviz.models.UnknownModelError`` (a ValueError) for an architecture the registry cannot build.
    """
    if copies < 0:
        raise InvalidInputError(f"copies={copies} must be ≥ 0")
    out = []
    structure = _structure_digest(like)
    for seed in range(first_seed, first_seed + copies):
        key = (arch, num_classes, in_channels, seed, structure)
        with _CACHE_LOCK:
            copy = _CACHE.get(key)
        if copy is None:
            module = _build(arch, seed, num_classes, in_channels, like)
            copy_id = random_copy_id(arch, seed, num_classes=num_classes, in_channels=in_channels)
            if _carries_superfeatures(module, like):
                copy_id += f":sf{structure}"
            copy = RandomCopy(copy_id, arch, seed, module)
            with _CACHE_LOCK:
                held = sum(_nbytes(c.module) for c in _CACHE.values())
                while _CACHE and held + _nbytes(module) > _CACHE_MAX_BYTES:
                    held -= _nbytes(_CACHE.pop(next(iter(_CACHE))).module)
                copy = _CACHE.setdefault(key, copy)
        out.append(copy)
    return tuple(out)


def _as_array(inputs: Any) -> np.ndarray:
    return inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)


class TensorModality(ModalityPlugin):
    """Shared behaviour of the image and series plug-ins; subclasses set ``ndim`` and the part kinds."""

    ndim: int = 0  # of a batch: 4 for (N, C, H, W), 3 for (N, C, L)

    def accepts(self, inputs: Any) -> bool:
        """Arrays or tensors with this modality's number of dimensions."""
        return isinstance(inputs, (np.ndarray, torch.Tensor)) and inputs.ndim == self.ndim

    def read(self, inputs: Any, **options: Any) -> np.ndarray:
        """The batch as a numpy array (a tensor is detached and moved to the CPU)."""
        if options:
            raise InvalidInputError(f"{self.modality.value} inputs take no reading options, got {sorted(options)}")
        x = _as_array(inputs)
        if x.ndim != self.ndim:
            raise InvalidInputError(f"{self.modality.value} inputs must have {self.ndim} dimensions, got shape "
                                    f"{x.shape}")
        return x

    def digest(self, batch: np.ndarray) -> str:
        """Content hash of the array."""
        return array_digest(batch)

    def label_parts(self, spec: PartSpec, batch: np.ndarray, *, display: Any = None,
                    teacher: Any = None) -> np.ndarray:
        """``kdviz.modalities.parts.label_parts``; ``superfeatures:M`` without labels reads those stored next to a
        zoo teacher's checkpoint (its ``path``)."""
        if spec.kind == "superfeatures" and spec.masks is None and getattr(teacher, "path", None):
            spec = PartSpec("superfeatures", n=spec.n,
                            masks=load_superfeatures(Path(teacher.path).parent, spec.n).labels)
        return label_parts(spec, batch, display)

    def check_labels(self, labels: Any, batch: np.ndarray) -> np.ndarray:
        """Non-negative integer labels of the batch's spatial shape."""
        lab = np.asarray(labels)
        want = (batch.shape[0], *batch.shape[2:])
        if lab.shape != want or not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0:
            raise InvalidInputError(f"part_labels must be non-negative integers of shape {want}, got {lab.dtype} "
                                    f"{lab.shape}")
        return lab

    def part_vectors(self, attribution: Any, labels: np.ndarray, n_parts: int) -> np.ndarray:
        """Sum of the importance map over each part."""
        return part_importance(attribution.importance, labels, n_parts=n_parts)

    def top_parts(self, vectors: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
        """``kdviz.modalities.parts.top_k_parts`` (ties to the lower part index)."""
        return top_k_parts(vectors, k)

    def logits(self, model: Any, batch: np.ndarray, device: str) -> np.ndarray:
        """``kdviz.attribution.engine.predict_logits`` of the model's module."""
        return predict_logits(model.module, batch, device=device)

    def attribute(self, model: Any, batch: np.ndarray, *, method: str, targets: np.ndarray, device: str,
                  params: Mapping[str, Any]) -> Any:
        """``kdviz.attribution.engine.attribute`` of the model's module."""
        return attribute(model.module, batch, method=method, target=targets, device=device, **dict(params))

    def null_key(self, model: Any) -> str:
        """The architecture name: every model of one architecture shares its copies."""
        return str(model.arch)

    def random_copies(self, model: Any, *, n_classes: int, batch: np.ndarray, copies: int,
                      first_seed: int) -> tuple[RandomCopy, ...]:
        """:func:`random_copies` of the model's architecture (KED copies take its superfeatures)."""
        return random_copies(str(model.arch), num_classes=n_classes, in_channels=batch.shape[1], copies=copies,
                             first_seed=first_seed, like=model.module)

    def maps(self, attribution: Any) -> np.ndarray:
        """The attribution's importance map."""
        return attribution.importance

    def attribution_columns(self, attribution: Any, n: int) -> dict[str, Any]:
        """IG's completeness error and steps (``kdviz.attribution.ig_steps``)."""
        return {"ig_completeness_error": completeness_column(attribution, n), "ig_steps": steps_column(attribution, n)}

    @staticmethod
    def removal_mask(labels: np.ndarray, removed: np.ndarray, batch: np.ndarray) -> np.ndarray:
        """(N, 1, …) boolean: the pixels/timesteps whose part is marked in ``removed`` (N, K)."""
        lab = np.broadcast_to(np.asarray(labels), (batch.shape[0], *batch.shape[2:]))
        rem = np.asarray(removed, dtype=bool)
        if rem.ndim != 2 or rem.shape[0] != batch.shape[0] or (lab.size and lab.max() >= rem.shape[1]):
            raise InvalidInputError(f"removed must be (N, K) booleans covering the labels' parts, got {rem.shape}")
        flat = np.take_along_axis(rem, lab.reshape(lab.shape[0], -1), axis=1)
        return flat.reshape(lab.shape)[:, None]

    def constant_baseline(self, batch: np.ndarray, baseline: Any) -> np.ndarray | None:
        """The replacement values for a number, ``zero`` or ``mean`` (each input's per-channel mean); None for
        another name."""
        if isinstance(baseline, (int, float, np.number)) and not isinstance(baseline, bool):
            return np.full_like(batch, float(baseline))
        if baseline == "zero":
            return np.zeros_like(batch)
        if baseline == "mean":
            axes = tuple(range(2, batch.ndim))
            return np.broadcast_to(batch.mean(axis=axes, keepdims=True), batch.shape).astype(batch.dtype)
        return None

    def unknown_baseline(self, baseline: Any) -> InvalidInputError:
        """The error for a baseline this modality does not know."""
        return InvalidInputError(f"baseline={baseline!r} is not a number or one of {list(self.baselines)}")
