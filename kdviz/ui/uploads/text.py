"""Uploaded sentences (.txt, one per line, or a .csv with a text column): for the Token rationales page, and with
a label column for the Report's text-zoo evaluation. Read by :mod:`kdviz.io.text`'s upload readers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from kdviz.io.text import LabelledTexts, parse_labelled_texts, read_text_upload, texts_fingerprint
from kdviz.io.untrusted import UploadError
from kdviz.ui.uploads.files import DataUpload, UploadKind

__all__ = ["labelled_text_inputs", "show_text_inputs", "text_inputs"]


def text_inputs(upload: DataUpload) -> list[str]:
    """The sentences of a ``text`` upload (every file, in order): kdviz.io.text.read_text_upload's rules."""
    if upload.kind != UploadKind.TEXT:
        raise UploadError("the uploaded inputs are not sentences")
    out: list[str] = []
    for name, data in upload.files:
        out += read_text_upload(data, name)
    return out


def labelled_text_inputs(upload: DataUpload, class_names: tuple[str, ...]) -> LabelledTexts:
    """The sentences of a ``text`` upload with their labels where every file has a label column
    (``kdviz.io.text.parse_labelled_texts``), as one ``LabelledTexts`` for an evaluation."""
    if upload.kind != UploadKind.TEXT:
        raise UploadError("the uploaded inputs are not sentences")
    parts = []
    for name, data in upload.files:
        try:
            parts.append(parse_labelled_texts(data, name, class_names))
        except ValueError as exc:
            raise UploadError(str(exc)) from exc
    texts = tuple(t for p in parts for t in p.texts)
    labelled = all(p.labels is not None for p in parts)
    labels = np.concatenate([p.labels for p in parts]) if labelled else None
    notes = tuple(dict.fromkeys(n for p in parts for n in p.notes))
    if not labelled and any(p.labels is not None for p in parts):
        notes += ("some files have no labels: accuracy is not computed",)
    name = parts[0].name if len(parts) == 1 else f"uploads#{texts_fingerprint(texts, labels)}"
    return LabelledTexts(name, texts, labels, notes)


def show_text_inputs(upload: DataUpload) -> None:
    """Sentences uploaded as inputs: how many, the first few, and where they are used."""
    texts = text_inputs(upload)
    st.success(f"{len(texts)} sentence(s) ready for the Token rationales page (choose **Uploaded on the Models "
               "page** as its sentence source) and for the Report's text-zoo evaluation (a .csv's label column, with "
               "class names or indices, gives its accuracy).", icon=":material/check_circle:")
    st.dataframe(pd.DataFrame({"sentence": texts[:5]}), hide_index=True)
