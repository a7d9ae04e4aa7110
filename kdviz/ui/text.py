"""Token rationales in the dashboard: the text zoo, uploaded Hugging Face models, sentences, coloured words.

Models are cached with ``st.cache_resource`` (one object per process, attribution calls serialised by the
model's lock); comparisons with ``st.cache_data`` keyed by the model ids, texts, method and parameters.
"""

from __future__ import annotations

import hashlib
import html
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from kdviz.analysis.metrics import format_metric
from kdviz.analysis.text import TextComparison, TextEntry, compare_text_models
from kdviz.attribution.text import TEXT_METHODS
from kdviz.io.hf_text import TextModel, TextZoo, load_hf_text, load_text_zoo
from kdviz.io.text import read_rotten_tomatoes, read_text_upload, vader_lexicon
from kdviz.ui.sets import ROOT, ZOO_ROOT_ENV

__all__ = [
    "TEXT_ZOO",
    "choose_sentences",
    "dataset_comparison",
    "method_controls",
    "rationale_rows",
    "summary_table",
    "zoo_folder",
    "default_text_zoo",
    "sentence_comparison",
    "text_entries",
    "text_zoo",
    "uploaded_text_model",
    "words_html",
]

TEXT_ZOO = "rotten-tomatoes"
WORD_RGB = (214, 39, 40)  # attribution colour (red); never a Plotly placeholder colour
DEFAULT_SENTENCE = "A gorgeous, witty and heartfelt film, though the ending drags."


@st.cache_resource(show_spinner="Loading the text zoo…")
def text_zoo(root: str) -> TextZoo:
    """The text zoo at ``root`` (default: the shipped Rotten Tomatoes zoo), loaded once per process."""
    return load_text_zoo(root)


def zoo_folder() -> Path:
    """The shipped text zoo's folder: ``$KDVIZ_DEMO_ZOOS/rotten-tomatoes`` or ``assets/zoo/rotten-tomatoes``."""
    return Path(os.environ.get(ZOO_ROOT_ENV) or ROOT / "assets" / "zoo") / TEXT_ZOO


def default_text_zoo() -> TextZoo:
    """The shipped text zoo, loaded once per process."""
    return text_zoo(str(zoo_folder()))


@st.cache_resource(show_spinner="Checking and loading the uploaded model…", max_entries=8)
def _uploaded(digest: str, _data: bytes) -> TextModel:
    return load_hf_text(_data)


def uploaded_text_model() -> TextModel | None:
    """An uploader for a zipped Hugging Face folder; the checked, loaded model or None."""
    up = st.file_uploader("Add a Hugging Face text classifier (.zip of its folder)", type=["zip"], key="tr_upload")
    if up is None:
        return None
    data = up.getvalue()
    model = _uploaded(hashlib.sha256(data).hexdigest(), data)
    st.caption(f"Uploaded: {model.arch}, {model.params:,} parameters, labels {', '.join(model.labels)}")
    return model


def text_entries(zoo: TextZoo, extra: TextModel | None = None) -> list[TextEntry]:
    """Teacher first, then students grouped by architecture (largest first) × α (1, 0.5, 0.1), then any upload."""
    teacher = zoo.teacher
    out = [TextEntry(teacher.id, "teacher", teacher.entry.arch, teacher.entry.alpha, teacher.entry.method,
                     teacher.text.model, teacher.text.tokenizer)]
    students = sorted(zoo.students, key=lambda m: (-m.text.params, m.entry.arch, m.entry.method == "rationale",
                                                   -m.entry.alpha))
    out += [TextEntry(m.id, "student", m.entry.arch, m.entry.alpha, m.entry.method, m.text.model, m.text.tokenizer)
            for m in students]
    if extra is not None:
        out.append(TextEntry("uploaded", "student", extra.arch, None, "upload", extra.model, extra.tokenizer))
    return out


def method_controls() -> tuple[str, dict[str, Any]]:
    """Attribution method and its parameters, widgets built from ``TEXT_METHODS``."""
    names = list(TEXT_METHODS)
    method = st.selectbox("Attribution", names, format_func=lambda n: TEXT_METHODS[n].label, key="tr_method")
    params: dict[str, Any] = {}
    for spec in TEXT_METHODS[method].params:
        key = f"tr_{method}_{spec.name}"
        st.session_state.setdefault(key, spec.default)
        if spec.kind == "choice":
            params[spec.name] = st.selectbox(spec.name, spec.choices, help=spec.help, key=key)
        elif spec.kind == "int":
            params[spec.name] = int(st.number_input(spec.name, int(spec.min or 1), int(spec.max or 512), help=spec.help,
                                                    key=key))
    return method, params


@st.cache_data(show_spinner=False)
def _test_snippets(n: int) -> list[str]:
    from kdviz.io.text import TextSplit

    split = TextSplit.load(zoo_folder() / "split.npz")
    df = read_rotten_tomatoes()
    return [df["text"].iloc[i] for i in split.test[:n]]


def choose_sentences() -> list[str]:
    """One sentence typed, picked from the zoo's test snippets, or uploaded (.txt / .csv with a text column)."""
    source = st.radio("Sentence", ["Type", "Pick from the test set", "Upload"], horizontal=True, key="tr_source")
    if source == "Type":
        st.session_state.setdefault("tr_text", DEFAULT_SENTENCE)
        text = st.text_input("Sentence", key="tr_text", label_visibility="collapsed").strip()
        if not text:
            st.info("Type a sentence.")
            st.stop()
        return [text]
    if source == "Pick from the test set":
        snippets = _test_snippets(200)
        i = st.selectbox("Snippet", range(len(snippets)), format_func=lambda j: snippets[j][:120], key="tr_pick")
        return [snippets[i]]
    up = st.file_uploader("A .txt (one sentence per line) or .csv with a 'text' column", type=["txt", "csv"],
                          key="tr_sentences")
    if up is None:
        st.stop()
    texts = read_text_upload(up.getvalue(), up.name)
    i = st.selectbox("Sentence", range(len(texts)), format_func=lambda j: texts[j][:120], key="tr_up_pick")
    return [texts[i]]


def _key(entries: list[TextEntry], extra: str) -> tuple[str, ...]:
    return tuple(e.id for e in entries) + (extra,)


@st.cache_data(show_spinner="Attributing every model…", max_entries=64)
def _compare(key: tuple[str, ...], _entries: list[TextEntry], texts: tuple[str, ...], method: str,
             params: tuple[tuple[str, Any], ...], null_copies: int) -> TextComparison:
    return compare_text_models(_entries[0], _entries[1:], list(texts), method=method, null_copies=null_copies,
                               lexicon=vader_lexicon(), **dict(params))


def sentence_comparison(entries: list[TextEntry], texts: list[str], method: str, params: dict[str, Any], *,
                        null_copies: int, upload_key: str = "") -> TextComparison:
    """Every model on ``texts`` (cached)."""
    return _compare(_key(entries, upload_key), entries, tuple(texts), method, tuple(sorted(params.items())), null_copies)


def dataset_comparison(entries: list[TextEntry], n: int, method: str, params: dict[str, Any], *, null_copies: int,
                       upload_key: str = "") -> TextComparison:
    """Every model on the first ``n`` test snippets (cached)."""
    return sentence_comparison(entries, _test_snippets(n), method, params, null_copies=null_copies,
                               upload_key=upload_key)


def words_html(words: tuple[str, ...], importance: np.ndarray, marked: set[int]) -> str:
    """Words as spans shaded by importance (scaled to the row's maximum); ``marked`` words underlined (teacher's top-k)."""
    finite = importance[: len(words)]
    top = float(np.nanmax(finite)) if len(finite) and np.isfinite(finite).any() else 0.0
    spans = []
    for j, word in enumerate(words):
        a = 0.0 if top <= 0 or not math.isfinite(float(importance[j])) else float(importance[j]) / top
        style = f"background: rgba({WORD_RGB[0]}, {WORD_RGB[1]}, {WORD_RGB[2]}, {0.08 + 0.8 * a:.2f}); " \
                "padding: 1px 3px; border-radius: 3px; margin: 1px;"
        if j in marked:
            style += " border-bottom: 3px solid #222222; font-weight: 600;"
        spans.append(f'<span title="{a:.2f}" style="{style}">{html.escape(word)}</span>')
    return " ".join(spans)


def _row_label(e: pd.Series) -> str:
    if e["role"] == "teacher":
        return f"**teacher** · {e['arch']}"
    alpha = "α=—" if e["alpha"] is None or (isinstance(e["alpha"], float) and math.isnan(e["alpha"])) \
        else f"α={float(e['alpha']):g}"
    extra = " +rationale" if e["method"] == "rationale" else ""
    return f"{e['arch']} · {alpha}{extra}"


def rationale_rows(comp: TextComparison, i: int = 0) -> None:
    """One row of coloured words per model (teacher first); the teacher's top-k underlined in every row; each
    student's top-k overlap and ρ, with the excess over the null when computed."""
    marked = {int(j) for j in comp.teacher_top[i] if j >= 0}
    frame = comp.frame[comp.frame["text"] == i].set_index("id")
    for _, e in comp.summary.iterrows():
        attr = comp.attributions[e["id"]]
        left, mid, right = st.columns([2, 7, 3])
        left.markdown(_row_label(e))
        mid.markdown(words_html(comp.words[i], attr.words[i], marked), unsafe_allow_html=True)
        if e["role"] == "teacher":
            right.caption(f"top-{comp.k} words underlined in every row")
            continue
        r = frame.loc[e["id"]]
        text = f"top-{comp.k} {format_metric(r['topk_overlap'])} · ρ {format_metric(r['rho'])}"
        if "rho_excess" in r and pd.notna(r.get("rho_null")):
            text += (f" · excess over untrained: top-{comp.k} {format_metric(r.get('topk_overlap_excess'))}, "
                     f"ρ {format_metric(r['rho_excess'])}")
        right.caption(text)


def summary_table(comp: TextComparison) -> pd.DataFrame:
    """The dataset view's numbers: one row per model."""
    cols = ["id", "arch", "alpha", "method", "agreement", "topk_overlap", "topk_overlap_null", "topk_overlap_excess",
            "topk_overlap_p", "rho", "rho_null", "rho_excess", "rho_p", "vader", "vader_null", "vader_p"]
    return comp.summary[[c for c in cols if c in comp.summary.columns]].round(3)

