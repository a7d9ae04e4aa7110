"""The Token rationales page through AppTest on the shipped text zoo."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "token_rationales.py")


def _run(at: AppTest) -> AppTest:
    at.run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_one_row_per_model_teacher_first_with_marked_rationale():
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["tr_method"] = "grad_x_embedding"
    at.session_state["tr_text"] = "A gorgeous, witty and heartfelt film, though the ending drags."
    _run(at)
    rows = [m.value for m in at.markdown if "<span" in m.value]
    assert len(rows) == 8  # teacher + 6 KD students + the rationale student
    assert sum("border-bottom" in s for s in rows[0].split("</span>")) == 5  # the teacher's top-5 marked
    assert all("gorgeous" in r for r in rows)
    labels = [m.value for m in at.markdown if "·" in m.value and "<span" not in m.value]
    assert labels[0].startswith("**teacher**") and any("+rationale" in lab for lab in labels)
    captions = " ".join(c.value for c in at.caption)
    assert "top-5" in captions and "excess over untrained" in captions


def test_dataset_view_and_ig():
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["tr_method"] = "integrated_gradients"
    at.session_state["tr_null"] = 1
    at.session_state["tr_n"] = 8
    at.session_state["tr_dataset"] = True
    _run(at)
    frame = at.dataframe[0].value
    assert list(frame["model_id"])[0] == "teacher_minilm" and len(frame) == 8
    assert frame["attention_rho_null"].iloc[1:].notna().all() and frame["vader"].notna().all()
