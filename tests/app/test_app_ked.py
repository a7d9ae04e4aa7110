"""AppTest of the KED zoo (KED as in the paper): pages work on it, and with superfeature parts the explaining
teacher and students are explained by their own branches next to masked explanations of the KD students."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "pages").glob("*.py") if p.stem != "token_rationales")
SECTION_PAGES = {"part_focus": "pf", "alignment": "al"}


@pytest.mark.slow
def test_ked_zoo_pages_with_superfeature_parts(app_path: str, require_zoo) -> None:
    require_zoo("demo-ked")
    at = AppTest.from_file(app_path, default_timeout=300)
    at.run()
    at.sidebar.selectbox(key="kdviz_set").set_value("demo-ked").run()
    at.sidebar.selectbox(key="kdviz_method").set_value("saliency").run()
    at.sidebar.radio(key="kdviz_parts_kind").set_value("superfeatures").run()
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        if page in SECTION_PAGES:
            at.slider(key=f"{SECTION_PAGES[page]}_n").set_value(2).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        if page in SECTION_PAGES:
            key = SECTION_PAGES[page]
            assert any("explaining" in c.value for c in at.caption), page
            models = at.multiselect(key=f"{key}_sf_models").value
            assert models[0].startswith("teacher_ked_mlp"), models
            assert any("_kd_" in m for m in models) and any("_ked_" in m for m in models), models
