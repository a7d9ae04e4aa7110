"""Every zip, image, series and checkpoint case of tests/hostile_inputs.py through the Models page, the way a
user uploads it: an error naming the problem, no exception, and the demo zoo still draws afterwards.

One AppTest per kind; files are grouped into one upload wherever the uploader takes several. The outcome
shown for each case is collected in ``OUTCOMES`` (printed with ``-s``) for the issue's closing note.
"""

from __future__ import annotations

import io
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit import config
from streamlit.testing.v1 import AppTest

from tests import hostile_inputs
from tests.hostile_inputs import HostileCase

OCTET = "application/octet-stream"
OUTCOMES: dict[str, str] = {}

# What the UI shows where it differs from the library case (the UI uses the default limits and never
# interpolates missing values).
UI_MATCH = {
    "zip-bomb-total": "zip bomb",  # the default ratio limit refuses it first
    "zip-too-many-files": "zoo.json",  # 50 entries is within the default 10,000: it is simply not a zoo
    "csv-nan-interpolated": "line 2 has missing values",
}
UI_MATCH_IMAGEFOLDER = {**UI_MATCH, "zip-too-many-files": "no class folders"}


def _upload_name(case: HostileCase) -> str:
    """The uploaders refuse other extensions (e.g. .pkl), so those get an accepted one."""
    name = f"{case.id}_{case.filename}"
    return name if name.endswith((".pth", ".pt", ".ckpt", ".safetensors", ".zip")) else name + ".pth"


@pytest.fixture(scope="module")
def marker(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile") / "pwned"


@pytest.fixture(scope="module")
def built(marker: Path) -> dict[str, bytes]:
    return {c.id: c.build(marker) for c in hostile_inputs.CASES if c.kind != "path"}


def _app(set_key: str = "demo-image", method: str = "saliency") -> AppTest:
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=180)
    at.run()
    at.sidebar.selectbox(key="kdviz_set").set_value(set_key).run()
    at.sidebar.selectbox(key="kdviz_method").set_value(method).run()
    at.switch_page("pages/models.py").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    return at


def _messages(at: AppTest) -> list[str]:
    assert not at.exception, [e.value for e in at.exception]
    return [e.value for e in at.error]


def _record(case_id: str, route: str, errors: list[str], name: str, fragment: str) -> None:
    hits = [e for e in errors if name in e and fragment in e]
    assert hits, (case_id, route, fragment, errors)
    OUTCOMES[f"{case_id} ({route})"] = "error shown: " + hits[0][:160].replace("\n", " ")


def _demo_still_draws(at: AppTest, page: str) -> None:
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) >= 1


@contextmanager
def _upload_limit_mb(mb: int):
    before = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", mb)
    try:
        yield
    finally:
        config.set_option("server.maxUploadSize", before)


@pytest.fixture
def workspaces(monkeypatch) -> list[Path]:
    """Every per-upload temporary folder the dashboard makes (zoo zips and ImageFolder zips)."""
    import kdviz.io.images
    import kdviz.io.untrusted

    made: list[Path] = []
    real = kdviz.io.untrusted.upload_workspace

    @contextmanager
    def recording(**kwargs):
        with real(**kwargs) as folder:
            made.append(folder)
            yield folder

    monkeypatch.setattr(kdviz.io.untrusted, "upload_workspace", recording)
    monkeypatch.setattr(kdviz.io.images, "upload_workspace", recording)
    return made


def _image_folder_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls, value in (("zero", 20), ("one", 220)):
            png = io.BytesIO()
            Image.new("L", (8, 8), value).save(png, format="PNG")
            zf.writestr(f"digits/{cls}/a.png", png.getvalue())
    return buf.getvalue()


def test_hostile_zips_as_zoo_and_as_image_folder(built, marker, workspaces, require_zoo, gunpoint_zoo_zip) -> None:
    """Each zip goes in as a zoo (checkpoint uploader) and as an ImageFolder (inputs) in the same run."""
    require_zoo("demo-image")
    at = _app()
    for case in hostile_inputs.cases("zip") + [c for c in hostile_inputs.cases("image") if c.filename.endswith(".zip")]:
        name = _upload_name(case)
        as_zoo = case.kind == "zip"
        at.file_uploader(key="up_ckpt").set_value([(name, built[case.id], "application/zip")] if as_zoo else [])
        at.file_uploader(key="up_data").set_value([(name, built[case.id], "application/zip")])
        at.run()
        errors = _messages(at)
        if as_zoo:
            _record(case.id, "zoo zip", errors, name, UI_MATCH.get(case.id, case.match))
        _record(case.id, "ImageFolder zip", errors, f"'{name}': ", UI_MATCH_IMAGEFOLDER.get(
            case.id, case.match))
    # A file above server.maxUploadSize (read from Streamlit's config) is refused by kdviz's own check too.
    with _upload_limit_mb(1):
        big = bytes(1_500_000)
        at.file_uploader(key="up_ckpt").set_value([("big_zoo.zip", big, "application/zip")])
        at.file_uploader(key="up_data").set_value([("big_folder.zip", big, "application/zip")])
        at.run()
        errors = _messages(at)
        for name in ("big_zoo.zip", "big_folder.zip"):
            _record("too-large-" + name, "upload limit 1 MB", errors, name, "the limit is 1.0 MiB")
    assert not marker.exists()
    # Good zips afterwards still work, and every temporary folder is gone.
    at.file_uploader(key="up_ckpt").set_value([("gunpoint_zoo.zip", gunpoint_zoo_zip, "application/zip")])
    at.file_uploader(key="up_data").set_value([("digits.zip", _image_folder_zip(), "application/zip")])
    at.run()
    assert not _messages(at)
    assert any("2 uploaded input(s) ready" in s.value for s in at.success), [s.value for s in at.success]
    assert at.session_state["kdviz_upload_set"].task == "timeseries"
    assert len(workspaces) >= 10 and not any(p.exists() for p in workspaces), workspaces
    _demo_still_draws(at, "attention_maps")


def test_hostile_images_then_checkpoints(built, marker, require_zoo) -> None:
    """All single images in one upload (checked against the MNIST demo), then all hostile checkpoints."""
    require_zoo("demo-image")
    at = _app()
    images = [c for c in hostile_inputs.cases("image") if not c.filename.endswith(".zip")]
    at.file_uploader(key="up_data").set_value([(_upload_name(c).removesuffix(".pth"), built[c.id], "image/png")
                                               for c in images])
    at.run()
    errors = _messages(at)
    accepted = [c for c in images if c.error is None]
    for case in images:
        name = f"{case.id}_{case.filename}"
        if case.error is None:
            assert not any(name in e for e in errors), (name, errors)
            OUTCOMES[f"{case.id} (image input)"] = "accepted (converted to greyscale 28×28)"
        else:
            _record(case.id, "image input", errors, name, case.match)
    assert any(f"{len(accepted)} uploaded input(s) ready" in s.value for s in at.success)

    ckpts = hostile_inputs.cases("checkpoint")
    at.file_uploader(key="up_ckpt").set_value([(_upload_name(c), built[c.id], OCTET) for c in ckpts])
    at.run()
    errors = _messages(at)
    for case in ckpts:
        fragment = "KDVIZ_TRUST_PROGRAMS=1" if "torchscript" in case.id else case.match
        _record(case.id, "checkpoint", errors, _upload_name(case), fragment)
    assert not marker.exists()  # nothing was unpickled
    _demo_still_draws(at, "attention_maps")


def _good_series_csv() -> bytes:
    t = np.linspace(0, 6, 150)
    return "\n".join(",".join(f"{v:.4f}" for v in np.sin(t + k)) for k in range(2)).encode()


def test_hostile_series_with_the_time_series_demo(built, marker, require_zoo) -> None:
    """All series files in one upload next to a good one (GunPoint: 1 channel, length 150)."""
    require_zoo("demo-series")
    at = _app("demo-series")
    series = [c for c in hostile_inputs.cases("series") if c.filename.endswith((".csv", ".npy", ".ts"))]
    at.file_uploader(key="up_data").set_value(
        [("good.csv", _good_series_csv(), "text/csv")] + [(c.filename, built[c.id], OCTET) for c in series])
    at.run()
    errors = _messages(at)
    for case in series:
        _record(case.id, "series input", errors, case.filename, UI_MATCH.get(case.id, case.match))
    assert any("2 uploaded input(s) ready" in s.value for s in at.success), [s.value for s in at.success]
    for case in hostile_inputs.cases("series"):
        if case not in series:  # e.g. .xlsx: the uploader takes any name (CIFAR's python batches have no
            # extension), so kdviz's own format check refuses it, naming the accepted formats
            at.file_uploader(key="up_data").set_value((case.filename, built[case.id], OCTET))
            at.run()
            _record(case.id, "series input", _messages(at), case.filename, "not an input format kdviz reads")
    assert not marker.exists()
    _demo_still_draws(at, "temporal_saliency")
    # The good series from the first upload is still there? No: the last upload replaced it. Upload it again
    # and explain it with the demo zoo.
    at.switch_page("pages/models.py").run()
    at.file_uploader(key="up_data").set_value([("good.csv", _good_series_csv(), "text/csv")])
    at.run()
    at.switch_page("pages/temporal_saliency.py").run()
    at.radio(key="ts_mode").set_value("uploaded").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert len(at.get("plotly_chart")) >= 1


def _program_bytes() -> bytes:
    import warnings

    import torch

    from kdviz.models import create_model

    torch.manual_seed(0)
    module = create_model("resnet8", num_classes=10, in_channels=1).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(module, torch.zeros(1, 1, 28, 28)), buf)
    return buf.getvalue()


@pytest.mark.parametrize("trusted", [False, True], ids=["default-refused", "operator-allows"])
def test_torchscript_upload_needs_the_operator(trusted: bool, monkeypatch, require_zoo) -> None:
    """A TorchScript program is refused with the reason and the switch; with KDVIZ_TRUST_PROGRAMS=1 it loads."""
    require_zoo("demo-image")
    if trusted:
        monkeypatch.setenv("KDVIZ_TRUST_PROGRAMS", "1")
    else:
        monkeypatch.delenv("KDVIZ_TRUST_PROGRAMS", raising=False)
    at = _app()
    at.file_uploader(key="up_ckpt").set_value([("scripted_teacher.pt", _program_bytes(), OCTET)])
    at.run()
    errors = _messages(at)
    if not trusted:
        assert len(errors) == 1 and "scripted_teacher.pt" in errors[0], errors
        assert "programs run their own code" in errors[0] and "KDVIZ_TRUST_PROGRAMS=1" in errors[0]
        assert "kdviz_upload_set" not in at.session_state
        OUTCOMES["torchscript upload (default)"] = "error shown: " + errors[0][:160]
        return
    assert not errors
    status = [m.value for m in at.markdown if "scripted_teacher.pt" in m.value]
    assert status and status[0].startswith(":material/check_circle:") and "runs its own code" in status[0], status
    uset = at.session_state["kdviz_upload_set"]
    assert uset.teacher.arch == "torchscript" and uset.task == "image" and uset.input_shape[0] == 1
    OUTCOMES["torchscript upload (KDVIZ_TRUST_PROGRAMS=1)"] = "loaded: " + status[0][:160]


def test_misbehaving_models_are_named_and_the_rest_draws(tiny_image_set, app_path: str) -> None:
    """An injected set with a student whose forward raises, one with NaN outputs, one RGB model fed grey
    digits and one with 5 classes: each is named in a warning, the others are drawn."""
    import dataclasses

    import torch
    from torch import nn

    from kdviz.models import create_model
    from kdviz.ui.sets import SetModel

    class Raises(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom in forward")

    class NaNs(nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 10), float("nan"))

    bad = {"raises": Raises(), "nan": NaNs(), "rgb": create_model("resnet8", num_classes=10, in_channels=3),
           "five": create_model("resnet8", num_classes=5, in_channels=1)}
    mset = dataclasses.replace(tiny_image_set, models=tiny_image_set.models + tuple(
        SetModel(k, "custom", 0.5, m.eval(), "student", "kd", f"sha-{k}") for k, m in bad.items()))
    at = AppTest.from_file(app_path, default_timeout=180)
    at.session_state["kdviz_upload_set"] = mset
    at.run()
    at.sidebar.selectbox(key="kdviz_set").set_value("uploaded").run()
    at.sidebar.selectbox(key="kdviz_method").set_value("saliency").run()
    at.sidebar.radio(key="kdviz_parts_kind").set_value("grid").run()
    at.switch_page("pages/attention_maps.py").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    warnings = [w.value for w in at.warning]
    expected = {"raises": "boom in forward", "nan": "NaN or infinite outputs", "rgb": "grey vs RGB",
                "five": "5 outputs but the teacher has 10"}
    for mid, fragment in expected.items():
        hits = [w for w in warnings if w.startswith(f"Left out {mid}:") and fragment in w]
        assert hits, (mid, warnings)
        OUTCOMES[f"model-{mid} (Attention maps page)"] = "left out with a warning: " + hits[0][:160]
    assert len(at.get("plotly_chart")) == 1
    assert list(at.dataframe[-1].value["model"]) == [m.id for m in tiny_image_set.models]
    # A teacher whose class count does not match the set's classes: an error, not a traceback.
    at.session_state["kdviz_upload_set"] = dataclasses.replace(tiny_image_set, class_names=tuple("abcde"))
    at.run()
    errors = _messages(at)
    assert any("has 10 outputs but the data set has 5 classes" in e for e in errors), errors
    OUTCOMES["teacher-wrong-class-count (Attention maps page)"] = "error shown: " + errors[0][:160]


def test_outcomes_table() -> None:
    """Print the table of outcomes (run with -s); runs last in this file."""
    for key, outcome in OUTCOMES.items():
        print(f"| {key} | {outcome} |")
