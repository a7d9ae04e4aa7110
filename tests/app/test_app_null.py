"""AppTest of the null as a distribution in the dashboard (issue 19): the sidebar opens with the zoo's
recommended method and badges one that failed the randomisation test there; the Alignment page says how many
inputs or seeds would detect an excess of 0.1; captions mark ρ excess with p ≤ 0.05."""

from __future__ import annotations

import json
import shutil

from streamlit.testing.v1 import AppTest


def _errors(at: AppTest) -> list:
    return [e.value for e in at.exception] + [e.value for e in at.error]


def test_sidebar_defaults_to_the_recommendation_and_badges_a_failed_method(app_path, tmp_path, monkeypatch):
    from kdviz.ui.sets import ZOO_ROOT_ENV, demo_folder

    zoo = tmp_path / "gunpoint"
    shutil.copytree(demo_folder("demo-series"), zoo)
    obj = json.loads((zoo / "zoo.json").read_text())
    obj["recommended"] = {"method": "deeplift", "params": {"baseline": "zeros"}, "parts": "segments:10", "table": [
        {"method": "deeplift", "params": "baseline=zeros", "parts": "segments:10", "verdict": "passes"},
        {"method": "saliency", "params": "", "parts": "segments:10", "verdict": "fails",
         "teacher_randomised_rho": 0.8}]}
    (zoo / "zoo.json").write_text(json.dumps(obj))
    monkeypatch.setenv(ZOO_ROOT_ENV, str(tmp_path))
    at = AppTest.from_file(app_path, default_timeout=240)
    at.session_state["kdviz_set"] = "demo-series"
    at.session_state["kdviz_sidebar_saved"] = {"kdviz_set": "demo-series"}
    at.run()
    assert not _errors(at), _errors(at)
    assert at.sidebar.selectbox(key="kdviz_method").value == "deeplift"  # the zoo's recommendation
    assert at.sidebar.number_input(key="kdviz_null_copies").value == 19
    badge = "fails the randomisation test on this data"
    assert not any(badge in m.value for m in at.sidebar.markdown)
    at.sidebar.selectbox(key="kdviz_method").set_value("saliency").run()
    assert any(badge in m.value for m in at.sidebar.markdown), [m.value for m in at.sidebar.markdown]


def test_alignment_page_reports_power_with_the_null(app_path, tiny_image_set):
    at = AppTest.from_file(app_path, default_timeout=300)
    at.session_state["kdviz_upload_set"] = tiny_image_set
    at.run()
    at.sidebar.selectbox(key="kdviz_set").set_value("uploaded").run()
    at.sidebar.selectbox(key="kdviz_method").set_value("saliency").run()
    at.switch_page("pages/alignment.py").run()
    assert not _errors(at), _errors(at)
    assert any(c.value.startswith("Power: to detect an excess of 0.1") for c in at.caption), \
        [c.value for c in at.caption]
