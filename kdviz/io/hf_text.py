"""Hugging Face text checkpoints from a folder or a zip: checked first, then loaded without running code.

A checkpoint is a folder (or a zip of one) with ``config.json``, the weights as ``model.safetensors`` (or
``pytorch_model.bin``, read with ``torch.load(weights_only=True)``) and the tokenizer files. Before anything
is built, :func:`check_hf_folder` refuses: links, custom code (``auto_map``, ``trust_remote_code``), a model
type kdviz cannot attribute (BERT-family sequence classifiers; GPT-2 and T5, read as classifiers through a
verbalizer: ``kdviz.models.hf_text.Verbalizer``), file references that point outside the upload (absolute, ``~``, ``..`` or
URLs in ``*_file``/``*path*`` fields), oversized vocabularies or files, and sharded weights. Zips go through
``kdviz.io.safezip`` (bombs, ``..`` entries, links). ``trust_remote_code`` is never passed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from kdviz.errors import InvalidInputError
from kdviz.io.safezip import extract_zip
from kdviz.io.untrusted import UploadError
from kdviz.io.zoo.manifest import MANIFEST, read_manifest
from kdviz.models.hf_text import (
    ENCODER_TYPES,
    GENERATIVE_TYPES,
    SEQ2SEQ_TYPES,
    PromptedTokenizer,
    VerbalizedLM,
    Verbalizer,
    generative_lm,
    text_arch_name,
)

__all__ = [
    "HFTextError",
    "MAX_JSON_BYTES",
    "MAX_VOCAB",
    "TextModel",
    "TextZoo",
    "TextZooModel",
    "check_hf_folder",
    "find_hf_root",
    "is_hf_text_source",
    "load_hf_text",
    "load_text_zoo",
]

MAX_VOCAB = 262_144  # larger than any BERT-family vocabulary in use (XLM-R: 250,002)
MAX_JSON_BYTES = 64 * 1024**2  # tokenizer.json of a 250k vocabulary is ~17 MB
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
JSON_FILES = ("config.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json",
              "generation_config.json", "added_tokens.json")
_PATH_KEY_HINTS = ("file", "path", "dir")


class HFTextError(UploadError):
    """A Hugging Face text checkpoint kdviz refuses or cannot read (a ValueError)."""


@dataclass(frozen=True, eq=False)
class TextModel:
    """A loaded eval-mode float32 sequence classifier with its (fast) tokenizer and what describes it.

    kind : ``"encoder"`` (a sequence classifier), ``"decoder"`` (GPT-2) or ``"encoder-decoder"`` (T5); the last
    two are :class:`~kdviz.models.hf_text.VerbalizedLM` models with a
    :class:`~kdviz.models.hf_text.PromptedTokenizer`, and ``verbalizer`` says which token stands for which class.
    """

    model: nn.Module = field(repr=False)
    tokenizer: Any = field(repr=False)
    arch: str
    model_type: str
    layers: int
    hidden: int
    vocab_size: int
    num_labels: int
    labels: tuple[str, ...]
    params: int
    weights_file: str
    sha256: str
    source: str
    kind: str = "encoder"
    verbalizer: Verbalizer | None = None

    @property
    def special_ids(self) -> dict[str, int]:
        """``pad``/``mask`` token ids (for IG baselines and occlusion) where the tokenizer has them."""
        out = {}
        for name in ("pad", "mask"):
            value = getattr(self.tokenizer, f"{name}_token_id", None)
            if value is not None:
                out[name] = int(value)
        return out

    def summary(self) -> dict[str, object]:
        """What ``kdviz inspect`` prints for a text checkpoint."""
        out: dict[str, object] = {
            "format": "huggingface", "task": "text", "kind": self.kind, "arch": self.arch,
            "model_type": self.model_type, "layers": self.layers, "hidden": self.hidden,
            "vocab_size": self.vocab_size, "num_classes": self.num_labels, "labels": list(self.labels),
            "params": self.params, "weights": self.weights_file, "sha256": self.sha256,
            "tokenizer": type(getattr(self.tokenizer, "tokenizer", self.tokenizer)).__name__, "source": self.source}
        if self.verbalizer is not None:
            out["verbalizer"] = self.verbalizer.mapping()
            out["verbalizer_ids"] = list(self.verbalizer.ids)
            out["prompt"] = self.verbalizer.template
        return out


def is_hf_text_source(source: str | os.PathLike[str]) -> bool:
    """True for a folder holding ``config.json`` or a zip with a ``config.json`` entry."""
    path = Path(source)
    if path.is_dir():
        return (path / "config.json").is_file()
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return any(PurePosixPath(n).name == "config.json" for n in archive.namelist())
    return False


def _walk_json(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str):
                yield f"{where}.{k}", v
            else:
                yield from _walk_json(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value[:10_000]):
            if isinstance(v, (dict, list)):
                yield from _walk_json(v, f"{where}[{i}]")


def _points_outside(value: str) -> bool:
    v = value.replace("\\", "/")
    return (v.startswith(("/", "~")) or (len(v) > 1 and v[1] == ":") or "://" in v
            or ".." in PurePosixPath(v).parts)


def _read_json(path: Path) -> Any:
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise HFTextError(f"{path.name} is {size:,} bytes; the limit is {MAX_JSON_BYTES:,}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HFTextError(f"{path.name} is not valid JSON ({exc})") from exc


def find_hf_root(folder: Path) -> Path:
    """The one folder under ``folder`` (itself or a single subfolder) that holds ``config.json``."""
    found = sorted(p.parent for p in folder.rglob("config.json") if p.is_file())
    if not found:
        raise HFTextError("no config.json: a Hugging Face checkpoint is a folder with config.json, the weights "
                          "and the tokenizer files")
    if len(found) > 1:
        raise HFTextError(f"{len(found)} config.json files; upload one model per zip")
    return found[0]


def _check_json_file(name: str, obj: Any, max_vocab: int) -> None:
    """No custom code asked for, a tokenizer vocabulary within the limit, no path pointing outside the upload."""
    if isinstance(obj, dict) and ("auto_map" in obj or obj.get("trust_remote_code")):
        raise HFTextError(f"{name} asks for custom code (auto_map / trust_remote_code); kdviz never runs "
                          "code from a checkpoint")
    if name == "tokenizer.json":
        vocab = (obj.get("model") or {}).get("vocab") if isinstance(obj, dict) else None
        if vocab is not None and len(vocab) > max_vocab:
            raise HFTextError(f"tokenizer.json has a vocabulary of {len(vocab):,}; the limit is {max_vocab:,}")
        return
    for key, value in _walk_json(obj, name):
        leaf = key.rsplit(".", 1)[-1].lower()
        if any(h in leaf for h in _PATH_KEY_HINTS) and _points_outside(value):
            raise HFTextError(f"{key} = {value!r} points outside the upload; refusing the checkpoint")


def _check_config(config: dict[str, Any], max_vocab: int) -> None:
    """A supported model type, a valid verbalizer where there is one, a vocabulary size within the limit."""
    model_type = config.get("model_type")
    if model_type not in ENCODER_TYPES + GENERATIVE_TYPES:
        raise HFTextError(f"model_type {model_type!r} is not supported; kdviz reads sequence classifiers of "
                          f"type {', '.join(ENCODER_TYPES)} and, through a verbalizer, "
                          f"{', '.join(GENERATIVE_TYPES)}")
    if "kdviz_verbalizer" in config:
        try:
            Verbalizer.from_dict(config["kdviz_verbalizer"])
        except (ValueError, TypeError, KeyError) as exc:
            raise HFTextError(f"config.json kdviz_verbalizer: {exc}") from exc
    vocab_size = config.get("vocab_size")
    if not isinstance(vocab_size, int) or not 0 < vocab_size <= max_vocab:
        raise HFTextError(f"config.json vocab_size={vocab_size!r}; it must be an integer in [1, {max_vocab:,}]")


def _check_vocab_files(root: Path, max_vocab: int) -> None:
    """Slow-tokenizer vocabularies (BERT's vocab.txt, GPT-2's vocab.json) within the limit."""
    vocab_txt = root / "vocab.txt"
    if vocab_txt.is_file():
        with vocab_txt.open("rb") as fh:
            lines = sum(1 for _ in fh)
        if lines > max_vocab:
            raise HFTextError(f"vocab.txt has {lines:,} entries; the limit is {max_vocab:,}")
    vocab_json = root / "vocab.json"  # GPT-2's slow-tokenizer vocabulary (read when tokenizer.json is absent)
    if vocab_json.is_file():
        vocab = _read_json(vocab_json)
        if not isinstance(vocab, dict):
            raise HFTextError("vocab.json is not a JSON object of token -> id")
        if len(vocab) > max_vocab:
            raise HFTextError(f"vocab.json has {len(vocab):,} entries; the limit is {max_vocab:,}")


def check_hf_folder(folder: str | os.PathLike[str], *, max_vocab: int = MAX_VOCAB) -> dict[str, Any]:
    """Refuse anything unsafe or unsupported in ``folder`` (see the module doc); return the parsed config."""
    root = Path(folder)
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            raise HFTextError(f"{path.relative_to(root.parent)} is a link; links are refused")
    config = _read_json(root / "config.json") if (root / "config.json").is_file() else None
    if not isinstance(config, dict):
        raise HFTextError("config.json is missing or is not a JSON object")
    for name in JSON_FILES:
        if (root / name).is_file():
            _check_json_file(name, config if name == "config.json" else _read_json(root / name), max_vocab)
    _check_config(config, max_vocab)
    _check_vocab_files(root, max_vocab)
    if any(root.glob("*.index.json")):
        raise HFTextError("sharded weights (*.index.json) are not supported; save with one weights file")
    if not any((root / w).is_file() for w in WEIGHT_FILES):
        raise HFTextError(f"no weights: expected one of {', '.join(WEIGHT_FILES)}")
    return config


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle with code, or a broken file
        raise HFTextError(f"{path.name} cannot be read safely (weights_only): {str(exc).splitlines()[0]}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise HFTextError(f"{path.name} does not hold a state dict of tensors")
    return state


def _missing_weights(model: nn.Module, missing: list[str]) -> list[str]:
    """Missing keys that are not buffers like ``position_ids`` nor tied to a loaded parameter (GPT-2/T5 heads)."""
    names: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    absent = set(missing)
    out = []
    for key in missing:
        if key.endswith("position_ids"):
            continue
        tied = next((v for v in names.values() if key in v), [key])
        if all(k in absent for k in tied):
            out.append(key)
    return out


def _resolve_verbalizer(config: Any, tokenizer: Any, verbalizer: Verbalizer | dict[str, str] | None,
                        template: str | None) -> Verbalizer:
    """The verbalizer passed, else config.json's ``kdviz_verbalizer``, else one from named ``id2label`` classes."""
    model_type = config.model_type
    if isinstance(verbalizer, Verbalizer):
        chosen = verbalizer if template is None else Verbalizer(verbalizer.labels, verbalizer.tokens, template)
    elif verbalizer is not None:
        chosen = Verbalizer.from_mapping(dict(verbalizer), model_type, template=template)
    elif isinstance(getattr(config, "kdviz_verbalizer", None), dict):
        block = Verbalizer.from_dict(config.kdviz_verbalizer)
        chosen = block if template is None else Verbalizer(block.labels, block.tokens, template)
    else:
        labels = [str(config.id2label.get(i, i)) for i in range(len(config.id2label or {}))]
        if len(labels) < 2 or any(label == f"LABEL_{i}" for i, label in enumerate(labels)):
            raise HFTextError(f"a {model_type} checkpoint is read as a classifier through verbalizer tokens: pass "
                              "them (class name -> token, e.g. --verbalizer fresh=' fresh'), or name the classes "
                              "in config.json (id2label or kdviz_verbalizer)")
        chosen = Verbalizer.default(labels, model_type, template=template)
    return chosen.resolve(tokenizer)


def _load_folder(root: Path, source: str, *, max_vocab: int, verbalizer: Verbalizer | dict[str, str] | None = None,
                 template: str | None = None) -> TextModel:
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer  # noqa: PLC0415 - transformers is heavy: only when a text model is loaded

    check_hf_folder(root, max_vocab=max_vocab)
    config = AutoConfig.from_pretrained(root, local_files_only=True, trust_remote_code=False)
    generative = config.model_type in GENERATIVE_TYPES
    if not generative and (verbalizer is not None or template is not None):
        raise HFTextError(f"a {config.model_type} sequence classifier has its own head; verbalizers and prompts "
                          f"are for {', '.join(GENERATIVE_TYPES)}")
    if generative:
        for key in ("pad_token_id", "eos_token_id", "bos_token_id", "decoder_start_token_id"):
            value = getattr(config, key, None)
            if value is not None and (not isinstance(value, int) or not 0 <= value < config.vocab_size):
                raise HFTextError(f"config.json {key}={value!r} is not a token id of the vocabulary "
                                  f"(0..{config.vocab_size - 1})")
    weights = next(root / w for w in WEIGHT_FILES if (root / w).is_file())
    state = _state_dict(weights)
    model = generative_lm(config) if generative else AutoModelForSequenceClassification.from_config(config)
    result = model.load_state_dict(state, strict=False)
    missing = _missing_weights(model, list(result.missing_keys))
    if missing:
        kind = "language model" if generative else "sequence classifier"
        raise HFTextError(f"{weights.name} lacks {len(missing)} weight(s) of a {config.model_type} {kind}, "
                          f"e.g. {', '.join(missing[:3])}")
    model = model.float().eval()
    try:
        tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True, trust_remote_code=False)
    except Exception as exc:
        raise HFTextError(f"the tokenizer files cannot be read: {str(exc).splitlines()[0]}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise HFTextError("kdviz needs a fast tokenizer (tokenizer.json) for word offsets")
    if len(tokenizer) > config.vocab_size:
        raise HFTextError(f"the tokenizer has {len(tokenizer):,} tokens but the model only {config.vocab_size:,}")
    verb = None
    kind = "encoder"
    if generative:
        try:
            verb = _resolve_verbalizer(config, tokenizer, verbalizer, template)
        except ValueError as exc:
            raise HFTextError(str(exc)) from exc
        model = VerbalizedLM(model, verb).eval()
        tokenizer = PromptedTokenizer(tokenizer, verb)
        kind = "encoder-decoder" if config.model_type in SEQ2SEQ_TYPES else "decoder"
        labels = verb.labels
    else:
        labels = tuple(str(config.id2label.get(i, i)) for i in range(config.num_labels))
    return TextModel(
        model=model, tokenizer=tokenizer, arch=text_arch_name(config), model_type=config.model_type,
        layers=int(getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layers", 0)),
        hidden=int(getattr(config, "hidden_size", 0) or getattr(config, "dim", 0)),
        vocab_size=int(config.vocab_size), num_labels=len(labels), labels=labels,
        params=sum(p.numel() for p in model.parameters()), weights_file=weights.name,
        sha256=hashlib.sha256(weights.read_bytes()).hexdigest(), source=source, kind=kind, verbalizer=verb,
    )


def load_hf_text(source: str | os.PathLike[str] | bytes, *, max_vocab: int = MAX_VOCAB,
                 verbalizer: Verbalizer | dict[str, str] | None = None, template: str | None = None) -> TextModel:
    """Load a checked Hugging Face sequence classifier from a folder, a ``.zip`` path or zip bytes.

    A GPT-2 or T5 checkpoint is read as a classifier through ``verbalizer`` (class name -> token, e.g.
    ``{"fresh": " fresh", "rotten": " rotten"}``, or a :class:`~kdviz.models.hf_text.Verbalizer`) and the prompt
    ``template`` (default ``DEFAULT_TEMPLATES``); without them, from ``kdviz_verbalizer`` in ``config.json`` or
    the named classes of ``id2label`` (tokens from the names).

    Raises :class:`HFTextError` (a ValueError) naming what was refused; zip problems raise
    ``kdviz.io.untrusted`` errors from the safe extractor.
    """
    options = {"max_vocab": max_vocab, "verbalizer": verbalizer, "template": template}
    if isinstance(source, (bytes, bytearray)) or (Path(source).is_file() and zipfile.is_zipfile(source)):
        name = "upload.zip" if isinstance(source, (bytes, bytearray)) else Path(source).name
        with tempfile.TemporaryDirectory(prefix="kdviz-hf-") as tmp:
            extract_zip(bytes(source) if isinstance(source, (bytes, bytearray)) else source, tmp)
            return _load_folder(find_hf_root(Path(tmp)), name, **options)
    root = Path(source)
    if not root.is_dir():
        raise HFTextError(f"{root} is neither a folder nor a zip of a Hugging Face checkpoint")
    return _load_folder(root, str(root), **options)


# --------------------------------------------------------------------------------------------------
# Text zoos: zoo.json (task "text") + one Hugging Face folder per model


@dataclass(frozen=True, eq=False)
class TextZooModel:
    """A manifest entry of a text zoo with its loaded model."""

    entry: Any  # kdviz.io.zoo.manifest.ModelEntry
    text: TextModel

    @property
    def id(self) -> str:
        return str(self.entry.id)


@dataclass(frozen=True, eq=False)
class TextZoo:
    """A loaded text zoo: root, manifest, models (teacher first), and the manifest's ``text`` block."""

    root: Path
    manifest: Any  # kdviz.io.zoo.manifest.ZooManifest
    models: tuple[TextZooModel, ...]
    text: dict[str, Any]

    @property
    def teacher(self) -> TextZooModel:
        return next(m for m in self.models if m.entry.role == "teacher")

    @property
    def students(self) -> tuple[TextZooModel, ...]:
        return tuple(m for m in self.models if m.entry.role == "student")


def load_text_zoo(root: str | os.PathLike[str]) -> TextZoo:
    """Read ``root/zoo.json`` (task ``text``) and load every model folder through :func:`load_hf_text`."""
    root = Path(root)
    manifest = read_manifest(root)
    if manifest.task != "text":
        raise InvalidInputError(f"{root / MANIFEST}: task is {manifest.task!r}, not 'text'")
    raw = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    models = []
    for entry in sorted(manifest.models, key=lambda e: e.role != "teacher"):
        folder = root / entry.checkpoint
        if not folder.is_dir():
            raise InvalidInputError(f"{root / MANIFEST}: folder of model {entry.id!r} not found: {entry.checkpoint}")
        models.append(TextZooModel(entry, load_hf_text(folder)))
    return TextZoo(root, manifest, tuple(models), dict(raw.get("text") or {}))
