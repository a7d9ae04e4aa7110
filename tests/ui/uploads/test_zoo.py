"""The Models page's "save this set as a zoo": an upload set built from the edited table (roles, α, architecture)
zipped by kdviz.ui.uploads.zoo.export_set and read back by the page's own zipped-zoo upload."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import torch

from kdviz.ui.uploads.build import build_set
from kdviz.ui.uploads.checkpoints import load_uploaded_checkpoint
from kdviz.ui.uploads.editor import editor_rows
from kdviz.ui.uploads.zoo import export_problem, export_set, load_uploaded_zoo


def _state(arch: str, seed: int) -> bytes:
    from kdviz.models import seeded_model

    buf = io.BytesIO()
    torch.save(seeded_model(arch, seed=seed, num_classes=10, in_channels=1).state_dict(), buf)
    return buf.getvalue()


def test_upload_set_with_edited_table_round_trips(tiny_image_set) -> None:
    files = [("teacher.pth", _state("resnet14", 1)), ("student_a.pth", _state("resnet8", 2)),
             ("student_b.pth", _state("resnet8", 3))]
    statuses = [load_uploaded_checkpoint(n, d) for n, d in files]
    assert all(s.ok for s in statuses), [s.message for s in statuses]
    table = editor_rows([n for n, _ in files], statuses)
    table["α"] = [None, 0.3, 0.9]  # what the user typed in the table
    table.loc[1, "label"] = "small/strong KD"
    pool = tiny_image_set.pool
    uset, problems = build_set(statuses, table, size=(28, 28), mean=(0.13,), std=(0.31,), pool=pool,
                                  class_names=tuple(str(i) for i in range(10)))
    assert export_problem(uset) is None
    out = export_set(uset)
    back, msg = load_uploaded_zoo("saved.zip", out.data)
    assert back is not None, msg
    assert [(m.role, m.arch, m.alpha) for m in back.models] == [
        ("teacher", "resnet14", 1.0), ("student", "resnet8", 0.3), ("student", "resnet8", 0.9)]
    assert back.models[1].id == "small_strong_KD" and back.mean == (0.13,) and back.input_shape == (1, 28, 28)
    # the inputs came back with it (test_inputs.npz), labels and all
    np.testing.assert_array_equal(back.pool.x, pool.x)
    np.testing.assert_array_equal(back.pool.labels, pool.labels)
    x = torch.from_numpy(uset.model_input(pool.x))
    with torch.no_grad():
        for a, b in zip(uset.models, back.models, strict=True):
            torch.testing.assert_close(b.module(x), a.module(x), rtol=0, atol=0)
    # saved again from the uploaded zoo: same manifest (a fixed point)
    again = export_set(back)
    assert again.manifest.models == out.manifest.models


def test_a_demo_like_set_keeps_its_dataset_and_no_inputs(tiny_image_set) -> None:
    import dataclasses

    mset = dataclasses.replace(tiny_image_set, dataset="mnist")
    out = export_set(mset)
    assert out.manifest.dataset == "mnist"
    import zipfile

    assert not any(n.endswith("test_inputs.npz") for n in zipfile.ZipFile(io.BytesIO(out.data)).namelist())
    assert pd.Series([m.method for m in out.manifest.models]).isin(["ce", "kd"]).all()


def test_a_program_cannot_be_saved(tiny_image_set) -> None:
    import dataclasses

    odd = dataclasses.replace(tiny_image_set.models[1], arch="torchscript-program")
    mset = dataclasses.replace(tiny_image_set, models=(tiny_image_set.models[0], odd))
    assert export_problem(tiny_image_set) is None
    problem = export_problem(mset)
    assert problem is not None and problem.startswith(odd.id) and "not one kdviz can build by name" in problem


def test_a_set_of_architectures_resolved_by_name_can_be_saved():
    """The KED demo's explaining MLPs (``ked_mlp_m4_h49``: resolved on demand, not in ``list_models()``) build by
    name, so the set is offered as a zoo zip; a name kdviz cannot build is still refused with the reason."""
    import dataclasses

    from kdviz.ui.sets import demo_set

    ked = demo_set("demo-ked")
    assert export_problem(ked) is None
    odd = dataclasses.replace(ked.models[1], arch="not_a_model_kdviz_builds")
    assert odd.id in export_problem(dataclasses.replace(ked, models=(ked.models[0], odd)))
