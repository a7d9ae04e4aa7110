"""Rationale distillation: the teacher's top-k words as a second target (arXiv 2409.12586, 2305.02301).

The teacher's *token rationale* of a training text is its top-k words (k = 5) by gradient saliency
(gradient × word embedding, L2 over the hidden size, pieces summed into words), for the class the teacher
predicts. It is computed once per training set and cached (:func:`teacher_cache`, :class:`TeacherCache`).
An encoder student gets a token-tagging head (:class:`RationaleHead`) trained to mark the pieces of those
words; the dual objective of "Distilling step-by-step" combined with kdviz's KD loss at α:

    L = (1 − β)·L_KD(α, T) + β·L_rationale,     L_rationale = mean BCE(tag logit, piece ∈ rationale)

β = 0.5 is step-by-step's α = 0.5; α = 1 makes the label term plain cross-entropy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdviz.attribution.text import Encoded, gradient_saliency, word_importance
from kdviz.training.losses import kd_loss

__all__ = [
    "RationaleHead",
    "TeacherCache",
    "rationale_distill_loss",
    "rationale_loss",
    "rationale_tags",
    "teacher_cache",
    "top_words",
]


@dataclass(frozen=True)
class TeacherCache:
    """Teacher outputs for a fixed list of texts.

    logits : (N, C) float32; rationale : (N, k) word indices, best first, -1 where a text has fewer than
    k words; n_words : (N,); k : the rationale size.
    """

    logits: np.ndarray
    rationale: np.ndarray
    n_words: np.ndarray
    k: int

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, logits=self.logits, rationale=self.rationale, n_words=self.n_words, k=self.k)

    @classmethod
    def load(cls, path: str | Path) -> TeacherCache:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["logits"], z["rationale"], z["n_words"], int(z["k"]))


def top_words(word_scores: np.ndarray, n_words: np.ndarray, k: int) -> np.ndarray:
    """Indices (N, k) of the k highest-scoring words per row, ties to the earlier word, -1 padded."""
    out = np.full((word_scores.shape[0], k), -1, dtype=np.int64)
    for i, n in enumerate(np.asarray(n_words).tolist()):
        order = np.argsort(-np.asarray(word_scores[i, :n], dtype=np.float64), kind="stable")[:k]
        out[i, : len(order)] = order
    return out


def teacher_cache(model: nn.Module, batches: Iterable[Encoded], *, k: int = 5) -> TeacherCache:
    """The teacher's logits and top-k rationale words (gradient × embedding at its predicted class)."""
    model.eval()
    logits, rationale, n_words = [], [], []
    for enc in batches:
        with torch.no_grad():
            out = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
        tokens = gradient_saliency(model, enc.input_ids, enc.attention_mask, out.argmax(1))
        words = word_importance(tokens, enc.token_word, max(int(enc.n_words.max()), 1))
        logits.append(out.float().numpy())
        rationale.append(top_words(words.numpy(), enc.n_words, k))
        n_words.append(enc.n_words)
    return TeacherCache(np.concatenate(logits), np.concatenate(rationale), np.concatenate(n_words), k)


def rationale_tags(token_word: torch.Tensor, rationale: torch.Tensor) -> torch.Tensor:
    """(N, L) float: 1 for the pieces of a rationale word, else 0 (``token_word`` (N, L), ``rationale`` (N, k))."""
    hit = (token_word.unsqueeze(-1) == rationale.unsqueeze(1)) & (rationale.unsqueeze(1) >= 0)
    return (hit.any(-1) & (token_word >= 0)).float()


def rationale_loss(tag_logits: torch.Tensor, tags: torch.Tensor, token_word: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of the tagging head over word pieces (special tokens, punctuation and
    padding excluded); 0 for a batch without any word piece."""
    mask = (token_word >= 0).float()
    per = F.binary_cross_entropy_with_logits(tag_logits, tags, reduction="none")
    return (per * mask).sum() / mask.sum().clamp_min(1.0)


def rationale_distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, targets: torch.Tensor,
                           tag_logits: torch.Tensor, tags: torch.Tensor, token_word: torch.Tensor, *,
                           alpha: float, temperature: float, beta: float) -> torch.Tensor:
    """``(1 − β)·L_KD(α, T) + β·L_rationale`` (module doc); β in [0, 1]."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    label = kd_loss(student_logits, teacher_logits, targets, alpha=alpha, temperature=temperature)
    return (1.0 - beta) * label + beta * rationale_loss(tag_logits, tags, token_word)


class RationaleHead(nn.Module):
    """Token-tagging head: one logit per token from the encoder's last hidden state."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.proj(hidden_states).squeeze(-1)
