"""Token rationales in the dashboard: the text zoo, uploaded Hugging Face models, sentences, coloured words.

Models are cached with ``st.cache_resource`` (one object per process, attribution calls serialised by the
model's lock); comparisons with ``st.cache_data`` keyed by the model ids, texts, method and parameters.
"""

from __future__ import annotations

import hashlib
import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from kdviz.analysis.aggregate import summarize_models
from kdviz.analysis.compare import ComparedModel, CompareOptions, Comparison, NullOptions, compare_models
from kdviz.analysis.metrics import format_metric
from kdviz.attribution.methods import get_method, method_names
from kdviz.io.hf_text import TextModel, TextZoo, load_hf_text, load_text_zoo
from kdviz.io.text import TextSplit, read_rotten_tomatoes, read_text_upload, vader_lexicon
from kdviz.io.untrusted import content_hash
from kdviz.ui.sets import ROOT, ZOO_ROOT_ENV
from kdviz.ui.uploads.checkpoints import guess_from_filename
from kdviz.ui.uploads.text import text_inputs
from kdviz.ui.widgets import UPLOADED_DATA
from kdviz.vocab import Modality, TrainingMethod

__all__ = [
    "TEXT_ZOO",
    "text_uploads_section",
    "SENTENCE_SOURCES",
    "choose_sentences",
    "models_page_sentences",
    "dataset_comparison",
    "method_controls",
    "rationale_rows",
    "summary_table",
    "zoo_folder",
    "default_text_zoo",
    "sentence_comparison",
    "compared_text_models",
    "text_zoo",
    "TEXT_UPLOADS",
    "TextUpload",
    "load_text_upload",
    "remember_text_uploads",
    "text_model_summary",
    "text_upload_rows",
    "uploaded_text_models",
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


TEXT_UPLOADS = "kdviz_text_uploads"  # session state: the Models page's text models (tuple of TextUpload)


@dataclass(frozen=True)
class TextUpload:
    """A Hugging Face text classifier uploaded on the Models page: its zip, and the label and α from its table."""

    file: str
    digest: str
    data: bytes = field(repr=False)
    label: str = ""
    alpha: float | None = None


@st.cache_resource(show_spinner="Checking and loading the uploaded text model…", max_entries=8)
def _uploaded(digest: str, _data: bytes) -> TextModel:
    return load_hf_text(_data)


def load_text_upload(name: str, data: bytes) -> tuple[TextModel | None, str]:
    """A zipped Hugging Face folder loaded through :func:`kdviz.io.hf_text.load_hf_text` (its hostile-input
    rules), cached by content; (model, summary) or (None, why not)."""
    try:
        model = _uploaded(hashlib.sha256(data).hexdigest(), data)
    except Exception as err:  # noqa: BLE001 - a hostile or broken upload is reported, the app keeps running
        return None, str(err) if isinstance(err, ValueError) else f"could not be read ({type(err).__name__}: {err})"
    return model, text_model_summary(model)


def text_model_summary(model: TextModel) -> str:
    """One line: architecture, size, labels."""
    return (f"{model.arch} ({model.model_type}), {model.layers} layers, hidden {model.hidden}, vocabulary "
            f"{model.vocab_size:,}, {model.params / 1e6:.2f} M parameters, labels {', '.join(model.labels)}")


def text_upload_rows(names: list[str], models: list[TextModel | None]) -> pd.DataFrame:
    """The Models page's editable table of text uploads: file, label, role (always student), α, what loaded."""
    rows = []
    for name, model in zip(names, models, strict=True):
        g = guess_from_filename(name.removesuffix(".zip"))
        rows.append({"file": name, "label": g["label"], "role": "student", "α": g["alpha"],
                     "architecture": model.arch if model else "—",
                     "parameters": f"{model.params / 1e6:.2f} M" if model else "—"})
    return pd.DataFrame(rows)


def remember_text_uploads(files: list[tuple[str, bytes]], table: pd.DataFrame) -> tuple[TextUpload, ...]:
    """Keep the loaded text uploads, with the table's labels and α, for the Token rationales page."""
    by_file = {r["file"]: r for _, r in table.iterrows()}
    out = []
    for name, data in files:
        row = by_file[name]
        alpha = row["α"]
        out.append(TextUpload(name, hashlib.sha256(data).hexdigest(), data, str(row["label"] or name),
                              None if alpha is None or pd.isna(alpha) else float(alpha)))
    st.session_state[TEXT_UPLOADS] = tuple(out)
    return tuple(out)


def uploaded_text_models() -> list[tuple[TextUpload, TextModel]]:
    """The text models uploaded on the Models page this session (loaded, cached by content), in table order."""
    out = []
    for up in st.session_state.get(TEXT_UPLOADS, ()):
        model, _ = load_text_upload(up.file, up.data)
        if model is not None:
            out.append((up, model))
    return out


def compared_text_models(zoo: TextZoo, extra: list[tuple[TextUpload, TextModel]] | None = None,
                         ) -> tuple[list[ComparedModel], list[str]]:
    """Teacher first, then students grouped by architecture (largest first) × α (1, 0.5, 0.1), then the uploads
    (role student, their α from the Models page). Returns the models and why an upload was left out."""
    teacher = zoo.teacher
    out = [ComparedModel.of(teacher, role="teacher")]
    students = sorted(zoo.students, key=lambda m: (-m.text.params, m.entry.arch, m.entry.method == "rationale",
                                                   -m.entry.alpha))
    out += [ComparedModel.of(m, role="student") for m in students]
    left_out: list[str] = []
    taken = {e.id for e in out}
    for up, model in extra or []:
        if model.num_labels != teacher.text.num_labels:
            left_out.append(f"{up.label}: {model.num_labels} labels, but the teacher has {teacher.text.num_labels} "
                            f"({', '.join(zoo.manifest.class_names)}); left out.")
            continue
        uid = up.label if up.label not in taken else f"{up.label} ({up.digest[:6]})"
        taken.add(uid)
        out.append(ComparedModel(uid, f"{model.arch} (upload)", up.alpha, model.model, "student",
                                 TrainingMethod.UPLOADED, model.tokenizer))
    return out, left_out


def method_controls() -> tuple[str, dict[str, Any]]:
    """Attribution method and its parameters, widgets built from the registered text methods."""
    names = list(method_names(Modality.TEXT))
    method = st.selectbox("Attribution", names, format_func=lambda n: get_method(n, Modality.TEXT).label,
                          key="tr_method")
    params: dict[str, Any] = {}
    for spec in get_method(method, Modality.TEXT).params:
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
    split = TextSplit.load(zoo_folder() / "split.npz")
    df = read_rotten_tomatoes()
    return [df["text"].iloc[i] for i in split.test[:n]]


SENTENCE_SOURCES = ["Type", "Pick from the test set", "Upload", "Uploaded on the Models page"]


def models_page_sentences() -> list[str]:
    """Sentences uploaded as inputs on the Models page (.txt, or .csv with a text column); [] when none."""
    data = st.session_state.get(UPLOADED_DATA)
    if data is None or data.kind != "text":
        return []
    return text_inputs(data)


def choose_sentences() -> list[str]:
    """One sentence typed, picked from the zoo's test snippets, uploaded (.txt / .csv with a text column) here,
    or picked from the sentences uploaded on the Models page."""
    from_models = models_page_sentences()
    sources = SENTENCE_SOURCES if from_models else SENTENCE_SOURCES[:3]
    if st.session_state.get("tr_source") not in sources:
        st.session_state.pop("tr_source", None)
    source = st.radio("Sentence", sources, horizontal=True, key="tr_source")
    if source == "Uploaded on the Models page":
        i = st.selectbox("Sentence", range(len(from_models)), format_func=lambda j: from_models[j][:120],
                         key="tr_models_pick")
        return [from_models[i]]
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


K = 5  # a model's token rationale: its top-5 words


def _key(entries: list[ComparedModel], extra: str) -> tuple[str, ...]:
    return tuple(e.id for e in entries) + (extra,)


def page_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per model (teacher first): ``kdviz.analysis.aggregate.summarize_models`` of a comparison's frame,
    bounds named ``_lo``/``_hi`` as the figures read them."""
    out = summarize_models(frame)
    return out.rename(columns={c: c.removesuffix("_low") + "_lo" if c.endswith("_low") else
                               c.removesuffix("_high") + "_hi" for c in out.columns
                               if c.endswith(("_low", "_high"))})


@st.cache_data(show_spinner="Attributing every model…", max_entries=64)
def _compare(key: tuple[str, ...], _entries: list[ComparedModel], texts: tuple[str, ...], method: str,
             params: tuple[tuple[str, Any], ...], null_copies: int) -> tuple[Comparison, pd.DataFrame]:
    options = CompareOptions(method_params=dict(params), null=NullOptions(copies=null_copies),
                             modality=Modality.TEXT, reading={"lexicon": vader_lexicon()})
    comp = compare_models(_entries[0], _entries[1:], list(texts), method=method, k=K, options=options)
    return comp, page_summary(comp.frame)


def sentence_comparison(entries: list[ComparedModel], texts: list[str], method: str, params: dict[str, Any], *,
                        null_copies: int, upload_key: str = "") -> Comparison:
    """Every model on ``texts`` (cached)."""
    return _compare(_key(entries, upload_key), entries, tuple(texts), method, tuple(sorted(params.items())),
                    null_copies)[0]


def dataset_comparison(entries: list[ComparedModel], n: int, method: str, params: dict[str, Any], *,
                       null_copies: int, upload_key: str = "") -> tuple[Comparison, pd.DataFrame]:
    """Every model on the first ``n`` test snippets and its per-model summary (:func:`page_summary`; cached)."""
    return _compare(_key(entries, upload_key), entries, tuple(_test_snippets(n)), method,
                    tuple(sorted(params.items())), null_copies)


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


def rationale_rows(comp: Comparison, i: int = 0) -> None:
    """One row of coloured words per model (teacher first); the teacher's top-k underlined in every row; each
    student's top-k overlap and ρ, with the excess over the null when computed."""
    marked = {int(j) for j in comp.teacher_topk[i] if j >= 0}
    words = comp.part_names[i] if comp.part_names else ()
    rows = comp.frame[comp.frame["input_id"] == comp.frame["input_id"].unique()[i]]
    for _, r in rows.iterrows():
        attr = comp.attributions[r["model_id"]]
        left, mid, right = st.columns([2, 7, 3])
        left.markdown(_row_label(r))
        mid.markdown(words_html(words, attr.words[i], marked), unsafe_allow_html=True)
        if r["role"] == "teacher":
            right.caption(f"top-{comp.k} words underlined in every row")
            continue
        text = f"top-{comp.k} {format_metric(r['topk_overlap'])} · ρ {format_metric(r['attention_rho'])}"
        if pd.notna(r["attention_rho_null"]):
            text += (f" · excess over untrained: top-{comp.k} {format_metric(r['topk_overlap_excess'])}, "
                     f"ρ {format_metric(r['attention_rho_excess'])}")
        right.caption(text)


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The dataset view's numbers: one row per model (a :func:`page_summary`)."""
    cols = ["model_id", "arch", "alpha", "method", "agree", "topk_overlap", "topk_overlap_null", "topk_overlap_excess",
            "topk_overlap_p", "attention_rho", "attention_rho_null", "attention_rho_excess", "attention_rho_p", "vader",
            "vader_null", "vader_p"]
    return summary[[c for c in cols if c in summary.columns]].round(3)



def text_uploads_section(files: list[Any]) -> None:
    """The Models page's uploaded Hugging Face text models: each loaded and listed, an editable label/α table,
    and the kept ones remembered for the Token rationales page (``files``: Streamlit uploads)."""
    text_zips = files
    st.subheader("Text models (for the Token rationales page)")
    loaded_text = []
    for f in text_zips:
        model, msg = load_text_upload(f.name, f.getvalue())
        if model is None:
            st.error(f"**{f.name}** — {msg}", icon=":material/error:")
        else:
            st.markdown(f":material/check_circle: **{f.name}** — {msg}")
        loaded_text.append(model)
    st.caption("Each text model is a student of the shipped text zoo's teacher on the Token rationales page; edit "
               "its label and α (kdviz's convention: 1.0 = no KD).")
    text_table = st.data_editor(
        text_upload_rows([f.name for f in text_zips], loaded_text), hide_index=True,
        key="up_text_editor_" + "_".join(content_hash(f.getvalue())[:8] for f in text_zips),
        disabled=["file", "role", "architecture", "parameters"], column_config={
            "α": st.column_config.NumberColumn(min_value=0.0, max_value=1.0, step=0.05, format="%.2f")})
    kept = remember_text_uploads([(f.name, f.getvalue()) for f, m in zip(text_zips, loaded_text, strict=True)
                                  if m is not None], text_table)
    if kept:
        st.success(f"{len(kept)} text model(s) ready: open **Token rationales** to compare them with the text "
                   "zoo.", icon=":material/check_circle:")
