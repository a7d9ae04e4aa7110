"""Two browser sessions uploading different files under the same names never see each other's models or
inputs: every cache is keyed by content hash, session state is per session."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from kdviz.models import create_model

APP = str(Path(__file__).resolve().parents[2] / "app.py")
OCTET = "application/octet-stream"


def _checkpoint(arch: str, favourite: int) -> bytes:
    """A tiny CIFAR ResNet whose bias makes it predict ``favourite`` whatever the input."""
    torch.manual_seed(favourite)
    state = create_model(arch, num_classes=10, in_channels=1).state_dict()
    state["fc.bias"] = torch.zeros(10)
    state["fc.bias"][favourite] = 1e3
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (16, 16), value).save(buf, format="PNG")
    return buf.getvalue()


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.sidebar.selectbox(key="kdviz_method").set_value("saliency").run()
    return at.switch_page("pages/models.py").run()


def _upload(at: AppTest, model: bytes, image: bytes) -> None:
    at.file_uploader(key="up_ckpt").set_value([("model.pth", model, OCTET)])
    at.file_uploader(key="up_data").set_value([("input.png", image, "image/png")])
    at.run()


def test_same_names_different_files_stay_apart() -> None:
    """Both sessions stay open and their runs interleave (AppTest drives one script run at a time per
    process: its runtime is a singleton, so truly parallel runs are not possible in one pytest process)."""
    files = {"a": (_checkpoint("resnet8", 3), _png(0)), "b": (_checkpoint("resnet14", 7), _png(255))}
    sessions = {name: _open() for name in files}
    for name, at in sessions.items():
        _upload(at, *files[name])
    for name, at in sessions.items():
        assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
        model, image = files[name]
        uset = at.session_state["kdviz_upload_set"]
        assert uset.teacher.sha256 == hashlib.sha256(model).hexdigest()
        assert uset.teacher.arch == {"a": "resnet8", "b": "resnet14"}[name]
        assert float(uset.pool.x.mean()) == {"a": 0.0, "b": 1.0}[name]
        at.number_input(key="up_h_resnet8" if name == "a" else "up_h_resnet14").set_value(16)
        at.number_input(key="up_w_resnet8" if name == "a" else "up_w_resnet14").set_value(16)
        at.run()
        at.button(key="up_use").click().run()
        table = at.dataframe[0].value  # the models table now shows the uploaded set
        assert list(table["architecture"]) == [uset.teacher.arch] and list(table["id"]) == ["model"]

    def explain(at: AppTest) -> AppTest:
        at.switch_page("pages/attention_maps.py").run()
        at.radio(key="att_mode").set_value("uploaded").run()
        return at

    for at in sessions.values():
        explain(at)
    for name, at in sessions.items():
        assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
        shown = next(d.value for d in at.dataframe if "prediction" in d.value.columns)  # the numbers table
        assert list(shown["model"]) == ["model"]
        assert list(shown["prediction"]) == [{"a": "3", "b": "7"}[name]], shown
        assert at.session_state["kdviz_upload_set"].pool.names == ("input.png",)
        assert np.all(at.session_state["kdviz_upload_set"].pool.x == {"a": 0.0, "b": 1.0}[name])
