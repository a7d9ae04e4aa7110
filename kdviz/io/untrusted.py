"""Errors, size checks and per-session scratch folders for files a user hands to kdviz.

Everything a browser sends is hostile until parsed. The loaders in ``kdviz.io.safezip``,
``kdviz.io.images``, ``kdviz.io.series`` and ``kdviz.io.paths`` raise one error family,
rooted at :class:`UploadError` (a :class:`kdviz.errors.InvalidInputError`, so also a ``ValueError``), whose
messages name the bad thing and say what to do, so the UI can show ``str(error)`` as advice and keep running.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kdviz.errors import InvalidInputError

__all__ = [
    "UploadError",
    "UploadTooLargeError",
    "UnsafeArchiveError",
    "ArchiveBombError",
    "ImageError",
    "SeriesError",
    "SeriesShapeError",
    "DataPathError",
    "check_size",
    "content_hash",
    "format_bytes",
    "upload_workspace",
]


class UploadError(InvalidInputError):
    """A file or path from the user that kdviz refuses; the message says why and what to do."""


class UploadTooLargeError(UploadError):
    """A file (or its unpacked content) is larger than the configured limit."""


class UnsafeArchiveError(UploadError):
    """A zip archive that is corrupt, encrypted, or would write outside its folder."""


class ArchiveBombError(UnsafeArchiveError, UploadTooLargeError):
    """A zip archive that unpacks to too many files or too many bytes."""


class ImageError(UploadError):
    """An image that cannot be decoded, or is too large to decode safely."""


class SeriesError(UploadError):
    """A time-series file that cannot be parsed or holds values kdviz cannot use."""


class SeriesShapeError(SeriesError):
    """Series whose channel count or length does not fit the chosen model."""


class DataPathError(UploadError):
    """A server-side path that is disabled, missing, or outside ``KDVIZ_DATA_ROOT``."""


def format_bytes(n_bytes: int) -> str:
    """Human-readable size in binary units (``'1.5 MiB'``), for error messages."""
    size = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def check_size(n_bytes: int, *, limit_bytes: int, name: str = "the file") -> None:
    """Refuse ``n_bytes`` above ``limit_bytes`` with a message naming the file and the limit.

    The Streamlit uploader enforces ``server.maxUploadSize`` itself; the library checks
    again so the CLI and tests share the same limit and message.
    """
    if limit_bytes <= 0:
        raise InvalidInputError(f"limit_bytes must be positive, got {limit_bytes}")
    if n_bytes < 0:
        raise InvalidInputError(f"n_bytes must be non-negative, got {n_bytes}")
    if n_bytes > limit_bytes:
        raise UploadTooLargeError(
            f"{name!s} is {format_bytes(n_bytes)}; the limit is {format_bytes(limit_bytes)}. "
            "Upload a smaller file, or ask the operator to raise server.maxUploadSize "
            "in .streamlit/config.toml."
        )


def content_hash(data: bytes) -> str:
    """SHA-256 hex digest of ``data``: the cache key for uploads, so equal names never collide."""
    return hashlib.sha256(data).hexdigest()


@contextmanager
def upload_workspace(*, prefix: str = "kdviz-upload-") -> Iterator[Path]:
    """A fresh private temporary folder, removed with everything in it on exit.

    One per session (or per upload) keeps two users' same-named files apart.
    """
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as folder:
        yield Path(folder)
