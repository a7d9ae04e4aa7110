"""kdviz.io.safezip: good archives extract; bad ones leave nothing behind."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

import kdviz.io.safezip as safezip
from kdviz.io.safezip import extract_zip
from kdviz.io.untrusted import ArchiveBombError, UnsafeArchiveError


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_extracts_nested_files_and_returns_them(tmp_path: Path) -> None:
    data = _zip({"cats/a.png": b"a", "dogs/deep/b.png": b"bb", "./c.txt": b"c"})
    files = extract_zip(data, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in files) == ["c.txt", "cats/a.png", "dogs/deep/b.png"]
    assert (tmp_path / "out/dogs/deep/b.png").read_bytes() == b"bb"


def test_accepts_a_path_and_directory_entries(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.mkdir("empty")
        archive.writestr("x/y.txt", b"y")
    (tmp_path / "in.zip").write_bytes(buffer.getvalue())
    files = extract_zip(tmp_path / "in.zip", tmp_path / "out")
    assert [p.name for p in files] == ["y.txt"]


def test_bad_entry_after_good_ones_writes_nothing(tmp_path: Path) -> None:
    data = _zip({"a/ok.txt": b"fine", "b/ok.txt": b"fine", "../evil.txt": b"x"})
    with pytest.raises(UnsafeArchiveError, match="'../evil.txt' escapes the folder; refusing the whole archive"):
        extract_zip(data, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_streaming_counter_stops_a_lying_entry_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If a header under-declares (or zipfile stopped trusting it), the byte count still stops it."""
    data = _zip({"first.txt": b"ok", "zeros.bin": bytes(3 << 20)})
    real_check = safezip.check_zip_entries

    def fooled_check(archive: zipfile.ZipFile, **limits: float) -> list:
        return real_check(archive, **{**limits, "max_total_bytes": 1 << 40})  # as if the headers lied

    monkeypatch.setattr(safezip, "check_zip_entries", fooled_check)
    with pytest.raises(ArchiveBombError, match="more bytes than"):
        extract_zip(data, tmp_path / "out", max_total_bytes=2 << 20, max_ratio=1e9)
    assert list((tmp_path / "out").iterdir()) == []


def test_declared_total_checked_before_writing(tmp_path: Path) -> None:
    data = _zip({"a.bin": bytes(600_000), "b.bin": bytes(600_000)})
    with pytest.raises(ArchiveBombError, match="entry 'b.bin' alone declares"):
        extract_zip(data, tmp_path / "out", max_total_bytes=1_000_000)
    assert list((tmp_path / "out").iterdir()) == []


def test_never_overwrites_existing_files(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out/keep.txt").write_bytes(b"mine")
    with pytest.raises(UnsafeArchiveError, match="overwrite"):
        extract_zip(_zip({"keep.txt": b"theirs"}), tmp_path / "out")
    assert (tmp_path / "out/keep.txt").read_bytes() == b"mine"


def test_small_highly_compressible_entries_are_fine(tmp_path: Path) -> None:
    files = extract_zip(_zip({"zeros.npy": bytes(500_000)}), tmp_path / "out")
    assert files[0].stat().st_size == 500_000


def test_input_bytes_not_mutated(tmp_path: Path) -> None:
    data = bytearray(_zip({"a.txt": b"a"}))
    before = bytes(data)
    extract_zip(data, tmp_path / "out")
    assert bytes(data) == before
