"""AppTest of every page on both demo zoos: no exception, the charts and tables exist, widgets change numbers.

Cheap settings keep the whole module well under a minute once the zoos are loaded: IG with 4 steps, one
input on the single-input pages and 2–3 inputs on the others. Streamlit's caches are process-wide, so a
computation repeated by a later test is a cache hit.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

PAGES = {
    "demo-image": ["models", "attention_maps", "part_focus", "alignment"],
    "demo-series": ["models", "temporal_saliency", "part_focus", "alignment"],
}
CHARTS = {"models": 0, "attention_maps": 1, "temporal_saliency": 2, "part_focus": 2, "alignment": 3}


def _app(app_path: str, set_key: str, method: str = "integrated_gradients") -> AppTest:
    at = AppTest.from_file(app_path, default_timeout=240)
    at.run()
    at.sidebar.selectbox(key="kdviz_set").set_value(set_key)
    at.sidebar.selectbox(key="kdviz_method").set_value("integrated_gradients").run()
    at.sidebar.number_input(key="kdviz_p_integrated_gradients_n_steps").set_value(4)
    at.sidebar.number_input(key="kdviz_null_copies").set_value(0)  # the null is tested in test_app_views
    at.run()
    if method != "integrated_gradients":
        at.sidebar.selectbox(key="kdviz_method").set_value(method).run()
    return at


def _open(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run()
    if page in ("part_focus", "alignment"):
        at.slider(key=f"{'pf' if page == 'part_focus' else 'al'}_n").set_value(2).run()
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _numbers(at: AppTest, key: str):
    """The page's per-model numbers table (the dataframe with an attention ρ column)."""
    del key
    tables = [d.value for d in at.dataframe if "attention ρ" in d.value.columns]
    assert len(tables) == 1
    return tables[0]


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first test to load a demo zoo; bounded, but a busy 2-core box needs > 300 s
@pytest.mark.parametrize("set_key", ["demo-image", "demo-series"])
def test_every_page_renders(app_path: str, require_zoo, set_key: str) -> None:
    require_zoo(set_key)
    at = _app(app_path, set_key, method="saliency")  # rendering is the point here; IG is tested below
    _ok(at)
    for page in PAGES[set_key]:
        _open(at, page)
        _ok(at)
        assert len(at.get("plotly_chart")) == CHARTS[page], page
        assert len(at.dataframe) >= 1, page
    # The other task's page explains itself instead of failing.
    other = "temporal_saliency" if set_key == "demo-image" else "attention_maps"
    at.switch_page(f"pages/{other}.py").run()
    assert not at.exception and at.info


@pytest.mark.parametrize("set_key, page, key", [("demo-image", "attention_maps", "att"),
                                                ("demo-series", "temporal_saliency", "ts")])
def test_widgets_change_the_numbers(app_path: str, require_zoo, set_key: str, page: str, key: str) -> None:
    require_zoo(set_key)
    at = _open(_app(app_path, set_key), page)
    _ok(at)
    table = f"{key}_numbers"
    before = _numbers(at, table)
    assert before["role"].iloc[0] == "teacher"
    # Input: another test input gives other attributions.
    at.number_input(key=f"{key}_pos").set_value(1).run()
    _ok(at)
    other_input = _numbers(at, table)
    assert not other_input["attention ρ"].equals(before["attention ρ"])
    # Method: saliency instead of IG.
    at.sidebar.selectbox(key="kdviz_method").set_value("saliency").run()
    _ok(at)
    other_method = _numbers(at, table)
    assert not other_method["attention ρ"].equals(other_input["attention ρ"])
    # α filter: only the teacher and the strongly distilled students remain.
    at.multiselect(key=f"{key}_alpha").set_value(["α=0.1"]).run()
    _ok(at)
    filtered = _numbers(at, table)
    assert len(filtered) < len(other_method)
    assert set(filtered["α"]) <= {"1", "0.1"} and filtered["role"].iloc[0] == "teacher"
    assert set(filtered["α"][filtered["role"] == "student"]) == {"0.1"}


def test_layout_change_recomputes_nothing(app_path: str, require_zoo) -> None:
    require_zoo("demo-image")
    from kdviz.ui import compute

    at = _open(_app(app_path, "demo-image"), "attention_maps")
    _ok(at)
    before = _numbers(at, "att_numbers")
    calls = []
    original = compute.compare_models
    compute.compare_models = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        at.radio(key="att_overlay").set_value("map alone").run()
        at.radio(key="att_scale").set_value("shared").run()
        at.toggle(key="att_diff").set_value(True).run()
    finally:
        compute.compare_models = original
    _ok(at)
    assert calls == []
    assert _numbers(at, "att_numbers").equals(before)


def test_no_uploaded_set_explains_itself(app_path: str) -> None:
    at = AppTest.from_file(app_path, default_timeout=120)
    at.run()
    at.sidebar.selectbox(key="kdviz_set").set_value("uploaded").run()
    for page in ("attention_maps", "temporal_saliency", "part_focus", "alignment"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("Models" in i.value for i in at.info), page


def test_page_with_an_injected_set(app_path: str, tiny_image_set) -> None:
    """The pages draw any ModelSet (here three random CIFAR ResNets on 8 digits), grid parts included."""
    at = AppTest.from_file(app_path, default_timeout=180)
    at.session_state["kdviz_upload_set"] = tiny_image_set
    at.run()
    at.sidebar.selectbox(key="kdviz_set").set_value("uploaded").run()
    at.sidebar.selectbox(key="kdviz_method").set_value("grad_cam").run()
    at.sidebar.radio(key="kdviz_parts_kind").set_value("grid").run()
    at.switch_page("pages/part_focus.py").run()
    at.slider(key="pf_n").set_value(3).run()
    _ok(at)
    assert len(at.get("plotly_chart")) == 2
    assert "grid:4x4" in at.caption[0].value
