"""The Models page's state across visits: uploaded files remembered for the session (Streamlit empties an
uploader when the user leaves the page), and the role / architecture / α table the user edits."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from kdviz.ui.uploads.checkpoints import FileStatus, guess_from_filename
from kdviz.ui.uploads.files import KeptFile

__all__ = ["EDITOR_TABLE", "REMEMBERED", "editor_rows", "editor_start", "forget_files", "remember_editor",
           "remembered_files"]

REMEMBERED = "kdviz_upload_files"  # session state: uploader key -> ((name, bytes), ...)
EDITOR_TABLE = "kdviz_upload_editor_table"  # session state: (file digests, edited role/arch/α table)


def remembered_files(key: str, files: list[Any] | None) -> list[Any]:
    """The uploader's files, kept for the session: Streamlit empties a file uploader when the user leaves
    the page, so the files last uploaded come back from session state until new ones are uploaded or
    :func:`forget_files` is called."""
    store = st.session_state.setdefault(REMEMBERED, {})
    if files:
        store[key] = tuple((f.name, f.getvalue()) for f in files)
        return list(files)
    return [KeptFile(name, data) for name, data in store.get(key, ())]


def forget_files() -> None:
    """Drop the remembered uploads and the editor's table (the "clear" button's callback)."""
    st.session_state.pop(REMEMBERED, None)
    st.session_state.pop(EDITOR_TABLE, None)


def editor_rows(names: list[str], statuses: list[FileStatus]) -> pd.DataFrame:
    """The editable table prefilled from file names and weights; the largest loaded model teaches by default."""
    rows = []
    for name, s in zip(names, statuses, strict=True):
        g = guess_from_filename(name)
        arch = s.loaded.arch if s.ok and s.loaded is not None else (g["arch"] or "")
        rows.append({"file": name, "label": g["label"], "role": g["role"], "architecture": arch, "α": g["alpha"]})
    if not any(r["role"] == "teacher" for r in rows):
        ok = [i for i, s in enumerate(statuses) if s.ok and s.loaded is not None]
        if ok:
            rows[max(ok, key=lambda i: statuses[i].loaded.params)]["role"] = "teacher"
    return pd.DataFrame(rows)


def editor_start(digests: tuple[str, ...], fresh: pd.DataFrame, editor_key: str) -> pd.DataFrame:
    """The table the role / architecture / α editor starts from: the user's last edits for these files
    when coming back to the page (the editor's own state is gone then), else ``fresh``."""
    saved = st.session_state.get(EDITOR_TABLE)
    if editor_key not in st.session_state and saved is not None and saved[0] == digests:
        st.session_state[EDITOR_TABLE + "_base"] = saved[1]
    base = st.session_state.get(EDITOR_TABLE + "_base")
    return base if base is not None and list(base["file"]) == list(fresh["file"]) else fresh


def remember_editor(digests: tuple[str, ...], table: pd.DataFrame) -> None:
    """Keep the edited table for these files, so the edits outlive a visit to another page."""
    st.session_state[EDITOR_TABLE] = (digests, table.copy())
