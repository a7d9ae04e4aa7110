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

import hashlib
import io
import os
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import nn

from kdviz import models

__all__ = ["CheckpointError", "LoadedCheckpoint", "load_checkpoint", "read_state_dict", "guess_arch"]

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

    def summary(self) -> dict[str, object]:
        """JSON-ready description (what ``kdviz inspect`` prints)."""
        return {
            "format": self.format,
            "arch": self.arch,
            "arch_guessed": self.arch_guessed,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "params": self.params,
            "sha256": self.sha256,
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


def _torch_load(data: bytes) -> object:
    try:
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


def _unwrap(obj: object, depth: int = 0) -> dict[str, torch.Tensor]:
    """Find the state dict inside a training container."""
    if isinstance(obj, Mapping):
        tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        if tensors and len(tensors) >= len(obj) / 2:
            return tensors
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
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped.append(prefix)
                changed = True
    return state, stripped


def read_state_dict(source: str | os.PathLike[str] | bytes) -> tuple[dict[str, torch.Tensor], str, str, list[str]]:
    """(state dict, format, sha256, notes) for a safetensors or torch.save file; never runs code."""
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
        state = _unwrap(_torch_load(data))
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
    return state, fmt, digest, notes


# --------------------------------------------------------------------------------------------------
# Architecture guessing and matching


def _required(keys: Mapping[str, object]) -> set[str]:
    return {k for k in keys if not k.endswith(OPTIONAL_SUFFIXES)}


def _candidate_archs(state: Mapping[str, torch.Tensor]) -> list[str]:
    """Architectures worth comparing against, cheapest families first."""
    keys = set(state)
    if any(k.endswith("weight") and v.ndim == 3 for k, v in state.items()):
        return models.list_models("timeseries")
    if "layer1.0.conv1.weight" in keys and "layer4.0.conv1.weight" not in keys:
        return models.list_models("cifar_resnet")
    if "layer4.0.conv1.weight" in keys:
        return [a for a in models.list_models("torchvision") if "res" in a]
    return models.list_models("torchvision")


def _signature(arch: str, num_classes: int, in_channels: int) -> dict[str, tuple[int, ...]]:
    return models.state_dict_signature(arch, num_classes, in_channels)


@cache
def _dim_axes(arch: str) -> tuple[tuple[str, int, str], ...]:
    """(key, axis, 'classes'|'channels') for every tensor whose shape follows num_classes or in_channels.

    Found by building the architecture twice with different dims, so it holds for any registered
    model, and reading dims at these places does not depend on the order of keys in the file
    (safetensors stores them sorted).
    """
    base, other = _signature(arch, 10, 3), _signature(arch, 11, 2)
    axes = []
    for key, shape in base.items():
        for axis, (a, b) in enumerate(zip(shape, other[key], strict=True)):
            if (a, b) == (10, 11):
                axes.append((key, axis, "classes"))
            elif (a, b) == (3, 2):
                axes.append((key, axis, "channels"))
    return tuple(axes)


def _dims_for(arch: str, shapes: Mapping[str, tuple[int, ...]]) -> tuple[int, int] | None:
    """(num_classes, in_channels) that ``arch`` would need to hold these weights; None if unreadable."""
    found: dict[str, set[int]] = {"classes": set(), "channels": set()}
    try:
        axes = _dim_axes(arch)
    except Exception:  # an architecture that cannot be built at these sizes cannot hold the weights
        return None
    for key, axis, what in axes:
        if key not in shapes or len(shapes[key]) <= axis:
            return None
        found[what].add(shapes[key][axis])
    if len(found["classes"]) != 1 or len(found["channels"]) != 1:
        return None
    return found["classes"].pop(), found["channels"].pop()


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def _timeseries_arch(state: Mapping[str, torch.Tensor]) -> str | None:
    """1D models share keys across widths; the width is in the shapes."""
    if "features.0.0.weight" in state and "block1.conv1.0.weight" not in state:
        return models.width_name("fcn", int(state["features.0.0.weight"].shape[0]))
    if "block1.conv1.0.weight" in state:
        return models.width_name("resnet1d", int(state["block1.conv1.0.weight"].shape[0]))
    return None


def guess_arch(state: Mapping[str, torch.Tensor]) -> tuple[str | None, float, tuple[int, int] | None]:
    """Best-matching registered architecture, its match score in [0, 1] (1 = exact) and its dims."""
    shapes = _shapes(state)
    have = _required(shapes)
    ts = _timeseries_arch(state)
    best: tuple[str | None, float, tuple[int, int] | None] = (None, -1.0, None)
    for arch in [ts] if ts else _candidate_archs(state):
        dims = _dims_for(arch, shapes)
        if dims is None:
            continue
        sig = _signature(arch, *dims)
        want = _required(sig)
        same_shape = sum(1 for k in have & want if shapes[k] == sig[k])
        score = same_shape / len(have | want)
        if score > best[1]:
            best = (arch, score, dims)
            if score == 1.0:
                break
    return best


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


def _mismatch_message(arch: str, state: Mapping[str, torch.Tensor], num_classes: int, in_channels: int) -> str | None:
    """None when ``state`` fits ``arch`` exactly, else a message a person can act on."""
    sig = _signature(arch, num_classes, in_channels)
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
    if guess and guess != arch and score == 1.0:
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
) -> LoadedCheckpoint:
    """Rebuild a model from a checkpoint file (path) or its bytes.

    Parameters
    ----------
    source : path or bytes of a ``.safetensors`` / ``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` file.
    arch : registry name; guessed from parameter names and shapes when None.
    num_classes, in_channels : checked against the weights when given, read from them when None.
    trust_code : allow TorchScript and ``torch.export`` programs, which execute code. Never for uploads
        from people you do not trust.

    Raises
    ------
    CheckpointError
        For anything that cannot be loaded, with a message that says why and what to do.
    """
    data = _read_source(source)
    if trust_code and _sniff(data) == "zip" and _zip_kind(data) in ("torchscript", "torch_export"):
        return _load_program(data, arch=arch, num_classes=num_classes, in_channels=in_channels)
    state, fmt, digest, notes = read_state_dict(data)
    warnings = list(notes)

    guessed = arch is None
    if arch is None:
        arch, score, dims = guess_arch(state)
        if arch is None or dims is None or score < 1.0:
            near = f" (closest: {arch}, {score:.0%} of tensors match)" if arch and score > 0 else ""
            raise CheckpointError(
                f"cannot recognise the architecture from the weights{near}; pass the architecture explicitly "
                "(--arch) if it is a registered one (kdviz.models.list_models())"
            )
        warnings.append(f"architecture guessed from the weights: {arch}")
    else:
        try:
            models.model_info(arch)
        except models.UnknownModelError as exc:
            raise CheckpointError(str(exc)) from exc
        dims = _dims_for(arch, _shapes(state)) or models.infer_dims_from_state_dict(state)
        if None in dims:
            raise CheckpointError(
                f"cannot tell num_classes / in_channels from the weights: is this a {arch} classifier's state dict?"
            )
    num_classes_seen, in_channels_seen = dims
    for name, given, seen in (("num_classes", num_classes, num_classes_seen), ("in_channels", in_channels, in_channels_seen)):
        if given is not None and given != seen:
            raise CheckpointError(f"{name}={given} was given but the weights have {name}={seen}")
    num_classes, in_channels = num_classes_seen, in_channels_seen
    if not guessed:
        problem = _mismatch_message(arch, state, num_classes, in_channels)
        if problem:
            raise CheckpointError(problem)

    module = models.create_model(arch, num_classes=num_classes, in_channels=in_channels)
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith(OPTIONAL_SUFFIXES)]
    if missing or result.unexpected_keys:  # guarded above; kept as a last line of defence
        raise CheckpointError(f"weights do not fit {arch}: missing {missing[:3]}, unexpected {result.unexpected_keys[:3]}")
    module.eval()
    params = sum(p.numel() for p in module.parameters())
    return LoadedCheckpoint(module, arch, num_classes, in_channels, fmt, params, digest, tuple(warnings), guessed)


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

