"""The table of hostile and malformed inputs, shared by the library tests and the dashboard's AppTest.

Each :class:`HostileCase` builds its file in memory (tiny, deterministic) from a marker
path: pickle exploits would create that marker if anything ever unpickled them, so a
test asserts the marker never appears. ``error`` is the exception kdviz must raise (None:
accepted after conversion) and ``match`` a fragment of its message (or of a warning).
:func:`call_library` runs one case through the kdviz library.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import io
import os
import pickle
import shlex
import stat
import struct
import subprocess
import warnings
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from kdviz.io.untrusted import (
    ArchiveBombError,
    DataPathError,
    ImageError,
    SeriesError,
    SeriesShapeError,
    UnsafeArchiveError,
)

Kind = Literal["zip", "image", "series", "checkpoint", "path"]

# Named, not imported: kdviz.io.checkpoints pulls in torch, which the other kinds do not need.
CHECKPOINT_REFUSAL = "kdviz.errors.CheckpointError"


@dataclass(frozen=True)
class HostileCase:
    """One hostile or malformed input and the outcome kdviz promises for it."""

    id: str
    kind: Kind
    filename: str  # upload name; for kind 'path' the path the user types
    build: Callable[[Path], bytes]  # marker path -> file bytes
    error: type[Exception] | str | None  # a class or its dotted name; None: accepted with a warning
    match: str  # fragment of the error message (or of a warning when accepted)
    options: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    def expected_error(self) -> type[Exception] | None:
        """The exception class kdviz must raise (dotted names imported on demand)."""
        if self.error is None or isinstance(self.error, type):
            return self.error
        module, _, attr = self.error.rpartition(".")
        return getattr(importlib.import_module(module), attr)

    @property
    def plants_marker(self) -> bool:
        """True when unpickling the file would create the marker (a live exploit)."""
        return self.kind == "checkpoint" or self.id.startswith("npy-pickle")


# --------------------------------------------------------------------------- pickle exploits


class _SystemExploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


class _EvalExploit(_SystemExploit):
    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",))


class _ExecExploit(_SystemExploit):
    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).touch()",))


class _PopenExploit(_SystemExploit):
    def __reduce__(self) -> tuple[Any, ...]:
        return (subprocess.Popen, (["touch", str(self.marker)],))


class _RunExploit(_SystemExploit):
    def __reduce__(self) -> tuple[Any, ...]:
        return (subprocess.run, (["touch", str(self.marker)],))


def _raw_protocol0(marker: Path) -> bytes:
    """The classic hand-written pickle: GLOBAL os.system, no class needed at all."""
    return b"cos\nsystem\n(S'" + f"touch {shlex.quote(str(marker))}".encode() + b"'\ntR."


def _nested(marker: Path) -> bytes:
    state = {"state_dict": {"fc.weight": [(1, {"deep": _SystemExploit(marker)})]}, "epoch": 3}
    return pickle.dumps(state)


def _namespace_smuggling(marker: Path) -> bytes:
    """RepDistiller's layout ({'opt': Namespace, 'model': …}), but one option builds os.system: the Namespace is
    allowed, what it holds is not."""
    import argparse

    import torch

    buffer = io.BytesIO()
    opt = argparse.Namespace(model_s="resnet8", hook=_SystemExploit(marker))
    torch.save({"opt": opt, "model": {"fc.weight": torch.zeros(2, 2)}}, buffer)
    return buffer.getvalue()


def _other_class(_: Path) -> bytes:
    """A harmless class that is not argparse.Namespace (a pathlib path among the options): still refused."""
    import pathlib

    import torch

    buffer = io.BytesIO()
    torch.save({"args": {"output_dir": pathlib.PurePosixPath("out")}, "model": {"fc.weight": torch.zeros(2, 2)}}, buffer)
    return buffer.getvalue()


def _torch_save(marker: Path, *, legacy: bool = False) -> bytes:
    import torch

    buffer = io.BytesIO()
    payload = {"model": {"fc.weight": torch.zeros(2, 2)}, "args": _SystemExploit(marker)}
    torch.save(payload, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def _torchscript(_: Path) -> bytes:
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, still loadable
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- zips


def _zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names warn
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return buffer.getvalue()


def _symlink_zip(_: Path) -> bytes:
    link = zipfile.ZipInfo("data/passwd")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip([("data/ok.txt", b"fine"), (link, b"/etc/passwd")])


def _patch_headers(data: bytes, *, flag_bits: int | None = None, file_size: int | None = None) -> bytes:
    """Rewrite the flag bits / declared size in every local and central header (headers that lie)."""
    out = bytearray(data)
    for signature, flag_at, size_at in ((b"PK\x03\x04", 6, 22), (b"PK\x01\x02", 8, 24)):
        start = out.find(signature)
        while start != -1:
            if flag_bits is not None:
                out[start + flag_at : start + flag_at + 2] = struct.pack("<H", flag_bits)
            if file_size is not None:
                out[start + size_at : start + size_at + 4] = struct.pack("<I", file_size)
            start = out.find(signature, start + 4)
    return bytes(out)


@functools.lru_cache(maxsize=1)
def _bomb_200mb() -> bytes:
    """200 MiB of zeros deflated to ~200 KB (built once, ~1 s)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        chunk = bytes(1 << 20)
        for _ in range(200):
            member.write(chunk)
    return buffer.getvalue()


# --------------------------------------------------------------------------- images


def _png(img: Image.Image, **params: Any) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def _gradient_rgb() -> Image.Image:
    ramp = np.linspace(0, 255, 32, dtype=np.uint8)
    return Image.fromarray(np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 128), axis=2).astype(np.uint8))


def _noise_rgb() -> Image.Image:
    return Image.fromarray(np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8))


def _truncated(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width``×``height`` with a valid CRC and almost no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _animated_gif(_: Path) -> bytes:
    frames = [Image.new("RGB", (16, 16), color=c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buffer.getvalue()


def _cmyk_jpeg(_: Path) -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _jpeg(_: Path) -> bytes:
    buffer = io.BytesIO()
    _gradient_rgb().save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _png_bad_crc(_: Path) -> bytes:
    data = bytearray(_png(_gradient_rgb()))
    data[29] ^= 0xFF  # last byte of the IHDR CRC
    return bytes(data)


def _image_folder_with_truncated(_: Path) -> bytes:
    good = _png(Image.new("L", (8, 8), 100))
    return _zip([("cats/a.png", good), ("dogs/b.png", good[: len(good) // 2])])


# --------------------------------------------------------------------------- series


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npy_pickle(marker: Path) -> bytes:
    array = np.empty(2, dtype=object)
    array[0], array[1] = _SystemExploit(marker), [1.0, 2.0]
    return _npy(array)


def _npy_huge_header(_: Path) -> bytes:
    """An .npy header claiming 100000×100000 float32 (40 GB) followed by 24 bytes of data."""
    buffer = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + bytes(24)


def _ts(body: str, *, equal_length: bool = True) -> Callable[[Path], bytes]:
    head = (
        "@problemName hostile\n@timeStamps false\n@univariate true\n"
        f"@equalLength {str(equal_length).lower()}\n@classLabel true a b\n@data\n"
    )
    return lambda _: (head + body).encode()


def _const(data: bytes) -> Callable[[Path], bytes]:
    return lambda _: data


def _csv(text: str) -> Callable[[Path], bytes]:
    return _const(text.encode())


# --------------------------------------------------------------------------- server paths


def make_data_root(base: Path) -> Path:
    """A data root under ``base`` with ``series/good.csv`` and a link ``escape`` pointing outside it."""
    root, outside = base / "data-root", base / "outside"
    (root / "series").mkdir(parents=True, exist_ok=True)
    outside.mkdir(exist_ok=True)
    (root / "series" / "good.csv").write_text("1,2,3\n4,5,6\n")
    (outside / "secret.txt").write_text("not yours")
    if not (root / "escape").exists():
        (root / "escape").symlink_to(outside, target_is_directory=True)
    return root


_NO_BYTES = _const(b"")

# --------------------------------------------------------------------------- the table

CASES: tuple[HostileCase, ...] = (
    # zips
    HostileCase("zip-slip-dotdot", "zip", "slip.zip", lambda _: _zip([("ok.txt", b"x"), ("../../etc/passwd", b"root::0:0")]),
                UnsafeArchiveError, "'../../etc/passwd' escapes the folder"),
    HostileCase("zip-slip-backslash", "zip", "slip-win.zip", lambda _: _zip([("..\\..\\evil.bat", b"x")]),
                UnsafeArchiveError, "escapes the folder"),
    HostileCase("zip-absolute-path", "zip", "abs.zip", lambda _: _zip([("/tmp/kdviz-evil.txt", b"x")]),
                UnsafeArchiveError, "absolute path"),
    HostileCase("zip-windows-drive", "zip", "drive.zip", lambda _: _zip([("C:/Windows/evil.dll", b"x")]),
                UnsafeArchiveError, "absolute path"),
    HostileCase("zip-symlink-entry", "zip", "link.zip", _symlink_zip, UnsafeArchiveError, "symbolic link"),
    HostileCase("zip-bomb-ratio", "zip", "bomb.zip", lambda _: _bomb_200mb(), ArchiveBombError, "zip bomb",
                note="200 MiB of zeros in ~200 KB; refused by ratio before writing"),
    HostileCase("zip-bomb-total", "zip", "bomb-total.zip", lambda _: _bomb_200mb(), ArchiveBombError, "unpacks to more than",
                options={"max_total_bytes": 50 * 1024**2, "max_ratio": 10_000}),
    HostileCase("zip-lying-size", "zip", "liar.zip",
                lambda _: _patch_headers(_zip([("zeros.bin", bytes(1 << 20))]), file_size=10),
                UnsafeArchiveError, "corrupt", note="declares 10 bytes, holds 1 MiB"),
    HostileCase("zip-too-many-files", "zip", "many.zip", lambda _: _zip([(f"f{i}.txt", b"x") for i in range(50)]),
                ArchiveBombError, "50 entries; the limit is 20", options={"max_files": 20}),
    HostileCase("zip-encrypted", "zip", "secret.zip", lambda _: _patch_headers(_zip([("a.txt", b"hello")]), flag_bits=0x1),
                UnsafeArchiveError, "encrypted"),
    HostileCase("zip-duplicate-names", "zip", "dup.zip", lambda _: _zip([("a.txt", b"one"), ("a.txt", b"two")]),
                UnsafeArchiveError, "appears twice"),
    HostileCase("zip-not-a-zip", "zip", "random.zip", _const(np.random.default_rng(0).bytes(512)),
                UnsafeArchiveError, "not a readable zip"),
    # images
    HostileCase("png-truncated", "image", "cut.png", lambda _: _truncated(_png(_noise_rgb())), ImageError, "truncated"),
    HostileCase("jpeg-truncated", "image", "cut.jpg", lambda _: _truncated(_jpeg(_)), ImageError, "truncated"),
    HostileCase("image-empty", "image", "empty.png", _NO_BYTES, ImageError, "empty"),
    HostileCase("png-random-bytes", "image", "noise.png", _const(np.random.default_rng(1).bytes(4096)),
                ImageError, "not an image"),
    HostileCase("png-is-html", "image", "page.png", _const(b"<html><script>alert(1)</script></html>"),
                ImageError, "not an image"),
    HostileCase("png-bad-crc", "image", "crc.png", _png_bad_crc, ImageError, "corrupt"),
    HostileCase("png-bomb-error", "image", "bomb.png", lambda _: _png_header_only(100_000, 100_000),
                ImageError, "decompression bomb", note="10 G pixels: PIL's DecompressionBombError"),
    HostileCase("png-bomb-warning", "image", "bomb-warn.png", lambda _: _png_header_only(10_000, 10_000),
                ImageError, "megapixels", note="100 M pixels: PIL only warns; kdviz refuses"),
    HostileCase("png-16bit", "image", "deep.png",
                lambda _: _png(Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 257)),
                None, "16-bit", options={"mode": "L"}),
    HostileCase("png-palette", "image", "palette.png", lambda _: _png(_gradient_rgb().convert("P")), None, ""),
    HostileCase("png-palette-transparent", "image", "palette-t.png",
                lambda _: _png(Image.new("P", (8, 8), 0), transparency=0), None, "transparency"),
    HostileCase("png-rgba", "image", "alpha.png", lambda _: _png(Image.new("RGBA", (8, 8), (255, 0, 0, 0))),
                None, "transparency"),
    HostileCase("jpeg-cmyk", "image", "print.jpg", _cmyk_jpeg, None, "CMYK"),
    HostileCase("gif-animated", "image", "anim.gif", _animated_gif, None, "first frame"),
    HostileCase("rgb-into-grey-model", "image", "colour.png", lambda _: _png(_gradient_rgb()), None, "greyscale",
                options={"mode": "L"}),
    HostileCase("imagefolder-truncated-member", "image", "folder.zip", _image_folder_with_truncated,
                ImageError, "dogs/b.png"),
    # series
    HostileCase("csv-nan", "series", "nan.csv", _csv("1,2,3\n4,nan,6\n7,8,9\n"), SeriesError, "line 2 has missing values"),
    HostileCase("csv-empty-cell", "series", "hole.csv", _csv("1,2,3\n4,,6\n"), SeriesError, "line 2 has missing values"),
    HostileCase("csv-nan-interpolated", "series", "nan-ok.csv", _csv("1,2,3\n4,nan,6\n"), None, "interpolation",
                options={"missing": "interpolate"}),
    HostileCase("csv-inf", "series", "inf.csv", _csv("1,2,3\n4,5,6\n7,inf,9\n"), SeriesError, "line 3 contains an infinite"),
    HostileCase("csv-ragged", "series", "ragged.csv", _csv("1,2,3,4\n5,6,7\n"), SeriesError, "same length"),
    HostileCase("csv-non-numeric", "series", "text.csv", _csv("label,t0,t1\na,1,2\nb,3,oops\n"), SeriesError,
                "line 3, column t1 holds 'oops'"),
    HostileCase("csv-empty", "series", "empty.csv", _NO_BYTES, SeriesError, "empty"),
    HostileCase("csv-header-only", "series", "head.csv", _csv("label,t0,t1\n"), SeriesError, "no data rows"),
    HostileCase("csv-not-utf8", "series", "latin.csv", _const("1,2\n3,\xe9\n".encode("latin-1")), SeriesError, "not UTF-8"),
    HostileCase("npy-pickle-object-array", "series", "objects.npy", _npy_pickle, SeriesError, "Python objects",
                note="object array whose element runs os.system if unpickled"),
    HostileCase("npy-nan", "series", "nan.npy", lambda _: _npy(np.array([[1.0, 2.0], [np.nan, 1.0]])), SeriesError,
                "series at index 1 has missing values"),
    HostileCase("npy-strings", "series", "words.npy", lambda _: _npy(np.array(["a", "b"])), SeriesError, "dtype"),
    HostileCase("npy-4d", "series", "cube.npy", lambda _: _npy(np.zeros((2, 2, 2, 2))), SeriesError, "shape"),
    HostileCase("npy-header-lies", "series", "liar.npy", _npy_huge_header, SeriesError, "declares shape (100000, 100000)"),
    HostileCase("ts-malformed", "series", "bad.ts", _ts("1,2,3:a\nthis is not a series\n"), SeriesError, "not a valid .ts"),
    HostileCase("ts-unequal-lengths", "series", "ragged.ts", _ts("1,2,3:a\n1,2,3,4,5:b\n", equal_length=False), SeriesError, "different lengths"),
    HostileCase("series-wrong-channels", "series", "three.npy", lambda _: _npy(np.zeros((4, 3, 50))), SeriesShapeError,
                "takes 1 channel(s) but the series have 3", options={"in_channels": 1}),
    HostileCase("series-wrong-length", "series", "short.csv", _csv("1,2,3\n4,5,6\n"), SeriesShapeError,
                "length 150", options={"in_channels": 1, "length": 150}),
    HostileCase("series-unsupported-ext", "series", "sheet.xlsx", _const(b"PK\x03\x04"), SeriesError, "unsupported extension"),
    # checkpoints: each would create the marker if unpickled
    HostileCase("ckpt-os-system", "checkpoint", "model.pth", lambda m: pickle.dumps(_SystemExploit(m), protocol=2),
                CHECKPOINT_REFUSAL, "posix.system"),
    HostileCase("ckpt-os-system-protocol5", "checkpoint", "model5.pth", lambda m: pickle.dumps(_SystemExploit(m), protocol=5),
                CHECKPOINT_REFUSAL, ""),
    HostileCase("ckpt-builtins-eval", "checkpoint", "model.pt", lambda m: pickle.dumps(_EvalExploit(m)), CHECKPOINT_REFUSAL, ""),
    HostileCase("ckpt-builtins-exec", "checkpoint", "model.ckpt", lambda m: pickle.dumps(_ExecExploit(m)), CHECKPOINT_REFUSAL, ""),
    HostileCase("ckpt-subprocess-popen", "checkpoint", "popen.pth", lambda m: pickle.dumps(_PopenExploit(m)), CHECKPOINT_REFUSAL, ""),
    HostileCase("ckpt-subprocess-run", "checkpoint", "run.pth", lambda m: pickle.dumps(_RunExploit(m)), CHECKPOINT_REFUSAL, ""),
    HostileCase("ckpt-raw-protocol0", "checkpoint", "raw.pkl", _raw_protocol0, CHECKPOINT_REFUSAL, ""),
    HostileCase("ckpt-nested-container", "checkpoint", "nested.pth", _nested, CHECKPOINT_REFUSAL, ""),
    HostileCase("ckpt-torch-save-dict", "checkpoint", "resnet18_alpha0.5.pth", _torch_save, CHECKPOINT_REFUSAL, "posix.system"),
    HostileCase("ckpt-torch-save-legacy", "checkpoint", "legacy.pth", lambda m: _torch_save(m, legacy=True),
                CHECKPOINT_REFUSAL, "posix.system"),
    HostileCase("ckpt-namespace-smuggles-system", "checkpoint", "resnet8_last.pth", _namespace_smuggling,
                CHECKPOINT_REFUSAL, "posix.system", note="argparse.Namespace is allowed; an os.system inside it is not"),
    HostileCase("ckpt-other-class", "checkpoint", "paths.pth", _other_class, CHECKPOINT_REFUSAL, "pathlib.PurePosixPath",
                note="only argparse.Namespace is allow-listed, no other class"),
    HostileCase("ckpt-pickle-named-safetensors", "checkpoint", "model.safetensors",
                lambda m: pickle.dumps(_SystemExploit(m)), CHECKPOINT_REFUSAL, ""),
    HostileCase("ckpt-torchscript-untrusted", "checkpoint", "scripted.pt", _torchscript, CHECKPOINT_REFUSAL, "trust_code",
                note="a TorchScript program: refused unless KDVIZ_TRUST_PROGRAMS=1"),
    # server paths (filename = what the user types; make_data_root builds the root)
    HostileCase("path-root-unset", "path", "series/good.csv", _NO_BYTES, DataPathError, "disabled",
                options={"data_root": "unset"}),
    HostileCase("path-dotdot", "path", "../outside/secret.txt", _NO_BYTES, DataPathError, "contains '..'"),
    HostileCase("path-dotdot-inner", "path", "series/../../outside/secret.txt", _NO_BYTES, DataPathError, "contains '..'"),
    HostileCase("path-absolute-outside", "path", "/etc/passwd", _NO_BYTES, DataPathError, "outside the data folder"),
    HostileCase("path-symlink-out", "path", "escape/secret.txt", _NO_BYTES, DataPathError, "symbolic link"),
    HostileCase("path-missing", "path", "series/nope.csv", _NO_BYTES, DataPathError, "does not exist"),
)


def cases(kind: Kind | None = None) -> list[HostileCase]:
    """The cases of one kind (all when ``kind`` is None)."""
    return [c for c in CASES if kind is None or c.kind == kind]


def call_library(case: HostileCase, data: bytes, *, workdir: Path) -> Any:
    """Run ``case`` through the kdviz library (path cases read ``KDVIZ_DATA_ROOT`` from the env)."""
    options = dict(case.options)
    if case.kind == "zip":
        from kdviz.io.safezip import extract_zip

        return extract_zip(data, workdir / "extracted", **options)
    if case.kind == "image":
        from kdviz.io.images import load_image, load_image_folder

        if case.filename.endswith(".zip"):
            return load_image_folder(data, **options)
        return load_image(data, name=case.filename, **options)
    if case.kind == "series":
        from kdviz.io.series import check_series_fits, load_series

        fits = {k: options.pop(k) for k in ("in_channels", "length") if k in options}
        loaded = load_series(data, name=case.filename, **options)
        if fits:
            check_series_fits(loaded.x, **fits)
        return loaded
    if case.kind == "path":
        from kdviz.io.paths import resolve_data_path

        return resolve_data_path(case.filename)
    if case.kind == "checkpoint":
        from kdviz.io.checkpoints import load_checkpoint  # the lead's module; imported lazily

        path = workdir / case.filename
        path.write_bytes(data)
        return load_checkpoint(path)
    raise ValueError(f"unknown case kind {case.kind!r}")
