"""The hostile-input table through the library, plus kdviz.io.untrusted' own helpers."""

from __future__ import annotations

import contextlib
import pickle
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdviz.io.untrusted import (
    ArchiveBombError,
    UnsafeArchiveError,
    UploadError,
    UploadTooLargeError,
    check_size,
    content_hash,
    format_bytes,
    upload_workspace,
)

ignore_protocol_warning = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
from tests.hostile_inputs import CASES, HostileCase, call_library, cases, make_data_root  # noqa: E402


def _run(case: HostileCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, object]:
    """Build the case's bytes and run them through the library; return (marker, result or exception)."""
    marker = tmp_path / "MARKER"
    workdir = tmp_path / "work"
    workdir.mkdir()
    if case.kind == "path":
        root = make_data_root(tmp_path)
        if case.options.get("data_root") == "unset":
            monkeypatch.delenv("KDVIZ_DATA_ROOT", raising=False)
        else:
            monkeypatch.setenv("KDVIZ_DATA_ROOT", str(root))
        case = HostileCase(case.id, case.kind, case.filename, case.build, case.error, case.match)
    data = case.build(marker)
    try:
        return marker, call_library(case, data, workdir=workdir)
    except Exception as exc:  # the outcome under test
        return marker, exc


def test_table_is_large_and_ids_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 30
    assert {c.kind for c in CASES} == {"zip", "image", "series", "checkpoint", "path"}


@pytest.mark.parametrize("case", [c for c in CASES if c.kind != "checkpoint"], ids=lambda c: c.id)
def test_library_outcome(case: HostileCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker, outcome = _run(case, tmp_path, monkeypatch)
    expected = case.expected_error()
    if expected is None:
        assert not isinstance(outcome, Exception), f"{case.id} should load, got {outcome!r}"
        assert case.match in " ".join(outcome.warnings)
        if not case.match:
            assert outcome.warnings == ()
    else:
        assert isinstance(outcome, expected), f"{case.id}: expected {expected.__name__}, got {outcome!r}"
        assert isinstance(outcome, UploadError)  # one family the UI can catch
        assert case.match in str(outcome)
    assert not marker.exists()


@ignore_protocol_warning
@pytest.mark.parametrize("case", cases("checkpoint"), ids=lambda c: c.id)
def test_checkpoint_exploit_never_runs(case: HostileCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KDVIZ_TRUST_PROGRAMS", raising=False)
    marker, outcome = _run(case, tmp_path, monkeypatch)
    time.sleep(0.05)  # a Popen exploit would touch the marker asynchronously
    assert not marker.exists(), f"{case.id} ran code"
    assert isinstance(outcome, case.expected_error()), f"{case.id}: got {outcome!r}"
    assert case.match in str(outcome)


@ignore_protocol_warning
@pytest.mark.parametrize("case_id", ["ckpt-os-system-protocol5", "ckpt-nested-container", "ckpt-builtins-eval"])
def test_checkpoint_refusal_never_advises_unsafe_loading(case_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's own message suggests retrying with weights_only=False; kdviz must never pass that on."""
    case = next(c for c in CASES if c.id == case_id)
    _, outcome = _run(case, tmp_path, monkeypatch)
    assert "refused" in str(outcome)
    assert "weights_only" not in str(outcome)


@pytest.mark.parametrize(
    "case_id", ["ckpt-os-system", "ckpt-builtins-eval", "ckpt-builtins-exec", "ckpt-subprocess-run", "ckpt-raw-protocol0"]
)
def test_exploit_fixtures_are_live(case_id: str, tmp_path: Path) -> None:
    """Guard against a vacuous table: plain pickle.loads really does create the marker."""
    case = next(c for c in CASES if c.id == case_id)
    marker = tmp_path / "MARKER"
    pickle.loads(case.build(marker))  # noqa: S301 - deliberately unsafe, on our own fixture
    assert marker.exists()


def test_check_size_names_file_and_limit() -> None:
    check_size(10, limit_bytes=10)
    with pytest.raises(UploadTooLargeError, match=r"'big.pth' is 1\.5 GiB; the limit is 1\.0 GiB"):
        check_size(3 * 2**29, limit_bytes=2**30, name="'big.pth'")
    with pytest.raises(ValueError, match="limit_bytes"):
        check_size(1, limit_bytes=0)


def test_error_family() -> None:
    assert issubclass(ArchiveBombError, UnsafeArchiveError)
    assert issubclass(ArchiveBombError, UploadTooLargeError)
    assert issubclass(UploadError, ValueError)


def test_format_bytes() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(5 * 2**40) == "5120.0 GiB"


def test_content_hash_tells_same_names_apart() -> None:
    assert content_hash(b"a") != content_hash(b"b")
    assert content_hash(b"a") == content_hash(bytearray(b"a"))


def test_upload_workspace_is_private_and_removed() -> None:
    with upload_workspace() as first, upload_workspace() as second:
        assert first != second and first.is_dir()
        (first / "model.pth").write_bytes(b"x")
        assert not (second / "model.pth").exists()
    assert not first.exists() and not second.exists()


# Fuzzing: whatever the bytes, the loaders answer with a result or an UploadError, never anything else.

_SEEDS = {
    "png": next(c for c in CASES if c.id == "png-palette").build(Path("unused")),
    "zip": next(c for c in CASES if c.id == "zip-duplicate-names").build(Path("unused")).replace(b"a.txt", b"b.txt", 1),
    "npy": next(c for c in CASES if c.id == "npy-nan").build(Path("unused")),
}


def _mutations() -> st.SearchStrategy[tuple[str, bytes]]:
    def mutate(kind: str, flips: list[tuple[int, int]], cut: int) -> tuple[str, bytes]:
        data = bytearray(_SEEDS[kind])
        for position, value in flips:
            data[position % len(data)] = value
        return kind, bytes(data[: max(cut, 1)])

    return st.builds(
        mutate,
        st.sampled_from(sorted(_SEEDS)),
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
        st.integers(1, 10_000),
    )


@settings(max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_mutations())
def test_mutated_files_fail_cleanly(tmp_path: Path, mutated: tuple[str, bytes]) -> None:
    from kdviz.io.images import load_image
    from kdviz.io.safezip import extract_zip
    from kdviz.io.series import load_series

    kind, data = mutated
    with contextlib.suppress(UploadError):
        if kind == "png":
            load_image(data, name="f.png")
        elif kind == "npy":
            load_series(data, name="f.npy")
        else:
            with upload_workspace() as folder:
                extract_zip(data, folder)


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(st.binary(max_size=512), st.sampled_from(["f.csv", "f.ts", "f.npy", "f.png"]))
def test_random_bytes_fail_cleanly(data: bytes, name: str) -> None:
    from kdviz.io.images import load_image
    from kdviz.io.series import load_series

    with contextlib.suppress(UploadError):
        load_image(data, name=name) if name.endswith(".png") else load_series(data, name=name)
