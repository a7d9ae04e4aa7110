"""Token attributions of Hugging Face text classifiers, summed into words through the tokenizer's offsets.

Words are the parts of text (DESIGN.md): regex spans of the raw text (letters/digits with inner ``'``, ``’``
or ``-``), so models with different tokenizers compare word by word. A piece belongs to the word that holds
its first character; special tokens, punctuation and padding belong to no word.

``attribute_text(model, encoded, method=..., target=...)`` runs one method on a padded batch and returns a
:class:`TextAttribution` with token scores and word scores:

- ``integrated_gradients``: captum ``LayerIntegratedGradients`` on the word-embedding layer. Baseline: every
  word piece replaced by ``[PAD]`` (``baseline="pad"``, default) or ``[MASK]``; ``[CLS]``/``[SEP]`` and the
  attention mask are kept. Token importance = Σ over the hidden size of ``|A|``, signed = Σ ``A``.
- ``grad_x_embedding``: the seed paper's gradient saliency ``‖∂f_c/∂e ⊙ e‖₂`` (L2 over the hidden size);
  equal to captum ``LayerGradientXActivation`` on the embedding layer followed by that norm.
- ``gradient_norm``: ``‖∂f_c/∂e‖₂``.
- ``word_occlusion``: ``f_c(x) − f_c(x with the word's pieces set to [MASK])``, all words of an input in one
  batch; each piece carries its word's value divided by the word's number of pieces (so pieces sum to it).
- ``attention_rollout`` (Abnar & Zuidema 2020): per layer, heads averaged (``head_fusion``), ``Â = (1−r)·A +
  r·I`` (r = ``residual``, 0.5 in the paper; for a row-stochastic A this is "add the identity, re-normalise"),
  rows re-normalised, ``R = Â_L ⋯ Â_1``; token importance = the row of ``[CLS]`` (position 0; encoders) or of the
  last non-padding position (GPT-2). T5 (kdviz's extension: the decoder's first step has one position): the
  cross-attention row of that step, averaged over heads and decoder layers, times the encoder's rollout.
  Class-agnostic: the same scores for every target. Needs the attention probabilities: a copy of the model
  runs with the eager attention implementation.

Decoders (GPT-2) and encoder-decoders (T5) are attributed as classifiers through
``kdviz.models.hf_text.VerbalizedLM`` (the logit of each class's verbalizer token); their text sits in a prompt
(:class:`~kdviz.models.hf_text.PromptedTokenizer`), whose pieces belong to no word and are kept in IG's baseline.
"""

from __future__ import annotations

import copy
import re
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from captum.attr import FeatureAblation, LayerGradientXActivation, LayerIntegratedGradients
from torch import nn

from kdviz.attribution.engine import model_lock
from kdviz.attribution.methods import MethodSpec, ParamSpec
from kdviz.models.hf_text import PromptedTokenizer, VerbalizedLM

__all__ = [
    "TEXT_METHODS",
    "TEXT_METHOD_NAMES",
    "WORD_RE",
    "Encoded",
    "TextAttribution",
    "attention_rollout_matrix",
    "attribute_text",
    "baseline_ids",
    "encode_words",
    "tokenizer_lock",
    "gradient_saliency",
    "text_attention_rollout",
    "text_logits",
    "token_to_word",
    "word_importance",
    "word_spans",
]

WORD_RE = re.compile(r"\w+(?:['\-’]\w+)*")

TEXT_METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "integrated_gradients", "Integrated Gradients (embeddings)", LayerIntegratedGradients,
            (ParamSpec("n_steps", "int", 32, min=2, max=512, help="integration steps"),
             ParamSpec("baseline", "choice", "pad", choices=("pad", "mask"),
                       help="word pieces replaced by [PAD] or [MASK] embeddings ([CLS]/[SEP] kept)")),
            "path integral of gradients from a [PAD] (or [MASK]) sentence on the word-embedding layer",
            has_delta=True, applies_to=("text",), not_applicable="text models only",
        ),
        MethodSpec("grad_x_embedding", "Gradient × embedding (L2)", LayerGradientXActivation, (),
                   "L2 norm over the hidden size of gradient × word embedding (the seed paper's saliency)",
                   applies_to=("text",), not_applicable="text models only"),
        MethodSpec("gradient_norm", "Gradient norm", LayerGradientXActivation, (),
                   "L2 norm of the gradient at the word embeddings", applies_to=("text",),
                   not_applicable="text models only"),
        MethodSpec("word_occlusion", "Word occlusion", FeatureAblation, (),
                   "drop in the target logit when a word's pieces become [MASK]", applies_to=("text",),
                   not_applicable="text models only"),
        MethodSpec("attention_rollout", "Attention rollout", type(None),
                   (ParamSpec("head_fusion", "choice", "mean", choices=("mean", "max", "min"),
                              help="how each layer's heads are combined (mean as in Abnar & Zuidema 2020)"),
                    ParamSpec("residual", "float", 0.5, min=0.0, max=1.0,
                              help="weight of the identity added for the residual connection (0.5 in the paper)")),
                   "attention flow through the layers from [CLS] (encoders), the last position (GPT-2) or the "
                   "first decoder step (T5) to the words (Abnar & Zuidema 2020); class-agnostic",
                   applies_to=("text",), not_applicable="text models only"),
    )
}
# The text methods in the order the UI lists them (one place: helpers read this tuple).
TEXT_METHOD_NAMES: tuple[str, ...] = tuple(TEXT_METHODS)


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the words of ``text``."""
    return [m.span() for m in WORD_RE.finditer(text)]


def token_to_word(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]], length: int) -> list[int]:
    """Word index of each token: the word holding the token's first word character (a byte-level piece such
    as GPT-2's ``"Ġthe"`` starts with the space before its word), else -1."""
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
        raise ValueError("the tokenizer has neither a padding nor an end-of-sequence token")
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
                raise ValueError(f"the prompt alone is {len(ids) - len(in_text)} tokens; max_length={max_length}")
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
    sessions encoding at once with different ``max_length`` got each other's (67 of 200 concurrent encodings
    differed from serial ones, tests/test_thread_safety.py)."""
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
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("text attribution needs a fast (Rust) tokenizer for character offsets")
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
    """Word scores (N, W): ``v_w = Σ_{pieces of w} score``; pieces of no word are left out."""
    n = int(token_word.max().item()) + 1 if n_words is None else int(n_words)
    n = max(n, 1)
    out = torch.zeros(token_scores.shape[0], n + 1, dtype=token_scores.dtype, device=token_scores.device)
    index = torch.where((token_word >= 0) & (token_word < n), token_word, torch.full_like(token_word, n))
    out.scatter_add_(1, index, token_scores)
    return out[:, :n]


def text_logits(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The classifier's logits (N, C)."""
    return model(input_ids=input_ids, attention_mask=attention_mask).logits


def gradient_saliency(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      target: torch.Tensor, *, multiply: bool = True) -> torch.Tensor:
    """Per-token saliency (N, L) of logit ``target`` at the word embeddings ``e``: ``‖∂f_c/∂e ⊙ e‖₂``
    (``multiply=True``) or ``‖∂f_c/∂e‖₂``. Padding scores 0. Call on an eval-mode model."""
    embeddings = model.get_input_embeddings()(input_ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeddings, attention_mask=attention_mask).logits
    (grad,) = torch.autograd.grad(logits.gather(1, target.view(-1, 1)).sum(), embeddings)
    score = grad * embeddings if multiply else grad
    return score.detach().norm(dim=-1) * attention_mask


def baseline_ids(input_ids: torch.Tensor, token_word: torch.Tensor, replacement: int) -> torch.Tensor:
    """``input_ids`` with every word piece replaced by ``replacement`` (special tokens, punctuation kept)."""
    return torch.where(token_word >= 0, torch.full_like(input_ids, replacement), input_ids)


def attention_rollout_matrix(attentions: Sequence[torch.Tensor], *, head_fusion: str = "mean",
                             residual: float = 0.5) -> torch.Tensor:
    """``R = Â_L ⋯ Â_1`` (N, L, L) from per-layer attention probabilities (N, heads, L, L), first layer first."""
    fuse = {"mean": lambda a: a.mean(1), "max": lambda a: a.amax(1), "min": lambda a: a.amin(1)}[head_fusion]
    rollout = None
    for a in attentions:
        fused = fuse(a.detach().float())
        eye = torch.eye(fused.shape[-1], dtype=fused.dtype).expand_as(fused)
        step = (1.0 - residual) * fused + residual * eye
        step = step / step.sum(-1, keepdim=True).clamp_min(1e-12)
        rollout = step if rollout is None else step @ rollout
    if rollout is None:
        raise ValueError("attention rollout needs at least one attention layer")
    return rollout


def _eager_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` running the eager attention implementation (it returns attention probabilities).

    A copy, so the caller's model keeps its attention implementation and gets none of the output-capturing
    hooks transformers installs on a model the first time it is asked for attentions.
    """
    work = copy.deepcopy(model).eval()
    hf = work.lm if isinstance(work, VerbalizedLM) else work
    if hasattr(hf, "set_attn_implementation"):
        hf.set_attn_implementation("eager")
    return work


def text_attention_rollout(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                           head_fusion: str = "mean", residual: float = 0.5) -> torch.Tensor:
    """Token scores (N, L) of attention rollout (module doc): [CLS] row for encoders, the last non-padding
    position for GPT-2, the first decoder step for T5; padding scores 0."""
    with torch.no_grad():
        out = _eager_copy(model)(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
    n = input_ids.shape[0]
    if isinstance(model, VerbalizedLM) and model.seq2seq:
        if not out.encoder_attentions or not out.cross_attentions:
            raise ValueError("the model returned no attention probabilities")
        enc = attention_rollout_matrix(out.encoder_attentions, head_fusion=head_fusion, residual=residual)
        fuse = {"mean": lambda a: a.mean(1), "max": lambda a: a.amax(1), "min": lambda a: a.amin(1)}[head_fusion]
        cross = torch.stack([fuse(a.detach().float())[:, 0] for a in out.cross_attentions]).mean(0)  # (N, L)
        row = torch.einsum("nl,nlm->nm", cross, enc)
    else:
        if not out.attentions:
            raise ValueError(f"{type(model).__name__} returned no attention probabilities")
        rollout = attention_rollout_matrix(out.attentions, head_fusion=head_fusion, residual=residual)
        if isinstance(model, VerbalizedLM):
            pos = (attention_mask.sum(1) - 1).clamp_min(0).long()
        else:
            pos = torch.zeros(n, dtype=torch.long)
        row = rollout[torch.arange(n), pos]
    return row * attention_mask


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


IG_TOKENS_PER_PASS = 4_096  # sequences × tokens through the model per IG forward/backward pass (memory bound)


def _ig_chunk(input_ids: torch.Tensor) -> int:
    """captum's ``internal_batch_size`` for IG: about :data:`IG_TOKENS_PER_PASS` tokens per pass, never fewer
    sequences than texts (captum's minimum). Without it 20 snippets × 32 steps went through the MiniLM teacher in
    one pass: 22 s and 7.5 GB peak; in passes of 4,096 tokens 11 s and 2.0 GB (2 idle cores; 16,384: 15 s, 4.3 GB).
    Equal up to float rounding; a sentence on the Token rationales page still goes in one pass."""
    n, length = input_ids.shape
    return max(n, IG_TOKENS_PER_PASS // max(1, length))


def _special_id(model: nn.Module, tokenizer_ids: dict[str, int] | None, name: str) -> int:
    if tokenizer_ids and name in tokenizer_ids:
        return int(tokenizer_ids[name])
    if name == "pad" and getattr(model.config, "pad_token_id", None) is not None:
        return int(model.config.pad_token_id)
    raise ValueError(f"the {name!r} token id is needed for this method; pass special_ids={{'{name}': id}}")


def _occlusion(model: nn.Module, enc: Encoded, target: torch.Tensor, mask_id: int) -> torch.Tensor:
    """Token scores whose word sums are the logit drops of masking each word."""
    n, length = enc.input_ids.shape
    base = text_logits(model, enc.input_ids, enc.attention_mask).gather(1, target.view(-1, 1)).squeeze(1)
    out = torch.zeros(n, length)
    for i in range(n):
        k = int(enc.n_words[i])
        if k == 0:
            continue
        tw = enc.token_word[i]
        words = torch.arange(k).view(-1, 1)
        ids = torch.where(tw.view(1, -1) == words, torch.full_like(enc.input_ids[i:i + 1].expand(k, -1), mask_id),
                          enc.input_ids[i:i + 1].expand(k, -1))
        occluded = text_logits(model, ids, enc.attention_mask[i:i + 1].expand(k, -1))[:, int(target[i])]
        drop = base[i] - occluded  # (k,)
        pieces = torch.bincount(tw[tw >= 0], minlength=k).clamp_min(1)
        out[i] = torch.where(tw >= 0, (drop / pieces)[tw.clamp_min(0)], torch.zeros(()))
    return out


def attribute_text(model: nn.Module, enc: Encoded, *, method: str = "integrated_gradients",
                   target: Sequence[int] | np.ndarray | torch.Tensor | None = None,
                   special_ids: dict[str, int] | None = None, **params: Any) -> TextAttribution:
    """Attribute ``model``'s logit ``target`` (default: its own prediction) on ``enc`` with ``method``.

    ``special_ids`` maps ``"pad"``/``"mask"`` to token ids (the tokenizer's); IG with ``baseline="pad"``
    falls back to ``model.config.pad_token_id``. Runs on CPU under the model's lock, in eval mode.
    """
    if method not in TEXT_METHODS:
        raise ValueError(f"unknown text method {method!r}; valid: {sorted(TEXT_METHODS)}")
    resolved = TEXT_METHODS[method].resolve(params)
    start = time.perf_counter()
    with model_lock(model):
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits = text_logits(model, enc.input_ids, enc.attention_mask)
            tgt = logits.argmax(1) if target is None else torch.as_tensor(np.asarray(target), dtype=torch.long)
            delta = None
            if method == "integrated_gradients":
                replacement = _special_id(model, special_ids, resolved["baseline"])
                lig = LayerIntegratedGradients(lambda ids, mask: text_logits(model, ids, mask),
                                               model.get_input_embeddings())
                raw, d = lig.attribute(enc.input_ids, baselines=baseline_ids(enc.input_ids, enc.token_word, replacement),
                                       additional_forward_args=(enc.attention_mask,), target=tgt,
                                       n_steps=resolved["n_steps"], return_convergence_delta=True,
                                       internal_batch_size=_ig_chunk(enc.input_ids))
                signed = raw.detach().sum(-1) * enc.attention_mask
                tokens = raw.detach().abs().sum(-1) * enc.attention_mask
                delta = d.detach().numpy()
            elif method in ("grad_x_embedding", "gradient_norm"):
                tokens = gradient_saliency(model, enc.input_ids, enc.attention_mask, tgt,
                                           multiply=method == "grad_x_embedding")
                signed = tokens
            elif method == "attention_rollout":
                tokens = text_attention_rollout(model, enc.input_ids, enc.attention_mask,
                                                head_fusion=resolved["head_fusion"], residual=resolved["residual"])
                signed = tokens
            else:
                with torch.no_grad():
                    signed = _occlusion(model, enc, tgt, _special_id(model, special_ids, "mask"))
                tokens = signed.abs()
        finally:
            model.train(was_training)
    width = max(int(enc.n_words.max()) if len(enc.n_words) else 0, 1)
    valid = np.arange(width)[None, :] < enc.n_words[:, None]
    words = np.where(valid, word_importance(tokens.float(), enc.token_word, width).numpy(), np.nan)
    signed_words = np.where(valid, word_importance(signed.float(), enc.token_word, width).numpy(), np.nan)
    return TextAttribution(method, resolved, tokens.float().numpy(), signed.float().numpy(), words, signed_words,
                           tgt.numpy(), logits.float().numpy(), delta, time.perf_counter() - start)
