"""kdviz.training.ked_zoo: a KED zoo built end to end on MNIST with tiny MLPs and one epoch each."""

from __future__ import annotations

import json

import numpy as np

from kdviz.io.zoo.manifest import load_zoo
from kdviz.models.ked_family import is_explaining
from kdviz.training.ked_zoo import KedZooPlan, build_ked_zoo


def test_tiny_ked_zoo_builds_loads_and_resumes(tmp_path) -> None:
    plan = KedZooPlan(name="tiny-ked", data="mnist", student_width=6, teacher_width=12, m=2, seeds=(1,),
                      teacher_epochs=1, student_epochs=1, hessian_inputs=16)
    manifest = build_ked_zoo(plan, tmp_path)
    ids = [m.id for m in manifest.models]
    assert ids[0].startswith("teacher_ked_mlp_m2_h") and "plain_teacher_mlp_h12" in ids
    zoo = load_zoo(tmp_path)
    assert is_explaining(zoo.teacher.module)
    by_method = {m.method: m for m in zoo.students if m.seed == 1}
    assert set(by_method) == {"ce", "kd", "ked"}
    assert by_method["ked"].params <= by_method["kd"].params and by_method["kd"].arch == "mlp_h6"
    assert by_method["ked"].alpha == 0.3 and by_method["ked"].ked_mu == 0.7 and by_method["ked"].tau == 10.0
    labels = np.load(tmp_path / "superfeatures_M2.npy")
    assert labels.shape == (28, 28) and set(np.unique(labels)) == {0, 1}
    np.testing.assert_array_equal(zoo.teacher.module.superfeatures.numpy(), labels.ravel())
    stamp = (tmp_path / zoo.teacher.checkpoint).stat().st_mtime_ns
    build_ked_zoo(plan, tmp_path)  # resumes: nothing retrained
    assert (tmp_path / zoo.teacher.checkpoint).stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "zoo.json").read_text())["superfeatures"][0]["m"] == 2
