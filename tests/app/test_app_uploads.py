"""AppTest of the upload flow: torchvision checkpoints + a png, and a bad file that must not break the rest."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from kdviz.models import create_model


def _state_dict_bytes(seed: int) -> bytes:
    torch.manual_seed(seed)
    buf = io.BytesIO()
    torch.save(create_model("resnet18", num_classes=10, in_channels=3).state_dict(), buf)
    return buf.getvalue()


def _png() -> bytes:
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()[::8, ::8]).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return {"resnet18_teacher.pth": _state_dict_bytes(0), "resnet18_alpha0.5.pth": _state_dict_bytes(1),
            "broken.pth": np.random.default_rng(0).bytes(2048), "astronaut.png": _png()}


def test_upload_flow_with_a_bad_file(files: dict[str, bytes], app_path: str) -> None:
    at = AppTest.from_file(app_path, default_timeout=180)
    at.run()
    at.switch_page("pages/models.py").run()
    ckpts = [(n, files[n], "application/octet-stream") for n in ("resnet18_teacher.pth", "resnet18_alpha0.5.pth",
                                                                  "broken.pth")]
    at.file_uploader(key="up_ckpt").set_value(ckpts)
    at.file_uploader(key="up_data").set_value(("astronaut.png", files["astronaut.png"], "image/png"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert sum("broken.pth" in e for e in errors) == 1, errors
    assert not any("resnet18" in e for e in errors), errors
    # The editor is prefilled from the file names and the weights.
    assert "kdviz_upload_set" in at.session_state
    uset = at.session_state["kdviz_upload_set"]
    assert [m.id for m in uset.models] == ["resnet18_teacher", "resnet18_alpha0.5"]
    assert uset.teacher.role == "teacher" and uset.students[0].alpha == 0.5 and uset.teacher.arch == "resnet18"
    assert uset.mean == pytest.approx((0.485, 0.456, 0.406))  # ImageNet defaults for torchvision models
    assert len(uset.pool) == 1
    # Smaller input size keeps the test cheap; then explain the png with the uploaded models.
    at.number_input(key="up_h_resnet18").set_value(64)
    at.number_input(key="up_w_resnet18").set_value(64)
    at.run()
    assert at.session_state["kdviz_upload_set"].input_shape == (3, 64, 64)
    at.button(key="up_use").click().run()
    assert at.session_state["kdviz_set"] == "uploaded"
    at.sidebar.selectbox(key="kdviz_method").set_value("integrated_gradients").run()
    at.sidebar.number_input(key="kdviz_p_integrated_gradients_n_steps").set_value(4)
    at.switch_page("pages/attention_maps.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 1
    shown = at.dataframe[0].value
    assert list(shown["model"]) == ["resnet18_teacher", "resnet18_alpha0.5"]


def test_hostile_uploads_show_errors_and_the_rest_keeps_working(files: dict[str, bytes], app_path: str,
                                                                 tmp_path) -> None:
    """Every hostile checkpoint and broken image of tests/hostile_inputs.py, uploaded next to good files."""
    from tests import hostile_inputs

    marker = tmp_path / "pwned"
    # The uploader itself refuses other extensions (e.g. .pkl), so those get an accepted one.
    bad_ckpts = [(f"{c.id}_{c.filename}" + ("" if c.filename.endswith((".pth", ".pt", ".ckpt", ".safetensors"))
                                          else ".pth"), c.build(marker)) for c in hostile_inputs.cases("checkpoint")]
    bad_images = [(f"{c.id}_{c.filename}", c.build(marker)) for c in hostile_inputs.cases("image")
                  if c.error is not None and not c.filename.endswith(".zip")]
    at = AppTest.from_file(app_path, default_timeout=180)
    at.run()
    at.switch_page("pages/models.py").run()
    at.file_uploader(key="up_ckpt").set_value(
        [("resnet18_teacher.pth", files["resnet18_teacher.pth"], "application/octet-stream")]
        + [(n, b, "application/octet-stream") for n, b in bad_ckpts])
    at.file_uploader(key="up_data").set_value(
        [("astronaut.png", files["astronaut.png"], "image/png")] + [(n, b, "image/png") for n, b in bad_images])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    for name, _ in bad_ckpts + bad_images:
        assert name in errors, name
    assert not marker.exists()  # nothing was unpickled
    uset = at.session_state["kdviz_upload_set"]
    assert [m.id for m in uset.models] == ["resnet18_teacher"] and list(uset.pool.names) == ["astronaut.png"]


def test_zoo_zip_upload(app_path: str, gunpoint_zoo_zip: bytes) -> None:
    """A zoo folder zipped (zoo.json + safetensors) becomes the uploaded set, with its dataset's inputs."""
    at = AppTest.from_file(app_path, default_timeout=180)
    at.run()
    at.switch_page("pages/models.py").run()
    at.file_uploader(key="up_ckpt").set_value(("gunpoint_zoo.zip", gunpoint_zoo_zip, "application/zip"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    uset = at.session_state["kdviz_upload_set"]
    assert uset.task == "timeseries" and uset.teacher.role == "teacher" and len(uset.students) >= 1
    assert uset.pool is not None and uset.pool.x.shape[1:] == tuple(uset.input_shape)
