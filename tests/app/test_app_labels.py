"""AppTest of class names and the explained class (issue 23, item 5): folder names that are no class of the
model are shown as the true classes without scoring the models against them; the sidebar's "Explain" picks the
teacher's prediction, the true class or any class by name."""

from __future__ import annotations

import dataclasses

from streamlit.testing.v1 import AppTest


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


def test_folder_names_are_the_true_classes_and_any_class_can_be_explained(app_path: str, tiny_image_set) -> None:
    pool = tiny_image_set.pool
    folders = dataclasses.replace(pool, labels=pool.labels % 3, label_names=("cat", "cup", "person"),
                                  comparable=False)
    mset = dataclasses.replace(tiny_image_set, pool=folders, models=tuple(
        dataclasses.replace(m, sha256=f"labels-{m.sha256}") for m in tiny_image_set.models))
    at = _app(app_path, mset)
    at.switch_page("pages/attention_maps.py").run()
    _ok(at, "attention maps")
    truth = mset.true_name(int(folders.labels[0]))
    assert truth in ("cat", "cup", "person")
    grid = at.get("plotly_chart")[0].proto.spec
    assert f"true class {truth}" in grid
    assert any("Labels not comparable" in c.value for c in at.caption)
    numbers = at.dataframe[0].value
    assert set(numbers["correct"]) == {"—"}  # never ✗ against folder indices
    at.radio(key="att_mode").set_value("by class").run()
    assert at.selectbox(key="att_cls").options == ["cat", "cup", "person"]

    at.sidebar.selectbox(key="kdviz_target").set_value("a class by name").run()
    at.sidebar.selectbox(key="kdviz_target_class").set_value("7").run()
    _ok(at, "a class by name")
    assert any("explaining class 7" in c.value for c in at.caption)
    at.sidebar.selectbox(key="kdviz_target").set_value("true class").run()
    assert any("no true class among the models' classes" in w.value for w in at.warning)
