"""AppTest: Hugging Face text classifiers uploaded on the Models page (zips of save_pretrained folders) become
students on the Token rationales page, with the α from their names (issue 20: "the Models page takes them as
uploads"); sentences uploaded as inputs there are offered as that page's sentence source; a hostile text zip is
refused with load_hf_text's message and the others still load."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.text_models import save_tiny

ROOT = Path(__file__).resolve().parents[2]


def _zip(folder: Path, patch: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(folder.iterdir()):
            z.writestr(f"model/{p.name}", (patch or {}).get(p.name, p.read_bytes()))
    return buf.getvalue()


@pytest.fixture(scope="module")
def text_zips(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("text")
    a, b = save_tiny(root / "a", seed=1), save_tiny(root / "b", seed=2, layers=1)
    config = json.loads((a / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.Model"}  # remote code: never trusted
    return {"tiny_bert_alpha0.3.zip": _zip(a), "tiny_bert_1layer.zip": _zip(b),
            "hostile.zip": _zip(a, {"config.json": json.dumps(config).encode()})}


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_text_models_from_the_models_page_on_token_rationales(text_zips, app_path, require_zoo) -> None:
    if not (ROOT / "assets" / "zoo" / "rotten-tomatoes" / "zoo.json").is_file():
        pytest.skip("the text zoo is not built")
    at = AppTest.from_file(app_path, default_timeout=300)
    at.run()
    at.switch_page("pages/models.py").run()
    at.file_uploader(key="up_ckpt").set_value([(n, d, "application/zip") for n, d in text_zips.items()])
    sentences = b'text\n"The plot is dull, but the acting is witty."\nA great film.\n'
    at.file_uploader(key="up_data").set_value(("reviews.csv", sentences, "text/csv"))
    at.run()
    _ok(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "hostile.zip" in errors[0] and "auto_map" in errors[0], errors
    success = " ".join(s.value for s in at.success)
    assert "2 text model(s) ready" in success and "2 sentence(s) ready" in success, success
    assert any("bert-L2-H32" in m.value and "labels c0, c1" in m.value for m in at.markdown)
    kept = at.session_state["kdviz_text_uploads"]
    assert [(u.label, u.alpha) for u in kept] == [("tiny_bert_alpha0.3", 0.3), ("tiny_bert_1layer", None)]

    at.switch_page("pages/token_rationales.py")
    at.session_state["tr_method"] = "grad_x_embedding"
    at.session_state["tr_null"] = 0
    at.run()
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    rows = [m.value for m in at.markdown if "<span" in m.value]
    assert len(rows) == 8 + 2  # the text zoo's teacher and 7 students, then the two uploads
    labels = [m.value for m in at.markdown if "(upload)" in m.value]
    assert labels == ["bert-L2-H32 (upload) · α=0.3", "bert-L1-H32 (upload) · α=—"], labels
    assert at.radio(key="tr_source").options[-1] == "Uploaded on the Models page"
    at.radio(key="tr_source").set_value("Uploaded on the Models page").run()
    _ok(at)
    rows = [m.value for m in at.markdown if "<span" in m.value]
    assert len(rows) == 10 and all(">witty<" in r for r in rows)
