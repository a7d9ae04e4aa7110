"""Uploaded checkpoints: each file loaded (cached by content), its outcome as a status, and the messages said as
the Models page offers them.

Every file gets a status (loaded / why not); a bad file never stops the others. Models are cached with
``st.cache_resource`` keyed by the file's SHA-256, the architecture the user chose and the trust setting.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
from torch import nn

from kdviz.errors import CheckpointError
from kdviz.io.checkpoints import LoadedCheckpoint, checkpoint_parts, load_checkpoint
from kdviz.io.untrusted import UploadError, content_hash
from kdviz.models import list_models, model_info
from kdviz.models.timm_family import is_timm_name
from kdviz.ui.sets import LOAD_LOCK
from kdviz.ui.uploads.files import KeptFile, check_upload_size
from kdviz.vocab import Modality

__all__ = ["ARCH_HELP", "PROGRAM_REFUSED", "TRUST_ENV", "FileStatus", "for_the_browser",
           "guess_from_filename", "input_kind", "load_uploaded_checkpoint", "show_file_status",
           "trust_programs", "with_parts"]

TRUST_ENV = "KDVIZ_TRUST_PROGRAMS"
PROGRAM_REFUSED = (
    "it is a TorchScript or torch.export program, and programs run their own code when loaded, so the dashboard "
    "refuses them. Upload a state dict (.pth/.pt saved from model.state_dict()) or .safetensors instead; an "
    f"operator who trusts every user can allow programs by starting kdviz with {TRUST_ENV}=1."
)
ARCH_HELP = ("a kdviz architecture (resnet18, resnet8x4, vgg8, fcn …) or any timm model name "
             "(mobilenetv3_small_100, deit_tiny_patch16_224 …); timm/<name> for timm's model where torchvision has "
             "the same name (timm/efficientnet_b0)")
_ALPHA_RE = re.compile(r"(?:alpha|a)[=_-]?(\d*\.\d+|\d+)", re.IGNORECASE)
_PART_NAME = re.compile(r"^(?P<base>.*) \[(?P<part>student|teacher)\]$")


@dataclass
class FileStatus:
    """What happened to one uploaded checkpoint."""

    name: str
    digest: str
    ok: bool
    message: str
    loaded: LoadedCheckpoint | None = None


def guess_from_filename(name: str) -> dict[str, Any]:
    """Prefill from a file name like ``resnet18_alpha0.5.pth``: architecture, α, role, label."""
    stem = Path(name).name
    for suffix in (".safetensors", ".pth", ".pt", ".bin", ".ckpt"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    arch = None
    for candidate in sorted(list_models(), key=len, reverse=True):
        if re.search(rf"(^|[_\-. ]){re.escape(candidate)}($|[_\-. ])", stem.lower()):
            arch = candidate
            break
    if arch is None:  # a timm name as the file's name (mobilenetv3_small_100.pth), its α suffix left out
        head = _ALPHA_RE.split(stem)[0].rstrip("_-. ")
        arch = head if head and is_timm_name(head) else None
    m = _ALPHA_RE.search(stem)
    alpha = float(m.group(1)) if m and 0.0 <= float(m.group(1)) <= 1.0 else None
    role = "teacher" if "teacher" in stem.lower() else "student"
    return {"label": stem, "arch": arch, "alpha": alpha, "role": role}


def trust_programs() -> bool:
    """Whether the operator allows TorchScript / torch.export uploads (``KDVIZ_TRUST_PROGRAMS=1``)."""
    return os.environ.get(TRUST_ENV, "").strip() == "1"


@st.cache_resource(show_spinner=False, max_entries=32)
def _load_cached(digest: str, arch: str | None, trust: bool, _data: bytes, part: str | None = None,
                 name: str | None = None) -> LoadedCheckpoint:
    with LOAD_LOCK:
        return load_checkpoint(_data, arch=arch, trust_code=trust, part=part, name=name)


@st.cache_data(show_spinner=False, max_entries=64)
def _parts_cached(digest: str, _data: bytes) -> tuple[str, ...]:
    try:
        return checkpoint_parts(_data)
    except Exception:  # noqa: BLE001 - a bad file is reported by load_uploaded_checkpoint, not here
        return ()


def with_parts(files: list[Any]) -> list[Any]:
    """Checkpoint uploads with a distiller's file (student and teacher together) offered as two models."""
    out: list[Any] = []
    for f in files:
        data = f.getvalue()
        parts = () if f.name.lower().endswith(".zip") else _parts_cached(content_hash(data), data)
        out += [KeptFile(f"{f.name} [{p}]", data) for p in parts] if len(parts) > 1 else [f]
    return out


def load_uploaded_checkpoint(name: str, data: bytes, arch: str | None = None) -> FileStatus:
    """Load one checkpoint (cached by content hash, arch and the trust setting); a failure becomes a status.

    Programs (TorchScript, torch.export) load only when the operator set ``KDVIZ_TRUST_PROGRAMS=1``. Any failure
    of the file is reported in the status, never raised: the file is the user's, whatever breaks on it.
    """
    digest = content_hash(data)
    trust = trust_programs()
    try:
        check_upload_size(name, data)
        ck = _load_trying_timm(name, data, digest, arch, trust)
    except CheckpointError as err:
        text = for_the_browser(str(err))
        return FileStatus(name, digest, False, PROGRAM_REFUSED if not trust and "trust_code" in text else text)
    except (UploadError, ValueError) as err:
        return FileStatus(name, digest, False, str(err))
    except Exception as err:  # noqa: BLE001 - any other failure of a hostile file is reported, not raised
        return FileStatus(name, digest, False, f"could not be read ({type(err).__name__}: {err})")
    note = f"{ck.arch}, {ck.num_classes} classes, {ck.in_channels} input channel(s), {ck.params / 1e6:.2f} M parameters"
    if ck.warnings:
        note += " — " + "; ".join(ck.warnings)
    if ck.details():
        note += " — " + "; ".join(ck.details())
    return FileStatus(name, digest, True, note, ck)


def _load_trying_timm(name: str, data: bytes, digest: str, arch: str | None, trust: bool) -> LoadedCheckpoint:
    """The checkpoint as ``arch``; a timm name another family registered too (efficientnet_b0 is torchvision's)
    has other keys, so on unexpected keys the same name under timm's own prefix is tried before giving up."""
    match = _PART_NAME.match(name)
    part, base = (match["part"], match["base"]) if match else (None, name)
    try:
        return _load_cached(digest, arch, trust, data, part, base)
    except CheckpointError as err:
        if not (arch and "unexpected keys" in str(err) and is_timm_name(arch)):
            raise
    return _load_cached(digest, f"timm/{arch}", trust, data, part, base)


def for_the_browser(message: str) -> str:
    """A loader's message with the command line's advice (``--arch``, ``kdviz.models.list_models()``) said as the
    Models page offers it: the table's architecture column, which takes a kdviz name or any timm model name."""
    message = message.replace(
        "pass the architecture explicitly (--arch) if it is a registered one (kdviz.models.list_models())",
        "type it in the table's architecture column below: a kdviz name (resnet18, resnet8x4, fcn …) or any timm "
        "model name (mobilenetv3_small_100; timm/efficientnet_b0 for timm's model of a name torchvision also has)")
    return message.replace("explicitly (--arch)", "in the table's architecture column")


def show_file_status(status: FileStatus) -> None:
    """One uploaded checkpoint's outcome: a Material icon (emoji need a font many systems lack) and the message,
    as plain text (a message's ``*`` or ``_`` is not markdown)."""
    if status.ok:
        st.markdown(f":material/check_circle: **{status.name}** — {_plain(status.message)}")
    else:
        st.error(f"**{status.name}** — {_plain(status.message)}", icon=":material/error:")


def _plain(text: str) -> str:
    """``text`` with ``*`` escaped, so markdown shows it as written (``*.pth`` is not the start of italics;
    an underscore inside a word never is)."""
    return str(text).replace("*", "\\*")


def _program_kind(module: nn.Module) -> Modality:
    """Series when a (trusted, unregistered) program has 1-D convolution weights, else image."""
    shapes = [tuple(v.shape) for k, v in module.state_dict().items() if k.endswith("weight")]
    if any(len(sh) == 3 for sh in shapes) and not any(len(sh) == 4 for sh in shapes):
        return Modality.SERIES
    return Modality.IMAGE


def input_kind(ck: LoadedCheckpoint) -> Modality:
    """What the loaded model reads (image or series): from the registry, or for a trusted program from its
    weights' shapes."""
    if ck.arch in list_models():
        return Modality.parse(model_info(ck.arch).input_kind)
    return _program_kind(ck.module)
