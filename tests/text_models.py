"""Tiny Hugging Face text classifiers for tests (random weights, a 40-piece WordPiece vocabulary)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

PIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "great", "bad", "not", "a", "fun",
          "film", "boring", "and", "it", "is", "very", "good", "plot", "act", "##ing", "##s", "dull", "witty", ",",
          ".", "!", "but", "story", "love", "hate", "this", "un", "##fun", "##ny", "fun", "s", "##t"]


def tiny_tokenizer() -> BertTokenizerFast:
    """An uncased WordPiece tokenizer over ``PIECES``."""
    vocab = {}
    for p in PIECES:
        vocab.setdefault(p, len(vocab))
    return BertTokenizerFast(vocab=vocab, do_lower_case=True)


def tiny_bert(seed: int = 0, *, layers: int = 2, hidden: int = 32, num_labels: int = 2) -> BertForSequenceClassification:
    """A random eval-mode BERT classifier over the tiny vocabulary."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tiny_tokenizer()), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64,
                        num_labels=num_labels, id2label={i: f"c{i}" for i in range(num_labels)},
                        label2id={f"c{i}": i for i in range(num_labels)})
    return BertForSequenceClassification(config).eval()


def save_tiny(folder: Path, seed: int = 0, **kwargs: object) -> Path:
    """``save_pretrained`` of a tiny model and its tokenizer into ``folder``."""
    tiny_bert(seed, **kwargs).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder
