"""The random-weights null: copies, the chance correction, and what untrained networks score on demo data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.analysis.aggregate import hierarchical_ci
from kdviz.analysis.compare import NULL_COLUMNS, ModelEntry, compare_models
from kdviz.analysis.metrics import attention_rank_alignment, focus_ratio, topk_overlap
from kdviz.analysis.nulls import NULL_SEED_BASE, chance_corrected, random_copies, random_copy_id
from kdviz.models import seeded_model

ZOOS = Path(__file__).resolve().parents[2] / "assets" / "zoo"


@pytest.fixture(scope="module")
def gunpoint_zoo():
    from kdviz.io.zoo import load_zoo

    return load_zoo(ZOOS / "gunpoint")


@pytest.fixture(scope="module")
def gunpoint_inputs() -> np.ndarray:
    from kdviz.io.datasets import load_dataset

    ds = load_dataset("gunpoint")
    return ds.model_input(ds.x_test)


def test_chance_corrected_by_hand() -> None:
    m = np.array([0.9, 0.5, 0.2, np.nan, 0.7, 1.0])
    null = np.array([0.5, 0.5, 0.6, 0.3, np.nan, 1.0])
    out = chance_corrected(m, null)
    assert out[0] == pytest.approx((0.9 - 0.5) / 0.5)  # 0.8
    assert out[1] == 0.0  # exactly what an untrained network gets
    assert out[2] == pytest.approx((0.2 - 0.6) / 0.4)  # below chance: negative
    assert all(math.isnan(v) for v in out[3:])  # undefined m, undefined null, null already perfect
    assert chance_corrected(np.array([1.0]), np.array([0.3]))[0] == pytest.approx(1.0)  # perfect stays 1


def test_random_copies_are_seeded_cached_and_untrained() -> None:
    a = random_copies("resnet8", num_classes=10, in_channels=1, copies=2)
    b = random_copies("resnet8", num_classes=10, in_channels=1, copies=2)
    assert [c.id for c in a] == [random_copy_id("resnet8", NULL_SEED_BASE + i, num_classes=10, in_channels=1)
                                 for i in range(2)]
    assert a[0].module is b[0].module  # built once
    assert not a[0].module.training
    w0 = next(a[0].module.parameters())
    assert not torch.equal(w0, next(a[1].module.parameters()))  # different seeds, different weights
    expected = seeded_model("resnet8", seed=NULL_SEED_BASE, num_classes=10, in_channels=1)
    assert torch.equal(w0, next(expected.parameters()))  # the same create_model call, seeded
    with pytest.raises(ValueError, match="not_an_arch|Unknown|unknown"):
        random_copies("not_an_arch", num_classes=10, in_channels=1)


def test_null_columns_are_the_mean_over_copies(gunpoint_zoo, gunpoint_inputs) -> None:
    zoo, x = gunpoint_zoo, gunpoint_inputs[:8]
    comp = compare_models(zoo.teacher, [zoo.get("fcn_w8_a0.5")], x, method="saliency", parts="segments:10", k=3,
                          null_copies=2)
    f = comp.frame
    teacher_rows, student = f[f["role"] == "teacher"], f[f["role"] == "student"]
    assert teacher_rows[list(NULL_COLUMNS)].isna().all().all()  # the teacher has no null of its own
    ids = comp.null_ids["fcn_w8"]
    assert len(ids) == 2
    v_t = comp.part_vectors[zoo.teacher.id]
    copies = [comp.null_part_vectors[i] for i in ids]
    rho = np.nanmean([attention_rank_alignment(v, v_t) for v in copies], axis=0)
    overlap = np.mean([topk_overlap(v, v_t, k=3) for v in copies], axis=0)
    focus = np.nanmean([focus_ratio(v, v_t, k=3) for v in copies], axis=0)
    np.testing.assert_allclose(student["attention_rho_null"], rho)
    np.testing.assert_allclose(student["topk_overlap_null"], overlap)
    np.testing.assert_allclose(student["focus_ratio_null"], focus)
    np.testing.assert_allclose(student["attention_rho_excess"],
                               chance_corrected(student["attention_rho"].to_numpy(), rho))
    off = compare_models(zoo.teacher, [zoo.get("fcn_w8_a0.5")], x, method="saliency", parts="segments:10", k=3,
                         null_copies=0)
    assert off.frame[list(NULL_COLUMNS)].isna().all().all() and not off.null_part_vectors


def test_unknown_architecture_gets_a_note_not_an_error(gunpoint_zoo, gunpoint_inputs) -> None:
    zoo = gunpoint_zoo
    odd = ModelEntry("custom", "my_custom_net", 0.5, zoo.get("fcn_w8_a0.5").module)
    comp = compare_models(zoo.teacher, [odd], gunpoint_inputs[:4], method="saliency", parts="segments:10", k=3,
                          null_copies=1)
    assert comp.frame.loc[comp.frame["model_id"] == "custom", "attention_rho_null"].isna().all()
    assert any("my_custom_net" in n for n in comp.notes)


@pytest.mark.slow
def test_untrained_networks_score_zero_excess_and_trained_students_score_above(gunpoint_zoo, gunpoint_inputs):
    """Outside reference: networks nobody trained. Their excess over the null (computed from *other* seeds) is
    0 within a 95% interval that resamples seeds, then inputs; trained students are above it."""
    zoo, x = gunpoint_zoo, gunpoint_inputs[:24]
    untrained = [ModelEntry(f"untrained_{arch}_{seed}", arch, None,
                            seeded_model(arch, seed=seed, num_classes=2, in_channels=1).eval())
                 for arch in ("fcn_w8", "fcn_w32") for seed in range(30_000, 30_004)]
    trained = [zoo.get("fcn_w8_a0.5"), zoo.get("fcn_w32_a0.5")]
    comp = compare_models(zoo.teacher, untrained + trained, x, method="integrated_gradients",
                          method_params={"n_steps": 16}, parts="segments:10", null_copies=3)
    f = comp.frame.set_index("model_id")
    for arch in ("fcn_w8", "fcn_w32"):
        groups = [f.loc[e.id, "attention_rho_excess"].to_numpy(dtype=float) for e in untrained if e.arch == arch]
        mean, lo, hi = hierarchical_ci(groups)
        assert lo <= 0.0 <= hi, (arch, mean, lo, hi)
        student = next(t for t in trained if t.arch == arch)
        s_mean, s_lo, _ = hierarchical_ci([f.loc[student.id, "attention_rho_excess"].to_numpy(dtype=float)])
        assert s_lo > hi, (arch, s_mean, s_lo, hi)
