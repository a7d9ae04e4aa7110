"""The modality plug-in protocol and its registry.

A modality (:class:`kdviz.vocab.Modality`: image, series, text) is one :class:`ModalityPlugin` that says how
its inputs are read into a batch, which parts it splits them into, how an attribution becomes part vectors
(N, K), how parts are removed against a baseline, how one of its models is attributed and its logits
computed, and how untrained copies of a model are built for the random-weights null. Everything above this
layer (the comparison, evaluation, the pages) asks the plug-in instead of branching on the modality.

The registry works like timm's: this module never imports a plug-in; each plug-in module calls
:func:`register_modality` when imported, and ``kdviz.modalities`` imports the three built-in ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np

from kdviz.errors import InvalidInputError, UnknownNameError
from kdviz.modalities.parts import PartSpec, parse_parts
from kdviz.vocab import Modality

__all__ = [
    "DisplayHints",
    "ModalityPlugin",
    "RandomCopy",
    "get_modality",
    "infer_modality",
    "register_modality",
    "registered_modalities",
]


@dataclass(frozen=True)
class DisplayHints:
    """How a page names a modality's things: one input, one part, and the axes of a part-importance plot."""

    input_name: str
    part_name: str
    axis_labels: tuple[str, str]


@dataclass(frozen=True, eq=False)
class RandomCopy:
    """One untrained network standing in for a model's architecture in the random-weights null.

    It carries what the comparison reads of a model (id, arch, α, module, role, method) and, for text, the
    tokenizer of the model it stands in for. ``seed`` is the seed it was initialised with.
    """

    id: str
    arch: str
    seed: int
    module: Any = field(repr=False)
    alpha: float | None = None
    role: str = "random"
    method: str = "random"
    tokenizer: Any = field(default=None, repr=False)


class ModalityPlugin(ABC):
    """What the comparison needs of one modality. Subclasses register an instance with :func:`register_modality`.

    ``batch`` is what :meth:`read` returns (an array for tensors, a text batch for texts); ``model`` is anything
    with ``module`` (and ``tokenizer`` for text); ``labels`` is what :meth:`label_parts` returns.
    """

    modality: ClassVar[Modality]
    part_kinds: ClassVar[tuple[str, ...]]  # the PartSpec kinds this modality makes
    default_parts: ClassVar[str]
    baselines: ClassVar[tuple[str, ...]]  # named baselines of remove_parts (tensors also take a number)
    null_metrics: ClassVar[tuple[str, ...]]  # per-input metrics computed for the null's copies too
    display: ClassVar[DisplayHints]

    # -- inputs ------------------------------------------------------------------------------------
    @abstractmethod
    def accepts(self, inputs: Any) -> bool:
        """Whether ``inputs`` look like a batch of this modality (used by :func:`infer_modality`)."""

    def accepts_file(self, name: str, data: bytes) -> bool:  # noqa: ARG002 - plug-ins that read files use both
        """Whether an uploaded file holds inputs of this modality that only it reads (default: none)."""
        return False

    @abstractmethod
    def read(self, inputs: Any, **options: Any) -> Any:
        """Return the checked batch of ``inputs`` (InvalidInputError naming what is wrong)."""

    def size(self, batch: Any) -> int:
        """Return the number of inputs in ``batch``."""
        return len(batch)

    @abstractmethod
    def digest(self, batch: Any) -> str:
        """Return a short content hash of ``batch`` (a cache key)."""

    # -- parts -------------------------------------------------------------------------------------
    def parse_parts(self, parts: str | PartSpec | None) -> PartSpec:
        """``parts`` (default :attr:`default_parts`) as a PartSpec of one of this modality's kinds."""
        spec = parse_parts(self.default_parts if parts is None else parts)
        if spec.kind not in self.part_kinds:
            raise InvalidInputError(f"parts={spec} is not a part kind of {self.modality.value} inputs; use one of "
                                    f"{list(self.part_kinds)} (e.g. {self.default_parts!r})")
        return spec

    @abstractmethod
    def label_parts(self, spec: PartSpec, batch: Any, *, display: Any = None, teacher: Any = None) -> np.ndarray:
        """Return the part labels of ``batch`` under ``spec``.

        ``display``: images for SLIC; ``teacher``: whose tokenizer or stored superfeatures define the parts.
        """

    @abstractmethod
    def check_labels(self, labels: Any, batch: Any) -> np.ndarray:
        """Precomputed part labels checked against ``batch``."""

    def n_parts(self, labels: np.ndarray) -> int:
        """K, the length of the part vectors of ``labels``."""
        return int(np.asarray(labels).max()) + 1

    def check_k(self, k: int, n_parts: int, spec: PartSpec) -> None:  # noqa: ARG002 - spec is for subclasses
        """Raise when the teacher's top-k cannot be taken over ``n_parts`` parts."""
        if k > n_parts:
            raise InvalidInputError(f"k={k} exceeds the number of parts K={n_parts}")

    @abstractmethod
    def part_vectors(self, attribution: Any, labels: np.ndarray, n_parts: int) -> np.ndarray:
        """(N, K) part importance of one model's attribution (NaN for a part an input does not have)."""

    @abstractmethod
    def top_parts(self, vectors: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
        """(N, k) indices of each input's k most important parts, best first (-1 where an input has fewer)."""

    def topk_defined(self, labels: np.ndarray, k: int) -> np.ndarray:
        """(N,) whether top-k metrics mean something on each input (every part would be in both top-k otherwise)."""
        return np.ones(np.asarray(labels).shape[0], dtype=bool)

    @abstractmethod
    def remove_parts(self, batch: Any, labels: np.ndarray, removed: np.ndarray, baseline: Any) -> Any:
        """Return ``batch`` with the parts marked in ``removed`` (N, K) bool replaced by ``baseline``.

        ``baseline`` is one of :attr:`baselines`, or a number for tensors. What occlusion and faithfulness curves
        run on.
        """

    def part_names(self, batch: Any, labels: np.ndarray) -> tuple[tuple[str, ...], ...] | None:  # noqa: ARG002
        """Return what each input's parts are called (the words of a text); None where parts have no names."""
        return None

    # -- models ------------------------------------------------------------------------------------
    @abstractmethod
    def logits(self, model: Any, batch: Any, device: str) -> np.ndarray:
        """(N, classes) logits of ``model`` on ``batch``."""

    @abstractmethod
    def attribute(self, model: Any, batch: Any, *, method: str, targets: np.ndarray, device: str,
                  params: Mapping[str, Any]) -> Any:
        """One model's attribution of ``batch`` to ``targets`` (an object with ``params``)."""

    @abstractmethod
    def null_key(self, model: Any) -> str:
        """Which models share the null's copies (same architecture and input layout)."""

    @abstractmethod
    def random_copies(self, model: Any, *, n_classes: int, batch: Any, copies: int,
                      first_seed: int) -> tuple[RandomCopy, ...]:
        """Return ``copies`` untrained networks of ``model``'s architecture (seeds ``first_seed …``), kept."""

    # -- per-model columns of the results frame ----------------------------------------------------
    def maps(self, attribution: Any) -> np.ndarray | None:  # noqa: ARG002 - tensor plug-ins override
        """Return the per-input importance maps that SSIM and the map Pearson r compare.

        (N, H, W) or (N, L); None where inputs have no map (text: Pearson r is taken over the part vectors and
        SSIM is undefined).
        """
        return None

    @abstractmethod
    def attribution_columns(self, attribution: Any, n: int) -> dict[str, Any]:
        """``ig_completeness_error`` and ``ig_steps`` per input (NaN / NA for other methods)."""

    def extra_scores(self, vectors: np.ndarray, batch: Any, labels: np.ndarray,  # noqa: ARG002
                     k: int) -> dict[str, np.ndarray]:
        """Modality-only per-input metrics that the null's copies get too (text: the VADER share)."""
        return {}

    def extra_columns(self, vectors: np.ndarray, batch: Any, labels: np.ndarray,  # noqa: ARG002
                      k: int) -> dict[str, Any]:
        """Modality-only per-input columns (text: ``n_words``, ``top_words``)."""
        return {}


_REGISTRY: dict[Modality, ModalityPlugin] = {}
P = TypeVar("P", bound=type[ModalityPlugin])


def register_modality(plugin: P) -> P:
    """Register an instance of the plug-in class ``plugin`` under its ``modality`` (a later one replaces it).

    Used as a class decorator by each plug-in module, so importing the module is what registers it.
    """
    _REGISTRY[Modality.parse(plugin.modality)] = plugin()
    return plugin


def registered_modalities() -> tuple[Modality, ...]:
    """Return the modalities with a registered plug-in, in registration order."""
    return tuple(_REGISTRY)


def get_modality(name: str | Modality) -> ModalityPlugin:
    """Return the plug-in of a modality (``"image"``, ``"series"``/``"timeseries"``, ``"text"`` or a Modality).

    Raises UnknownNameError for a name that is no modality or has no plug-in.
    """
    modality = Modality.parse(name)
    if modality not in _REGISTRY:
        raise UnknownNameError(f"no plug-in registered for modality {modality.value!r}; registered: "
                               f"{[m.value for m in _REGISTRY]}")
    return _REGISTRY[modality]


def infer_modality(inputs: Any) -> ModalityPlugin:
    """Return the plug-in whose inputs ``inputs`` look like: texts, (N, C, H, W) images or (N, C, L) series."""
    for plugin in _REGISTRY.values():
        if plugin.accepts(inputs):
            return plugin
    shape = getattr(inputs, "shape", None)
    raise InvalidInputError(f"inputs must be (N, C, H, W) images, (N, C, L) series or a list of texts, got "
                            f"{f'shape {tuple(shape)}' if shape is not None else type(inputs).__name__}")
