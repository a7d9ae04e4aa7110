"""The KED study tables (kdviz/report/ked_study.py) on a tiny KED zoo built with `kdviz ked-zoo`'s builder."""

from __future__ import annotations

import numpy as np
import pytest

from kdviz.io.zoo.manifest import load_zoo
from kdviz.report.ked_study import accuracy_difference, accuracy_table, alignment_table, explaining_copies
from kdviz.training.ked_zoo import KedZooPlan, build_ked_zoo


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("ked")
    build_ked_zoo(KedZooPlan(name="tiny-ked", data="mnist", student_width=6, teacher_width=12, m=2, seeds=(1, 2),
                             teacher_epochs=1, student_epochs=1, hessian_inputs=8), out)
    return load_zoo(out)


def test_accuracy_table_matches_the_manifest_per_seed(tiny_zoo) -> None:
    table = accuracy_table(tiny_zoo, n_resamples=200)
    recorded = {(m.arch, m.method, m.seed): m.test_accuracy for m in tiny_zoo.models}
    for _, row in table.iterrows():
        for s, acc in zip(row["seeds"], row["per_seed"], strict=True):
            assert acc == pytest.approx(recorded[(row["arch"], row["method"], s)], abs=1e-4)
        assert row["low"] <= row["accuracy"] <= row["high"]
        assert row["accuracy"] == pytest.approx(np.mean(row["per_seed"]), abs=1e-4)
    d, lo, hi = accuracy_difference(tiny_zoo, n_resamples=200)
    ked = table[table.method == "ked"].accuracy.item()
    kd = table[(table.method == "kd") & (table.role == "student")].accuracy.item()
    assert d == pytest.approx(ked - kd) and lo <= d <= hi


def test_alignment_null_copies_carry_the_zoo_superfeatures(tiny_zoo) -> None:
    arch = next(m.arch for m in tiny_zoo.students if m.method == "ked")
    copies = explaining_copies(tiny_zoo, arch, 2)
    assert all(np.array_equal(c.module.superfeatures, tiny_zoo.teacher.module.superfeatures) for c in copies)
    per_model, cells = alignment_table(tiny_zoo, n_inputs=6, copies=3, parts="grid:4x4", n_resamples=100)
    assert set(per_model.method) == {"ce", "kd", "ked"}
    assert per_model.p.between(0.25, 1.0).all()  # rank p with R = 3 lies in {1/4, …, 1}
    assert (cells.low <= cells.attention_rho).all() and (cells.attention_rho <= cells.high).all()
