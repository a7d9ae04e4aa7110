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


def test_a_registered_plug_in_serves_compare_models_with_no_other_edit(monkeypatch):
    """A modality registered from outside is what ``compare_models`` reads parts and part vectors through."""
    from kdviz.analysis.compare import ComparedModel, CompareOptions, NullOptions, compare_models
    from kdviz.models import seeded_model

    monkeypatch.setattr("kdviz.modalities.base._REGISTRY", dict(_REGISTRY))
    calls: list[int] = []

    @register_modality
    class CountingSeries(SeriesModality):
        default_parts = "segments:4"

        def part_vectors(self, attribution, labels, n_parts):
            calls.append(n_parts)
            return super().part_vectors(attribution, labels, n_parts)

    teacher = ComparedModel("t", "fcn_w8", 1.0, seeded_model("fcn_w8", seed=0, num_classes=2, in_channels=1),
                            role="teacher")
    student = ComparedModel("s", "fcn_w8", 0.5, seeded_model("fcn_w8", seed=1, num_classes=2, in_channels=1))
    x = np.random.default_rng(0).standard_normal((3, 1, 32)).astype(np.float32)
    cmp = compare_models(teacher, [student], x, method="saliency", k=2,
                         options=CompareOptions(null=NullOptions(copies=0)))
    assert cmp.parts == "segments:4" and calls == [4, 4]
    assert cmp.part_vectors["s"].shape == (3, 4)
    v = cmp.part_vectors["s"]
    expected = np.stack([np.abs(cmp.attributions["s"].raw[i]).sum(0).reshape(4, 8).sum(1) for i in range(3)])
    np.testing.assert_allclose(v, expected, rtol=1e-5)
