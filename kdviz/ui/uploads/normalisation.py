"""Input size and normalisation of an uploaded set: a preset guessed from the teacher's architecture family
(:mod:`kdviz.io.presets`), every number editable on the Models page."""

from __future__ import annotations

import streamlit as st

from kdviz.errors import InvalidInputError
from kdviz.io.checkpoints import LoadedCheckpoint
from kdviz.io.presets import PRESETS, guess_preset, preset_names
from kdviz.models import list_models, model_info
from kdviz.ui.uploads.checkpoints import input_kind
from kdviz.vocab import Modality

__all__ = ["default_normalisation", "input_presets", "normalisation_controls"]

Normalisation = tuple[tuple[int, int] | None, tuple[float, ...], tuple[float, ...]]


def default_normalisation(arch: str, in_channels: int, *, kind: str | None = None, num_classes: int | None = None,
                          preset: str | None = None) -> Normalisation:
    """Input size and mean/std: the named ``preset``, else the one guessed from the architecture family
    (kdviz.io.presets: CIFAR-10/100 for the CIFAR benchmark zoo, ImageNet for timm and torchvision; CIFAR-100 for
    programs); no size, zeros and ones for series (``kind``, or the registry's input kind of ``arch``)."""
    series = kind is not None and Modality.parse(kind) == Modality.SERIES
    if series or (arch in list_models() and Modality.parse(model_info(arch).input_kind) == Modality.SERIES):
        return None, (0.0,) * in_channels, (1.0,) * in_channels
    chosen = PRESETS.get(preset or "") or guess_preset(arch, num_classes or 100) or PRESETS["CIFAR-100"]
    mean, std = chosen.for_channels(in_channels)
    return chosen.size, mean, std


def input_presets(ck: LoadedCheckpoint) -> list[str]:
    """Normalisation presets for the teacher ``ck``, the guessed one first ([] for series models)."""
    return preset_names(ck.arch, ck.num_classes) if input_kind(ck) == Modality.IMAGE else []


def normalisation_controls(t: LoadedCheckpoint) -> Normalisation:
    """Input size and mean/std for an uploaded set, started from a preset guessed from the teacher ``t`` and
    every number editable; :class:`kdviz.errors.InvalidInputError` for a wrong count or a non-positive std."""
    st.subheader("Input size and normalisation")
    presets = input_presets(t)  # guessed from the teacher's family first; every number stays editable
    preset = st.selectbox("preset", presets, key=f"up_preset_{t.arch}", help="guessed from the architecture") if presets else None
    size, mean, std = default_normalisation(t.arch, t.in_channels, kind=input_kind(t), num_classes=t.num_classes,
                                            preset=preset)
    sfx = f"_{preset}" if presets and preset != presets[0] else ""  # another preset: fields start from it
    c1, c2, c3, c4 = st.columns(4)
    if size is not None:
        size = (int(c1.number_input("height", 8, 1024, size[0], key=f"up_h_{t.arch}{sfx}")),
                int(c2.number_input("width", 8, 1024, size[1], key=f"up_w_{t.arch}{sfx}")))
    mean_s = c3.text_input("mean per channel", ", ".join(f"{v:g}" for v in mean), key=f"up_mean_{t.arch}{sfx}")
    std_s = c4.text_input("std per channel", ", ".join(f"{v:g}" for v in std), key=f"up_std_{t.arch}{sfx}")
    try:
        mean, std = tuple(float(v) for v in mean_s.split(",")), tuple(float(v) for v in std_s.split(","))
    except ValueError:
        raise InvalidInputError(f"give {t.in_channels} mean and {t.in_channels} positive std value(s) as numbers "
                                "separated by commas") from None
    if len(mean) != t.in_channels or len(std) != t.in_channels or min(std) <= 0:
        raise InvalidInputError(f"give {t.in_channels} mean and {t.in_channels} positive std value(s)")
    return size, mean, std
