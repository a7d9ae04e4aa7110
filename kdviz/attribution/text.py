"""Words and encodings of texts: how a text model's token attributions become word attributions.

Words are the parts of a text: regex spans of the raw text (letters/digits with inner ``'``, ``’`` or ``-``), so
models with different tokenizers compare word by word. A piece belongs to the word that holds its first
character; special tokens, punctuation and padding belong to no word.

:func:`encode_words` turns texts into an :class:`Encoded` batch (a :class:`~kdviz.models.hf_text.PromptedTokenizer`
puts each text in its prompt template, whose pieces belong to no word); ``kdviz.attribution.engine.attribute_text``
runs a registered text method (:mod:`kdviz.attribution.methods.text`) on it and returns a :class:`TextAttribution`
with token scores and their word sums (:func:`word_importance`).
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from kdviz.errors import InvalidInputError
from kdviz.models.hf_text import PromptedTokenizer

__all__ = [
    "WORD_RE",
    "Encoded",
    "TextAttribution",
    "encode_words",
    "gradient_saliency",
    "text_logits",
    "token_to_word",
    "tokenizer_lock",
    "word_importance",
    "word_spans",
]

WORD_RE = re.compile(r"\w+(?:['\-’]\w+)*")


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the words of ``text``.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of (start, end)
    """
    return [m.span() for m in WORD_RE.finditer(text)]


def token_to_word(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]], length: int) -> list[int]:
    """Word index of each token: the word holding the token's first word character, else -1.

    A byte-level piece such as GPT-2's ``"Ġthe"`` starts with the space before its word.

    Parameters
    ----------
    offsets : sequence of (start, end)
        Character span of each token.
    spans : sequence of (start, end)
        Character span of each word (:func:`word_spans`).
    length : int
        Length of the text.

    Returns
    -------
    list of int
    """
    owner = np.full(length + 1, -1, dtype=np.int64)
    for j, (s, e) in enumerate(spans):
        owner[s:e] = j
    out = []
    for s, e in offsets:
        seg = owner[s:e] if e > s else owner[:0]
        hit = seg[seg >= 0]
        out.append(int(hit[0]) if hit.size else -1)
    return out


@dataclass(frozen=True)
class Encoded:
    """A padded batch of texts.

    input_ids, attention_mask, token_word : (N, L) int64; ``token_word`` is the word index of each token
    (-1 for special tokens, punctuation and padding). n_words : (N,) words that survived truncation.
    words : the words of each text (``n_words[i]`` of them).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_word: torch.Tensor
    n_words: np.ndarray
    words: tuple[tuple[str, ...], ...] = ()

    def rows(self, index: np.ndarray | Sequence[int]) -> Encoded:
        """The batch restricted to ``index``, trimmed to its longest row."""
        idx = torch.as_tensor(np.asarray(index, dtype=np.int64))
        mask = self.attention_mask[idx]
        length = max(int(mask.sum(1).max()), 1) if len(idx) else 1
        words = tuple(self.words[i] for i in idx.tolist()) if self.words else ()
        return Encoded(self.input_ids[idx, :length], mask[:, :length], self.token_word[idx, :length],
                       self.n_words[idx.numpy()], words)


def _encode_prompted(tokenizer: PromptedTokenizer, texts: Sequence[str], max_length: int) -> Encoded:
    """Each text inside the prompt template, right-padded; only pieces of the text map to words. Truncation
    drops the text's last pieces (the prompt's prefix and suffix are kept: GPT-2 answers after the suffix)."""
    prefix, suffix = tokenizer.verbalizer.prefix, tokenizer.verbalizer.suffix
    pad = tokenizer.pad_token_id
    if pad is None:
        raise InvalidInputError("the tokenizer has neither a padding nor an end-of-sequence token")
    rows, owners, n_words, words = [], [], np.zeros(len(texts), dtype=np.int64), []
    for i, text in enumerate(texts):
        full = prefix + text + suffix
        enc = tokenizer.tokenizer(full, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
        lo, hi = len(prefix), len(prefix) + len(text)
        spans = [(s + lo, e + lo) for s, e in word_spans(text)]
        owner = token_to_word(offsets, spans, len(full))
        in_text = [j for j, (s, e) in enumerate(offsets) if (e > s and lo <= s < hi) or owner[j] >= 0]
        over = len(ids) - max_length
        if over > 0:
            if over > len(in_text):
                raise InvalidInputError(f"the prompt alone is {len(ids) - len(in_text)} tokens; max_length={max_length}")
            drop = set(in_text[len(in_text) - over:])
            ids = [t for j, t in enumerate(ids) if j not in drop]
            owner = [w for j, w in enumerate(owner) if j not in drop]
        rows.append(ids)
        owners.append(owner)
        n_words[i] = max(owner) + 1 if owner else 0
        words.append(tuple(full[s:e] for s, e in spans[: n_words[i]]))
    length = max((len(r) for r in rows), default=1)
    input_ids = torch.full((len(texts), length), int(pad), dtype=torch.long)
    attention_mask = torch.zeros((len(texts), length), dtype=torch.long)
    token_word = torch.full((len(texts), length), -1, dtype=torch.long)
    for i, (ids, owner) in enumerate(zip(rows, owners, strict=True)):
        input_ids[i, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        attention_mask[i, : len(ids)] = 1
        token_word[i, : len(ids)] = torch.as_tensor(owner, dtype=torch.long)
    return Encoded(input_ids, attention_mask, token_word, n_words, tuple(words))


_TOKENIZER_LOCKS: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_TOKENIZER_LOCKS_GUARD = threading.Lock()


def tokenizer_lock(tokenizer: Any) -> threading.RLock:
    """The lock that serialises calls on one Hugging Face tokenizer (a :class:`PromptedTokenizer`'s inner one).

    A fast tokenizer's truncation and padding are settings of its shared Rust object, set by each call: two
    sessions encoding at once with different ``max_length`` would get each other's.

    Parameters
    ----------
    tokenizer : Any
        A Hugging Face tokenizer or a ``PromptedTokenizer``.

    Returns
    -------
    threading.RLock
    """
    inner = tokenizer.tokenizer if isinstance(tokenizer, PromptedTokenizer) else tokenizer
    with _TOKENIZER_LOCKS_GUARD:
        lock = _TOKENIZER_LOCKS.get(inner)
        if lock is None:
            lock = _TOKENIZER_LOCKS[inner] = threading.RLock()
        return lock


def encode_words(tokenizer: Any, texts: Sequence[str], *, max_length: int = 64) -> Encoded:
    """Tokenize ``texts`` (a fast tokenizer; truncation to ``max_length`` pieces) and map pieces to words.

    A :class:`~kdviz.models.hf_text.PromptedTokenizer` (GPT-2, T5) puts each text in its prompt template and
    right-pads; the words are still those of the text, prompt pieces belong to no word. Thread-safe
    (:func:`tokenizer_lock`).

    Parameters
    ----------
    tokenizer : Any
        A fast Hugging Face tokenizer or a ``PromptedTokenizer``.
    texts : sequence of str
    max_length : int, default 64
        Pieces per text at most.

    Returns
    -------
    Encoded

    Raises
    ------
    InvalidInputError
        For a slow tokenizer, or a prompt longer than ``max_length``.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInputError("text attribution needs a fast (Rust) tokenizer for character offsets")
    with tokenizer_lock(tokenizer):
        if isinstance(tokenizer, PromptedTokenizer):
            return _encode_prompted(tokenizer, texts, max_length)
        enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True,
                        return_offsets_mapping=True, return_tensors="pt")
    token_word = torch.full_like(enc["input_ids"], -1)
    n_words = np.zeros(len(texts), dtype=np.int64)
    words = []
    for i, text in enumerate(texts):
        spans = word_spans(text)
        owner = token_to_word(enc["offset_mapping"][i].tolist(), spans, len(text))
        owner = [w if m else -1 for w, m in zip(owner, enc["attention_mask"][i].tolist(), strict=True)]
        token_word[i] = torch.as_tensor(owner, dtype=token_word.dtype)
        n_words[i] = max(owner) + 1 if owner else 0  # words cut off by truncation are dropped
        words.append(tuple(text[s:e] for s, e in spans[: n_words[i]]))
    return Encoded(enc["input_ids"], enc["attention_mask"], token_word, n_words, tuple(words))


def word_importance(token_scores: torch.Tensor, token_word: torch.Tensor, n_words: int | None = None) -> torch.Tensor:
    """Word scores ``v_w = Σ_{pieces of w} score``; pieces of no word are left out.

    Parameters
    ----------
    token_scores : torch.Tensor
        (N, L).
    token_word : torch.Tensor
        (N, L) word index of each token, -1 for none.
    n_words : int, optional
        Width W of the result; default the highest word index + 1.

    Returns
    -------
    torch.Tensor
        (N, W).
    """
    n = int(token_word.max().item()) + 1 if n_words is None else int(n_words)
    n = max(n, 1)
    out = torch.zeros(token_scores.shape[0], n + 1, dtype=token_scores.dtype, device=token_scores.device)
    index = torch.where((token_word >= 0) & (token_word < n), token_word, torch.full_like(token_word, n))
    out.scatter_add_(1, index, token_scores)
    return out[:, :n]


def text_logits(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The classifier's logits.

    Parameters
    ----------
    model : nn.Module
        A Hugging Face sequence classifier (or ``VerbalizedLM``).
    input_ids, attention_mask : torch.Tensor
        (N, L).

    Returns
    -------
    torch.Tensor
        (N, C).
    """
    return model(input_ids=input_ids, attention_mask=attention_mask).logits


def gradient_saliency(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      target: torch.Tensor, *, multiply: bool = True) -> torch.Tensor:
    """Per-token saliency of logit ``target`` at the word embeddings ``e``; padding scores 0.

    Call on an eval-mode model.

    Parameters
    ----------
    model : nn.Module
    input_ids, attention_mask : torch.Tensor
        (N, L).
    target : torch.Tensor
        (N,) classes.
    multiply : bool, default True
        ``‖∂f_c/∂e ⊙ e‖₂`` when True, else ``‖∂f_c/∂e‖₂``.

    Returns
    -------
    torch.Tensor
        (N, L).
    """
    embeddings = model.get_input_embeddings()(input_ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeddings, attention_mask=attention_mask).logits
    (grad,) = torch.autograd.grad(logits.gather(1, target.view(-1, 1)).sum(), embeddings)
    score = grad * embeddings if multiply else grad
    return score.detach().norm(dim=-1) * attention_mask


@dataclass(frozen=True, eq=False)
class TextAttribution:
    """Attributions of one model on a batch of texts (numpy inside, so it pickles).

    tokens, signed_tokens : (N, L) token importance (non-negative) and its signed view.
    words, signed_words : (N, W) word importance (Σ of pieces), NaN beyond each text's ``n_words``.
    target : (N,) class explained; logits : (N, C); delta : (N,) IG convergence delta or None.
    """

    method: str
    params: dict[str, Any]
    tokens: np.ndarray
    signed_tokens: np.ndarray
    words: np.ndarray
    signed_words: np.ndarray
    target: np.ndarray
    logits: np.ndarray
    delta: np.ndarray | None = None
    elapsed_s: float = 0.0
    warnings: tuple[str, ...] = field(default_factory=tuple)
