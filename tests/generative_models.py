"""Tiny random GPT-2 and T5 models with tiny offline tokenizers, read as classifiers through verbalizers."""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

CORPUS = [
    "predict: the movie was great and fun, a witty film",
    "explain: a boring plot and dull acting, not good",
    "label: fresh rotten fresh rotten fresh rotten",
    "the film is witty but the story is bad, not good!",
    "i love this movie; it is very good and very fun",
    "i hate this film: the acting is dull and the plot boring",
    "fresh fresh fresh rotten rotten rotten great bad",
] * 3
LABELS = ("fresh", "rotten")


def _train(tok: Tokenizer, specials: list[str], size: int) -> Tokenizer:
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
                                  if isinstance(tok.pre_tokenizer, pre_tokenizers.ByteLevel) else [])
    tok.train_from_iterator(CORPUS, trainer)
    return tok


@functools.cache
def _gpt2_tokenizer_json() -> str:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return _train(tok, ["<|endoftext|>"], 400).to_str()


@functools.cache
def _t5_tokenizer_json() -> str:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok = _train(tok, ["<pad>", "</s>", "<unk>"], 200)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return tok.to_str()


def gpt2_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE like GPT-2's (no padding token: kdviz pads with the end-of-text token)."""
    eot = "<|endoftext|>"
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_gpt2_tokenizer_json()),
                                   bos_token=eot, eos_token=eot, unk_token=eot)


def t5_tokenizer() -> PreTrainedTokenizerFast:
    """Metaspace BPE with T5's special tokens (pad 0, </s> 1, unk 2) and ``</s>`` appended."""
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(_t5_tokenizer_json()),
                                   pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def tiny_gpt2(seed: int = 0, *, layers: int = 1, hidden: int = 32) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    eot = gpt2_tokenizer().eos_token_id
    config = GPT2Config(vocab_size=len(gpt2_tokenizer()), n_layer=layers, n_embd=hidden, n_head=2,
                        n_positions=96, bos_token_id=eot, eos_token_id=eot)
    return GPT2LMHeadModel(config).eval()


def tiny_t5(seed: int = 0, *, layers: int = 1, hidden: int = 32) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(t5_tokenizer()), d_model=hidden, d_ff=2 * hidden, d_kv=16, num_heads=2,
                      num_layers=layers, num_decoder_layers=layers, pad_token_id=0, eos_token_id=1,
                      decoder_start_token_id=0)
    return T5ForConditionalGeneration(config).eval()


def save_generative(folder: Path, kind: str = "gpt2", seed: int = 0, *, labels: bool = True, **kwargs: object) -> Path:
    """``save_pretrained`` of a tiny GPT-2 or T5 and its tokenizer; ``labels`` names the classes in id2label."""
    model = tiny_gpt2(seed, **kwargs) if kind == "gpt2" else tiny_t5(seed, **kwargs)
    if labels:
        model.config.id2label = dict(enumerate(LABELS))
        model.config.label2id = {name: i for i, name in enumerate(LABELS)}
    model.save_pretrained(folder)
    (gpt2_tokenizer() if kind == "gpt2" else t5_tokenizer()).save_pretrained(folder)
    return folder
