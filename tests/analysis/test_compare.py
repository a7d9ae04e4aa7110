"""kdviz.analysis.compare on images and series: every model's attributions and metrics against the teacher."""

from __future__ import annotations

import copy
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from kdviz.analysis.compare import (
    FRAME_COLUMNS,
    ComparedModel,
    CompareOptions,
    Comparison,
    Hooks,
    NullOptions,
    compare_models,
)
from kdviz.analysis.metrics import attention_rank_alignment, focus_ratio, logit_alignment
from kdviz.attribution.engine import attribute
from kdviz.errors import UnknownNameError
from kdviz.modalities.parts import PartSpec, grid_labels, parse_parts, part_importance

CPU = CompareOptions(device="cpu")
NO_NULL = CompareOptions(device="cpu", null=NullOptions(copies=0))


def tiny(in_channels: int, dims: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    pool = nn.AdaptiveAvgPool2d(2) if dims == 2 else nn.AdaptiveAvgPool1d(4)
    return nn.Sequential(conv(in_channels, 4, 3, padding=1), nn.ReLU(), pool, nn.Flatten(), nn.Linear(16, 3))


@pytest.fixture
def image_models() -> tuple[ComparedModel, list[ComparedModel], torch.Tensor]:
    teacher = ComparedModel("t", "tiny", 1.0, tiny(1, 2, 0), role="teacher")
    twin = ComparedModel("twin", "tiny", 0.5, copy.deepcopy(teacher.module))
    other = ComparedModel("s", "tiny", 0.1, tiny(1, 2, 1), method="kd+sd")
    torch.manual_seed(2)
    return teacher, [twin, other], torch.randn(4, 1, 12, 12)


def test_frame_shape_columns_and_teacher_reference(image_models) -> None:
    teacher, students, x = image_models
    c = compare_models(teacher, students, x, labels=[0, 1, 2, 0], method="saliency", parts="grid:3x3", k=3,
                       options=CPU)
    assert isinstance(c, Comparison)
    f = c.frame
    assert tuple(f.columns) == FRAME_COLUMNS and len(f) == 3 * 4
    assert list(f["model_id"].unique()) == ["t", "twin", "s"]
    assert set(f.loc[f.model_id == "t", "role"]) == {"teacher"}
    assert set(f.loc[f.model_id == "s", "method"]) == {"kd+sd"} and set(f["attr_method"]) == {"saliency"}
    assert list(f.loc[f.model_id == "s", "input_id"]) == [0, 1, 2, 3]
    for mid in ("t", "twin"):  # the teacher and an exact copy of it are perfectly aligned
        rows = f[f.model_id == mid]
        np.testing.assert_allclose(rows[["attention_rho", "logit_rho", "topk_overlap", "ssim", "pearson"]], 1.0,
                                   atol=1e-6)
        np.testing.assert_allclose(rows["kl_to_teacher"], 0.0, atol=1e-6)
        assert rows["agree"].all()
    assert c.part_labels.shape == (4, 12, 12) and c.teacher_topk.shape == (4, 3)
    assert set(c.attributions) == set(c.logits) == {"t", "twin", "s"}
    pred = c.logits["s"].argmax(1)
    np.testing.assert_array_equal(f.loc[f.model_id == "s", "pred"], pred)
    np.testing.assert_array_equal(f.loc[f.model_id == "s", "correct"].to_numpy(bool), pred == [0, 1, 2, 0])
    pickle.loads(pickle.dumps(c))  # cacheable by st.cache_data


def test_numbers_equal_the_library_called_step_by_step(image_models) -> None:
    teacher, students, x = image_models
    c = compare_models(teacher, students, x, method="input_x_gradient", parts="grid:3x3", k=2, options=CPU)
    target = c.logits["t"].argmax(1)  # every model explains the teacher's predicted class
    labels = grid_labels(12, 12, rows=3, cols=3)
    v_t = part_importance(attribute(teacher.module, x, method="input_x_gradient", target=target).importance, labels)
    a_s = attribute(students[1].module, x, method="input_x_gradient", target=target)
    v_s = part_importance(a_s.importance, labels)
    rows = c.frame[c.frame.model_id == "s"]
    np.testing.assert_allclose(rows["attention_rho"], attention_rank_alignment(v_s, v_t))
    np.testing.assert_allclose(rows["focus_ratio"], focus_ratio(v_s, v_t, k=2))
    np.testing.assert_allclose(rows["logit_rho"], logit_alignment(c.logits["s"], c.logits["t"]))
    np.testing.assert_array_equal(c.attributions["s"].target, target)


def test_series_with_segments_and_duck_typed_entries() -> None:
    teacher = SimpleNamespace(id="T", arch="fcn", alpha=None, module=tiny(2, 1, 0), role="teacher")
    student = SimpleNamespace(id="S", arch="fcn", alpha=0.5, module=tiny(2, 1, 3))
    torch.manual_seed(4)
    x = torch.randn(3, 2, 20).numpy()
    c = compare_models(teacher, [student], x, method="integrated_gradients", parts="segments:5", k=2,
                       options=CompareOptions(method_params={"n_steps": 4}, device="cpu", target="own"))
    assert c.part_labels.shape == (3, 20) and c.part_vectors["S"].shape == (3, 5)
    assert c.frame["alpha"].isna().sum() == 3 and c.frame["label"].isna().all()
    assert c.method_params["n_steps"] == 4 and c.parts == "segments:5"


def test_slic_runs_on_display_images(image_models) -> None:
    teacher, students, x = image_models
    display = np.zeros((4, 12, 12))
    display[:, :, 6:] = 1.0  # two flat halves: SLIC must find the boundary of the display image
    c = compare_models(teacher, students[:1], x, method="saliency", parts="slic:4", k=1,
                       options=CompareOptions(device="cpu", images_for_slic=display))
    for lab in c.part_labels:
        assert lab.max() >= 1
        assert not set(np.unique(lab[:, :6])) & set(np.unique(lab[:, 6:]))  # no part straddles the edge


def test_user_masks(image_models) -> None:
    teacher, students, x = image_models
    masks = np.zeros((12, 12), dtype=int)
    masks[:6] = 3
    c = compare_models(teacher, students, x, method="saliency", parts=PartSpec("mask", masks=masks), k=1,
                       options=CPU)
    assert c.part_vectors["t"].shape == (4, 2) and c.parts == "mask"


def test_parse_parts() -> None:
    assert parse_parts("slic:50") == PartSpec("slic", n=50)
    assert parse_parts(" Grid:4x3 ") == PartSpec("grid", rows=4, cols=3)
    assert parse_parts("segments:10") == PartSpec("segments", n=10)
    assert str(parse_parts("grid:4x3")) == "grid:4x3"
    spec = PartSpec("grid", rows=2, cols=2)
    assert parse_parts(spec) is spec
    for bad in ("slic", "grid:4", "segments:0", "voronoi:5", "slic:-3"):
        with pytest.raises(ValueError, match=repr(bad)):
            parse_parts(bad)


def test_slic_on_noise_images_says_why_k_is_too_large() -> None:
    """RGB noise (a synthetic CIFAR batch) gives SLIC one superpixel: the error says so and what to use instead."""
    teacher = ComparedModel("t", "tiny", 1.0, tiny(3, 2, 0), role="teacher")
    student = ComparedModel("s", "tiny", 0.5, tiny(3, 2, 1))
    x = np.random.default_rng(0).random((2, 3, 32, 32)).astype(np.float32)
    with pytest.raises(ValueError, match=r"k=5 exceeds the number of parts K=1: SLIC found at most 1 superpixel"):
        compare_models(teacher, [student], x, method="saliency", parts="slic:50", k=5,
                       options=CompareOptions(device="cpu", images_for_slic=x))


def test_bad_options_are_named(image_models) -> None:
    teacher, students, x = image_models
    with pytest.raises(ValueError, match=r"k=10.*K=9"):
        compare_models(teacher, students, x, method="saliency", parts="grid:3x3", k=10, options=CPU)
    with pytest.raises(ValueError, match="segments:4"):
        compare_models(teacher, students, x, method="saliency", parts="segments:4", options=CPU)
    with pytest.raises(ValueError, match="target='best'"):
        compare_models(teacher, students, x, method="saliency", parts="grid:2x2",
                       options=CompareOptions(target="best"))
    with pytest.raises(ValueError, match="unique"):
        compare_models(teacher, [teacher], x, method="saliency", parts="grid:2x2", k=1, options=CPU)
    with pytest.raises(ValueError, match="labels"):
        compare_models(teacher, students, x, labels=[1, 2], method="saliency", parts="grid:2x2", k=1)


def test_logits_fn_and_label_parts_replace_the_defaults_exactly(image_models) -> None:
    """A caller's logits (the dashboard caches them) are used for every model once, and precomputed part
    labels from ``label_parts`` give the same frame as labelling inside ``compare_models``."""
    from kdviz.attribution.engine import predict_logits
    from kdviz.modalities.parts import label_parts

    teacher, students, x = image_models
    calls: list[str] = []

    def logits_fn(entry, xb, device):
        calls.append(entry.id)
        return predict_logits(entry.module, xb, device=device)

    plain = compare_models(teacher, students, x, method="saliency", parts="grid:3x3", k=3, options=NO_NULL)
    labels = label_parts("grid:3x3", x.numpy())
    via = compare_models(teacher, students, x, method="saliency", parts="grid:3x3", k=3,
                         options=CompareOptions(device="cpu", null=NullOptions(copies=0), part_labels=labels,
                                                hooks=Hooks(logits_fn=logits_fn)))
    assert calls == ["t", "twin", "s"]
    np.testing.assert_array_equal(labels, grid_labels(12, 12, rows=3, cols=3)[None].repeat(4, axis=0))
    cols = ["attention_rho", "logit_rho", "focus_ratio", "topk_overlap", "pred"]
    np.testing.assert_allclose(via.frame[cols].to_numpy(float), plain.frame[cols].to_numpy(float))


def test_one_class_named_for_every_input_is_explained(image_models) -> None:
    """The target may be one class (an index) for every input, not only a prediction."""
    teacher, students, x = image_models
    c = compare_models(teacher, students, x, method="saliency", parts="grid:3x3", k=2,
                       options=CompareOptions(device="cpu", target=2, null=NullOptions(copies=0)))
    for mid in ("t", "s"):
        np.testing.assert_array_equal(c.attributions[mid].target, [2, 2, 2, 2])
    with pytest.raises(ValueError, match="not one of the model's"):
        compare_models(teacher, students, x, method="saliency", parts="grid:3x3", k=2,
                       options=CompareOptions(device="cpu", target=99, null=NullOptions(copies=0)))


def test_models_are_typed_records_and_the_modality_is_inferred_or_named(image_models) -> None:
    """Duck-typed entries become ComparedModel records (method parsed); an unknown modality name is refused."""
    teacher, students, x = image_models
    odd = SimpleNamespace(id="odd", arch="tiny", alpha=None, module=students[1].module, method="KD+SD")
    record = ComparedModel.of(odd)
    assert record.method == "kd+sd" and record.role == "student" and ComparedModel.of(record) is record
    assert ComparedModel.of(record, role="teacher").role == "teacher"
    c = compare_models(teacher, [odd], x, method="saliency", parts="grid:3x3", k=2,
                       options=CompareOptions(device="cpu", null=NullOptions(copies=0), modality="image"))
    assert c.modality == "image" and set(c.frame["method"]) == {"kd", "kd+sd"}
    assert c.frame["top_words"].eq("").all() and c.frame["vader"].isna().all() and c.part_names is None
    with pytest.raises(UnknownNameError, match="audio"):
        compare_models(teacher, students, x, method="saliency", parts="grid:3x3", k=2,
                       options=CompareOptions(modality="audio"))
