"""Hugging Face text classifiers: BERT-family encoders, and decoders / encoder-decoders read as classifiers.

A decoder (GPT-2) or an encoder-decoder (T5) classifies by the token it would generate: the user's text goes
into a prompt template (:class:`Verbalizer`: ``"predict: {text}"``), and the class score of each class is the
logit of its verbalizer token — GPT-2 at the next position after the prompt, T5 at the decoder's first step
(distilling step-by-step's "predict:" prefix). :class:`VerbalizedLM` wraps such a model so that it answers like
a sequence classifier (``model(input_ids=..., attention_mask=...).logits`` of shape (N, C); ``inputs_embeds``;
``get_input_embeddings``), and :class:`PromptedTokenizer` carries the template so that
``kdviz.attribution.text.encode_words`` puts the prompt around the text while words stay those of the text.

Models are only ever built from a config object or a local folder; nothing is downloaded and
``trust_remote_code`` is never passed (``kdviz.io.hf_text`` validates uploaded folders before this runs).
"""

from __future__ import annotations

import collections
import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from kdviz.errors import InvalidInputError, UnknownNameError, UnsupportedModelError
from kdviz.models.registry import seeded_draws

if TYPE_CHECKING:  # transformers is imported where a model is built (``kdviz inspect`` stays quick)
    from transformers import BertTokenizerFast, PretrainedConfig

__all__ = [
    "DECODER_TYPES",
    "DEFAULT_TEMPLATES",
    "ENCODER_TYPES",
    "GENERATIVE_TYPES",
    "PromptedTokenizer",
    "SEQ2SEQ_TYPES",
    "VerbalizedLM",
    "VerbalizedOutput",
    "Verbalizer",
    "generative_lm",
    "STUDENT_FAMILIES",
    "StudentSpec",
    "corpus_vocabulary",
    "parse_text_arch",
    "prune_embeddings",
    "pruned_tokenizer",
    "random_text_copy",
    "save_hf_folder",
    "student_model",
    "student_tokenizer",
    "text_arch_name",
]

# Sequence-classification encoders kdviz attributes through their word-embedding layer.
ENCODER_TYPES = ("bert", "distilbert", "roberta", "xlm-roberta", "electra", "albert", "mpnet", "deberta", "deberta-v2")
# Models whose label is a generated token (tested types only): decoders and encoder-decoders.
DECODER_TYPES = ("gpt2",)
SEQ2SEQ_TYPES = ("t5",)
GENERATIVE_TYPES = DECODER_TYPES + SEQ2SEQ_TYPES
DEFAULT_TEMPLATES = {"gpt2": "predict: {text}\nlabel:", "t5": "predict: {text}"}
MAX_VERBALIZER_LABELS = 1000
MAX_VERBALIZER_CHARS = 1000


def text_arch_name(config: PretrainedConfig) -> str:
    """``{model_type}-L{layers}-H{hidden}``, e.g. ``bert-L6-H384`` (layers/hidden under any config naming)."""
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None) or getattr(config, "n_layer", 0)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", None) or getattr(config, "n_embd", 0)
    return f"{config.model_type}-L{layers}-H{hidden}"


STUDENT_FAMILIES = ("bert", "t5", "gpt2")


@dataclass(frozen=True)
class StudentSpec:
    """A small student ``{family}-L{layers}-H{hidden}``: heads = hidden/64, FFN = 4·hidden.

    family ``bert`` is a sequence classifier; ``t5`` (encoder-decoder, ``layers`` in encoder and decoder each)
    and ``gpt2`` (decoder, ``max_positions`` positions) are language models read as classifiers through a
    :class:`Verbalizer` (:func:`student_model`).
    """

    layers: int
    hidden: int
    max_positions: int = 128
    family: str = "bert"

    @property
    def arch(self) -> str:
        return f"{self.family}-L{self.layers}-H{self.hidden}"


def parse_text_arch(name: str) -> StudentSpec:
    """``bert-L2-H256`` -> ``StudentSpec(2, 256)``, ``t5-L2-H128`` / ``gpt2-L2-H128`` -> the same with that
    family; ValueError naming the expected form otherwise."""
    expected = (f"text student arch must look like 'bert-L2-H256', 't5-L2-H128' or 'gpt2-L2-H128' (family "
                f"{', '.join(STUDENT_FAMILIES[:-1])} or {STUDENT_FAMILIES[-1]}), got {name!r}")
    parts = name.lower().split("-")
    if len(parts) != 3 or parts[0] not in STUDENT_FAMILIES or not parts[1].startswith("l") or not parts[2].startswith("h"):
        raise InvalidInputError(expected)
    try:
        layers, hidden = int(parts[1][1:]), int(parts[2][1:])
    except ValueError:
        raise InvalidInputError(expected) from None
    if layers < 1 or hidden < 1:
        raise InvalidInputError(f"{expected}: layers and hidden size must be positive")
    return StudentSpec(layers, hidden, family=parts[0])


def _heads(hidden: int) -> int:
    """hidden/64 attention heads (at least 1), lowered until it divides ``hidden``."""
    heads = max(1, hidden // 64)
    while hidden % heads:
        heads -= 1
    return heads


def student_tokenizer(tokenizer: Any, family: str) -> Any:
    """The tokenizer a ``family`` student reads: ``tokenizer`` itself for BERT; for T5 / GPT-2 a copy of its
    vocabulary (a WordPiece tokenizer: the text zoo's pruned one) whose end-of-sequence token is its ``[SEP]``
    (beginning ``[CLS]``, padding ``[PAD]``). The T5 copy keeps ``[CLS] text [SEP]`` around encoder inputs; the
    GPT-2 copy adds no special tokens (the answer follows the prompt directly, as GPT-2's own tokenizer does)."""
    if family == "bert":
        return tokenizer
    if family not in GENERATIVE_TYPES:
        raise UnknownNameError(f"family must be one of {', '.join(STUDENT_FAMILIES)}, got {family!r}")
    from tokenizers import Tokenizer  # noqa: PLC0415 - transformers is heavy: imported where a model is built
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415 - transformers is heavy: imported where a model is built

    inner = getattr(tokenizer, "tokenizer", tokenizer)  # a PromptedTokenizer's own
    pad = inner.pad_token
    eos = inner.sep_token or inner.eos_token
    if pad is None or eos is None:
        raise UnsupportedModelError("a T5 / GPT-2 student reuses the teacher's vocabulary and needs its padding and "
                         "separator / end-of-sequence tokens ([PAD], [SEP])")
    backend = Tokenizer.from_str(inner.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    if family in DECODER_TYPES:
        backend.post_processor = None
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=pad, eos_token=eos,
                                   bos_token=inner.cls_token or inner.bos_token or eos, unk_token=inner.unk_token,
                                   mask_token=inner.mask_token, model_max_length=inner.model_max_length)


def student_model(spec: StudentSpec, *, vocab_size: int, num_labels: int, seed: int, pad_token_id: int = 0,
                  tokenizer: Any = None, labels: Sequence[str] = ()) -> nn.Module:
    """A randomly initialised (``torch.manual_seed(seed)``) student of ``spec``.

    BERT: a sequence classifier of ``num_labels`` classes. T5 / GPT-2: a :class:`VerbalizedLM` over
    ``T5ForConditionalGeneration`` / ``GPT2LMHeadModel`` with ``tokenizer``'s vocabulary (a
    :func:`student_tokenizer`) and the default verbalizer of ``labels`` (T5 ``"fresh"``, GPT-2 ``" fresh"``;
    each must be one token); padding, end-of-sequence and T5's decoder start are the tokenizer's padding / EOS.
    """
    if spec.family in GENERATIVE_TYPES:
        if tokenizer is None or len(labels) != num_labels:
            raise InvalidInputError(f"a {spec.family} student needs its tokenizer and the {num_labels} class names")
        return _generative_student(spec, tokenizer, tuple(labels), seed)
    if spec.family != "bert":
        raise UnknownNameError(f"family must be one of {', '.join(STUDENT_FAMILIES)}, got {spec.family!r}")
    from transformers import BertConfig, BertForSequenceClassification  # noqa: PLC0415 - transformers is heavy: imported where a model is built

    config = BertConfig(
        vocab_size=vocab_size, hidden_size=spec.hidden, num_hidden_layers=spec.layers,
        num_attention_heads=max(1, spec.hidden // 64), intermediate_size=4 * spec.hidden,
        max_position_embeddings=spec.max_positions, num_labels=num_labels, pad_token_id=pad_token_id,
    )
    torch.manual_seed(seed)
    return BertForSequenceClassification(config)


def _generative_student(spec: StudentSpec, tokenizer: Any, labels: tuple[str, ...], seed: int) -> VerbalizedLM:
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration  # noqa: PLC0415 - transformers is heavy: imported where a model is built

    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    if pad is None or eos is None:
        raise UnsupportedModelError("the student tokenizer needs padding and end-of-sequence tokens (student_tokenizer)")
    bos = eos if tokenizer.bos_token_id is None else tokenizer.bos_token_id
    heads = _heads(spec.hidden)
    lm: nn.Module
    torch.manual_seed(seed)
    if spec.family == "t5":
        config = T5Config(vocab_size=len(tokenizer), d_model=spec.hidden, d_kv=spec.hidden // heads,
                          d_ff=4 * spec.hidden, num_layers=spec.layers, num_decoder_layers=spec.layers,
                          num_heads=heads, pad_token_id=pad, eos_token_id=eos, decoder_start_token_id=pad)
        lm = T5ForConditionalGeneration(config)
    else:
        config = GPT2Config(vocab_size=len(tokenizer), n_positions=spec.max_positions, n_embd=spec.hidden,
                            n_layer=spec.layers, n_head=heads, n_inner=4 * spec.hidden, bos_token_id=bos,
                            eos_token_id=eos, pad_token_id=pad)
        lm = GPT2LMHeadModel(config)
    return VerbalizedLM(lm, Verbalizer.default(labels, spec.family).resolve(tokenizer))


def random_text_copy(config: PretrainedConfig, seed: int) -> nn.Module:
    """An untrained eval-mode classifier of exactly ``config``'s architecture (weights from ``seed``); for a
    decoder / encoder-decoder config (``kdviz_verbalizer`` set by :class:`VerbalizedLM`), a random language model
    read through the same verbalizer."""
    from transformers import AutoModelForSequenceClassification  # noqa: PLC0415 - transformers is heavy: imported where a model is built

    cfg = copy.deepcopy(config)
    with seeded_draws(seed):  # thread-safe: concurrent sessions' copies equal serial ones
        if cfg.model_type in GENERATIVE_TYPES:  # a VerbalizedLM: the same verbalizer on a random LM
            block = getattr(cfg, "kdviz_verbalizer", None)
            if not isinstance(block, dict):
                raise UnsupportedModelError(f"a {cfg.model_type} config needs its kdviz_verbalizer to build a random classifier")
            verbalizer = Verbalizer(tuple(block["labels"]), tuple(block["tokens"]), block["template"],
                                    tuple(block["ids"]))
            model = VerbalizedLM(generative_lm(cfg), verbalizer)
        else:
            model = AutoModelForSequenceClassification.from_config(cfg)
    return model.float().eval()


def corpus_vocabulary(tokenizer: Any, texts: Iterable[str], *, min_count: int) -> list[int]:
    """Token ids to keep, in the original order: special tokens, every token used ``>= min_count`` times by
    ``texts``, and every single-character piece (``x``, ``##x``) below U+0250, so no Latin word becomes
    ``[UNK]`` (a rare word falls back to shorter pieces)."""
    counts: collections.Counter[int] = collections.Counter()
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        counts.update(ids)
    keep = set(tokenizer.all_special_ids) | {i for i, c in counts.items() if c >= min_count}
    for token, i in tokenizer.get_vocab().items():
        char = token[2:] if token.startswith("##") else token
        if len(char) == 1 and ord(char) < 0x250:
            keep.add(i)
    return sorted(keep)


def pruned_tokenizer(tokenizer: Any, keep: Sequence[int], folder: str | Path) -> BertTokenizerFast:
    """A WordPiece tokenizer holding only the ``keep`` ids (renumbered 0..len−1) with BERT's uncased
    normalisation; saved to ``folder``."""
    from transformers import BertTokenizerFast  # noqa: PLC0415 - transformers is heavy: imported where a model is built

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    inverse = {i: t for t, i in tokenizer.get_vocab().items()}
    vocab = {inverse[i]: j for j, i in enumerate(keep)}
    new = BertTokenizerFast(vocab=vocab, do_lower_case=True, tokenize_chinese_chars=True, strip_accents=None,
                            model_max_length=512)
    new.save_pretrained(folder)
    return new


def prune_embeddings(model: nn.Module, keep: Sequence[int]) -> None:
    """Keep only the rows ``keep`` of the word-embedding matrix (in place); ``config.vocab_size`` follows."""
    old = model.get_input_embeddings()
    index = torch.as_tensor(list(keep), dtype=torch.long)
    new = nn.Embedding(len(keep), old.embedding_dim, padding_idx=0)
    with torch.no_grad():
        new.weight.copy_(old.weight[index])
    model.set_input_embeddings(new)
    model.config.vocab_size = len(keep)


def save_hf_folder(model: nn.Module, tokenizer: Any, folder: str | Path, *,
                   id2label: dict[int, str] | None = None, dtype: torch.dtype = torch.float16) -> Path:
    """``save_pretrained`` of ``model`` (weights cast to ``dtype``, safetensors) and ``tokenizer`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = copy.deepcopy(model).to(dtype)
    if id2label is not None:
        out.config.id2label = dict(id2label)
        out.config.label2id = {v: k for k, v in id2label.items()}
    out.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------------------------------
# Decoders and encoder-decoders read as classifiers: the class score is the logit of a verbalizer token


@dataclass(frozen=True)
class Verbalizer:
    """Class name -> the one token that stands for it, and the prompt ``template`` around the text.

    labels, tokens : one token per class (GPT-2: ``" fresh"`` with its leading space, the token after the
        prompt; T5: ``"fresh"``, the decoder's first token). template : the prompt with ``{text}`` once.
    ids : the tokens' ids in a tokenizer (:meth:`resolve`), empty until resolved.
    """

    labels: tuple[str, ...]
    tokens: tuple[str, ...]
    template: str
    ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        labels, tokens = tuple(self.labels), tuple(self.tokens)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "ids", tuple(int(i) for i in self.ids))
        if not 2 <= len(labels) <= MAX_VERBALIZER_LABELS or len(tokens) != len(labels):
            raise InvalidInputError(f"a verbalizer needs 2-{MAX_VERBALIZER_LABELS} classes with one token each "
                             f"(got {len(labels)} labels, {len(tokens)} tokens)")
        strings = (*labels, *tokens, self.template)
        if not all(isinstance(x, str) and 0 < len(x) <= MAX_VERBALIZER_CHARS for x in strings):
            raise InvalidInputError(f"verbalizer labels, tokens and template must be non-empty strings of at most "
                             f"{MAX_VERBALIZER_CHARS} characters")
        if len(set(labels)) != len(labels) or len(set(tokens)) != len(tokens):
            raise InvalidInputError("verbalizer labels and tokens must be distinct")
        if self.template.count("{text}") != 1:
            raise InvalidInputError(f"the prompt template must hold '{{text}}' exactly once, got {self.template!r}")
        if self.ids and len(self.ids) != len(labels):
            raise InvalidInputError("verbalizer ids must be one per class")

    @classmethod
    def default(cls, labels: Sequence[str], model_type: str, *, template: str | None = None) -> Verbalizer:
        """Tokens from the class names: ``" name"`` for a decoder (the word after the prompt), ``"name"`` for T5."""
        prefix = " " if model_type in DECODER_TYPES else ""
        return cls(tuple(labels), tuple(prefix + str(label) for label in labels),
                   template or DEFAULT_TEMPLATES.get(model_type, "{text}"))

    @classmethod
    def from_mapping(cls, mapping: dict[str, str], model_type: str, *, template: str | None = None) -> Verbalizer:
        """``{"fresh": " fresh", "rotten": " rotten"}`` (class order = the mapping's order)."""
        return cls(tuple(mapping), tuple(mapping.values()), template or DEFAULT_TEMPLATES.get(model_type, "{text}"))

    @classmethod
    def from_dict(cls, obj: Any) -> Verbalizer:
        """The ``kdviz_verbalizer`` block of a ``config.json`` (``labels``, ``tokens``, ``template``)."""
        if not isinstance(obj, dict) or not all(isinstance(obj.get(k), list) for k in ("labels", "tokens")):
            raise InvalidInputError("kdviz_verbalizer must be an object with lists 'labels' and 'tokens' and a 'template'")
        if not isinstance(obj.get("template"), str):
            raise InvalidInputError("kdviz_verbalizer.template must be a string holding '{text}'")
        return cls(tuple(obj["labels"]), tuple(obj["tokens"]), obj["template"])

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "tokens": list(self.tokens), "template": self.template}

    def mapping(self) -> dict[str, str]:
        return dict(zip(self.labels, self.tokens, strict=True))

    def resolve(self, tokenizer: Any) -> Verbalizer:
        """A copy with ``ids``; ValueError when a token is not exactly one token of ``tokenizer``."""
        ids = []
        for label, token in zip(self.labels, self.tokens, strict=True):
            pieces = tokenizer(token, add_special_tokens=False)["input_ids"]
            if len(pieces) != 1:
                raise InvalidInputError(f"the verbalizer token {token!r} of class {label!r} is {len(pieces)} tokens in "
                                 f"this tokenizer ({tokenizer.convert_ids_to_tokens(pieces)}); pass a one-token "
                                 "verbalizer")
            ids.append(int(pieces[0]))
        if len(set(ids)) != len(ids):
            raise InvalidInputError(f"verbalizer tokens {self.tokens} map to repeated ids {ids}")
        return Verbalizer(self.labels, self.tokens, self.template, tuple(ids))

    @property
    def prefix(self) -> str:
        return self.template.split("{text}")[0]

    @property
    def suffix(self) -> str:
        return self.template.split("{text}")[1]


class PromptedTokenizer:
    """A fast Hugging Face tokenizer with a prompt template (``kdviz.attribution.text.encode_words`` reads it).

    Everything else is the wrapped tokenizer's. ``pad_token_id`` falls back to the end-of-sequence token (GPT-2
    has no padding token); ``mask_token_id`` (occlusion, the ``mask`` IG baseline) to the unknown token, then
    to padding, for tokenizers without a mask token.
    """

    def __init__(self, tokenizer: Any, verbalizer: Verbalizer) -> None:
        self.tokenizer = tokenizer
        self.verbalizer = verbalizer

    def __getattr__(self, name: str) -> Any:
        if name in ("tokenizer", "verbalizer") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.tokenizer, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.tokenizer(*args, **kwargs)

    def __len__(self) -> int:
        return len(self.tokenizer)

    @property
    def template(self) -> str:
        return self.verbalizer.template

    @property
    def pad_token_id(self) -> int | None:
        for value in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id):
            if value is not None:
                return int(value)
        return None

    @property
    def mask_token_id(self) -> int | None:
        for value in (self.tokenizer.mask_token_id, self.tokenizer.unk_token_id):
            if value is not None:
                return int(value)
        return self.pad_token_id


@dataclass
class VerbalizedOutput:
    """``logits`` (N, C): the verbalizer tokens' logits; attentions as the language model returned them."""

    logits: torch.Tensor
    attentions: tuple[torch.Tensor, ...] | None = None
    encoder_attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None


class VerbalizedLM(nn.Module):
    """A causal LM (GPT-2) or an encoder-decoder (T5) answering like a sequence classifier.

    ``forward(input_ids | inputs_embeds, attention_mask)`` embeds the (prompted, right-padded) input once with
    :meth:`get_input_embeddings` — the layer captum hooks — and returns the logits of the verbalizer tokens:
    GPT-2 at the last non-padding position, T5 at the decoder's first step (decoder start token, embedded
    functionally so the hooked layer runs once). ``config`` is the language model's, with ``kdviz_verbalizer``
    and the class names set (so :func:`random_text_copy` rebuilds the same classifier).
    """

    def __init__(self, lm: nn.Module, verbalizer: Verbalizer) -> None:
        super().__init__()
        if not verbalizer.ids:
            raise InvalidInputError("resolve the verbalizer against the tokenizer first (Verbalizer.resolve)")
        self.lm = lm
        self.verbalizer = verbalizer
        self.seq2seq = bool(getattr(lm.config, "is_encoder_decoder", False))
        self.register_buffer("label_ids", torch.as_tensor(verbalizer.ids, dtype=torch.long), persistent=False)
        config = lm.config
        config.kdviz_verbalizer = {**verbalizer.to_dict(), "ids": list(verbalizer.ids)}
        config.id2label = dict(enumerate(verbalizer.labels))
        config.label2id = {label: i for i, label in enumerate(verbalizer.labels)}

    @property
    def config(self) -> Any:
        return self.lm.config

    @property
    def num_layers(self) -> int:
        return int(self.lm.config.num_hidden_layers)

    def get_input_embeddings(self) -> nn.Module:
        return self.lm.get_input_embeddings()

    def save_pretrained(self, folder: str | Path, **kwargs: Any) -> None:
        """The language model's ``save_pretrained``; its config.json carries ``kdviz_verbalizer``, so
        ``kdviz.io.hf_text.load_hf_text`` reads the folder back as this classifier."""
        self.lm.save_pretrained(folder, **kwargs)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, output_attentions: bool = False) -> VerbalizedOutput:
        length = (input_ids if inputs_embeds is None else inputs_embeds).shape[1]
        limit = None if self.seq2seq else getattr(self.lm.config, "max_position_embeddings", None)
        if limit is not None and length > limit:
            raise InvalidInputError(f"{length} tokens (prompt included) exceed this {self.lm.config.model_type}'s "
                             f"{limit} positions; encode with a smaller max_length")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        if attention_mask is None:
            attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        n = inputs_embeds.shape[0]
        if self.seq2seq:
            start = self.lm.config.decoder_start_token_id
            start = self.lm.config.pad_token_id if start is None else start
            dec_ids = torch.full((n, 1), int(start), dtype=torch.long, device=inputs_embeds.device)
            dec = F.embedding(dec_ids, self.get_input_embeddings().weight)
            out = self.lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask, decoder_inputs_embeds=dec,
                          output_attentions=output_attentions, use_cache=False)
            logits = out.logits[:, 0]
            return VerbalizedOutput(logits.index_select(-1, self.label_ids), getattr(out, "decoder_attentions", None),
                                    getattr(out, "encoder_attentions", None), getattr(out, "cross_attentions", None))
        out = self.lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                      output_attentions=output_attentions, use_cache=False)
        last = (attention_mask.sum(1) - 1).clamp_min(0).long()
        logits = out.logits[torch.arange(n, device=last.device), last]
        return VerbalizedOutput(logits.index_select(-1, self.label_ids), getattr(out, "attentions", None))


def generative_lm(config: PretrainedConfig) -> nn.Module:
    """An untrained causal LM (decoders) or seq2seq LM (encoder-decoders) built from ``config``, never remote code."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM  # noqa: PLC0415 - transformers is heavy: imported where a model is built

    if config.model_type in SEQ2SEQ_TYPES:
        return AutoModelForSeq2SeqLM.from_config(config)
    if config.model_type in DECODER_TYPES:
        return AutoModelForCausalLM.from_config(config)
    raise UnsupportedModelError(f"model_type {config.model_type!r} is not a supported decoder or encoder-decoder "
                     f"({', '.join(GENERATIVE_TYPES)})")
