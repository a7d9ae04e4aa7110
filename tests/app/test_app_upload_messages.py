"""AppTest of what the Models page says about uploads (issue 23, items 6–7): timm checkpoints load in the
browser (timm names typed or taken from the file name; timm/<name> where torchvision has the same name), no
command-line advice and no markdown in messages, and no green "ready" for a set without a marked teacher."""

from __future__ import annotations

import io

import pytest
import torch
from streamlit.testing.v1 import AppTest

OCTET = "application/octet-stream"


def _timm_bytes(name: str, seed: int) -> bytes:
    import timm

    torch.manual_seed(seed)
    buf = io.BytesIO()
    torch.save(timm.create_model(name, pretrained=False, num_classes=10).state_dict(), buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def timm_files() -> list[tuple[str, bytes, str]]:
    pytest.importorskip("timm")
    return [("efficientnet_b0.pth", _timm_bytes("efficientnet_b0", 0), OCTET),
            ("mobilenetv3_small_100_alpha0.5.pth", _timm_bytes("mobilenetv3_small_100", 1), OCTET)]


def test_timm_uploads_load_and_an_unmarked_teacher_is_said(app_path: str, timm_files) -> None:
    at = AppTest.from_file(app_path, default_timeout=240)
    at.run()
    at.switch_page("pages/models.py").run()
    at.file_uploader(key="up_ckpt").set_value(timm_files)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    status = {name: [m.value for m in at.markdown if name in m.value] for name, _, _ in timm_files}
    assert not [e.value for e in at.error], [e.value for e in at.error]
    assert status["efficientnet_b0.pth"][0].startswith(":material/check_circle:")
    assert "timm/efficientnet_b0" in status["efficientnet_b0.pth"][0]
    assert "mobilenetv3_small_100" in status["mobilenetv3_small_100_alpha0.5.pth"][0]
    # Neither file says "teacher": the largest is used, and the page says so instead of a green "ready".
    assert any("no row is marked teacher" in w.value for w in at.warning)
    assert not any(s.value.startswith("Uploaded set") for s in at.success)


def test_messages_speak_of_the_page_not_the_command_line() -> None:
    from kdviz.ui.uploads.checkpoints import for_the_browser

    text = for_the_browser("cannot recognise the architecture from the weights; pass the architecture explicitly "
                           "(--arch) if it is a registered one (kdviz.models.list_models())")
    assert "--arch" not in text and "list_models" not in text and "architecture column" in text
