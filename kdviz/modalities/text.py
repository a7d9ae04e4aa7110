"""The text modality: texts read by each model's own tokenizer, words as parts.

Parts of a text are its words (``kdviz.attribution.text.word_spans``): each model's token attributions are summed
into word-importance vectors (N, W), NaN beyond a text's words, so models with different tokenizers compare
word by word. The labelling of a batch is (N, W) word indices, -1 beyond each text's words as the teacher's
tokenizer keeps them (W: the most words of a text). Top-k metrics are undefined on a text of at most k words
(every word would be in both top-k).

:func:`top_words` is the one ranking of words: the rationale recipe trains on it
(``kdviz.training.rationale``) and the comparison measures with it. The VADER share (``vader``: share of a
model's top-k words in the lexicon given to :meth:`TextModality.read`) is a per-input metric of this modality,
with its null like the alignment metrics.

The null's copies are ``kdviz.models.hf_text.random_text_copy`` of a model's configuration, keyed by that
configuration and the tokenizer's vocabulary, built once per process within a byte budget.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from kdviz.attribution.engine import attribute_text
from kdviz.attribution.locks import model_lock
from kdviz.attribution.text import Encoded, TextAttribution, encode_words, text_logits, word_spans
from kdviz.errors import InvalidInputError
from kdviz.modalities.base import DisplayHints, ModalityPlugin, RandomCopy, register_modality
from kdviz.modalities.parts import PartSpec
from kdviz.models.hf_text import random_text_copy
from kdviz.vocab import Modality

__all__ = ["TEXTS_PER_CALL", "TextBatch", "TextModality", "attribute_bucketed", "is_text_csv", "top_words", "word_vectors"]

# IG: texts per attribution call, grouped by length (IG costs steps × the longest text of a call, so similar
# lengths together waste less on padding). Gradient saliency is one pass: one call on the whole batch.
TEXTS_PER_CALL = 16


def top_words(word_scores: np.ndarray, n_words: np.ndarray, k: int) -> np.ndarray:
    """(N, k) indices of each text's k highest-scoring words, best first, -1 where a text has fewer than k.

    Only a text's first ``n_words`` scores count; ties go to the earlier word and NaN scores rank last.
    """
    v = np.asarray(word_scores, dtype=np.float64)
    n = np.asarray(n_words, dtype=np.int64)
    out = np.full((v.shape[0], k), -1, dtype=np.int64)
    if v.shape[1] == 0 or k < 1:
        return out
    position = np.arange(v.shape[1])[None, :]
    key = np.where((position < n[:, None]) & ~np.isnan(v), -v, np.inf)
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    out[:, : order.shape[1]] = np.where(order < n[:, None], order, -1)
    return out


def word_vectors(attr: TextAttribution, width: int) -> np.ndarray:
    """(N, width) word importance: padded with NaN or cut to ``width``."""
    v = attr.words
    if v.shape[1] >= width:
        return v[:, :width]
    return np.pad(v, ((0, 0), (0, width - v.shape[1])), constant_values=np.nan)


@dataclass(frozen=True, eq=False)
class TextBatch:
    """Texts to compare, with how they are read: ``max_length`` pieces per text, ``bucket`` texts per IG call
    (None: :data:`TEXTS_PER_CALL` for IG, one call otherwise), the ``lexicon`` of the VADER share (None: no share).

    :meth:`encoded` tokenizes once per tokenizer (thread-safe).
    """

    texts: tuple[str, ...]
    max_length: int = 64
    bucket: int | None = None
    lexicon: frozenset[str] | None = field(default=None, repr=False)
    _encodings: dict[int, tuple[Any, Encoded]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __len__(self) -> int:
        return len(self.texts)

    def encoded(self, tokenizer: Any) -> Encoded:
        """The texts through ``tokenizer`` (``kdviz.attribution.text.encode_words``), computed once."""
        with self._lock:
            found = self._encodings.get(id(tokenizer))
        if found is None:
            found = (tokenizer, encode_words(tokenizer, self.texts, max_length=self.max_length))
            with self._lock:  # the tokenizer is kept with its encoding, so its id cannot be reused meanwhile
                found = self._encodings.setdefault(id(tokenizer), found)
        return found[1]


def attribute_bucketed(model: Any, enc: Encoded, *, method: str, target: np.ndarray | None = None,
                       special_ids: dict[str, int] | None = None, bucket: int = TEXTS_PER_CALL,
                       **params: Any) -> TextAttribution:
    """``attribute_text`` on texts of similar length together.

    The batch is sorted by length and cut into calls of ``bucket`` texts (each trimmed to its longest), then put
    back in the batch's order and width. Equal to one call on the whole batch up to float rounding (padding is
    masked); ``bucket <= 0`` is one call.
    """
    n = len(enc.n_words)
    if bucket <= 0 or n <= bucket:
        return attribute_text(model, enc, method=method, target=target, special_ids=special_ids, **params)
    order = np.argsort(enc.attention_mask.sum(1).numpy(), kind="stable")
    calls = []
    for start in range(0, n, bucket):
        idx = order[start:start + bucket]
        calls.append((idx, attribute_text(model, enc.rows(idx), method=method, special_ids=special_ids,
                                          target=None if target is None else np.asarray(target)[idx], **params)))
    return _merged(method, calls, n, enc.input_ids.shape[1], max(int(enc.n_words.max()), 1))


def _merged(method: str, calls: list[tuple[np.ndarray, TextAttribution]], n: int, length: int,
            width: int) -> TextAttribution:
    """The bucketed calls' attributions as one, rows in the batch's order."""
    tokens, signed = np.zeros((n, length), np.float32), np.zeros((n, length), np.float32)
    words, signed_words = np.full((n, width), np.nan), np.full((n, width), np.nan)
    tgt = np.zeros(n, np.int64)
    logits = delta = None
    notes: list[str] = []
    for idx, a in calls:
        tokens[idx, : a.tokens.shape[1]] = a.tokens
        signed[idx, : a.signed_tokens.shape[1]] = a.signed_tokens
        words[idx, : a.words.shape[1]] = a.words
        signed_words[idx, : a.signed_words.shape[1]] = a.signed_words
        tgt[idx] = a.target
        if logits is None:
            logits = np.zeros((n, a.logits.shape[1]), a.logits.dtype)
        logits[idx] = a.logits
        if a.delta is not None:
            delta = np.zeros(n, np.asarray(a.delta).dtype) if delta is None else delta
            delta[idx] = a.delta
        notes.extend(w for w in a.warnings if w not in notes)
    return TextAttribution(method, calls[-1][1].params, tokens, signed, words, signed_words, tgt, logits, delta,
                           sum(a.elapsed_s for _, a in calls), tuple(notes))


def _completeness(attr: TextAttribution, n: int) -> np.ndarray:
    """IG's completeness error ``|Σ A − (f(x) − f(baseline))| / |f(x) − f(baseline)|`` per text (NaN for other
    methods): captum's delta is ``Σ A − (f(x) − f(baseline))``, so ``f(x) − f(baseline) = Σ A − delta``."""
    if attr.delta is None:
        return np.full(n, np.nan)
    delta = np.asarray(attr.delta, dtype=np.float64)
    gap = attr.signed_tokens.astype(np.float64).sum(axis=1) - delta
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(gap) > 0, np.abs(delta) / np.abs(gap), np.nan)


def _special_ids(tokenizer: Any) -> dict[str, int]:
    return {n: int(getattr(tokenizer, f"{n}_token_id")) for n in ("pad", "mask")
            if getattr(tokenizer, f"{n}_token_id", None) is not None}


_COPIES: dict[tuple[str, int], Any] = {}
_COPIES_LOCK = threading.Lock()
# Untrained copies' weights kept in memory, oldest dropped first: the shipped zoo's null (39 copies of each of
# two student architectures, 0.9 GB) must fit, or every evaluation batch rebuilds every copy.
_COPIES_MAX_BYTES = 1 << 30


def _nbytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _random_copy(key: str, config: Any, seed: int) -> Any:
    """``random_text_copy(config, seed)``, built once per process (every page and batch reuses the copies)."""
    with _COPIES_LOCK:
        copy = _COPIES.get((key, seed))
    if copy is None:
        copy = random_text_copy(config, seed)
        with _COPIES_LOCK:
            held = sum(_nbytes(c) for c in _COPIES.values())
            while _COPIES and held + _nbytes(copy) > _COPIES_MAX_BYTES:
                held -= _nbytes(_COPIES.pop(next(iter(_COPIES))))
            copy = _COPIES.setdefault((key, seed), copy)
    return copy


def _vocab_fingerprint(tokenizer: Any) -> str:
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return hashlib.sha256("\n".join(t for t, _ in vocab).encode("utf-8")).hexdigest()


def _n_words(labels: np.ndarray) -> np.ndarray:
    return (np.asarray(labels) >= 0).sum(axis=1).astype(np.int64)


def _words(batch: TextBatch, labels: np.ndarray) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(text[s:e] for s, e in word_spans(text)[:n]) for text, n in zip(batch.texts, _n_words(labels),
                                                                                    strict=True))


@register_modality
class TextModality(ModalityPlugin):
    """Texts (a sequence of strings) for Hugging Face classifiers, each read by its model's tokenizer."""

    modality = Modality.TEXT
    part_kinds = ("words",)
    default_parts = "words"
    baselines = ("mask", "unk", "delete")
    null_metrics = ("attention_rho", "topk_overlap", "focus_ratio", "vader")
    display = DisplayHints("text", "word", ("word", "importance"))

    def accepts(self, inputs: Any) -> bool:
        """A TextBatch, or a list or tuple of strings."""
        return isinstance(inputs, TextBatch) or (isinstance(inputs, (list, tuple))
                                                 and all(isinstance(t, str) for t in inputs))

    def accepts_file(self, name: str, data: bytes) -> bool:
        """A ``.txt`` file, or a ``.csv`` of sentences (:func:`is_text_csv`)."""
        suffix = name.lower().rsplit(".", 1)[-1]
        return suffix == "txt" or (suffix == "csv" and is_text_csv(data))

    def read(self, inputs: Any, **options: Any) -> TextBatch:
        """A :class:`TextBatch` of ``inputs``; ``options`` are its ``max_length``, ``bucket`` and ``lexicon``."""
        if isinstance(inputs, TextBatch) and not options:
            batch = inputs
        else:
            texts = inputs.texts if isinstance(inputs, TextBatch) else inputs
            try:
                batch = TextBatch(tuple(str(t) for t in texts), **options)
            except TypeError as err:
                raise InvalidInputError(f"text inputs take max_length, bucket and lexicon: {err}") from None
        if not batch.texts:
            raise InvalidInputError("texts is empty")
        return batch

    def digest(self, batch: TextBatch) -> str:
        """Hash of the texts and how they are read."""
        h = hashlib.sha256(f"{batch.max_length}:{batch.bucket}".encode())
        for t in batch.texts:
            h.update(t.encode("utf-8") + b"\0")
        return h.hexdigest()[:24]

    def label_parts(self, spec: PartSpec, batch: TextBatch, *, display: Any = None,
                    teacher: Any = None) -> np.ndarray:
        """(N, W) word indices as the teacher's tokenizer keeps them, -1 beyond a text's words."""
        n_words = batch.encoded(teacher.tokenizer).n_words
        width = max(int(n_words.max()), 1)
        position = np.arange(width)[None, :]
        return np.where(position < n_words[:, None], position, -1).astype(np.int64)

    def check_labels(self, labels: Any, batch: TextBatch) -> np.ndarray:
        """(N, W) integers ≥ -1."""
        lab = np.asarray(labels)
        if lab.ndim != 2 or lab.shape[0] != len(batch) or not np.issubdtype(lab.dtype, np.integer) or lab.min() < -1:
            raise InvalidInputError(f"part_labels of texts must be (N, W) word indices (-1 beyond a text's words), "
                                    f"got {lab.dtype} {lab.shape}")
        return lab

    def n_parts(self, labels: np.ndarray) -> int:
        """W, the most words of a text."""
        return int(np.asarray(labels).shape[1])

    def check_k(self, k: int, n_parts: int, spec: PartSpec) -> None:
        """Any k ≥ 1: a text of at most k words has undefined top-k metrics instead."""
        if k < 1:
            raise InvalidInputError(f"k={k} must be ≥ 1")

    def part_vectors(self, attribution: TextAttribution, labels: np.ndarray, n_parts: int) -> np.ndarray:
        """:func:`word_vectors` over the labels' width."""
        return word_vectors(attribution, n_parts)

    def top_parts(self, vectors: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
        """:func:`top_words` within each text's words."""
        return top_words(vectors, _n_words(labels), k)

    def topk_defined(self, labels: np.ndarray, k: int) -> np.ndarray:
        """Texts of more than k words."""
        return _n_words(labels) > k

    def part_names(self, batch: TextBatch, labels: np.ndarray) -> tuple[tuple[str, ...], ...]:
        """The words of each text."""
        return _words(batch, labels)

    def remove_parts(self, batch: TextBatch, labels: np.ndarray, removed: np.ndarray, baseline: Any) -> TextBatch:
        """The texts with each removed word replaced by ``[MASK]`` (``mask``) or ``[UNK]`` (``unk``), or deleted with
        one space beside it (``delete``); the batch's reading options are kept."""
        if baseline not in self.baselines:
            raise InvalidInputError(f"baseline={baseline!r} is not one of {list(self.baselines)} for texts")
        rem = np.asarray(removed, dtype=bool)
        if rem.shape != np.asarray(labels).shape:
            raise InvalidInputError(f"removed must be (N, W) = {np.asarray(labels).shape} booleans, got {rem.shape}")
        token = {"mask": "[MASK]", "unk": "[UNK]", "delete": ""}[baseline]
        texts = []
        for text, row, n in zip(batch.texts, rem, _n_words(labels), strict=True):
            spans = word_spans(text)[:n]
            for j in sorted((j for j in range(n) if row[j]), reverse=True):
                s, e = spans[j]
                if not token and s > 0 and text[s - 1] == " ":
                    s -= 1
                elif not token and e < len(text) and text[e] == " ":
                    e += 1
                text = text[:s] + token + text[e:]
            texts.append(text)
        return TextBatch(tuple(texts), batch.max_length, batch.bucket, batch.lexicon)

    def logits(self, model: Any, batch: TextBatch, device: str) -> np.ndarray:
        """The classifier's logits on the texts through its own tokenizer (CPU, eval mode, under its lock)."""
        enc = batch.encoded(model.tokenizer)
        module = model.module
        with model_lock(module):
            was_training = module.training
            module.eval()
            try:
                with torch.no_grad():
                    return text_logits(module, enc.input_ids, enc.attention_mask).float().numpy()
            finally:
                module.train(was_training)

    def attribute(self, model: Any, batch: TextBatch, *, method: str, targets: np.ndarray, device: str,
                  params: Mapping[str, Any]) -> TextAttribution:
        """:func:`attribute_bucketed` of the model on its own encoding of the texts."""
        bucket = batch.bucket if batch.bucket is not None else (TEXTS_PER_CALL if method == "integrated_gradients" else 0)
        return attribute_bucketed(model.module, batch.encoded(model.tokenizer), method=method, target=targets,
                                  special_ids=_special_ids(model.tokenizer), bucket=bucket, **dict(params))

    def null_key(self, model: Any) -> str:
        """The model's configuration (its name left out) and its tokenizer's vocabulary."""
        config = model.module.config
        shape = {a: b for a, b in config.to_dict().items() if a not in ("_name_or_path", "name_or_path")}
        return f"{sorted(shape.items())}:{_vocab_fingerprint(model.tokenizer)}"

    def random_copies(self, model: Any, *, n_classes: int, batch: TextBatch, copies: int,
                      first_seed: int) -> tuple[RandomCopy, ...]:
        """``random_text_copy`` of the model's configuration, read by its tokenizer."""
        key = self.null_key(model)
        short = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
        return tuple(RandomCopy(f"random:{model.arch}:{short}:seed{seed}", str(model.arch), seed,
                                _random_copy(key, model.module.config, seed), tokenizer=model.tokenizer)
                     for seed in range(first_seed, first_seed + copies))

    def attribution_columns(self, attribution: TextAttribution, n: int) -> dict[str, Any]:
        """IG's completeness error and steps per text."""
        steps = attribution.params.get("n_steps")
        return {"ig_completeness_error": _completeness(attribution, n),
                "ig_steps": pd.array([int(steps)] * n if steps is not None else [pd.NA] * n, dtype="Int64")}

    def extra_scores(self, vectors: np.ndarray, batch: TextBatch, labels: np.ndarray, k: int) -> dict[str, np.ndarray]:
        """``vader``: the share of the model's top-k words in the batch's lexicon (NaN without one)."""
        if batch.lexicon is None:
            return {"vader": np.full(len(vectors), np.nan)}
        words = _words(batch, labels)
        top = self.top_parts(vectors, labels, k)
        return {"vader": np.array([np.mean([words[i][j].lower() in batch.lexicon for j in row if j >= 0])
                                   if (row >= 0).any() else np.nan for i, row in enumerate(top)])}

    def extra_columns(self, vectors: np.ndarray, batch: TextBatch, labels: np.ndarray, k: int) -> dict[str, Any]:
        """``n_words`` and ``top_words`` (the model's top-k words, space-separated)."""
        words = _words(batch, labels)
        top = self.top_parts(vectors, labels, k)
        return {"n_words": _n_words(labels),
                "top_words": [" ".join(words[i][j] for j in row if j >= 0) for i, row in enumerate(top)]}


def is_text_csv(data: bytes) -> bool:
    """Whether a CSV holds sentences: a column named ``text`` (any case), or a column of mostly non-numeric
    values with spaces (a series CSV holds numbers, and at most a short label column)."""
    try:
        df = pd.read_csv(io.BytesIO(data), dtype=str, nrows=50)
    except Exception:  # noqa: BLE001 - not a readable CSV: the series reader reports it
        return False
    if any(str(c).strip().lower() == "text" for c in df.columns):
        return True
    for col in df.columns:
        values = [str(v) for v in df[col].dropna()]
        if not values:
            continue
        wordy = sum(not _is_number_cell(v) and " " in v.strip() for v in values)
        if wordy / len(values) > 0.5:
            return True
    return False


def _is_number_cell(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
