"""kdviz's vocabularies as enums: the modality of a model's inputs and the recipe that trained it.

Both are ``StrEnum``s whose values are the strings zoo manifests and results files store, so a member equals its
string (``Modality.SERIES == "timeseries"``) and files written before the enums read back unchanged.
"""

from __future__ import annotations

from enum import StrEnum

from kdviz.errors import UnknownNameError

__all__ = ["Modality", "TrainingMethod"]


class Modality(StrEnum):
    """What a model reads: images (N, C, H, W), series (N, C, L) or texts (strings through a tokenizer)."""

    IMAGE = "image"
    SERIES = "timeseries"
    TEXT = "text"

    @classmethod
    def parse(cls, value: str | Modality) -> Modality:
        """Return the member named by ``value``; ``"series"`` and ``"time-series"`` are accepted for ``SERIES``."""
        if isinstance(value, cls):
            return value
        key = str(value).strip().lower().replace("-", "").replace("_", "")
        aliases = {"image": cls.IMAGE, "images": cls.IMAGE, "timeseries": cls.SERIES, "series": cls.SERIES,
                   "text": cls.TEXT, "texts": cls.TEXT}
        if key not in aliases:
            raise UnknownNameError(f"unknown modality {value!r}: one of {[m.value for m in cls]}")
        return aliases[key]


class TrainingMethod(StrEnum):
    """How a model was trained (a zoo manifest's ``method``)."""

    CE = "ce"  # labels only: a teacher or an α = 1 student
    KD = "kd"  # Hinton KD, α·CE + (1 − α)·T²·KL
    KD_SD = "kd+sd"  # KD plus saliency distillation (TSD on series)
    KED = "ked"  # Knowledge Explaining Distillation, explaining teacher and student
    KED_BLACKBOX = "ked-blackbox"  # KD plus masked explanations of a black-box teacher
    RATIONALE = "rationale"  # label + the teacher's token rationale words
    UNTRAINED = "random"  # no training: an untrained copy standing in for its architecture (the null)
    UPLOADED = "upload"  # a user's model whose recipe kdviz does not know

    @classmethod
    def parse(cls, value: str | TrainingMethod | None, default: TrainingMethod | None = None) -> TrainingMethod:
        """Return the member named by ``value`` (case and spaces ignored); ``default`` for None or empty."""
        if isinstance(value, cls):
            return value
        if value is None or not str(value).strip():
            if default is None:
                raise UnknownNameError("no training method given")
            return default
        key = str(value).strip().lower().replace(" ", "")
        try:
            return cls(key)
        except ValueError:
            raise UnknownNameError(f"unknown training method {value!r}: one of {[m.value for m in cls]}") from None

    @property
    def uses_saliency(self) -> bool:
        """Whether the student was also trained on the teacher's explanations (SD, KED, rationales)."""
        return self in (TrainingMethod.KD_SD, TrainingMethod.KED, TrainingMethod.KED_BLACKBOX, TrainingMethod.RATIONALE)

    @property
    def suffix(self) -> str:
        """The label suffix the figures put after α (``"+ SD"``, ``"+ KED"``…; empty for plain KD and CE)."""
        return {TrainingMethod.KD_SD: "+ SD", TrainingMethod.KED: "+ KED", TrainingMethod.KED_BLACKBOX: "+ KED (black-box)",
                TrainingMethod.RATIONALE: "+ rationale"}.get(self, "")
