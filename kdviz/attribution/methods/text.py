"""Text methods: token attributions of Hugging Face classifiers on a padded batch of encoded texts.

Each method returns token scores (:class:`~kdviz.attribution.registry.TokenScores`); the engine sums them into
words through the tokenizer's offsets (``kdviz.attribution.text.word_importance``).

- ``integrated_gradients``: captum ``LayerIntegratedGradients`` on the word-embedding layer. Baseline: every
  word piece replaced by ``[PAD]`` (``baseline="pad"``, default) or ``[MASK]``; ``[CLS]``/``[SEP]`` and the
  attention mask are kept. Token importance = Σ over the hidden size of ``|A|``, signed = Σ ``A``.
- ``grad_x_embedding``: the gradient saliency ``‖∂f_c/∂e ⊙ e‖₂`` (L2 over the hidden size); equal to captum
  ``LayerGradientXActivation`` on the embedding layer followed by that norm.
- ``gradient_norm``: ``‖∂f_c/∂e‖₂``.
- ``word_occlusion``: ``f_c(x) − f_c(x with the word's pieces set to [MASK])``, all words of an input in one
  batch; each piece carries its word's value divided by the word's number of pieces (so pieces sum to it).
- ``attention_rollout`` (Abnar & Zuidema 2020): per layer, heads averaged (``head_fusion``), ``Â = (1−r)·A +
  r·I`` (r = ``residual``, 0.5 in the paper; for a row-stochastic A this is "add the identity, re-normalise"),
  rows re-normalised, ``R = Â_L ⋯ Â_1``; token importance = the row of ``[CLS]`` (position 0; encoders) or of the
  last non-padding position (GPT-2). T5 (the decoder's first step has one position): the cross-attention row of
  that step, averaged over heads and decoder layers, times the encoder's rollout. Class-agnostic: the same scores
  for every target. Needs the attention probabilities: a copy of the model runs with the eager attention
  implementation.

Decoders (GPT-2) and encoder-decoders (T5) are attributed as classifiers through
``kdviz.models.hf_text.VerbalizedLM`` (the logit of each class's verbalizer token); their text sits in a prompt,
whose pieces belong to no word and are kept in IG's baseline.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from captum import attr as captum_attr
from torch import nn

from kdviz.attribution.registry import AttributionMethod, ParamSpec, TokenScores, register_method
from kdviz.attribution.text import Encoded, gradient_saliency, text_logits
from kdviz.errors import InvalidInputError, UnsupportedModelError
from kdviz.models.hf_text import VerbalizedLM
from kdviz.vocab import Modality

__all__ = [
    "IG_TOKENS_PER_PASS",
    "GradXEmbedding",
    "GradientNorm",
    "TextAttentionRollout",
    "TextIntegratedGradients",
    "TextMethod",
    "WordOcclusion",
    "attention_rollout_matrix",
    "baseline_ids",
    "text_attention_rollout",
]

IG_TOKENS_PER_PASS = 4_096  # sequences × tokens through the model per IG forward/backward pass (memory bound)
_FUSE = {"mean": lambda a: a.mean(1), "max": lambda a: a.amax(1), "min": lambda a: a.amin(1)}
_HEAD_FUSION = ParamSpec("head_fusion", "choice", "mean", choices=("mean", "max", "min"),
                         help="how each layer's heads are combined (mean as in Abnar & Zuidema 2020)")
_RESIDUAL = ParamSpec("residual", "float", 0.5, min=0.0, max=1.0,
                      help="weight of the identity added for the residual connection (0.5 in the paper)")


class TextMethod(AttributionMethod):
    """Base of the text methods: they take encoded texts and apply to text models only."""

    modalities = frozenset({Modality.TEXT})
    applies_to = ("text",)
    not_applicable = "text models only"


def baseline_ids(input_ids: torch.Tensor, token_word: torch.Tensor, replacement: int) -> torch.Tensor:
    """``input_ids`` with every word piece replaced by ``replacement`` (special tokens, punctuation kept).

    Parameters
    ----------
    input_ids, token_word : torch.Tensor
        (N, L) token ids and the word index of each token (-1 for none).
    replacement : int
        The ``[PAD]`` or ``[MASK]`` id.

    Returns
    -------
    torch.Tensor
    """
    return torch.where(token_word >= 0, torch.full_like(input_ids, replacement), input_ids)


def _ig_chunk(input_ids: torch.Tensor) -> int:
    """Captum's ``internal_batch_size`` for IG: about :data:`IG_TOKENS_PER_PASS` tokens per pass, never fewer
    sequences than texts (captum's minimum). Bounds the memory of long batches; equal to one pass up to float
    rounding, and a single sentence still goes in one pass."""
    n, length = input_ids.shape
    return max(n, IG_TOKENS_PER_PASS // max(1, length))


def _special_id(model: nn.Module, special_ids: dict[str, int] | None, name: str) -> int:
    if special_ids and name in special_ids:
        return int(special_ids[name])
    if name == "pad" and getattr(model.config, "pad_token_id", None) is not None:
        return int(model.config.pad_token_id)
    raise InvalidInputError(f"the {name!r} token id is needed for this method; pass special_ids={{'{name}': id}}")


@register_method
class TextIntegratedGradients(TextMethod):
    """Integrated gradients on the word-embedding layer, from a [PAD] (or [MASK]) sentence."""

    name = "integrated_gradients"
    label = "Integrated Gradients (embeddings)"
    aliases = ("ig",)
    captum_class = captum_attr.LayerIntegratedGradients
    params = (ParamSpec("n_steps", "int", 32, min=2, max=512, help="integration steps"),
              ParamSpec("baseline", "choice", "pad", choices=("pad", "mask"),
                        help="word pieces replaced by [PAD] or [MASK] embeddings ([CLS]/[SEP] kept)"))
    description = "path integral of gradients from a [PAD] (or [MASK]) sentence on the word-embedding layer"
    has_delta = True

    def run_text(self, model: nn.Module, enc: Encoded, target: torch.Tensor, params: dict[str, Any],
                 special_ids: dict[str, int] | None) -> TokenScores:
        """Captum ``LayerIntegratedGradients`` (see :meth:`AttributionMethod.run_text`)."""
        replacement = _special_id(model, special_ids, params["baseline"])
        lig = captum_attr.LayerIntegratedGradients(lambda ids, mask: text_logits(model, ids, mask),
                                                   model.get_input_embeddings())
        raw, delta = lig.attribute(enc.input_ids, baselines=baseline_ids(enc.input_ids, enc.token_word, replacement),
                                   additional_forward_args=(enc.attention_mask,), target=target,
                                   n_steps=params["n_steps"], return_convergence_delta=True,
                                   internal_batch_size=_ig_chunk(enc.input_ids))
        return TokenScores(raw.detach().abs().sum(-1) * enc.attention_mask,
                           raw.detach().sum(-1) * enc.attention_mask, delta.detach().numpy())


@register_method
class GradXEmbedding(TextMethod):
    """L2 norm over the hidden size of gradient × word embedding."""

    name = "grad_x_embedding"
    label = "Gradient × embedding (L2)"
    aliases = ("gxe", "saliency")
    captum_class = captum_attr.LayerGradientXActivation
    description = "L2 norm over the hidden size of gradient × word embedding (the seed paper's saliency)"

    def run_text(self, model: nn.Module, enc: Encoded, target: torch.Tensor, params: dict[str, Any],
                 special_ids: dict[str, int] | None) -> TokenScores:
        """``kdviz.attribution.text.gradient_saliency`` (see :meth:`AttributionMethod.run_text`)."""
        tokens = gradient_saliency(model, enc.input_ids, enc.attention_mask, target, multiply=True)
        return TokenScores(tokens, tokens)


@register_method
class GradientNorm(TextMethod):
    """L2 norm of the gradient at the word embeddings."""

    name = "gradient_norm"
    label = "Gradient norm"
    aliases = ("gradient",)
    captum_class = captum_attr.LayerGradientXActivation
    description = "L2 norm of the gradient at the word embeddings"

    def run_text(self, model: nn.Module, enc: Encoded, target: torch.Tensor, params: dict[str, Any],
                 special_ids: dict[str, int] | None) -> TokenScores:
        """``kdviz.attribution.text.gradient_saliency`` without the product (see :meth:`AttributionMethod.run_text`)."""
        tokens = gradient_saliency(model, enc.input_ids, enc.attention_mask, target, multiply=False)
        return TokenScores(tokens, tokens)


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


@register_method
class WordOcclusion(TextMethod):
    """Drop in the target logit when a word's pieces become [MASK]."""

    name = "word_occlusion"
    label = "Word occlusion"
    aliases = ("occlusion",)
    captum_class = captum_attr.FeatureAblation
    description = "drop in the target logit when a word's pieces become [MASK]"

    def run_text(self, model: nn.Module, enc: Encoded, target: torch.Tensor, params: dict[str, Any],
                 special_ids: dict[str, int] | None) -> TokenScores:
        """One batch of masked copies per text (see :meth:`AttributionMethod.run_text`)."""
        with torch.no_grad():
            signed = _occlusion(model, enc, target, _special_id(model, special_ids, "mask"))
        return TokenScores(signed.abs(), signed)


def attention_rollout_matrix(attentions: Sequence[torch.Tensor], *, head_fusion: str = "mean",
                             residual: float = 0.5) -> torch.Tensor:
    """``R = Â_L ⋯ Â_1`` from per-layer attention probabilities, first layer first.

    Parameters
    ----------
    attentions : sequence of torch.Tensor
        (N, heads, L, L) per layer.
    head_fusion : str, default "mean"
        ``mean``, ``max`` or ``min`` over heads.
    residual : float, default 0.5
        Weight of the identity added for the residual connection.

    Returns
    -------
    torch.Tensor
        (N, L, L).
    """
    fuse = _FUSE[head_fusion]
    rollout = None
    for a in attentions:
        fused = fuse(a.detach().float())
        eye = torch.eye(fused.shape[-1], dtype=fused.dtype).expand_as(fused)
        step = (1.0 - residual) * fused + residual * eye
        step = step / step.sum(-1, keepdim=True).clamp_min(1e-12)
        rollout = step if rollout is None else step @ rollout
    if rollout is None:
        raise UnsupportedModelError("attention rollout needs at least one attention layer")
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
    """Token scores (N, L) of attention rollout (module doc); padding scores 0.

    The [CLS] row for encoders, the last non-padding position for GPT-2, the first decoder step for T5.

    Parameters
    ----------
    model : nn.Module
    input_ids, attention_mask : torch.Tensor
        (N, L).
    head_fusion : str, default "mean"
    residual : float, default 0.5

    Returns
    -------
    torch.Tensor
    """
    with torch.no_grad():
        out = _eager_copy(model)(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
    n = input_ids.shape[0]
    if isinstance(model, VerbalizedLM) and model.seq2seq:
        if not out.encoder_attentions or not out.cross_attentions:
            raise UnsupportedModelError("the model returned no attention probabilities")
        enc = attention_rollout_matrix(out.encoder_attentions, head_fusion=head_fusion, residual=residual)
        cross = torch.stack([_FUSE[head_fusion](a.detach().float())[:, 0] for a in out.cross_attentions]).mean(0)
        row = torch.einsum("nl,nlm->nm", cross, enc)
    else:
        if not out.attentions:
            raise UnsupportedModelError(f"{type(model).__name__} returned no attention probabilities")
        rollout = attention_rollout_matrix(out.attentions, head_fusion=head_fusion, residual=residual)
        if isinstance(model, VerbalizedLM):
            pos = (attention_mask.sum(1) - 1).clamp_min(0).long()
        else:
            pos = torch.zeros(n, dtype=torch.long)
        row = rollout[torch.arange(n), pos]
    return row * attention_mask


@register_method
class TextAttentionRollout(TextMethod):
    """Attention flow through the layers to the words (class-agnostic)."""

    name = "attention_rollout"
    label = "Attention rollout"
    params = (_HEAD_FUSION, _RESIDUAL)
    description = ("attention flow through the layers from [CLS] (encoders), the last position (GPT-2) or the "
                   "first decoder step (T5) to the words (Abnar & Zuidema 2020); class-agnostic")

    def run_text(self, model: nn.Module, enc: Encoded, target: torch.Tensor, params: dict[str, Any],
                 special_ids: dict[str, int] | None) -> TokenScores:
        """:func:`text_attention_rollout` (see :meth:`AttributionMethod.run_text`)."""
        tokens = text_attention_rollout(model, enc.input_ids, enc.attention_mask,
                                        head_fusion=params["head_fusion"], residual=params["residual"])
        return TokenScores(tokens, tokens)
