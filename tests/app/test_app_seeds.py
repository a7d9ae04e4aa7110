"""AppTest of training-seed replicates on the dashboard (issue 23, items 1–2): several students per
architecture × α (one per seed) — Part focus and Alignment draw seed means with intervals, Attention maps
draws one seed at a time and names it."""

from __future__ import annotations

import dataclasses

import pytest
from streamlit.testing.v1 import AppTest


@pytest.fixture(scope="module")
def seed_set(tiny_image_set):
    """The tiny set's two students, each trained "with seeds 1 and 2" (seeded random copies): 4 students."""
    import torch

    from kdviz.models import create_model

    teacher, *students = tiny_image_set.models
    models = [teacher]
    for seed in (1, 2):
        for m in students:
            torch.manual_seed(100 + seed)
            module = create_model(m.arch, num_classes=10, in_channels=1).eval()
            models.append(dataclasses.replace(m, id=f"{m.id}_s{seed}", module=module, sha256=f"seeds-{m.id}-{seed}",
                                              seed=seed))
    return dataclasses.replace(tiny_image_set, models=tuple(models))


def _app(app_path: str, mset) -> AppTest:
    at = AppTest.from_file(app_path, default_timeout=240)
    at.session_state["kdviz_upload_set"] = mset
    at.run()
    at.sidebar.selectbox(key="kdviz_set").set_value("uploaded").run()
    at.sidebar.selectbox(key="kdviz_method").set_value("saliency").run()
    at.sidebar.number_input(key="kdviz_null_copies").set_value(0).run()
    return at


def _ok(at: AppTest, where: str) -> None:
    assert not at.exception, (where, [e.value for e in at.exception])
    assert not at.error, (where, [e.value for e in at.error])


def test_seed_replicates_on_part_focus_alignment_and_attention_maps(app_path: str, seed_set) -> None:
    import json

    assert seed_set.seed_replicates() == {1: ["resnet8_student_1.0_s1", "resnet8_student_0.1_s1"],
                                          2: ["resnet8_student_1.0_s2", "resnet8_student_0.1_s2"]}
    at = _app(app_path, seed_set)
    for page, n_charts in (("part_focus", 2), ("alignment", 3)):
        at.switch_page(f"pages/{page}.py").run()
        _ok(at, page)
        charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
        assert len(charts) >= n_charts, page
        bars = [t for c in charts for t in c["data"] if t.get("type") == "bar"]
        assert bars, page
        for t in bars:  # one bar per architecture × α: the mean of the two seeds, with an interval
            assert len(t["x"]) == len(set(t["x"])) == 1, (page, t["x"])
            assert "error_y" in t, page
    at.switch_page("pages/attention_maps.py").run()
    _ok(at, "attention_maps")
    assert at.selectbox(key="att_seed").options == ["seed 1", "seed 2"]
    grid = json.loads(at.get("plotly_chart")[0].proto.spec)
    cells = grid["layout"]["meta"]["cells"]
    assert set(cells) == {"resnet14_teacher_None", "resnet8_student_1.0_s1", "resnet8_student_0.1_s1"}
    texts = " ".join(a["text"] for a in grid["layout"]["annotations"])
    assert texts.count("seed 1") >= 2 and "training seed 1" in grid["layout"]["title"]["text"]
    at.selectbox(key="att_seed").set_value(2).run()
    _ok(at, "attention_maps seed 2")
    cells = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["meta"]["cells"]
    assert "resnet8_student_0.1_s2" in cells and "resnet8_student_0.1_s1" not in cells
