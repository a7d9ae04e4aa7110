"""A tiny text zoo on disk for tests: random BERTs over the 40-piece test vocabulary (``tests.text_models``),
saved with ``save_pretrained``, a ``zoo.json`` (task text, dataset rotten_tomatoes) and a ``split.npz`` whose
test positions are the first snippets of the corpus; and word vectors computed directly with transformers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from kdviz.io.text import TextSplit
from tests.text_models import save_tiny

# id, role, layers, hidden, alpha, method, seed
MODELS = (
    ("teacher", "teacher", 2, 32, 1.0, "ce", 0),
    ("l1_a1", "student", 1, 32, 1.0, "ce", 1),
    ("l1_a0.5", "student", 1, 32, 0.5, "kd", 2),
    ("l1_a0.1", "student", 1, 32, 0.1, "kd", 3),
    ("l2h16_a0.5", "student", 2, 16, 0.5, "kd", 4),
)
SENTENCES = ["the movie was great and the story is very good fun", "a boring plot and dull acting but a witty story",
             "this film is not good and it is very dull", "love the acting , the plot and the story !",
             "bad movie", "the story was fun but the film is boring and bad"]


def build_tiny_text_zoo(root: Path, *, n_test: int = 8) -> Path:
    """Write the zoo into ``root`` and return it."""
    root.mkdir(parents=True, exist_ok=True)
    models = []
    for mid, role, layers, hidden, alpha, method, seed in MODELS:
        save_tiny(root / mid, seed, layers=layers, hidden=hidden)
        models.append({"id": mid, "role": role, "arch": f"bert-L{layers}-H{hidden}", "alpha": alpha,
                       "temperature": 4.0, "method": method, "checkpoint": mid, "params": 0,
                       "test_accuracy": 0.5, "seed": seed, "epochs": 1, "layers": layers, "hidden": hidden})
    manifest = {"name": "tiny-text", "task": "text", "dataset": "rotten_tomatoes", "input_shape": [32],
                "mean": [], "std": [], "class_names": ["rotten", "fresh"], "models": models,
                "text": {"max_length": 32, "k": 5, "split": "split.npz"}}
    (root / "zoo.json").write_text(json.dumps(manifest, indent=1))
    TextSplit(train=np.arange(n_test, n_test + 10), test=np.arange(n_test), seed=0).save(root / "split.npz")
    return root


def direct_word_saliency(model, tokenizer, text: str, target: int) -> np.ndarray:
    """‖∂f_c/∂e ⊙ e‖₂ per token through transformers directly, summed per whitespace/punctuation word
    (``word_ids`` of the fast tokenizer; the sentences have no apostrophes or hyphens), words only."""
    enc = tokenizer(text, return_tensors="pt")
    emb = model.get_input_embeddings()(enc["input_ids"]).detach().requires_grad_(True)
    logits = model(inputs_embeds=emb, attention_mask=enc["attention_mask"]).logits
    (grad,) = torch.autograd.grad(logits[0, target], emb)
    token = (grad * emb).detach().norm(dim=-1)[0].numpy()
    word_ids = enc.word_ids(0)
    words = [w for w in re.findall(r"\S+", text)]
    keep = [j for j, w in enumerate(words) if re.fullmatch(r"\w+", w)]
    out = np.zeros(len(words))
    for t, w in enumerate(word_ids):
        if w is not None:
            out[w] += token[t]
    return out[keep]
