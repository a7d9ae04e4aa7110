"""One way to load a checkpoint: ``load_checkpoint``.

Accepts a path or raw bytes, whatever the file extension says, and finds out what it is from its
content: safetensors, a ``torch.save`` state dict (zip or legacy format, read with
``torch.load(weights_only=True)`` only, so a pickle can never run code), or a TorchScript /
``torch.export`` program (loaded only when the caller passes ``trust_code=True``: those are programs).

Reading the file (:mod:`kdviz.io.checkpoint_contents`) unwraps state dicts from training containers
(``{'state_dict': …}``, ``{'model': …}``, …) and wrapper prefixes (``module.``, ``model.``, ``_orig_mod.``).
Here num_classes and in_channels are read from the weights, the architecture is guessed from parameter names and
shapes when none is given (:mod:`kdviz.models.arch_guess`), and the model is rebuilt and loaded strictly.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from kdviz import models
from kdviz.errors import CheckpointError
from kdviz.io.checkpoint_contents import (
    CheckpointContents,
    arch_hints,
    first_line,
    metadata_of,
    read_contents,
    read_source,
    sniff_format,
    torch_zip_kind,
    with_metadata,
)
from kdviz.models import arch_guess

__all__ = ["LoadedCheckpoint", "checkpoint_parts", "load_checkpoint", "load_checkpoint_parts"]

# Buffers some codebases never saved; their absence changes nothing at inference.
OPTIONAL_SUFFIXES = models.OPTIONAL_KEY_SUFFIXES
PROGRAM_KINDS = ("torchscript", "torch_export")


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
        """List what a person should see besides the architecture: near alternatives, and the container's numbers."""
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


def _required(keys: Mapping[str, object]) -> set[str]:
    return {k for k in keys if not k.endswith(OPTIONAL_SUFFIXES)}


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


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
    """Say how ``state`` misses ``arch`` in words a person can act on; None when it fits exactly.

    ``signature``: the names and shapes of an ``arch`` already built (else built on the meta device).
    """
    sig = models.state_dict_signature(arch, num_classes, in_channels) if signature is None else signature
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
    g = arch_guess.guess(state)
    guess, score = g.arch, g.score
    if guess and guess != arch and score >= 1.0 - 1e-6:
        hint = f"this looks like {guess}, not {arch}"
    elif guess and guess != arch and score > 0.5:
        hint = f"closest registered architecture is {guess} ({score:.0%} of tensors match), not {arch}"
    else:
        hint = f"the weights do not fit {arch}"
    return f"{'; '.join(parts)}: {hint}"


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
    data = read_source(source)
    if trust_code and _is_program(data):
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
    data = read_source(source)
    if _is_program(data):
        return ()
    return tuple(p for p in read_contents(data).parts if p)


def load_checkpoint_parts(
    source: str | os.PathLike[str] | bytes, *, name: str | None = None, **kwargs: object
) -> list[LoadedCheckpoint]:
    """Every model in the file: one for a plain checkpoint, student and teacher for a distiller's.

    ``kwargs`` as for ``load_checkpoint`` (``arch``, ``num_classes`` … apply to every part).
    """
    data = read_source(source)
    if name is None and not isinstance(source, (bytes, bytearray, memoryview)):
        name = str(source)
    if _is_program(data):
        return [load_checkpoint(data, name=name, **kwargs)]  # type: ignore[arg-type]
    contents = read_contents(data)
    return [_build(contents, p, name=name, **kwargs) for p in contents.parts]  # type: ignore[arg-type]


def _is_program(data: bytes) -> bool:
    return sniff_format(data) == "zip" and torch_zip_kind(data) in PROGRAM_KINDS


@dataclass(frozen=True)
class _Arch:
    """The architecture a part is rebuilt as, its dims, and what the guess said (when it was guessed)."""

    name: str
    dims: tuple[int | None, int | None]
    guessed: bool
    ties: tuple[str, ...] = ()
    alternatives: tuple[tuple[str, float], ...] = ()


def _guessed_arch(contents: CheckpointContents, part: str, name: str | None, warnings: list[str]) -> _Arch:
    """Find the architecture the weights fit exactly (ties broken by the file's own hints); warnings say so."""
    g = arch_guess.guess(contents.parts[part], hint=arch_hints(contents.metadata, name, part))
    if g.arch is None or g.dims is None or not g.exact:
        near = f" (closest: {g.arch}, {g.score:.0%} of tensors match)" if g.arch and g.score > 0 else ""
        raise CheckpointError(
            f"cannot recognise the architecture from the weights{near}; pass the architecture explicitly "
            "(--arch) if it is a registered one (kdviz.models.list_models())"
        )
    warnings.append(f"architecture guessed from the weights: {g.arch}")
    if g.ties:
        warnings.append(
            f"the weights fit {', '.join(g.ties)} exactly as well as {g.arch} (same names and shapes); "
            "pass the architecture explicitly (--arch) if it is not " + g.arch
        )
    return _Arch(g.arch, g.dims, True, g.ties, g.alternatives)


def _named_arch(arch: str, state: Mapping[str, torch.Tensor]) -> _Arch:
    """Check the architecture the caller named and read the dims its weights show."""
    try:
        models.model_info(arch)
    except models.UnknownModelError as exc:
        raise CheckpointError(str(exc)) from exc
    dims = arch_guess.dims_for(arch, _shapes(state)) or models.infer_dims_from_state_dict(state)
    if None in dims:
        raise CheckpointError(
            f"cannot tell num_classes / in_channels from the weights: is this a {arch} classifier's state dict?"
        )
    return _Arch(arch, dims, False)


def _check_dims(given: tuple[int | None, int | None], seen: tuple[int | None, int | None], what: str) -> None:
    """Refuse num_classes / in_channels the caller gave that differ from those of ``what`` (the weights, a program)."""
    for label, g, s in zip(("num_classes", "in_channels"), given, seen, strict=True):
        if g is not None and g != s:
            raise CheckpointError(f"{label}={g} was given but {what} {'have' if what == 'the weights' else 'has'} "
                                  f"{label}={s}")


def _load_strictly(module: nn.Module, state: dict[str, torch.Tensor], arch: str) -> None:
    """Load ``state`` into ``module``, every key matching.

    Buffers old checkpoints never saved are kept fresh, and module versions are taken from the model when the file
    has none (safetensors).
    """
    own = module.state_dict()
    optional_missing = [k for k in own if k.endswith(OPTIONAL_SUFFIXES) and k not in state]
    if optional_missing:  # PyTorch 0.4.0 checkpoints: keep the fresh buffers, load the rest strictly
        state = with_metadata({**state, **{k: own[k] for k in optional_missing}}, metadata_of(state))
    if metadata_of(state) is None:  # safetensors keeps no module versions: take the current ones
        state = with_metadata(state, metadata_of(own))
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # guarded by the mismatch check; kept as a last line of defence
        raise CheckpointError(f"weights do not fit {arch}: {first_line(exc)}") from exc


def _build(
    contents: CheckpointContents, part: str, *, arch: str | None = None, num_classes: int | None = None,
    in_channels: int | None = None, name: str | None = None,
) -> LoadedCheckpoint:
    """Rebuild the model of one part of a read checkpoint."""
    state = contents.parts[part]
    warnings = list(contents.notes)
    others = [p for p in contents.parts if p != part]
    if others:
        warnings.append(f"loaded the {part}; the file also holds the {', '.join(others)} (part='{others[0]}')")
    found = _guessed_arch(contents, part, name, warnings) if arch is None else _named_arch(arch, state)
    _check_dims((num_classes, in_channels), found.dims, "the weights")
    num_classes, in_channels = found.dims
    module = models.create_model(found.name, num_classes=num_classes, in_channels=in_channels)
    if not found.guessed:
        # checked against the model just built: a meta-device build would initialise weights through torch._refs,
        # which imports torch._dynamo (slow on the first checkpoint a process loads)
        problem = _mismatch_message(found.name, state, num_classes, in_channels, _shapes(module.state_dict()))
        if problem:
            raise CheckpointError(problem)
    _load_strictly(module, state, found.name)
    module.eval()
    params = sum(p.numel() for p in module.parameters())
    return LoadedCheckpoint(
        module, found.name, num_classes, in_channels, contents.format, params, contents.sha256, tuple(warnings),
        found.guessed, found.ties, found.alternatives, dict(contents.metadata), part or None,
        tuple(p for p in contents.parts if p),
    )


def _load_program(data: bytes, *, arch: str | None, num_classes: int | None, in_channels: int | None) -> LoadedCheckpoint:
    """TorchScript or torch.export program, only ever reached with trust_code=True."""
    digest = hashlib.sha256(data).hexdigest()
    kind = torch_zip_kind(data)
    try:
        if kind == "torchscript":
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        else:
            module = torch.export.load(io.BytesIO(data)).module()
    except Exception as exc:
        raise CheckpointError(f"cannot load the {kind} program ({first_line(exc)})") from exc
    state = dict(module.state_dict())
    classes, channels = models.infer_dims_from_state_dict(state)
    if classes is None or channels is None:
        raise CheckpointError(f"cannot read num_classes / in_channels from the {kind} program's weights")
    _check_dims((num_classes, in_channels), (classes, channels), "the program")
    if isinstance(module, torch.jit.ScriptModule):
        module.eval()  # an exported program's module is already traced in eval mode and has no eval()
    params = sum(v.numel() for k, v in state.items() if "running_" not in k and not k.endswith(OPTIONAL_SUFFIXES))
    return LoadedCheckpoint(
        module, arch or kind, classes, channels, kind, params, digest,
        (f"{kind} program loaded with trust_code=True: it runs its own code",), arch is None,
    )

