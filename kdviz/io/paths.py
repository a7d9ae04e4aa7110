"""Server-side paths typed by a user, confined to the operator's ``KDVIZ_DATA_ROOT``.

Off unless the operator sets ``KDVIZ_DATA_ROOT``. A path is refused if it contains
``..``, is absolute outside the root, or resolves (through links) outside the root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePath

from kdviz.io.untrusted import DataPathError

__all__ = ["DATA_ROOT_ENV", "data_root", "resolve_data_path"]

DATA_ROOT_ENV = "KDVIZ_DATA_ROOT"


def data_root(*, environ: Mapping[str, str] | None = None) -> Path:
    """The resolved data root from ``KDVIZ_DATA_ROOT``; refuse when unset or not a folder."""
    value = (os.environ if environ is None else environ).get(DATA_ROOT_ENV, "").strip()
    if not value:
        raise DataPathError(
            f"server-side paths are disabled; the operator can enable them by setting {DATA_ROOT_ENV} "
            "to a data folder. Upload the file instead."
        )
    root = Path(value).expanduser().resolve()
    if not root.is_dir():
        raise DataPathError(f"{DATA_ROOT_ENV}={value!r} is not an existing folder; ask the operator to fix it.")
    return root


def resolve_data_path(
    user_path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    must_exist: bool = True,
) -> Path:
    """Resolve ``user_path`` (relative to the root, or absolute inside it) to a real path inside the root.

    ``root`` defaults to ``KDVIZ_DATA_ROOT``. Raises :class:`~kdviz.io.untrusted.DataPathError`
    for ``..`` components, paths outside the root (also via symbolic links) and, with
    ``must_exist``, paths that do not exist.
    """
    base = data_root() if root is None else Path(root).resolve()
    text = os.fspath(user_path)
    if not text.strip() or "\x00" in text:
        raise DataPathError("the path is empty or contains a NUL byte; type a path inside the data folder.")
    if ".." in PurePath(text.replace("\\", "/")).parts:
        raise DataPathError(
            f"'{text}' contains '..'; paths must stay inside the data folder. "
            "Type a path relative to it."
        )
    absolute = Path(text).is_absolute()
    resolved = (Path(text) if absolute else base / text).resolve()
    if not resolved.is_relative_to(base) and absolute:
        raise DataPathError(f"'{text}' is outside the data folder; type a path inside it.")
    if not resolved.is_relative_to(base):
        raise DataPathError(
            f"'{text}' leads outside the data folder through a symbolic link; refusing it. "
            "Ask the operator to copy the data inside the folder."
        )
    if must_exist and not resolved.exists():
        raise DataPathError(f"'{text}' does not exist inside the data folder.")
    return resolved
