"""AppTest of every page with ``superfeatures:M`` parts on both demo zoos (the labelling stored with the zoo).

Cheap settings as in test_app.py: saliency attributions, two inputs on the many-input pages.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "pages").glob("*.py"))
SECTION_PAGES = {"part_focus": "pf", "alignment": "al"}


def _superfeature_app(app_path: str, set_key: str) -> AppTest:
    from kdviz.ui.superfeatures import available_m

    if not available_m(key=set_key):
        pytest.skip(f"{set_key} has no stored superfeatures")
    at = AppTest.from_file(app_path, default_timeout=300)
    at.run()
    at.sidebar.selectbox(key="kdviz_set").set_value(set_key).run()
    at.sidebar.selectbox(key="kdviz_method").set_value("saliency").run()
    if set_key == "demo-image":
        at.sidebar.radio(key="kdviz_parts_kind").set_value("superfeatures").run()
    else:
        at.sidebar.toggle(key="kdviz_sf_series").set_value(True).run()
    return at


@pytest.mark.slow
@pytest.mark.parametrize("set_key", ["demo-image", "demo-series"])
def test_every_page_works_with_superfeature_parts(app_path: str, require_zoo, set_key: str) -> None:
    require_zoo(set_key)
    at = _superfeature_app(app_path, set_key)
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        if page in SECTION_PAGES:
            at.slider(key=f"{SECTION_PAGES[page]}_n").set_value(2).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        if page in SECTION_PAGES:
            key = SECTION_PAGES[page]
            assert any("superfeatures:" in c.value for c in at.caption), page  # the page names its parts
            charts = at.get("plotly_chart")
            # the section's two figures: the labelling over the input and the side-by-side explanations
            assert len(charts) >= 2, page
            models = at.multiselect(key=f"{key}_sf_models").value
            assert models[0].startswith("teacher") and any("ked" in m for m in models), models
