"""kdviz.modalities.base: the registry, inferring a batch's modality, and a plug-in added from outside."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz.errors import InvalidInputError, UnknownNameError
from kdviz.modalities import get_modality, infer_modality, registered_modalities
from kdviz.modalities.base import _REGISTRY, register_modality
from kdviz.modalities.series import SeriesModality
from kdviz.vocab import Modality


def test_the_three_plug_ins_are_registered_and_found_by_name_or_by_their_inputs():
    assert set(registered_modalities()) == {Modality.IMAGE, Modality.SERIES, Modality.TEXT}
    assert get_modality("series") is get_modality(Modality.SERIES) is get_modality("timeseries")
    assert infer_modality(torch.zeros(2, 1, 8, 8)).modality == Modality.IMAGE
    assert infer_modality(np.zeros((2, 3, 40))).modality == Modality.SERIES
    assert infer_modality(["a text", "another"]).modality == Modality.TEXT
    with pytest.raises(UnknownNameError, match="audio"):
        get_modality("audio")
    with pytest.raises(InvalidInputError, match="shape"):
        infer_modality(np.zeros((2, 3)))


def test_parts_of_another_modality_are_refused_by_name():
    with pytest.raises(InvalidInputError, match="segments:4"):
        get_modality("image").parse_parts("segments:4")
    assert str(get_modality("text").parse_parts(None)) == "words"
    assert str(get_modality("series").parse_parts(None)) == "segments:10"


def test_a_plug_in_registered_later_replaces_the_built_in(monkeypatch):
    monkeypatch.setattr("kdviz.modalities.base._REGISTRY", dict(_REGISTRY))

    @register_modality
    class Mine(SeriesModality):
        default_parts = "segments:4"

    assert isinstance(get_modality("series"), Mine) and get_modality("series").default_parts == "segments:4"
