"""Parsing uploaded time-series files (.ts, .csv/.tsv, .npy) into (N, C, L) float32 arrays.

kdviz refuses what a model cannot use rather than guessing: NaN/inf (naming the row),
ragged lengths, non-numeric cells (naming row and column), empty files, and ``.npy``
files holding Python objects, which would need unpickling.
"""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from kdviz.errors import InvalidInputError
from kdviz.io.untrusted import SeriesError, SeriesShapeError

__all__ = ["LoadedSeries", "load_series", "check_series_fits", "encode_labels", "SERIES_SUFFIXES"]

SERIES_SUFFIXES = (".ts", ".csv", ".tsv", ".txt", ".npy")
_LABEL_HEADERS = frozenset({"label", "labels", "class", "classes", "target", "y"})
Missing = Literal["refuse", "interpolate"]


@dataclass(frozen=True)
class LoadedSeries:
    """Series from one file.

    ``x`` is float32 (N, C, L); ``labels`` int64 (N,) indexing ``class_names``, or None
    when the file has no labels; ``warnings`` lists conversions a person should know about.
    """

    name: str
    x: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def encode_labels(raw: list[str] | np.ndarray | None) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """Map raw labels to indices into sorted class names (numeric labels sort numerically)."""
    if raw is None:
        return None, ()
    names = [str(v).strip() for v in raw]
    unique = set(names)
    try:
        ordered = sorted(unique, key=float)
    except ValueError:
        ordered = sorted(unique)
    index = {n: i for i, n in enumerate(ordered)}
    return np.asarray([index[n] for n in names], dtype=np.int64), tuple(ordered)


def _check_finite(
    x: np.ndarray, name: str, *, missing: Missing, where: list[str]
) -> tuple[np.ndarray, list[str]]:
    """Refuse inf always and NaN unless ``missing='interpolate'``; ``where[i]`` names row i."""
    notes: list[str] = []
    bad_inf = np.isinf(x).any(axis=(1, 2))
    if bad_inf.any():
        row = where[int(np.argmax(bad_inf))]
        raise SeriesError(
            f"'{name}' {row} contains an infinite value; replace it with a finite number "
            "or drop that series."
        )
    with np.errstate(invalid="ignore"):
        too_big = (np.abs(x) > np.finfo(np.float32).max).any(axis=(1, 2))
    if too_big.any():
        row = where[int(np.argmax(too_big))]
        raise SeriesError(
            f"'{name}' {row} holds a value beyond float32's range (±3.4e38); rescale the data."
        )
    bad_nan = np.isnan(x).any(axis=(1, 2))
    if not bad_nan.any():
        return x, notes
    row = where[int(np.argmax(bad_nan))]
    if missing == "refuse":
        raise SeriesError(
            f"'{name}' {row} has missing values (NaN) ({int(bad_nan.sum())} series in all); "
            "fill or drop them before uploading, or choose linear interpolation."
        )
    out = x.copy()
    steps = np.arange(x.shape[2])
    for n, c in zip(*np.nonzero(np.isnan(x).any(axis=2)), strict=True):
        known = ~np.isnan(x[n, c])
        if not known.any():
            raise SeriesError(
                f"'{name}' {where[n]} channel {c} is entirely missing; drop that series."
            )
        out[n, c] = np.interp(steps, steps[known], x[n, c, known])
    notes.append(f"'{name}': filled missing values in {int(bad_nan.sum())} series by linear interpolation.")
    return out, notes


def _npy_header(data: bytes, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Read and check an ``.npy`` header before numpy allocates anything: no objects, sizes that add up."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise InvalidInputError(f"unsupported .npy format version {version}")
        shape, _, dtype = readers[version](stream)
    except Exception as exc:  # numpy's header parser raises ValueError, SyntaxError, TokenError...
        raise SeriesError(f"'{name}' is not a valid .npy file ({exc}); save it with numpy.save.") from exc
    if dtype.hasobject:
        raise SeriesError(
            f"'{name}' holds Python objects, which would need unpickling (it can run code); "
            "kdviz never unpickles uploads. Save a numeric array: np.save(path, x.astype('float32'))."
        )
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if dtype.itemsize else 0
    held = len(data) - stream.tell()
    if held != expected:
        raise SeriesError(
            f"'{name}' declares shape {shape} ({expected} bytes of data) but holds {held} bytes; "
            "the file is truncated or corrupt. Save it again with numpy.save."
        )
    return shape, dtype


def _load_npy(data: bytes, name: str) -> tuple[np.ndarray, None, list[str]]:
    """Read a numeric ``.npy`` without ever unpickling; shape (L,), (N, L) or (N, C, L)."""
    _npy_header(data, name)
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SeriesError(f"'{name}' is not a valid .npy file ({exc}); save it with numpy.save.") from exc
    if not isinstance(array, np.ndarray):
        raise SeriesError(f"'{name}' is an .npz archive; upload a single array saved with numpy.save.")
    if array.dtype.kind not in "biuf":
        raise SeriesError(
            f"'{name}' has dtype {array.dtype}; kdviz needs real numbers (float or int). "
            "Convert with x.astype('float32')."
        )
    if array.ndim not in (1, 2, 3) or array.size == 0:
        raise SeriesError(
            f"'{name}' has shape {array.shape}; kdviz needs (length,), (series, length) or "
            "(series, channels, length) with at least one value."
        )
    shaped = array[None, None, :] if array.ndim == 1 else array[:, None, :] if array.ndim == 2 else array
    return shaped.astype(np.float64), None, []


def _sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV/TSV from its first line (comma, tab, semicolon or whitespace)."""
    first = text.split("\n", 1)[0]
    for delimiter in ("\t", ",", ";"):
        if delimiter in first:
            return delimiter
    return " "


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _csv_rows(data: bytes, name: str) -> list[tuple[int, list[str]]]:
    """The CSV's non-empty rows with their line numbers, cells stripped (the delimiter sniffed)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SeriesError(f"'{name}' is not UTF-8 text ({exc}); save it as UTF-8 CSV.") from exc
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=delimiter == " ")
    try:
        rows = [(reader.line_num, [c.strip() for c in row]) for row in reader]
    except csv.Error as exc:
        raise SeriesError(f"'{name}' line {reader.line_num} is not valid CSV ({exc}); check its quotes.") from exc
    rows = [(n, [c for c in row if c] if delimiter == " " else row) for n, row in rows]
    rows = [(n, row) for n, row in rows if any(row)]
    if not rows:
        raise SeriesError(f"'{name}' is empty; upload a CSV with one series per row.")
    return rows


def _csv_values(rows: list[tuple[int, list[str]]], start: int, header: list[str] | None, name: str) -> np.ndarray:
    """The rows' numbers from column ``start`` on (an empty cell is NaN); every row as long as the first."""
    width = len(rows[0][1]) - start
    values = np.empty((len(rows), width), dtype=np.float64)
    for i, (line, row) in enumerate(rows):
        cells = row[start:]
        if len(cells) != width:
            raise SeriesError(
                f"'{name}' line {line} has {len(cells)} values but line {rows[0][0]} has {width}; "
                "all series must have the same length (pad or resample them)."
            )
        for j, cell in enumerate(cells):
            try:
                values[i, j] = np.nan if cell == "" else float(cell)
            except ValueError:
                column = header[j + start] if header is not None and j + start < len(header) else j + start + 1
                raise SeriesError(
                    f"'{name}' line {line}, column {column!s} holds {cell[:40]!r}, which is not a number; "
                    "fix that cell (or mark a text label column with the header 'label')."
                ) from None
    return values


def _load_csv(
    data: bytes, name: str, label_column: str
) -> tuple[np.ndarray, list[str] | None, list[str], list[str]]:
    """Rows are series (univariate); an optional first-column label; an optional header."""
    rows = _csv_rows(data, name)
    notes: list[str] = []
    header: list[str] | None = None
    first = rows[0][1]
    if first[0].lower() in _LABEL_HEADERS or not all(_is_number(c) for c in first[1:] if c):
        header, rows = rows[0][1], rows[1:]
        if not rows:
            raise SeriesError(f"'{name}' has a header but no data rows; add one series per row.")
    if label_column == "auto":
        named = header is not None and header[0].strip().lower() in _LABEL_HEADERS
        textual = any(row and not _is_number(row[0]) for _, row in rows)
        has_label = named or textual
    else:
        has_label = label_column == "first"
    labels: list[str] | None = [row[0] for _, row in rows] if has_label else None
    start = 1 if has_label else 0
    values = _csv_values(rows, start, header, name)
    width = values.shape[1]
    if width == 0:
        raise SeriesError(f"'{name}' has labels but no values; add one series per row.")
    if has_label:
        notes.append(f"'{name}': used the first column as class labels.")
    return values[:, None, :], labels, notes, [f"line {line}" for line, _ in rows]


def _load_ts(data: bytes, name: str) -> tuple[np.ndarray, list[str] | None, list[str]]:
    """Parse aeon/UCR ``.ts`` via aeon's reader on a private temporary file."""
    from aeon.datasets import load_from_ts_file  # noqa: PLC0415 - aeon is heavy: only for a .ts file

    with tempfile.TemporaryDirectory(prefix="kdviz-ts-") as folder:
        path = Path(folder) / "upload.ts"
        path.write_bytes(data)
        try:
            x, y, meta = load_from_ts_file(str(path), return_meta_data=True)
        except Exception as exc:  # aeon raises IOError, ValueError, IndexError... on malformed files
            raise SeriesError(
                f"'{name}' is not a valid .ts file ({exc}); see the aeon/UCR .ts format "
                "(@problemName, @univariate, @classLabel, @data)."
            ) from exc
    if isinstance(x, list):
        lengths = sorted({a.shape[-1] for a in x})
        raise SeriesError(
            f"'{name}' has series of different lengths ({lengths[0]}…{lengths[-1]}); "
            "kdviz needs equal lengths: pad or resample them."
        )
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        raise SeriesError(f"'{name}' has no series after @data; add at least one.")
    labels = [str(v) for v in y] if meta.get("classlabel") and len(y) == len(x) else None
    return x, labels, []


def load_series(
    data: bytes,
    *,
    name: str,
    label_column: Literal["auto", "first", "none"] = "auto",
    missing: Missing = "refuse",
) -> LoadedSeries:
    """Parse ``data`` (format from ``name``'s suffix) into a :class:`LoadedSeries`.

    ``.ts``: aeon/UCR format with class labels. ``.csv``/``.tsv``/``.txt``: one
    univariate series per row; the first column is a label when its header says
    label/class/target or a value is not a number (``label_column='first'`` forces it,
    e.g. for UCR's numeric labels). ``.npy``: (L,), (N, L) or (N, C, L), no pickles.
    NaN is refused unless ``missing='interpolate'``; inf is always refused.
    """
    if label_column not in ("auto", "first", "none"):
        raise InvalidInputError(f"label_column must be 'auto', 'first' or 'none', got {label_column!r}")
    if missing not in ("refuse", "interpolate"):
        raise InvalidInputError(f"missing must be 'refuse' or 'interpolate', got {missing!r}")
    suffix = Path(name).suffix.lower()
    if suffix not in SERIES_SUFFIXES:
        raise SeriesError(f"'{name}' has an unsupported extension; upload one of {', '.join(SERIES_SUFFIXES)}.")
    data = bytes(data)
    if not data.strip():
        raise SeriesError(f"'{name}' is empty; upload a file with at least one series.")
    if suffix in (".npy", ".ts"):
        x, raw_labels, notes = _load_npy(data, name) if suffix == ".npy" else _load_ts(data, name)
        where = [f"series at index {i}" for i in range(len(x))]
    else:
        x, raw_labels, notes, where = _load_csv(data, name, label_column)
    x, more = _check_finite(x, name, missing=missing, where=where)
    labels, class_names = encode_labels(raw_labels)
    return LoadedSeries(
        name=name,
        x=np.ascontiguousarray(x, dtype=np.float32),
        labels=labels,
        class_names=class_names,
        warnings=tuple(notes + more),
    )


def check_series_fits(
    x: np.ndarray,
    *,
    in_channels: int,
    length: int | None = None,
    min_length: int = 1,
) -> None:
    """Refuse series of shape (N, C, L) that a model with ``in_channels`` (and fixed ``length``) cannot take.

    Raises :class:`~kdviz.io.untrusted.SeriesShapeError` naming both shapes and the fix.
    """
    shape = np.shape(x)
    if len(shape) != 3:
        raise SeriesShapeError(f"series must have shape (series, channels, length), got {shape}.")
    _, channels, steps = shape
    if channels != in_channels:
        kind = "univariate" if in_channels == 1 else f"{in_channels}-channel"
        raise SeriesShapeError(
            f"the model takes {in_channels} channel(s) but the series have {channels}; "
            f"upload {kind} series or pick a model trained on {channels}-channel data."
        )
    if length is not None and steps != length:
        raise SeriesShapeError(
            f"the model takes series of length {length} but these have length {steps}; "
            "resample them to that length or pick a model trained on this length."
        )
    if steps < min_length:
        raise SeriesShapeError(
            f"the series have length {steps} but the model needs at least {min_length} time steps; "
            "upload longer series."
        )
