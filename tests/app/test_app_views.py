"""AppTest of issue 11's dashboard behaviour on small injected sets (random CIFAR ResNets on MNIST digits):
edge-sized sets on every page, attributions reused when only parts or k change, the Report's result per
set, views in the URL, presentation mode, tables that show every row.
"""

from __future__ import annotations

import dataclasses
import json
import uuid

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from kdviz.models import create_model

PAGES = ["models", "attention_maps", "temporal_saliency", "part_focus", "alignment", "report"]


def _unique(mset):
    """The set with fresh model hashes, so no cache entry from another test can answer for it."""
    tag = uuid.uuid4().hex[:8]
    return dataclasses.replace(mset, models=tuple(dataclasses.replace(m, sha256=f"{m.sha256}-{tag}")
                                                  for m in mset.models))


def _app(app_path: str, mset, *, method: str = "saliency", nulls: int = 0) -> AppTest:
    at = AppTest.from_file(app_path, default_timeout=240)
    at.session_state["kdviz_upload_set"] = mset
    at.run()
    at.sidebar.selectbox(key="kdviz_set").set_value("uploaded").run()
    at.sidebar.selectbox(key="kdviz_method").set_value(method).run()
    at.sidebar.number_input(key="kdviz_null_copies").set_value(nulls).run()
    return at


def _ok(at: AppTest, where: str = "") -> None:
    assert not at.exception, (where, [e.value for e in at.exception])
    assert not at.error, (where, [e.value for e in at.error])


def _edge_sets(tiny_image_set):
    """One input; one student; one class among the inputs."""
    pool = tiny_image_set.pool
    one_input = dataclasses.replace(tiny_image_set, pool=dataclasses.replace(
        pool, x=pool.x[:1], labels=pool.labels[:1], names=pool.names[:1]))
    one_student = dataclasses.replace(tiny_image_set, models=tiny_image_set.models[:2])
    cls = int(pool.labels[0])
    same = np.flatnonzero(pool.labels == cls)
    same = np.r_[same, same][:3]  # three inputs of one class
    one_class = dataclasses.replace(tiny_image_set, pool=dataclasses.replace(
        pool, x=pool.x[same], labels=pool.labels[same], names=tuple(f"#{i}" for i in range(len(same)))))
    return {"one input": one_input, "one student": one_student, "one class": one_class}


@pytest.mark.slow
@pytest.mark.parametrize("case", ["one input", "one student", "one class"])
def test_every_page_on_edge_sized_sets(app_path: str, tiny_image_set, case: str) -> None:
    mset = _edge_sets(tiny_image_set)[case]
    at = _app(app_path, mset, nulls=1 if case == "one student" else 0)
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        _ok(at, f"{case}: {page}")
        if page in ("attention_maps", "part_focus", "alignment"):
            assert at.get("plotly_chart"), (case, page)
    if case == "one class":  # "by class" offers the one class and still draws
        at.switch_page("pages/alignment.py").run()
        at.radio(key="al_mode").set_value("by class").run()
        _ok(at, "by class")
        assert len(at.selectbox(key="al_cls").options) == len(mset.class_names)


def test_parts_or_k_change_reuses_every_attribution(app_path: str, tiny_image_set, monkeypatch) -> None:
    from kdviz.ui import compute

    mset = _unique(tiny_image_set)
    calls: list[str] = []
    original = compute.attribute
    monkeypatch.setattr(compute, "attribute", lambda module, x, **kw: calls.append(kw["method"]) or original(module, x, **kw))
    at = _app(app_path, mset)
    at.switch_page("pages/attention_maps.py").run()
    _ok(at)
    assert calls == ["saliency"] * len(mset.models)  # model by model, each once
    before = at.dataframe[0].value["focus ratio"].tolist()
    calls.clear()
    at.sidebar.number_input(key="kdviz_k").set_value(2).run()
    at.sidebar.slider(key="kdviz_slic_n").set_value(20).run()
    _ok(at)
    assert calls == []  # parts and k only change metrics
    assert at.dataframe[0].value["focus ratio"].tolist() != before
    at.sidebar.selectbox(key="kdviz_method").set_value("input_x_gradient").run()
    assert calls == ["input_x_gradient"] * len(mset.models)
    calls.clear()
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/attention_maps.py").run()  # a revisit is a cache hit
    assert calls == []


def test_url_holds_the_view_and_restores_it(app_path: str, tiny_image_set) -> None:
    at = _app(app_path, tiny_image_set)
    at.switch_page("pages/attention_maps.py").run()
    at.sidebar.number_input(key="kdviz_k").set_value(3).run()
    at.radio(key="att_overlay").set_value("map alone").run()
    at.run()  # the page writes its widgets' values on the run after a change
    url = {k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()}
    assert url["k"] == "3" and url["method"] == "saliency" and url["set"] == "uploaded"
    assert url["att_overlay"] == "map alone"
    # A new session opened from that link shows the same view.
    link = AppTest.from_file(app_path, default_timeout=240)
    link.session_state["kdviz_upload_set"] = tiny_image_set
    for key, value in url.items():
        link.query_params[key] = value
    link.switch_page("pages/attention_maps.py").run()
    _ok(link)
    assert link.sidebar.number_input(key="kdviz_k").value == 3
    assert link.sidebar.selectbox(key="kdviz_method").value == "saliency"
    assert link.radio(key="att_overlay").value == "map alone"
    # A link with nonsense in it opens with the defaults instead of failing.
    bad = AppTest.from_file(app_path, default_timeout=240)
    bad.query_params["k"] = "many"
    bad.query_params["method"] = "no_such_method"
    bad.run()
    _ok(bad)
    assert bad.sidebar.number_input(key="kdviz_k").value == 5


def test_an_address_changed_from_outside_wins_over_the_session(app_path: str, tiny_image_set) -> None:
    """What the back button does (Streamlit reruns with the older query string): the sidebar and the page's
    choices follow the address; one run writes one complete query (no stale method parameters)."""
    at = _app(app_path, tiny_image_set)
    at.switch_page("pages/attention_maps.py").run()
    at.radio(key="att_overlay").set_value("map alone").run()
    at.sidebar.number_input(key="kdviz_k").set_value(3).run()
    older = {k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()}
    assert older["k"] == "3" and older["att_overlay"] == "map alone"
    at.sidebar.number_input(key="kdviz_k").set_value(4).run()
    at.radio(key="att_overlay").set_value("overlay on the input").run()
    for key, value in older.items():  # "back": the address holds the older view again
        at.query_params[key] = value
    at.run()
    _ok(at)
    assert at.sidebar.number_input(key="kdviz_k").value == 3
    assert at.radio(key="att_overlay").value == "map alone"
    at.sidebar.selectbox(key="kdviz_method").set_value("integrated_gradients").run()
    url = {k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()}
    assert url["method"] == "integrated_gradients" and "p_n_steps" in url and "p_abs" not in url


def test_presentation_mode_and_full_tables(app_path: str, tiny_image_set) -> None:
    at = _app(app_path, tiny_image_set)
    at.switch_page("pages/attention_maps.py").run()
    config = json.loads(at.get("plotly_chart")[0].proto.config)
    assert config["toImageButtonOptions"]["format"] == "png" and "width" not in config["toImageButtonOptions"]
    table = at.dataframe[0]
    assert "correct" in table.value.columns and set(table.value["correct"]) <= {"✓", "✗"}  # one input: ✓/✗
    at.sidebar.toggle(key="kdviz_present").set_value(True).run()
    at.sidebar.radio(key="kdviz_figure_format").set_value("svg").run()
    _ok(at)
    chart = at.get("plotly_chart")[0]
    options = json.loads(chart.proto.config)["toImageButtonOptions"]
    # the grid is laid out in pixels: drawn at its own size and scaled up as a whole to 1920 px (issue 23, item 8)
    assert options["format"] == "svg" and options["width"] * options["scale"] == pytest.approx(1920)
    assert json.loads(chart.proto.spec)["layout"]["font"]["size"] >= 16


def test_report_result_belongs_to_its_set(app_path: str, tiny_image_set) -> None:
    first = _unique(tiny_image_set)
    at = _app(app_path, first)
    at.switch_page("pages/report.py").run()
    at.radio(key="rp_source").set_value("Run an evaluation").run()
    at.number_input(key="rp_n").set_value(2).run()
    at.button(key="rp_run").click().run()
    _ok(at)
    assert any("2 test inputs" in i.value for i in at.info)
    at.session_state["kdviz_upload_set"] = _unique(dataclasses.replace(tiny_image_set, models=tiny_image_set.models[:2]))
    at.run()
    _ok(at)
    assert not any("test inputs ×" in i.value for i in at.info)  # the other set's result is not shown
    at.session_state["kdviz_upload_set"] = first
    at.run()
    assert any("2 test inputs × 3 models" in i.value for i in at.info)  # its own comes back


def test_an_image_with_fewer_parts_than_k_uses_what_it_has(app_path: str, tiny_image_set) -> None:
    """Colour noise gives SLIC a single superpixel (measured: 1 for 3×32×32 noise at n=50): the page says so
    and uses k = 1 instead of failing with "k=5 exceeds the number of parts"."""
    from kdviz.modalities.parts import slic_labels

    noise = np.random.default_rng(0).random((1, 3, 32, 32)).astype(np.float32)
    assert slic_labels(noise, n_segments=50).max() == 0  # the premise: one part
    models = tuple(dataclasses.replace(m, module=create_model(m.arch, num_classes=10, in_channels=3).eval(),
                                       sha256=f"rgb-{m.sha256}") for m in tiny_image_set.models)
    pool = dataclasses.replace(tiny_image_set.pool, x=noise, labels=tiny_image_set.pool.labels[:1], names=("noise",))
    rgb = dataclasses.replace(tiny_image_set, models=models, pool=pool, input_shape=(3, 32, 32),
                              mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    at = _app(app_path, rgb)
    at.switch_page("pages/attention_maps.py").run()
    _ok(at)
    assert any("only 1 part" in w.value and "k = 1" in w.value for w in at.warning)
    assert at.get("plotly_chart")
