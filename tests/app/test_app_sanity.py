"""The teacher randomisation test on the Alignment page (kdviz.ui.sanity_view): it runs on request, shows
the verdict and the curve the library computes for the same teacher, inputs, method and parts, and keeps the
result for a revisit."""

from __future__ import annotations

import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.test_app import _app, _ok


def test_alignment_page_runs_the_randomisation_test_on_request(app_path: str, require_zoo) -> None:
    require_zoo("demo-series")
    at = _app(app_path, "demo-series", method="saliency")
    at.switch_page("pages/alignment.py").run()
    at.slider(key="al_n").set_value(4).run()
    _ok(at)
    charts = len(at.get("plotly_chart"))
    run = [b for b in at.button if b.key == "al_rand_run"]
    assert len(run) == 1 and run[0].label == "Run the test on 4 inputs"
    run[0].click().run()
    _ok(at)
    shown = [m.value for m in (*at.success, *at.warning) if "randomised teacher" in m.value]
    assert len(shown) == 1, [m.value for m in (*at.success, *at.warning)]
    assert len(at.get("plotly_chart")) == charts + 1
    rho = float(re.search(r"mean ρ (-?[0-9.]+) \[", shown[0]).group(1))

    # The same test called directly: the zoo's teacher, the page's first 4 inputs, saliency, 10 segments.
    from kdviz.analysis.randomisation import RandomisationOptions, randomisation_test
    from kdviz.modalities.parts import label_parts
    from kdviz.ui.sets import demo_set

    mset = demo_set("demo-series")
    x = mset.model_input(mset.pool.x[:4])
    direct = randomisation_test(mset.teacher.module, mset.teacher.arch, x, part_labels=label_parts("segments:10", x),
                                method="saliency", options=RandomisationOptions(seeds=(20_000,), device="cpu"))
    assert rho == pytest.approx(direct.full_rho, abs=0.005)
    assert ("passes" in shown[0]) == (direct.verdict == "passes")
    assert np.isfinite(direct.cascading_means()).all() and direct.blocks == ("fc", "features")  # FCN: top first

    # A revisit shows the kept result without a button.
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/alignment.py").run()
    assert not [b for b in at.button if b.key == "al_rand_run"]
    assert any("randomised teacher" in m.value for m in (*at.success, *at.warning))


def test_an_unregistered_teacher_architecture_is_explained() -> None:
    """An uploaded teacher whose architecture kdviz does not know cannot be re-initialised: said, not raised."""
    at = AppTest.from_string(_UNKNOWN_ARCH_PAGE, default_timeout=120).run()
    _ok(at)
    assert any("not a registered one" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "t_rand_run"]


_UNKNOWN_ARCH_PAGE = '''
import numpy as np
import torch
from kdviz.analysis.compare import CompareOptions, NullOptions, compare_models
from kdviz.models import create_model
from kdviz.ui.sets import InputPool, ModelSet, SetModel
from kdviz.ui.sidebar import render_sidebar
from kdviz.ui.sanity_view import randomisation_section

settings = render_sidebar()
torch.manual_seed(0)
x = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
teacher = SetModel("t", "my_custom_net", None, create_model("resnet8", num_classes=10, in_channels=1).eval(),
                   "teacher", "ce", "sha-t")
student = SetModel("s", "resnet8", 0.5, create_model("resnet8", num_classes=10, in_channels=1).eval(),
                   "student", "kd", "sha-s")
pool = InputPool(x, np.zeros(2, dtype=np.int64), ("a", "b"))
mset = ModelSet("uploaded", "custom", "image", (teacher, student), (1, 28, 28), (0.0,), (1.0,),
                tuple("0123456789"), pool)
comp = compare_models(teacher, [student], x, method="saliency", parts="grid:4x4", k=3,
                      options=CompareOptions(device="cpu", null=NullOptions(copies=0)))
randomisation_section(mset, x, comp, settings, key="t")
'''
