"""Hugging Face text classifiers (BERT family): small students, vocabulary pruning, random copies, naming.

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
from torch import nn

if TYPE_CHECKING:  # transformers is imported where a model is built (``kdviz inspect`` stays quick)
    from transformers import BertForSequenceClassification, BertTokenizerFast, PretrainedConfig

__all__ = [
    "ENCODER_TYPES",
    "StudentSpec",
    "corpus_vocabulary",
    "parse_text_arch",
    "prune_embeddings",
    "pruned_tokenizer",
    "random_text_copy",
    "save_hf_folder",
    "student_model",
    "text_arch_name",
]

# Sequence-classification encoders kdviz attributes through their word-embedding layer.
ENCODER_TYPES = ("bert", "distilbert", "roberta", "xlm-roberta", "electra", "albert", "mpnet", "deberta", "deberta-v2")


def text_arch_name(config: PretrainedConfig) -> str:
    """``{model_type}-L{layers}-H{hidden}``, e.g. ``bert-L6-H384`` (layers/hidden under any config naming)."""
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None) or getattr(config, "n_layer", 0)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", None) or getattr(config, "n_embd", 0)
    return f"{config.model_type}-L{layers}-H{hidden}"


@dataclass(frozen=True)
class StudentSpec:
    """A small BERT student ``bert-L{layers}-H{hidden}``: heads = hidden/64, FFN = 4·hidden."""

    layers: int
    hidden: int
    max_positions: int = 128

    @property
    def arch(self) -> str:
        return f"bert-L{self.layers}-H{self.hidden}"


def parse_text_arch(name: str) -> StudentSpec:
    """``bert-L2-H256`` -> ``StudentSpec(2, 256)``; ValueError naming the expected form otherwise."""
    parts = name.lower().split("-")
    if len(parts) != 3 or parts[0] != "bert" or not parts[1].startswith("l") or not parts[2].startswith("h"):
        raise ValueError(f"text student arch must look like 'bert-L2-H256', got {name!r}")
    try:
        return StudentSpec(int(parts[1][1:]), int(parts[2][1:]))
    except ValueError:
        raise ValueError(f"text student arch must look like 'bert-L2-H256', got {name!r}") from None


def student_model(spec: StudentSpec, *, vocab_size: int, num_labels: int, seed: int,
                  pad_token_id: int = 0) -> BertForSequenceClassification:
    """A randomly initialised (``torch.manual_seed(seed)``) BERT sequence classifier of ``spec``."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab_size, hidden_size=spec.hidden, num_hidden_layers=spec.layers,
        num_attention_heads=max(1, spec.hidden // 64), intermediate_size=4 * spec.hidden,
        max_position_embeddings=spec.max_positions, num_labels=num_labels, pad_token_id=pad_token_id,
    )
    torch.manual_seed(seed)
    return BertForSequenceClassification(config)


def random_text_copy(config: PretrainedConfig, seed: int) -> nn.Module:
    """An untrained eval-mode classifier of exactly ``config``'s architecture (weights from ``seed``)."""
    from transformers import AutoModelForSequenceClassification

    cfg = copy.deepcopy(config)
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(cfg)
    finally:
        torch.random.set_rng_state(gen_state)
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
    from transformers import BertTokenizerFast

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
