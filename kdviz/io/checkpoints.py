"""One way to load a checkpoint: ``load_checkpoint``.

Accepts a path or raw bytes, whatever the file extension says, and finds out what it is from its
content: safetensors, a ``torch.save`` state dict (zip or legacy format, read with
``torch.load(weights_only=True)`` only, so a pickle can never run code), or a TorchScript /
``torch.export`` program (loaded only when the caller passes ``trust_code=True``: those are programs).

State dicts are unwrapped from training containers (``{'state_dict': …}``, ``{'model': …}``, …) and
wrapper prefixes (``module.``, ``model.``, ``_orig_mod.``). num_classes and in_channels are read from
the weights; the architecture is guessed from parameter names and shapes when none is given.
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
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from kdviz import models
from kdviz.models import arch_guess

__all__ = ["CheckpointError", "LoadedCheckpoint", "checkpoint_parts", "guess_arch", "load_checkpoint",
           "load_checkpoint_parts", "read_contents", "read_state_dict"]

CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "student", "module", "weights", "params", "ema")
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")
# Buffers some codebases never saved; their absence changes nothing at inference.
OPTIONAL_SUFFIXES = ("num_batches_tracked",)


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A model rebuilt from a checkpoint, in eval mode, with what was learnt about the file."""

    module: nn.Module
    arch: str
    num_classes: int
    in_channels: int
    format: str  # "safetensors" | "state_dict" | "torchscript" | "torch_export"
    params: int
    sha256: str
    warnings: tuple[str, ...] = ()
    arch_guessed: bool = False
    arch_ties: tuple[str, ...] = ()  # other architectures the weights fit exactly as well
    arch_alternatives: tuple[tuple[str, float], ...] = ()  # nearest non-exact ones, with their match score
    metadata: dict[str, object] = field(default_factory=dict)  # epoch, accuracy, opt.model_s … as plain values
    part: str | None = None  # "student" / "teacher" when the file holds both
    parts: tuple[str, ...] = ()

    def details(self) -> list[str]:
        """What a person should see besides the architecture: near alternatives, and the container's numbers."""
        out = []
        if self.arch_alternatives:
            out.append("next closest: " + ", ".join(f"{a} ({s:.0%} of tensors)" for a, s in self.arch_alternatives))
        if self.metadata:
            out.append("file says " + ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                                                for k, v in self.metadata.items()))
        return out

    def summary(self) -> dict[str, object]:
        """JSON-ready description (what ``kdviz inspect`` prints)."""
        return {
            "format": self.format,
            "arch": self.arch,
            "arch_guessed": self.arch_guessed,
            "arch_ties": list(self.arch_ties),
            "arch_alternatives": [{"arch": a, "match": round(s, 3)} for a, s in self.arch_alternatives],
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "params": self.params,
            "sha256": self.sha256,
            "part": self.part,
            "parts": list(self.parts),
            "metadata": dict(self.metadata),
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------------------------------
# Reading bytes into a flat state dict


def _read_source(source: str | os.PathLike[str] | bytes) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    path = Path(source)
    if not path.exists():
        raise CheckpointError(f"no such file: {path}")
    if not path.is_file():
        raise CheckpointError(f"not a file: {path}")
    return path.read_bytes()


def _sniff(data: bytes) -> str:
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


def _zip_kind(data: bytes) -> str:
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


# Classes a weights_only load may build besides tensors and containers. argparse.Namespace holds the training
# options RepDistiller ('opt'), DeiT and timm's train.py ('args') save next to the weights; timm's own loader
# allow-lists it too. Building one sets attributes and runs no code. Allowed only inside kdviz's load call.
SAFE_CLASSES = (argparse.Namespace,)


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
        raise CheckpointError(f"file is not a readable checkpoint (truncated or damaged: {_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text or "weights_only" in text:  # torch's advice to load unsafely is not ours to repeat
        return type(exc).__name__
    return text.splitlines()[0][:200]


def _holds_state_dict(value: object) -> bool:
    return isinstance(value, Mapping) and any(isinstance(v, torch.Tensor) for v in value.values())


def _with_metadata(state: Mapping[str, torch.Tensor], metadata: Mapping[str, object] | None,
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


def _metadata(state: object) -> Mapping[str, object] | None:
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
            return _with_metadata(tensors, _metadata(obj))
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
                state = _with_metadata({k[len(prefix) :]: v for k, v in state.items()}, _metadata(state), prefix)
                stripped.append(prefix)
                changed = True
    return state, stripped


@dataclass(frozen=True)
class _Contents:
    """What a weights file holds: one state dict per part ("" when it holds one model), and what else."""

    parts: dict[str, dict[str, torch.Tensor]]
    format: str
    sha256: str
    notes: tuple[str, ...]
    metadata: dict[str, object]


def read_state_dict(source: str | os.PathLike[str] | bytes) -> tuple[dict[str, torch.Tensor], str, str, list[str]]:
    """(state dict, format, sha256, notes) for a safetensors or torch.save file; never runs code.

    A file holding a student and a teacher gives the student (``read_contents`` gives both).
    """
    c = read_contents(source)
    part = "student" if "student" in c.parts else next(iter(c.parts))
    return c.parts[part], c.format, c.sha256, list(c.notes)


def read_contents(source: str | os.PathLike[str] | bytes) -> _Contents:
    """Every state dict in a safetensors or torch.save file, with the container's metadata; never runs code."""
    data = _read_source(source)
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        raise CheckpointError("file is not a checkpoint (empty)")
    kind = _sniff(data)
    notes: list[str] = []
    if kind == "safetensors":
        from safetensors.torch import load as load_safetensors

        try:
            state = load_safetensors(data)
            metadata = {}
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise CheckpointError(f"damaged safetensors file ({exc})") from exc
        fmt = "safetensors"
    elif kind in ("zip", "pickle"):
        if kind == "zip":
            zkind = _zip_kind(data)
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
    return _Contents(parts, fmt, digest, tuple(notes + part_notes), metadata)


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
    parts = {p: _with_metadata({k[len(p) + 1 :]: v for k, v in state.items() if k.startswith(p + ".")},
                               _metadata(state), p + ".") for p in found}
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
    from kdviz.models.cifar_kd import UPSTREAM_NAMES

    upstream = {v.split(" ")[0]: k for k, v in UPSTREAM_NAMES.items()}
    keys = ("opt.model_t",) if part == "teacher" else ("arch", "opt.model_s", "args.model", "args.arch", "opt.model")
    said = [str(metadata[k]) for k in keys if k in metadata]
    if name:  # registry or upstream names standing alone in the path: resnet8x4_last.pth, wrn_40_2_vanilla/…
        known = sorted({*models.list_models(), *upstream}, key=len, reverse=True)
        said += [n for n in known if re.search(rf"(^|[^A-Za-z0-9]){re.escape(n)}($|[^A-Za-z0-9])", name)]
    return [upstream.get(h, h) for h in said]


# --------------------------------------------------------------------------------------------------
# Architecture guessing and matching (the search itself lives in kdviz.models.arch_guess)


def _required(keys: Mapping[str, object]) -> set[str]:
    return {k for k in keys if not k.endswith(OPTIONAL_SUFFIXES)}


def _signature(arch: str, num_classes: int, in_channels: int) -> dict[str, tuple[int, ...]]:
    return models.state_dict_signature(arch, num_classes, in_channels)


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def guess_arch(state: Mapping[str, torch.Tensor]) -> tuple[str | None, float, tuple[int, int] | None]:
    """Best-matching registered architecture, its match score in [0, 1] (1 = exact) and its dims.

    ``kdviz.models.arch_guess.guess`` gives the full answer (ties, alternatives).
    """
    g = arch_guess.guess(state)
    return g.arch, g.score, g.dims


def _prefix_summary(keys: set[str], limit: int = 3) -> str:
    """'layer4.*, layer1.2.*' — missing/unexpected keys grouped by module (and block index)."""
    groups = set()
    for key in keys:
        parts = key.split(".")
        head = parts[:2] if len(parts) > 2 and parts[1].isdigit() else parts[:1]
        groups.add(".".join(head) + (".*" if len(parts) > len(head) else ""))
    ordered = sorted(groups, key=lambda g: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", g)])
    text = ", ".join(ordered[:limit])
    return text + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _mismatch_message(arch: str, state: Mapping[str, torch.Tensor], num_classes: int, in_channels: int,
                      signature: Mapping[str, tuple[int, ...]] | None = None) -> str | None:
    """None when ``state`` fits ``arch`` exactly, else a message a person can act on. ``signature``: the
    names and shapes of an ``arch`` already built (else built on the meta device)."""
    sig = _signature(arch, num_classes, in_channels) if signature is None else signature
    shapes = _shapes(state)
    missing = _required(sig) - set(shapes)
    unexpected = set(shapes) - set(sig)
    wrong = sorted(k for k in set(shapes) & set(sig) if shapes[k] != sig[k])
    if not (missing or unexpected or wrong):
        return None
    parts = []
    if missing:
        parts.append(f"missing keys {_prefix_summary(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {_prefix_summary(unexpected)}")
    if wrong:
        k = wrong[0]
        parts.append(f"shape of {k} is {list(shapes[k])}, {arch} needs {list(sig[k])}" + (
            f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""))
    guess, score, _ = guess_arch(state)
    if guess and guess != arch and score >= 1.0 - 1e-6:
        hint = f"this looks like {guess}, not {arch}"
    elif guess and guess != arch and score > 0.5:
        hint = f"closest registered architecture is {guess} ({score:.0%} of tensors match), not {arch}"
    else:
        hint = f"the weights do not fit {arch}"
    return f"{'; '.join(parts)}: {hint}"


# --------------------------------------------------------------------------------------------------
# Public entry point


def load_checkpoint(
    source: str | os.PathLike[str] | bytes,
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    in_channels: int | None = None,
    trust_code: bool = False,
    part: str | None = None,
    name: str | None = None,
) -> LoadedCheckpoint:
    """Rebuild a model from a checkpoint file (path) or its bytes.

    Parameters
    ----------
    source : path or bytes of a ``.safetensors`` / ``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` file, or of a file
        without extension (mdistiller's ``student_best``): the format is read from the content.
    arch : registry name (or any timm name); guessed from parameter names and shapes when None.
    num_classes, in_channels : checked against the weights when given, read from them when None.
    trust_code : allow TorchScript and ``torch.export`` programs, which execute code. Never for uploads
        from people you do not trust.
    part : ``"student"`` or ``"teacher"`` for a file that holds both (default: the student).
    name : the file's name when ``source`` is bytes (an upload); a tie-breaking hint for the architecture.

    Raises
    ------
    CheckpointError
        For anything that cannot be loaded, with a message that says why and what to do.
    """
    data = _read_source(source)
    if trust_code and _sniff(data) == "zip" and _zip_kind(data) in ("torchscript", "torch_export"):
        return _load_program(data, arch=arch, num_classes=num_classes, in_channels=in_channels)
    contents = read_contents(data)
    if part is None:
        part = "student" if "student" in contents.parts else next(iter(contents.parts))
    if part not in contents.parts:
        held = ", ".join(p or "one model" for p in contents.parts)
        raise CheckpointError(f"part={part!r} is not in the file; it holds {held}")
    if name is None and not isinstance(source, (bytes, bytearray, memoryview)):
        name = str(source)
    return _build(contents, part, arch=arch, num_classes=num_classes, in_channels=in_channels, name=name)


def checkpoint_parts(source: str | os.PathLike[str] | bytes) -> tuple[str, ...]:
    """("student", "teacher") for a distiller's file that holds both, () for one model or a program."""
    data = _read_source(source)
    if _sniff(data) == "zip" and _zip_kind(data) in ("torchscript", "torch_export"):
        return ()
    return tuple(p for p in read_contents(data).parts if p)


def load_checkpoint_parts(
    source: str | os.PathLike[str] | bytes, *, name: str | None = None, **kwargs: object
) -> list[LoadedCheckpoint]:
    """Every model in the file: one for a plain checkpoint, student and teacher for a distiller's.

    ``kwargs`` as for ``load_checkpoint`` (``arch``, ``num_classes`` … apply to every part).
    """
    data = _read_source(source)
    if name is None and not isinstance(source, (bytes, bytearray, memoryview)):
        name = str(source)
    if _sniff(data) == "zip" and _zip_kind(data) in ("torchscript", "torch_export"):
        return [load_checkpoint(data, name=name, **kwargs)]  # type: ignore[arg-type]
    contents = read_contents(data)
    return [_build(contents, p, name=name, **kwargs) for p in contents.parts]  # type: ignore[arg-type]


def _build(
    contents: _Contents, part: str, *, arch: str | None = None, num_classes: int | None = None,
    in_channels: int | None = None, name: str | None = None,
) -> LoadedCheckpoint:
    """Rebuild the model of one part of a read checkpoint."""
    state = contents.parts[part]
    warnings = list(contents.notes)
    others = [p for p in contents.parts if p != part]
    if others:
        warnings.append(f"loaded the {part}; the file also holds the {', '.join(others)} (part='{others[0]}')")
    ties: tuple[str, ...] = ()
    alternatives: tuple[tuple[str, float], ...] = ()
    guessed = arch is None
    if arch is None:
        g = arch_guess.guess(state, hint=arch_hints(contents.metadata, name, part))
        arch, dims, ties, alternatives = g.arch, g.dims, g.ties, g.alternatives
        if arch is None or dims is None or not g.exact:
            near = f" (closest: {arch}, {g.score:.0%} of tensors match)" if arch and g.score > 0 else ""
            raise CheckpointError(
                f"cannot recognise the architecture from the weights{near}; pass the architecture explicitly "
                "(--arch) if it is a registered one (kdviz.models.list_models())"
            )
        warnings.append(f"architecture guessed from the weights: {arch}")
        if ties:
            warnings.append(
                f"the weights fit {', '.join(ties)} exactly as well as {arch} (same names and shapes); "
                "pass the architecture explicitly (--arch) if it is not " + arch
            )
    else:
        try:
            models.model_info(arch)
        except models.UnknownModelError as exc:
            raise CheckpointError(str(exc)) from exc
        dims = arch_guess.dims_for(arch, _shapes(state)) or models.infer_dims_from_state_dict(state)
        if None in dims:
            raise CheckpointError(
                f"cannot tell num_classes / in_channels from the weights: is this a {arch} classifier's state dict?"
            )
    num_classes_seen, in_channels_seen = dims
    for label, given, seen in (("num_classes", num_classes, num_classes_seen), ("in_channels", in_channels, in_channels_seen)):
        if given is not None and given != seen:
            raise CheckpointError(f"{label}={given} was given but the weights have {label}={seen}")
    num_classes, in_channels = num_classes_seen, in_channels_seen
    module = models.create_model(arch, num_classes=num_classes, in_channels=in_channels)
    if not guessed:
        # checked against the model just built: a meta-device build initialises weights through torch._refs,
        # which imports torch._dynamo (~3 s on the first checkpoint the dashboard loads)
        problem = _mismatch_message(arch, state, num_classes, in_channels, _shapes(module.state_dict()))
        if problem:
            raise CheckpointError(problem)
    optional_missing = [k for k in module.state_dict() if k.endswith(OPTIONAL_SUFFIXES) and k not in state]
    if optional_missing:  # PyTorch 0.4.0 checkpoints: keep the fresh buffers, load the rest strictly
        state = _with_metadata({**state, **{k: module.state_dict()[k] for k in optional_missing}}, _metadata(state))
    if _metadata(state) is None:  # safetensors keeps no module versions: take the current ones
        state = _with_metadata(state, _metadata(module.state_dict()))
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # guarded above; kept as a last line of defence
        raise CheckpointError(f"weights do not fit {arch}: {_first_line(exc)}") from exc
    module.eval()
    params = sum(p.numel() for p in module.parameters())
    return LoadedCheckpoint(
        module, arch, num_classes, in_channels, contents.format, params, contents.sha256, tuple(warnings), guessed,
        ties, alternatives, dict(contents.metadata), part or None, tuple(p for p in contents.parts if p),
    )


def _load_program(data: bytes, *, arch: str | None, num_classes: int | None, in_channels: int | None) -> LoadedCheckpoint:
    """TorchScript or torch.export program, only ever reached with trust_code=True."""
    digest = hashlib.sha256(data).hexdigest()
    kind = _zip_kind(data)
    try:
        if kind == "torchscript":
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        else:
            module = torch.export.load(io.BytesIO(data)).module()
    except Exception as exc:
        raise CheckpointError(f"cannot load the {kind} program ({_first_line(exc)})") from exc
    state = dict(module.state_dict())
    classes, channels = models.infer_dims_from_state_dict(state)
    if classes is None or channels is None:
        raise CheckpointError(f"cannot read num_classes / in_channels from the {kind} program's weights")
    for name, given, seen in (("num_classes", num_classes, classes), ("in_channels", in_channels, channels)):
        if given is not None and given != seen:
            raise CheckpointError(f"{name}={given} was given but the program has {name}={seen}")
    if isinstance(module, torch.jit.ScriptModule):
        module.eval()  # an exported program's module is already traced in eval mode and has no eval()
    params = sum(v.numel() for k, v in state.items() if "running_" not in k and not k.endswith(OPTIONAL_SUFFIXES))
    return LoadedCheckpoint(
        module, arch or kind, classes, channels, kind, params, digest,
        (f"{kind} program loaded with trust_code=True: it runs its own code",), arch is None,
    )

