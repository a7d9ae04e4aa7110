"""What a weights file holds, read without ever running code: the format sniffed from the content, ``torch.load``
with ``weights_only=True`` only, state dicts unwrapped from training containers and wrapper prefixes, a
distiller's student and teacher split apart, and the scalars and training options saved next to the weights.

:mod:`kdviz.io.checkpoints` rebuilds models from what is read here.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors

from kdviz import models
from kdviz.errors import CheckpointError
from kdviz.models.cifar_kd import UPSTREAM_NAMES

__all__ = ["CONTAINER_KEYS", "PART_NAMES", "SAFE_CLASSES", "WRAPPER_PREFIXES", "CheckpointContents", "arch_hints",
           "container_metadata", "first_line", "metadata_of", "read_contents", "read_source", "sniff_format",
           "split_parts", "torch_zip_kind", "with_metadata"]

CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "student", "module", "weights", "params", "ema")
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")
# Classes a weights_only load may build besides tensors and containers. argparse.Namespace holds the training
# options RepDistiller ('opt'), DeiT and timm's train.py ('args') save next to the weights; timm's own loader
# allow-lists it too. Building one sets attributes and runs no code. Allowed only inside kdviz's load call.
SAFE_CLASSES = (argparse.Namespace,)



def read_source(source: str | os.PathLike[str] | bytes) -> bytes:
    """The bytes of ``source`` (bytes as given, or a file's content); :class:`CheckpointError` for a missing path."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    path = Path(source)
    if not path.exists():
        raise CheckpointError(f"no such file: {path}")
    if not path.is_file():
        raise CheckpointError(f"not a file: {path}")
    return path.read_bytes()


def sniff_format(data: bytes) -> str:
    """Format from content: safetensors | zip | pickle | unknown."""
    if len(data) >= 10:
        (header_len,) = struct.unpack("<Q", data[:8])
        if 2 <= header_len <= len(data) - 8 and data[8:9] == b"{":
            return "safetensors"
    if data[:4] == b"PK\x03\x04":
        return "zip"
    if data[:1] == b"\x80":  # pickle protocol ≥ 2: torch's legacy (non-zip) format
        return "pickle"
    return "unknown"


def torch_zip_kind(data: bytes) -> str:
    """Tell a torch.save archive from a TorchScript or torch.export program."""
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"file is not a checkpoint (damaged zip archive: {exc})") from exc
    if any(n.endswith("serialized_exported_program.json") or "/models/" in n and n.endswith(".json") for n in names):
        return "torch_export"
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") for n in names):
        return "state_dict"
    raise CheckpointError("file is a zip archive but not a PyTorch checkpoint (no data.pkl inside)")


def _torch_load(data: bytes) -> object:
    try:
        with torch.serialization.safe_globals(list(SAFE_CLASSES)):
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # Under weights_only=True every unpickling error means the pickle asked for something beyond
        # tensors and containers. Torch's own message suggests weights_only=False: never show that.
        culprit = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"builds {culprit.group(1)}" if culprit else "holds Python objects or instructions"
        raise CheckpointError(
            f"refused: the file's pickle {what}, which a plain state dict never does (a whole pickled "
            "model, or an attempt to run code); kdviz never unpickles arbitrary objects. Save "
            "`model.state_dict()` with torch.save, or use safetensors."
        ) from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, IndexError… on damaged files
        raise CheckpointError(f"file is not a readable checkpoint (truncated or damaged: {first_line(exc)})") from exc


def first_line(exc: BaseException) -> str:
    """The first line of a library's error message, for ours (never torch's advice to load with weights_only=False)."""
    text = str(exc).strip()
    if not text or "weights_only" in text:  # torch's advice to load unsafely is not ours to repeat
        return type(exc).__name__
    return text.splitlines()[0][:200]


def _holds_state_dict(value: object) -> bool:
    return isinstance(value, Mapping) and any(isinstance(v, torch.Tensor) for v in value.values())


def with_metadata(state: Mapping[str, torch.Tensor], metadata: Mapping[str, object] | None,
                   prefix: str = "") -> dict[str, torch.Tensor]:
    """``state`` as an ``OrderedDict`` that keeps torch's per-module ``_metadata`` (the modules' state-dict
    versions) for the modules under ``prefix``, renamed without it.

    ``load_state_dict`` passes each module its version; modules that changed layout (BatchNorm,
    torchvision's MNASNet) read it, and MNASNet refuses to load without one.
    """
    out: dict[str, torch.Tensor] = OrderedDict(state)
    if metadata:
        head = prefix.removesuffix(".")
        out._metadata = OrderedDict(  # type: ignore[attr-defined]
            ("" if k == head else k[len(prefix):], v) for k, v in metadata.items()
            if not prefix or k == head or k.startswith(prefix)
        )
    return out


def metadata_of(state: object) -> Mapping[str, object] | None:
    """torch's per-module ``_metadata`` (state-dict versions) of a state dict, None when it has none."""
    return getattr(state, "_metadata", None)


def _unwrap(obj: object, depth: int = 0) -> dict[str, torch.Tensor]:
    """Find the state dict inside a training container.

    A mapping that nests a state dict under a container key is a container even when most of its other
    values are tensors too (RepDistiller's ``{'model': sd, 'accuracy': tensor([73.5]), 'epoch': 240}``).
    """
    if isinstance(obj, Mapping):
        tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        nests = any(_holds_state_dict(obj[k]) for k in CONTAINER_KEYS if k in obj)
        if tensors and len(tensors) >= len(obj) / 2 and not nests:
            return with_metadata(tensors, metadata_of(obj))
        if depth < 3:
            for key in CONTAINER_KEYS:
                if key in obj:
                    try:
                        return _unwrap(obj[key], depth + 1)
                    except CheckpointError:
                        continue
            nested = [v for v in obj.values() if isinstance(v, Mapping)]
            if len(nested) == 1:
                return _unwrap(nested[0], depth + 1)
        keys = ", ".join(map(str, list(obj)[:8]))
        raise CheckpointError(f"no state dict found in the checkpoint (top-level keys: {keys})")
    raise CheckpointError(f"file holds a {type(obj).__name__}, not a state dict of tensors")


def _strip_prefixes(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    stripped = []
    changed = True
    while changed and state:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = with_metadata({k[len(prefix) :]: v for k, v in state.items()}, metadata_of(state), prefix)
                stripped.append(prefix)
                changed = True
    return state, stripped


@dataclass(frozen=True)
class CheckpointContents:
    """What a weights file holds: one state dict per part ("" when it holds one model), its format and SHA-256,
    notes for the user (prefixes stripped, dtypes converted, parts found) and the container's metadata."""

    parts: dict[str, dict[str, torch.Tensor]]
    format: str
    sha256: str
    notes: tuple[str, ...]
    metadata: dict[str, object]


def read_contents(source: str | os.PathLike[str] | bytes) -> CheckpointContents:
    """Every state dict in a safetensors or torch.save file, with the container's metadata; never runs code."""
    data = read_source(source)
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        raise CheckpointError("file is not a checkpoint (empty)")
    kind = sniff_format(data)
    notes: list[str] = []
    if kind == "safetensors":
        try:
            state = load_safetensors(data)
            metadata = {}
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise CheckpointError(f"damaged safetensors file ({exc})") from exc
        fmt = "safetensors"
    elif kind in ("zip", "pickle"):
        if kind == "zip":
            zkind = torch_zip_kind(data)
            if zkind != "state_dict":
                raise CheckpointError(
                    f"file is a {'TorchScript' if zkind == 'torchscript' else 'torch.export'} program, not weights; "
                    "programs run code, so they load only with trust_code=True (KDVIZ_TRUST_PROGRAMS=1 in the app)"
                )
        obj = _torch_load(data)
        state = _unwrap(obj)
        metadata = container_metadata(obj)
        fmt = "state_dict"
    else:
        raise CheckpointError(
            "file is not a checkpoint (expected safetensors or a torch.save state dict; "
            f"it starts with bytes {data[:8]!r})"
        )
    state, stripped = _strip_prefixes(state)
    if stripped:
        notes.append(f"stripped wrapper prefix {' + '.join(repr(p) for p in stripped)}")
    dtypes = sorted({str(v.dtype).removeprefix("torch.") for v in state.values() if v.is_floating_point()})
    if dtypes and dtypes != ["float32"]:
        notes.append(f"weights stored as {', '.join(dtypes)}; loaded as float32")
    if not state:
        raise CheckpointError("file is not a checkpoint (it holds no tensors)")
    parts, part_notes = split_parts(state)
    return CheckpointContents(parts, fmt, digest, tuple(notes + part_notes), metadata)


PART_NAMES = ("student", "teacher")


def split_parts(state: dict[str, torch.Tensor]) -> tuple[dict[str, dict[str, torch.Tensor]], list[str]]:
    """``{'student': sd, 'teacher': sd}`` for a distiller's state dict (mdistiller saves
    ``module.student.*`` and ``module.teacher.*`` together), else ``{'': state}``.

    Other modules of the distiller (feature adapters such as ``conv_reg``) are left out, with a note.
    """
    heads = {k.split(".", 1)[0] for k in state}
    found = [p for p in PART_NAMES if p in heads]
    if not found:
        return {"": state}, []
    parts = {p: with_metadata({k[len(p) + 1 :]: v for k, v in state.items() if k.startswith(p + ".")},
                               metadata_of(state), p + ".") for p in found}
    others = sorted(heads - set(found))
    notes = [f"holds {' and '.join(found)}"]
    if others:
        notes.append(f"left out the distiller's own modules {', '.join(others[:5])}" + (" …" if len(others) > 5 else ""))
    return parts, notes


# Training options worth showing: RepDistiller's ``opt``, DeiT's / timm's / torchdistill's ``args``.
OPTION_FIELDS = (
    "model", "model_s", "model_t", "path_t", "arch", "dataset", "data_set", "nb_classes", "num_classes",
    "distill", "gamma", "alpha", "beta", "kd_T", "distillation_type", "distillation_alpha", "distillation_tau",
    "teacher_model", "epochs", "trial",
)
_SKIP_KEYS = frozenset({"optimizer", "lr_scheduler", "scaler", "model_ema", "state_dict_ema"})


def _plain(value: object) -> int | float | str | bool | None:
    """A JSON-ready scalar: a 1-element tensor (RepDistiller's ``accuracy``) as its number, short strings kept."""
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else None
    if isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 200):
        return value
    return None


def container_metadata(obj: object) -> dict[str, object]:
    """Scalars next to the weights (``epoch``, ``accuracy``, ``best_acc``, timm's ``arch`` …) and the
    training options in an ``opt`` / ``args`` Namespace or dict, as ``opt.model_s`` …; {} for a bare state dict."""
    if not isinstance(obj, Mapping) or not any(_holds_state_dict(obj.get(k)) for k in CONTAINER_KEYS):
        return {}
    out: dict[str, object] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or key in _SKIP_KEYS or "." in key:
            continue
        options = vars(value) if isinstance(value, argparse.Namespace) else value if key in ("opt", "args") else None
        if isinstance(options, Mapping):
            for name in OPTION_FIELDS:
                plain = _plain(options.get(name))
                if plain is not None:
                    out[f"{key}.{name}"] = plain
            continue
        plain = _plain(value)
        if plain is not None:
            out[key] = plain
    return out


def arch_hints(metadata: Mapping[str, object], name: str | None, part: str) -> list[str]:
    """Architecture names the container or the file name suggest, as kdviz registry names.

    Only used to break a tie between architectures the weights fit exactly as well, never to override them.
    RepDistiller's names are mapped to kdviz's (its ``vgg13`` is ``cifar_vgg13``).
    """
    upstream = {v.split(" ")[0]: k for k, v in UPSTREAM_NAMES.items()}
    keys = ("opt.model_t",) if part == "teacher" else ("arch", "opt.model_s", "args.model", "args.arch", "opt.model")
    said = [str(metadata[k]) for k in keys if k in metadata]
    if name:  # registry or upstream names standing alone in the path: resnet8x4_last.pth, wrn_40_2_vanilla/…
        known = sorted({*models.list_models(), *upstream}, key=len, reverse=True)
        said += [n for n in known if re.search(rf"(^|[^A-Za-z0-9]){re.escape(n)}($|[^A-Za-z0-9])", name)]
    return [upstream.get(h, h) for h in said]
