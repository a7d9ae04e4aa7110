"""AppTest of the Alignment page on a 2-class set (issue 23, item 3): logit alignment is undefined there, so
the page says why and draws output (margin) alignment in the bar chart, the table and the scatter."""

from __future__ import annotations

import base64
import dataclasses
import json

import numpy as np
import plotly.graph_objects as go
from streamlit.testing.v1 import AppTest


def _decode(obj):
    """A figure's JSON with Plotly's typed arrays (``{"dtype": …, "bdata": base64}``) as numpy arrays."""
    if isinstance(obj, dict) and "bdata" in obj and "dtype" in obj:
        arr = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=obj["dtype"])
        shape = obj.get("shape")
        return arr.reshape([int(v) for v in str(shape).split(",")]) if shape else arr
    if isinstance(obj, dict):
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def test_two_classes_show_margin_alignment(app_path: str, tiny_image_set) -> None:
    import torch

    from kdviz.models import create_model

    models = []
    for i, m in enumerate(tiny_image_set.models):
        torch.manual_seed(10 + i)
        models.append(dataclasses.replace(m, module=create_model(m.arch, num_classes=2, in_channels=1).eval(),
                                          sha256=f"two-classes-{i}"))
    pool = dataclasses.replace(tiny_image_set.pool, labels=tiny_image_set.pool.labels % 2)
    mset = dataclasses.replace(tiny_image_set, models=tuple(models), class_names=("even", "odd"), pool=pool)
    at = AppTest.from_file(app_path, default_timeout=240)
    at.session_state["kdviz_upload_set"] = mset
    at.run()
    at.sidebar.selectbox(key="kdviz_set").set_value("uploaded").run()
    at.sidebar.selectbox(key="kdviz_method").set_value("saliency").run()
    at.sidebar.number_input(key="kdviz_null_copies").set_value(0).run()
    at.switch_page("pages/alignment.py").run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    assert any("undefined with 2 classes" in i.value for i in at.info)
    figures = [go.Figure(_decode(json.loads(c.proto.spec))) for c in at.get("plotly_chart")]
    charts = {f.layout.title.text: f for f in figures}
    bars = charts["output (margin) alignment (ρ over inputs)"]
    values = [v for t in bars.data if t.type == "bar" for v in t.y if v is not None]
    assert values and np.isfinite(np.asarray(values, dtype=float)).any()  # not an empty chart
    scatter = next(f for f in figures if str(f.layout.xaxis.title.text).startswith("output"))
    xs = [v for t in scatter.data for v in t.x if v is not None]
    assert xs and np.isfinite(np.asarray(xs, dtype=float)).any()
    tables = [d.value for d in at.dataframe]
    assert any(len(t.columns) >= 1 and "resnet8" in t.columns and (t != "—").to_numpy().any() for t in tables)
