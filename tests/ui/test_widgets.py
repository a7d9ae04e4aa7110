"""The page guard: a kdviz error is advice (its message, nothing else); any other exception is a bug, said to be one,
with its traceback folded in an expander."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _page(kind: str) -> None:
    import numpy as np
    import streamlit as st

    from kdviz.errors import UnknownNameError
    from kdviz.ui.widgets import guard

    with guard("draw the page"):
        if kind == "advice":
            raise UnknownNameError("unknown method 'gradcam': one of saliency, grad_cam")
        if kind == "memory":
            raise MemoryError("not enough memory for 64 inputs; choose fewer")
        if kind == "zero":
            _ = 1 / 0
        if kind == "numpy":
            np.reshape(np.arange(5), (2, 3))  # numpy's own bare ValueError
    st.write("after the guard")


def _run(kind: str) -> AppTest:
    at = AppTest.from_function(_page, args=(kind,), default_timeout=60)
    at.run()
    assert [m.value for m in at.markdown] == ["after the guard"]  # the rest of the page still runs
    return at


def test_a_kdviz_error_is_shown_as_advice_without_a_traceback() -> None:
    for kind, message in (("advice", "unknown method 'gradcam': one of saliency, grad_cam"),
                          ("memory", "not enough memory for 64 inputs; choose fewer")):
        at = _run(kind)
        assert [e.value for e in at.error] == [f"Could not draw the page: {message}"]
        assert not at.exception and not at.expander


def test_any_other_exception_is_a_bug_with_its_traceback_folded() -> None:
    for kind, name, message in (("zero", "ZeroDivisionError", "division by zero"),
                                ("numpy", "ValueError", "cannot reshape array of size 5 into shape (2,3)")):
        at = _run(kind)
        assert len(at.error) == 1
        text = at.error[0].value
        assert text.startswith(f"Could not draw the page: unexpected {name}: {message}") and "bug in kdviz" in text
        assert len(at.expander) == 1 and at.expander[0].label == "Traceback"
        assert len(at.exception) == 1 and at.exception[0].message == message
        assert any("_page" in line for line in at.exception[0].stack_trace)
