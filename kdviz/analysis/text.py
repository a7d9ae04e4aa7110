"""Teacher vs students on texts: word attributions, every alignment metric, the random-weights null, VADER.

Parts of a text are its words (``kdviz.attribution.text``): each model's token attributions are summed into
word-importance vectors (N, W), NaN beyond a text's words, so models with different tokenizers compare word by
word. All models are attributed to the *teacher's* predicted class. Per (model, text):

- ``topk_overlap`` (k = 5): ``|topk(v_S) ∩ topk(v_T)| / k``; NaN for a text of at most k words (every word
  would be in both top-k);
- ``rho``: attention rank alignment (Spearman ρ over words); ``focus``: focus fraction on the teacher's top-k;
- ``agreement`` (same predicted class). Logit alignment (Spearman ρ of the logit vectors) is computed too, but
  is undefined for two classes (``kdviz.analysis.metrics.undefined_reason``);
- ``vader``: share of the model's top-k words in VADER's lexicon (the outside reference for rationales).

The null: R untrained copies of each student architecture (``random_text_copy``, seeds ``NULL_SEED_BASE + r``),
attributed and scored identically. Per metric: ``*_null`` (mean over copies, per text), ``*_excess``
(``chance_corrected``), and per model the copies' mean and SD of their text-mean, z and the one-sided rank
``p = (1 + #{copies ≥ model}) / (R + 1)`` (DESIGN.md, "The null as a distribution").
"""

from __future__ import annotations

import hashlib
import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kdviz.analysis.compare import FRAME_COLUMNS
from kdviz.analysis.metrics import (
    agreement,
    attention_rank_alignment,
    focus_fraction,
    logit_alignment,
    mean_ci,
    topk_overlap,
)
from kdviz.analysis.nulls import NULL_SEED_BASE, chance_corrected
from kdviz.attribution.text import Encoded, TextAttribution, attribute_text, encode_words
from kdviz.modalities.parts import top_k_parts
from kdviz.models.hf_text import random_text_copy

__all__ = [
    "NULL_METRICS",
    "TEXT_FRAME_COLUMNS",
    "TEXT_NULL_METRICS",
    "NullStats",
    "TextComparison",
    "TextEntry",
    "attribute_bucketed",
    "compare_text_batch",
    "compare_text_models",
    "null_stats",
    "top_words",
    "word_vectors",
]

NULL_METRICS = ("topk_overlap", "rho", "focus", "vader")


@dataclass(frozen=True, eq=False)
class TextEntry:
    """A model to compare: id, role, architecture label, α, method, the module and its tokenizer."""

    id: str
    role: str
    arch: str
    alpha: float | None
    method: str
    model: Any = field(repr=False)
    tokenizer: Any = field(repr=False)


@dataclass(frozen=True)
class NullStats:
    """A model's text-mean of one metric against R copies' text-means."""

    value: float
    null_mean: float
    null_sd: float
    z: float
    p: float
    copies: int


def null_stats(value: float, copy_values: Sequence[float]) -> NullStats:
    """Mean, SD (ddof 1), z and one-sided rank ``p = (1 + #{copies ≥ value}) / (R + 1)`` of the copies."""
    c = np.asarray([v for v in copy_values if np.isfinite(v)], dtype=np.float64)
    if c.size == 0 or not math.isfinite(value):
        return NullStats(value, math.nan, math.nan, math.nan, math.nan, int(c.size))
    sd = float(c.std(ddof=1)) if c.size > 1 else math.nan
    z = (value - float(c.mean())) / sd if sd and math.isfinite(sd) and sd > 0 else math.nan
    return NullStats(value, float(c.mean()), sd, z, (1 + int((c >= value).sum())) / (c.size + 1), int(c.size))


def word_vectors(attr: TextAttribution, width: int) -> np.ndarray:
    """(N, width) word importance: padded with NaN or cut to ``width``."""
    v = attr.words
    if v.shape[1] >= width:
        return v[:, :width]
    return np.pad(v, ((0, 0), (0, width - v.shape[1])), constant_values=np.nan)


def top_words(v: np.ndarray, n_words: np.ndarray, k: int) -> np.ndarray:
    """(N, k) indices of each row's k most important words, -1 where a text has fewer words."""
    top = top_k_parts(np.where(np.isnan(v), -np.inf, v), min(k, v.shape[1])) if v.shape[1] else np.zeros((len(v), 0), int)
    out = np.full((len(v), k), -1, dtype=np.int64)
    out[:, : top.shape[1]] = np.where(top < np.asarray(n_words)[:, None], top, -1)
    return out


@dataclass(frozen=True, eq=False)
class TextComparison:
    """Result of :func:`compare_text_models`.

    frame : one row per (model, text): id, role, arch, alpha, method, text, topk_overlap, rho, focus,
        agreement, logit_rho, vader, and for students ``<metric>_null`` / ``<metric>_excess``.
    summary : one row per model (``id`` = ``model_id``): text-means with 95% bootstrap bounds (``<m>_lo``/``_hi``)
        and, per null metric, the copies' mean ``<m>_null``, SD, 2.5–97.5% range (``_null_lo``/``_hi``), ``<m>_z``,
        ``<m>_p`` and the mean excess ``<m>_excess``.
    attributions : model id -> TextAttribution; words : the words of each text; teacher_top : (N, k).
    """

    frame: pd.DataFrame
    summary: pd.DataFrame
    attributions: dict[str, TextAttribution]
    words: tuple[tuple[str, ...], ...]
    teacher_top: np.ndarray
    k: int
    method: str
    null_copies: int


def _encode(entry_tokenizer: Any, texts: Sequence[str], cache: dict[int, Encoded], max_length: int) -> Encoded:
    key = id(entry_tokenizer)
    if key not in cache:
        cache[key] = encode_words(entry_tokenizer, texts, max_length=max_length)
    return cache[key]


_COPIES: dict[tuple[str, int], Any] = {}
_COPIES_LOCK = threading.Lock()
# Untrained copies' weights kept in memory, oldest dropped first. The shipped zoo's null (39 copies of bert-L2-H256,
# 15.5 MB each, and of bert-L4-H128, 7.7 MB) is 0.9 GB: it must fit, or every batch rebuilds every copy (a
# 48-copy bound rebuilt 78 per batch, 0.03 s each: ~10% of a 1,000-snippet evaluation).
_COPIES_MAX_BYTES = 1 << 30


def _nbytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _random_copy(key: str, config: Any, seed: int) -> Any:
    """``random_text_copy(config, seed)``, built once per process (the page reuses the null's copies)."""
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


def _mean(values: np.ndarray) -> float:
    """Mean over the finite values; NaN (quietly) when there are none."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else math.nan


def _vocab_fingerprint(tokenizer: Any) -> str:
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return hashlib.sha256("\n".join(t for t, _ in vocab).encode("utf-8")).hexdigest()


def _special_ids(tokenizer: Any) -> dict[str, int]:
    return {n: int(getattr(tokenizer, f"{n}_token_id")) for n in ("pad", "mask")
            if getattr(tokenizer, f"{n}_token_id", None) is not None}


def _scores(v: np.ndarray, top: np.ndarray, v_t: np.ndarray, n_words: np.ndarray, k: int,
            lexicon: frozenset[str] | None, words: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
    enough = n_words > k
    kk = min(k, v.shape[1])
    nan = np.full(len(v), np.nan)
    out = {
        "topk_overlap": np.where(enough, topk_overlap(v, v_t, k=kk), np.nan) if kk else nan,
        "rho": attention_rank_alignment(v, v_t),
        "focus": np.where(enough, focus_fraction(v, v_t, k=kk), np.nan) if kk else nan,
    }
    if lexicon is not None:
        out["vader"] = np.array([np.mean([words[i][j].lower() in lexicon for j in row if j >= 0])
                                 if (row >= 0).any() else np.nan for i, row in enumerate(top)])
    return out


def compare_text_models(teacher: TextEntry, students: Sequence[TextEntry], texts: Sequence[str], *,
                        method: str = "grad_x_embedding", k: int = 5, null_copies: int = 0,
                        lexicon: frozenset[str] | None = None, max_length: int = 64,
                        **params: Any) -> TextComparison:
    """Attribute every model on ``texts`` and score it against the teacher (module doc).

    ``null_copies`` R > 0 adds the random-weights null per student architecture; ``lexicon`` adds the
    VADER share. ``params`` go to ``attribute_text`` (e.g. ``n_steps`` for IG).
    """
    if not texts:
        raise ValueError("texts is empty")
    encodings: dict[int, Encoded] = {}
    enc_t = _encode(teacher.tokenizer, texts, encodings, max_length)
    attr_t = attribute_text(teacher.model, enc_t, method=method, special_ids=_special_ids(teacher.tokenizer), **params)
    target = attr_t.target
    width = max(int(enc_t.n_words.max()), 1)
    n_words = enc_t.n_words
    v_t = word_vectors(attr_t, width)
    t_top = top_words(v_t, n_words, k)
    words = enc_t.words
    attributions = {teacher.id: attr_t}
    rows: list[pd.DataFrame] = []
    summary: list[dict[str, Any]] = []
    null_cache: dict[str, list[dict[str, np.ndarray]]] = {}

    for entry in (teacher, *students):
        if entry is teacher:
            attr = attr_t
        else:
            enc = _encode(entry.tokenizer, texts, encodings, max_length)
            attr = attribute_text(entry.model, enc, method=method, target=target,
                                  special_ids=_special_ids(entry.tokenizer), **params)
            attributions[entry.id] = attr
        v = word_vectors(attr, width)
        top = top_words(v, n_words, k)
        scores = _scores(v, top, v_t, n_words, k, lexicon, words)
        scores["agreement"] = agreement(attr.logits, attr_t.logits)
        scores["logit_rho"] = logit_alignment(attr.logits, attr_t.logits)
        frame = pd.DataFrame({"id": entry.id, "role": entry.role, "arch": entry.arch, "alpha": entry.alpha,
                              "method": entry.method, "text": list(range(len(texts))), **scores})
        row: dict[str, Any] = {"id": entry.id, "model_id": entry.id, "role": entry.role, "arch": entry.arch,
                               "alpha": entry.alpha, "method": entry.method}
        for m, s in scores.items():
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean_ci(s) if len(s) > 1 else (_mean(s),) * 3
        if entry is not teacher and null_copies > 0:
            config = entry.model.config
            shape = {k: v for k, v in config.to_dict().items() if k not in ("_name_or_path", "name_or_path")}
            key = f"{sorted(shape.items())}:{_vocab_fingerprint(entry.tokenizer)}"
            if key not in null_cache:
                enc = _encode(entry.tokenizer, texts, encodings, max_length)
                null_cache[key] = []
                for r in range(null_copies):
                    copy = _random_copy(key, config, NULL_SEED_BASE + r)
                    a = attribute_text(copy, enc, method=method, target=target,
                                       special_ids=_special_ids(entry.tokenizer), **params)
                    vc = word_vectors(a, width)
                    null_cache[key].append(_scores(vc, top_words(vc, n_words, k), v_t, n_words, k, lexicon, words))
            copies = null_cache[key]
            for m in NULL_METRICS:
                if m not in scores:
                    continue
                per_copy = np.stack([c[m] for c in copies])  # (R, N)
                with warnings.catch_warnings():  # a text without the metric in any copy: NaN, quietly
                    warnings.simplefilter("ignore", RuntimeWarning)
                    m_null = np.nanmean(per_copy, axis=0)
                frame[f"{m}_null"] = m_null
                if m != "vader":
                    frame[f"{m}_excess"] = chance_corrected(scores[m], m_null)
                copy_means = [_mean(c) for c in per_copy]
                stats = null_stats(row[m], copy_means)
                finite = [c for c in copy_means if math.isfinite(c)]
                lo, hi = (np.percentile(finite, [2.5, 97.5]) if finite else (math.nan, math.nan))
                row.update({f"{m}_null": stats.null_mean, f"{m}_null_sd": stats.null_sd, f"{m}_null_lo": float(lo),
                            f"{m}_null_hi": float(hi), f"{m}_z": stats.z, f"{m}_p": stats.p})
                if m != "vader":
                    ex = frame[f"{m}_excess"].to_numpy()
                    row[f"{m}_excess"] = _mean(ex)
        rows.append(frame)
        summary.append(row)
    return TextComparison(pd.concat(rows, ignore_index=True), pd.DataFrame(summary), attributions, words, t_top, k,
                          method, null_copies)


# --------------------------------------------------------------------------------------------------
# The evaluation's rows: one (model, text) row per model in the image/series results format
# --------------------------------------------------------------------------------------------------

# Columns of :func:`compare_text_batch`: the image/series ``kdviz.analysis.compare.FRAME_COLUMNS`` where a column
# means the same thing over words (``attention_rho`` = ρ over words, parts = words), then the text-only ones.
TEXT_NULL_METRICS = ("attention_rho", "topk_overlap", "focus_ratio", "vader")
TEXT_FRAME_COLUMNS = (*FRAME_COLUMNS, "n_words", "top_words", "vader", "vader_null", "vader_null_copies")


def _word_scores(v: np.ndarray, v_t: np.ndarray, n_words: np.ndarray, k: int, lexicon: frozenset[str] | None,
                 words: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
    """Per text: ρ over words, top-k overlap, focus ratio and fraction on the teacher's top-k words (NaN for a
    text of at most k words, where every word is in both top-k), VADER share of the model's top-k words."""
    from kdviz.analysis.metrics import focus_ratio

    enough = n_words > k
    kk = min(k, v.shape[1])
    nan = np.full(len(v), np.nan)
    with np.errstate(all="ignore"):
        out = {
            "attention_rho": attention_rank_alignment(v, v_t),
            "topk_overlap": np.where(enough, topk_overlap(v, v_t, k=kk), np.nan) if kk else nan,
            "focus_ratio": np.where(enough, focus_ratio(v, v_t, k=kk), np.nan) if kk else nan,
            "focus_fraction": np.where(enough, focus_fraction(v, v_t, k=kk), np.nan) if kk else nan,
        }
    top = top_words(v, n_words, k)
    out["vader"] = (np.array([np.mean([words[i][j].lower() in lexicon for j in row if j >= 0])
                              if (row >= 0).any() else np.nan for i, row in enumerate(top)])
                    if lexicon is not None else nan)
    out["_top"] = top
    return out


def _objects(values: Sequence[np.ndarray]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _completeness(attr: TextAttribution, n: int) -> np.ndarray:
    """IG's completeness error ``|Σ A − (f(x) − f(baseline))| / |f(x) − f(baseline)|`` per text (NaN for other
    methods): captum's delta is ``Σ A − (f(x) − f(baseline))``, so ``f(x) − f(baseline) = Σ A − delta``."""
    if attr.delta is None:
        return np.full(n, np.nan)
    delta = np.asarray(attr.delta, dtype=np.float64)
    gap = attr.signed_tokens.astype(np.float64).sum(axis=1) - delta
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(gap) > 0, np.abs(delta) / np.abs(gap), np.nan)


# IG: texts per attribution call, grouped by length (IG costs steps × the longest text of a call; measured on 50
# test snippets, 32 steps, bert-L2-H256: 25.3 s in one call, 16.4 s in calls of 16). Gradient saliency is one
# forward/backward pass, faster in one call (1.4 s vs 4.0 s).
BUCKET = 16


def attribute_bucketed(model: Any, enc: Encoded, *, method: str, target: np.ndarray | None = None,
                       special_ids: dict[str, int] | None = None, bucket: int = BUCKET,
                       **params: Any) -> TextAttribution:
    """``attribute_text`` on texts of similar length together: the batch sorted by length and cut into calls of
    ``bucket`` texts (each trimmed to its longest), put back in the batch's order and width. Equal to one call on
    the whole batch up to float rounding (padding is masked); ``bucket <= 0`` is one call."""
    n = len(enc.n_words)
    if bucket <= 0 or n <= bucket:
        return attribute_text(model, enc, method=method, target=target, special_ids=special_ids, **params)
    order = np.argsort(enc.attention_mask.sum(1).numpy(), kind="stable")
    length, width = enc.input_ids.shape[1], max(int(enc.n_words.max()), 1)
    tokens, signed = np.zeros((n, length), np.float32), np.zeros((n, length), np.float32)
    words, signed_words = np.full((n, width), np.nan), np.full((n, width), np.nan)
    tgt = np.zeros(n, np.int64)
    logits = delta = None
    elapsed, notes, resolved = 0.0, [], {}
    for start in range(0, n, bucket):
        idx = order[start:start + bucket]
        a = attribute_text(model, enc.rows(idx), method=method, target=None if target is None else np.asarray(target)[idx],
                           special_ids=special_ids, **params)
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
        elapsed += a.elapsed_s
        notes.extend(w for w in a.warnings if w not in notes)
        resolved = a.params
    return TextAttribution(method, resolved, tokens, signed, words, signed_words, tgt, logits, delta, elapsed,
                           tuple(notes))


def compare_text_batch(teacher: TextEntry, students: Sequence[TextEntry], texts: Sequence[str], *,
                       labels: Sequence[int] | np.ndarray | None = None, input_ids: Sequence[int] | None = None,
                       method: str = "grad_x_embedding", k: int = 5, null_copies: int = 0,
                       null_first_seed: int = NULL_SEED_BASE, lexicon: frozenset[str] | None = None,
                       max_length: int = 64, bucket: int | None = None, **params: Any) -> pd.DataFrame:
    """Every model on ``texts`` as rows of the evaluation's table (``TEXT_FRAME_COLUMNS``), one per (model, text).

    The columns mean what the image/series ones do (``kdviz.analysis.compare``) with words as the parts: all
    models explain the teacher's predicted class; ``attention_rho`` is Spearman ρ over words, ``topk_overlap``,
    ``focus_ratio``/``focus_fraction`` use the teacher's top-k words; ``logit_rho`` (undefined with two classes),
    ``logit_margin`` (log-odds of class 1 with two classes), ``kl_to_teacher``, ``agree``; ``pearson`` is
    Pearson r over words, ``ssim`` is NaN (no image). The null: ``null_copies`` untrained copies of each student
    architecture (seeds ``null_first_seed …``), per row each copy's value (``*_null_copies``), their mean
    (``*_null``) and the excess (``*_excess``). Text only: ``n_words``, ``top_words`` (the model's top-k words,
    space-separated), ``vader`` (their share in ``lexicon``) with its null. Attribution runs ``bucket`` texts of
    similar length at a time (:func:`attribute_bucketed`; default ``BUCKET`` for IG, one call otherwise).
    """
    from kdviz.analysis.metrics import logit_margin, output_margin_class, pearson_rows, predictive_divergence

    if not texts:
        raise ValueError("texts is empty")
    n = len(texts)
    if bucket is None:
        bucket = BUCKET if method == "integrated_gradients" else 0
    ids = np.arange(n) if input_ids is None else np.asarray(list(input_ids), dtype=np.int64)
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    encodings: dict[int, Encoded] = {}
    enc_t = _encode(teacher.tokenizer, texts, encodings, max_length)
    attr_t = attribute_bucketed(teacher.model, enc_t, method=method, special_ids=_special_ids(teacher.tokenizer),
                                bucket=bucket, **params)
    target, lg_t = attr_t.target, attr_t.logits
    width = max(int(enc_t.n_words.max()), 1)
    n_words = enc_t.n_words
    words = enc_t.words
    v_t = word_vectors(attr_t, width)
    margin_class = output_margin_class(lg_t)
    null_by_key: dict[str, list[dict[str, np.ndarray]]] = {}
    rows = []
    nan = np.full(n, np.nan)
    for entry in (teacher, *students):
        attr = attr_t if entry is teacher else attribute_bucketed(
            entry.model, _encode(entry.tokenizer, texts, encodings, max_length), method=method, target=target,
            special_ids=_special_ids(entry.tokenizer), bucket=bucket, **params)
        v = word_vectors(attr, width)
        sc = _word_scores(v, v_t, n_words, k, lexicon, words)
        lg = attr.logits
        pred = lg.argmax(axis=1)
        probs = np.exp(lg - lg.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        copies = None
        if entry is not teacher and null_copies > 0:
            config = entry.model.config
            shape = {a: b for a, b in config.to_dict().items() if a not in ("_name_or_path", "name_or_path")}
            key = f"{sorted(shape.items())}:{_vocab_fingerprint(entry.tokenizer)}"
            if key not in null_by_key:
                enc = _encode(entry.tokenizer, texts, encodings, max_length)
                null_by_key[key] = []
                for seed in range(null_first_seed, null_first_seed + null_copies):
                    a = attribute_bucketed(_random_copy(key, config, seed), enc, method=method, target=target,
                                           special_ids=_special_ids(entry.tokenizer), bucket=bucket, **params)
                    null_by_key[key].append(_word_scores(word_vectors(a, width), v_t, n_words, k, lexicon, words))
            copies = null_by_key[key]
        cols: dict[str, Any] = {
            "model_id": entry.id, "role": entry.role, "arch": entry.arch,
            "alpha": np.nan if entry.alpha is None else float(entry.alpha), "method": entry.method,
            "attr_method": method, "input_id": ids,
            "label": pd.array(y if y is not None else [pd.NA] * n, dtype="Int64"), "pred": pred,
            "correct": pd.array(pred == y if y is not None else [pd.NA] * n, dtype="boolean"),
            "confidence": probs.max(axis=1),
            "attention_rho": sc["attention_rho"], "logit_rho": logit_alignment(lg, lg_t),
            "logit_margin": logit_margin(lg, margin_class), "focus_ratio": sc["focus_ratio"],
            "focus_fraction": sc["focus_fraction"], "topk_overlap": sc["topk_overlap"],
            "kl_to_teacher": predictive_divergence(lg, lg_t), "agree": agreement(lg, lg_t).astype(bool),
            "ssim": nan, "pearson": pearson_rows(v, v_t),
            "ig_completeness_error": _completeness(attr, n),
            "ig_steps": pd.array([int(attr.params["n_steps"])] * n if "n_steps" in attr.params else [pd.NA] * n,
                                 dtype="Int64"),
            "null_copies": 0 if copies is None else len(copies),
            "n_words": n_words.astype(np.int64),
            "top_words": [" ".join(words[i][j] for j in row if j >= 0) for i, row in enumerate(sc["_top"])],
        }
        for m in TEXT_NULL_METRICS:
            cols[m] = sc[m]
            if copies is None:
                cols[f"{m}_null_copies"] = _objects([np.empty(0)] * n)
                cols[f"{m}_null"] = nan
            else:
                per_copy = np.stack([c[m] for c in copies])  # (R, N)
                cols[f"{m}_null_copies"] = _objects(list(np.ascontiguousarray(per_copy.T)))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    cols[f"{m}_null"] = np.nanmean(np.where(np.isinf(per_copy), np.nan, per_copy), axis=0)
        for m in ("attention_rho", "topk_overlap"):
            cols[f"{m}_excess"] = nan if copies is None else chance_corrected(sc[m], cols[f"{m}_null"])
        rows.append(pd.DataFrame(cols))
    return pd.concat(rows, ignore_index=True)[list(TEXT_FRAME_COLUMNS)]
