"""Safe extraction of uploaded zip archives.

Every entry is checked before anything is written: no absolute paths, no ``..``, no
links or device files, no encryption, no duplicate names, at most ``max_files`` entries,
and declared sizes within ``max_total_bytes`` and ``max_ratio``. While writing, the
actual bytes are counted too, since headers can lie. Any failure removes what was
written and refuses the whole archive.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from kdviz.io.untrusted import ArchiveBombError, UnsafeArchiveError, UploadError, format_bytes

__all__ = ["extract_zip", "check_zip_entries"]

MAX_FILES = 10_000
MAX_TOTAL_BYTES = 2 * 1024**3
MAX_RATIO = 200
_RATIO_MIN_BYTES = 1024**2  # tiny entries may compress extremely well; only big ones are suspect
_CHUNK = 1024**2
_UNIX_SYSTEMS = (3, 19)  # ZipInfo.create_system for Unix and macOS


def _entry_parts(name: str) -> tuple[str, ...]:
    """Path components of a zip entry name, refusing anything that could leave the folder."""
    shown = name.replace("\x00", "\\x00")
    if "\x00" in name:
        raise UnsafeArchiveError(f"zip entry '{shown}' contains a NUL byte; refusing the whole archive.")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchiveError(
            f"zip entry '{name}' is an absolute path; refusing the whole archive. "
            "Zip the folder with relative paths (e.g. `cd parent && zip -r data.zip folder`)."
        )
    parts = tuple(p for p in PurePosixPath(posix).parts if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchiveError(
            f"zip entry '{name}' escapes the folder; refusing the whole archive. "
            "Zip the folder with relative paths and no '..'."
        )
    return parts


def _is_link_or_special(info: zipfile.ZipInfo) -> bool:
    """True for symlinks, devices, FIFOs and sockets recorded in Unix external attributes."""
    if info.create_system not in _UNIX_SYSTEMS:
        return False
    file_type = stat.S_IFMT(info.external_attr >> 16)
    return file_type not in (0, stat.S_IFREG, stat.S_IFDIR)  # 0: writers that store permissions only


def check_zip_entries(
    archive: zipfile.ZipFile,
    *,
    max_files: int = MAX_FILES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_ratio: float = MAX_RATIO,
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Validate every entry's name, type and declared size; return the file entries with their parts.

    Raises :class:`UnsafeArchiveError` or :class:`ArchiveBombError` naming the first bad entry.
    """
    infos = archive.infolist()
    if len(infos) > max_files:
        raise ArchiveBombError(
            f"zip archive has {len(infos)} entries; the limit is {max_files}. "
            "Upload fewer files per archive."
        )
    seen: set[tuple[str, ...]] = set()
    files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    total = 0
    for info in infos:
        parts = _entry_parts(info.filename)
        if _is_link_or_special(info):
            raise UnsafeArchiveError(
                f"zip entry '{info.filename}' is a symbolic link or special file; refusing the whole "
                "archive. Zip real files only (e.g. `zip -r` without `--symlinks`)."
            )
        if info.flag_bits & 0x1:
            raise UnsafeArchiveError(
                f"zip entry '{info.filename}' is encrypted; kdviz cannot read password-protected "
                "archives. Re-create the zip without a password."
            )
        if info.is_dir() or not parts:
            continue
        if parts in seen:
            raise UnsafeArchiveError(
                f"zip entry '{info.filename}' appears twice; refusing the whole archive."
            )
        seen.add(parts)
        total += info.file_size
        if total > max_total_bytes:
            raise ArchiveBombError(
                f"zip archive unpacks to more than {format_bytes(max_total_bytes)} "
                f"(entry '{info.filename}' alone declares {format_bytes(info.file_size)}); "
                "refusing it as a possible zip bomb. Upload a smaller archive."
            )
        if info.file_size > _RATIO_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            raise ArchiveBombError(
                f"zip entry '{info.filename}' expands {info.file_size / max(info.compress_size, 1):.0f}× "
                f"(limit {max_ratio:.0f}×); refusing it as a possible zip bomb."
            )
        files.append((info, parts))
    return files


def _copy_counted(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, *, budget: int
) -> int:
    """Stream one entry to ``target``; stop as soon as more than ``budget`` bytes arrive."""
    written = 0
    with archive.open(info) as src, open(target, "xb") as dst:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > budget or written > info.file_size:
                raise ArchiveBombError(
                    f"zip entry '{info.filename}' unpacks to more bytes than its header declares "
                    "or than the archive limit allows; refusing the whole archive."
                )
            dst.write(chunk)
    return written


def extract_zip(
    data: bytes | str | os.PathLike[str],
    dest_dir: str | os.PathLike[str],
    *,
    max_files: int = MAX_FILES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_ratio: float = MAX_RATIO,
) -> list[Path]:
    """Extract a zip (bytes or a path) into ``dest_dir``, all or nothing; return the files written.

    Directories are created as needed; links, absolute or ``..`` names, encrypted
    entries and archives over the file-count, size or compression-ratio limits are
    refused with :class:`UnsafeArchiveError` / :class:`ArchiveBombError` before any
    byte is written. Files already in ``dest_dir`` are never overwritten.
    """
    dest = Path(dest_dir).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else Path(data)
    try:
        archive = zipfile.ZipFile(source)
    except Exception as exc:  # hostile bytes raise BadZipFile, NotImplementedError, struct.error...
        raise UnsafeArchiveError(
            f"not a readable zip archive ({exc}); upload a .zip made by `zip` or your file manager."
        ) from exc
    created: list[Path] = []
    made_dirs: list[Path] = []
    try:
        with archive:
            entries = check_zip_entries(
                archive, max_files=max_files, max_total_bytes=max_total_bytes, max_ratio=max_ratio
            )
            budget = max_total_bytes
            for info, parts in entries:
                target = dest.joinpath(*parts)
                if not target.resolve().is_relative_to(dest):
                    raise UnsafeArchiveError(
                        f"zip entry '{info.filename}' escapes the folder; refusing the whole archive."
                    )
                for parent in reversed(target.parents):
                    if parent.is_relative_to(dest) and parent != dest and not parent.exists():
                        parent.mkdir()
                        made_dirs.append(parent)
                if target.exists():
                    raise UnsafeArchiveError(
                        f"zip entry '{info.filename}' would overwrite an existing file; "
                        "extract into an empty folder."
                    )
                created.append(target)
                budget -= _copy_counted(archive, info, target, budget=budget)
    except UploadError:
        _remove(created, made_dirs)
        raise
    except Exception as exc:  # corrupt data: BadZipFile (CRC), zlib.error, NotImplementedError, OSError...
        _remove(created, made_dirs)
        raise UnsafeArchiveError(
            f"zip archive is corrupt or uses an unsupported feature ({exc}); refusing the whole "
            "archive. Re-create it with standard deflate compression."
        ) from exc
    except BaseException:
        _remove(created, made_dirs)
        raise
    return created


def _remove(files: list[Path], dirs: list[Path]) -> None:
    """Undo a partial extraction: delete the files written and the folders created."""
    for path in files:
        path.unlink(missing_ok=True)
    for folder in reversed(dirs):
        shutil.rmtree(folder, ignore_errors=True)
