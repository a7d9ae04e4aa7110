"""Rationale distillation: the teacher's top-k words as a second target (arXiv 2409.12586, 2305.02301).

The teacher's *token rationale* of a training text is its top-k words (k = 5) by gradient saliency
(gradient × word embedding, L2 over the hidden size, pieces summed into words), for the class the teacher
predicts. It is computed once per training set and cached (:func:`teacher_cache`, :class:`TeacherCache`).
An encoder student gets a token-tagging head (:class:`RationaleHead`) trained to mark the pieces of those
words; the dual objective of "Distilling step-by-step" combined with kdviz's KD loss at α:

    L = (1 − β)·L_KD(α, T) + β·L_rationale,     L_rationale = mean BCE(tag logit, piece ∈ rationale)

β = 0.5 is step-by-step's α = 0.5; α = 1 makes the label term plain cross-entropy.

A T5 / GPT-2 student (``kdviz.models.hf_text.VerbalizedLM``'s language model) learns as the paper's does, by
generation: after ``"predict: {text}"`` the label word (its verbalizer token, then end-of-sequence), after
``"explain: {text}"`` the teacher's rationale words (in text order, space-separated, then end-of-sequence);
:func:`step_by_step_batch` builds both tasks (for GPT-2 the target follows the prompt in one sequence and the
prompt's positions are ignored), :func:`step_by_step_loss` computes

    L = (1 − β)·L_label + β·L_rationale        (step-by-step's α = 1 − β; β = 0.5 by default)

with each term the mean token cross-entropy over its target tokens (padding ignored). With teacher logits and
KD α < 1 the label term becomes ``α·L_label + (1 − α)·T²·KL(softmax(t/T) ‖ softmax(s/T))`` on the student's
verbalizer-token logits at the answer position (the classifier view kdviz attributes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdviz.attribution.text import Encoded, gradient_saliency, word_importance
from kdviz.errors import InvalidInputError
from kdviz.modalities.text import top_words
from kdviz.training.losses import kd_loss

__all__ = [
    "EXPLAIN_TEMPLATES",
    "RationaleHead",
    "StepByStepBatch",
    "StepByStepLoss",
    "TeacherCache",
    "fit_step_by_step",
    "rationale_strings",
    "step_by_step_batch",
    "step_by_step_loss",
    "TokenTags",
    "rationale_distill_loss",
    "rationale_loss",
    "rationale_tags",
    "teacher_cache",
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


def teacher_cache(model: nn.Module, batches: Iterable[Encoded], *, k: int = 5) -> TeacherCache:
    """The teacher's logits and top-k rationale words (gradient × embedding at its predicted class), ranked by
    ``kdviz.modalities.text.top_words``: the ranking the comparison measures with."""
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


@dataclass(frozen=True)
class TokenTags:
    """The rationale head's output on a batch and its targets: tag logits and 0/1 tags (N, L), token → word (N, L)."""

    logits: torch.Tensor
    tags: torch.Tensor
    token_word: torch.Tensor


def rationale_distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, targets: torch.Tensor,
                           tagging: TokenTags, *, alpha: float, temperature: float, beta: float) -> torch.Tensor:
    """``(1 − β)·L_KD(α, T) + β·L_rationale`` (module doc); β in [0, 1]."""
    if not 0.0 <= beta <= 1.0:
        raise InvalidInputError(f"beta must be in [0, 1], got {beta}")
    label = kd_loss(student_logits, teacher_logits, targets, alpha=alpha, temperature=temperature)
    return (1.0 - beta) * label + beta * rationale_loss(tagging.logits, tagging.tags, tagging.token_word)


class RationaleHead(nn.Module):
    """Token-tagging head: one logit per token from the encoder's last hidden state."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.proj(hidden_states).squeeze(-1)


# --------------------------------------------------------------------------------------------------
# T5 / GPT-2 students: generate the label after "predict:" and the rationale after "explain:"

PREDICT_TEMPLATES = {"t5": "predict: {text}", "gpt2": "predict: {text}\nlabel:"}
EXPLAIN_TEMPLATES = {"t5": "explain: {text}", "gpt2": "explain: {text}\nrationale:"}
IGNORE = -100


def rationale_strings(words: Sequence[Sequence[str]], rationale: np.ndarray) -> list[str]:
    """The rationale of each text as generation target: its top-k words (``rationale`` (N, k), -1 padded)
    in the order they appear in the text, space-separated."""
    return [" ".join(words[i][j] for j in sorted(int(j) for j in row if 0 <= j < len(words[i])))
            for i, row in enumerate(np.asarray(rationale))]


@dataclass(frozen=True)
class StepByStepBatch:
    """Both tasks of a batch, right-padded.

    predict_ids, predict_mask, label_ids : the label task; explain_ids, explain_mask, rationale_ids : the
    rationale task. Encoder-decoder: ``*_ids`` are the encoder inputs and ``label_ids`` / ``rationale_ids`` the
    decoder targets (``-100`` = padding). Decoder: ``*_ids`` hold prompt + target, and the targets are
    ``-100`` on the prompt and padding (aligned with the inputs; the loss shifts them). answer_pos : (N,) the
    position whose logits predict the label token (0 for T5: the first decoder step).
    """

    predict_ids: torch.Tensor
    predict_mask: torch.Tensor
    label_ids: torch.Tensor
    explain_ids: torch.Tensor
    explain_mask: torch.Tensor
    rationale_ids: torch.Tensor
    answer_pos: torch.Tensor
    seq2seq: bool


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max((len(r) for r in rows), default=1)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def _task(tokenizer: Any, template: str, texts: Sequence[str], targets: Sequence[str], *, seq2seq: bool,
          max_length: int, max_target: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    if eos is None or pad is None:
        raise InvalidInputError("the tokenizer needs an end-of-sequence token")
    if seq2seq:
        prompts = tokenizer([template.replace("{text}", t) for t in texts], truncation=True, max_length=max_length,
                            add_special_tokens=True)["input_ids"]
    else:  # the answer follows the template's suffix: a long text loses its last pieces, never the suffix
        prompts = tokenizer([template.replace("{text}", t) for t in texts], add_special_tokens=False)["input_ids"]
        suffix = template.split("{text}")[1]
        tail = tokenizer(suffix, add_special_tokens=False)["input_ids"] if suffix else []
        prompts = [list(p) if len(p) <= max_length else
                   (list(p[: max_length - len(tail)]) + list(tail) if tail and list(p[-len(tail):]) == list(tail)
                    else list(p[:max_length])) for p in prompts]
    target_ids = tokenizer(list(targets), add_special_tokens=False)["input_ids"]
    target_ids = [t[: max_target - 1] + [eos] for t in target_ids]
    if seq2seq:
        ids = [list(p) for p in prompts]
        labels = _pad(target_ids, IGNORE)
        answer = torch.zeros(len(texts), dtype=torch.long)
    else:
        ids = [list(p) + t for p, t in zip(prompts, target_ids, strict=True)]
        labels = _pad([[IGNORE] * len(p) + t for p, t in zip(prompts, target_ids, strict=True)], IGNORE)
        answer = torch.tensor([len(p) - 1 for p in prompts], dtype=torch.long)
    mask = _pad([[1] * len(r) for r in ids], 0)
    return _pad(ids, int(pad)), mask, labels, answer


def step_by_step_batch(tokenizer: Any, texts: Sequence[str], labels: Sequence[str], rationales: Sequence[str], *,
                       model_type: str, predict_template: str | None = None, max_length: int = 64,
                       max_target: int = 16) -> StepByStepBatch:
    """Tokenize the two tasks of "Distilling step-by-step" for a ``t5`` or ``gpt2`` student.

    ``labels``: the label word of each text as generated (the verbalizer token: ``"fresh"`` for T5,
    ``" fresh"`` for GPT-2); ``rationales``: the rationale strings (:func:`rationale_strings`; GPT-2 targets
    get a leading space). Prompts are truncated to ``max_length`` tokens (GPT-2: the text's last pieces go, the
    template's suffix stays), targets to ``max_target`` (with the end-of-sequence token).
    """
    if not len(texts) == len(labels) == len(rationales):
        raise InvalidInputError("texts, labels and rationales must have the same length")
    seq2seq = model_type == "t5"
    if model_type not in PREDICT_TEMPLATES:
        raise InvalidInputError(f"model_type must be one of {sorted(PREDICT_TEMPLATES)}, got {model_type!r}")
    predict = predict_template or PREDICT_TEMPLATES[model_type]
    explain = EXPLAIN_TEMPLATES[model_type]
    rat = list(rationales) if seq2seq else [" " + r.lstrip() for r in rationales]
    p_ids, p_mask, l_ids, answer = _task(tokenizer, predict, texts, labels, seq2seq=seq2seq, max_length=max_length,
                                         max_target=max_target)
    e_ids, e_mask, r_ids, _ = _task(tokenizer, explain, texts, rat, seq2seq=seq2seq, max_length=max_length,
                                    max_target=max_target)
    return StepByStepBatch(p_ids, p_mask, l_ids, e_ids, e_mask, r_ids, answer, seq2seq)


def _token_ce(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor,
              seq2seq: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean token cross-entropy of ``targets`` (``-100`` ignored) and the logits it came from."""
    if seq2seq:
        logits = model(input_ids=ids, attention_mask=mask, labels=targets, use_cache=False).logits
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE), logits
    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    shifted = logits[:, :-1]
    return F.cross_entropy(shifted.flatten(0, 1), targets[:, 1:].flatten(), ignore_index=IGNORE), logits


@dataclass(frozen=True)
class StepByStepLoss:
    """``total = (1 − β)·label + β·rationale`` (tensors; ``label`` includes KD when used)."""

    total: torch.Tensor
    label: torch.Tensor
    rationale: torch.Tensor


def step_by_step_loss(model: nn.Module, batch: StepByStepBatch, *, beta: float = 0.5,
                      teacher_logits: torch.Tensor | None = None, verbalizer_ids: Sequence[int] = (),
                      targets: torch.Tensor | None = None, alpha: float = 1.0,
                      temperature: float = 4.0) -> StepByStepLoss:
    """The dual objective on ``batch`` for a Hugging Face seq2seq / causal LM ``model`` (module doc).

    KD (``alpha`` < 1) needs ``teacher_logits`` (N, C), the classes' ``verbalizer_ids`` and the hard
    ``targets`` (N,) class indices.
    """
    if not 0.0 <= beta <= 1.0:
        raise InvalidInputError(f"beta must be in [0, 1], got {beta}")
    label, logits = _token_ce(model, batch.predict_ids, batch.predict_mask, batch.label_ids, batch.seq2seq)
    if alpha < 1.0:
        if teacher_logits is None or not verbalizer_ids or targets is None:
            raise InvalidInputError("KD (alpha < 1) needs teacher_logits, verbalizer_ids and targets")
        answer = logits[torch.arange(len(logits)), batch.answer_pos][:, list(verbalizer_ids)]
        kd = kd_loss(answer, teacher_logits, targets, alpha=0.0, temperature=temperature)
        label = alpha * label + (1.0 - alpha) * kd
    if beta == 0.0:  # plain (KD) label training: the rationale task is not run
        rationale = torch.zeros((), dtype=label.dtype, device=label.device)
    else:
        rationale, _ = _token_ce(model, batch.explain_ids, batch.explain_mask, batch.rationale_ids, batch.seq2seq)
    return StepByStepLoss((1.0 - beta) * label + beta * rationale, label, rationale)


def fit_step_by_step(model: nn.Module, batches: Sequence[StepByStepBatch], *, epochs: int = 1, lr: float = 1e-3,
                     beta: float = 0.5, seed: int = 0) -> list[float]:
    """Train ``model`` with AdamW on ``batches`` (in order, ``epochs`` times); the total loss of every step."""
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(epochs):
        for batch in batches:
            loss = step_by_step_loss(model, batch, beta=beta).total
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    model.eval()
    return losses
