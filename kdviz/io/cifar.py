"""The CIFAR-10/100 distributions, read without ever unpickling an arbitrary object.

* **Binary** (``cifar-10-batches-bin``, ``cifar-100-binary``): fixed-size records, ``<label><3,072 pixels>`` for
  CIFAR-10 and ``<coarse label><fine label><3,072 pixels>`` for CIFAR-100 (pixels: 1,024 red, 1,024 green,
  1,024 blue, each row-major 32×32); class names one a line in ``batches.meta.txt`` / ``fine_label_names.txt``.
  Read through a memory map: a batch of records is decoded only when asked for.
* **Python** (``cifar-10-batches-py``, ``cifar-100-python``): pickled dicts. They are decoded by
  :func:`read_restricted_pickle`, which walks the pickle's opcodes (``pickletools.genops``, which parses and
  never executes) and builds only dicts, lists, tuples, strings, bytes, numbers and numeric numpy arrays. It
  imports nothing and calls nothing from the file: the four names a numpy array's pickle mentions are
  interpreted by kdviz's own code, and any other global (``os.system``, ``builtins.eval`` …) is refused with
  :class:`~kdviz.io.untrusted.UnsafePickleError` before anything is built.
"""

from __future__ import annotations

import os
import pickletools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kdviz.io.untrusted import UploadError

__all__ = [
    "CifarError",
    "CifarSet",
    "UnsafePickleError",
    "find_cifar",
    "read_cifar_binary",
    "read_cifar_python",
    "read_restricted_pickle",
]

PIXELS = 3 * 32 * 32
Flavour = Literal["cifar10", "cifar100"]


class CifarError(UploadError):
    """A CIFAR file whose layout is not the published one (record size, keys, shapes)."""


class UnsafePickleError(UploadError):
    """A pickle that asks for anything beyond plain containers and numeric arrays."""


@dataclass(frozen=True, eq=False)
class CifarSet:
    """CIFAR images as stored: ``images(lo, hi)`` gives uint8 (n, 3, 32, 32); ``labels`` int64 (N,)."""

    name: str
    flavour: Flavour
    labels: np.ndarray
    class_names: tuple[str, ...]
    pixels: np.ndarray  # (N, 3072) uint8, a memory map for the binary format

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, lo: int, hi: int) -> np.ndarray:
        """Records ``lo:hi`` as uint8 (n, 3, 32, 32): red, green and blue planes as the files store them."""
        return np.asarray(self.pixels[lo:hi]).reshape(-1, 3, 32, 32)


# --------------------------------------------------------------------------------------------------
# Restricted pickle decoding


@dataclass
class _Symbol:
    """A global the pickle names; only kdviz's own stand-ins below are ever "called"."""

    module: str
    name: str


@dataclass
class _DtypeDraft:
    spec: str
    dtype: np.dtype | None = None


@dataclass
class _ArrayDraft:
    array: np.ndarray | None = None


# name -> what kdviz does for it. Both numpy 1 (numpy.core) and numpy 2 (numpy._core) spellings.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("numpy.core.numeric", "_frombuffer"): "frombuffer",
    ("numpy._core.numeric", "_frombuffer"): "frombuffer",
    ("_codecs", "encode"): "encode",  # how Python 3 pickles bytes at protocol 2
}
_NUMERIC_KINDS = frozenset("biuf")
_MARK = object()


def _refuse(name: str, what: str) -> UnsafePickleError:
    return UnsafePickleError(
        f"refused '{name}': its pickle {what}, which the CIFAR layout never does (dicts, lists, bytes and numeric "
        "arrays only); kdviz never unpickles arbitrary objects. Use the dataset's official files, or convert it "
        "to .npz (np.savez(path, x=images, y=labels))."
    )


def _as_bytes(value: object) -> bytes | None:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):  # Python 2 pickles store raw data as str; latin-1 maps bytes 1:1
        return value.encode("latin-1")
    return None


def _make_dtype(spec: object, name: str) -> np.dtype:
    try:
        dtype = np.dtype(str(spec))
    except TypeError as exc:
        raise _refuse(name, f"declares an array dtype {spec!r} kdviz does not read") from exc
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject:
        raise _refuse(name, f"holds an array of {dtype} (only numeric arrays are read)")
    return dtype


def _array(raw: object, dtype: object, shape: object, fortran: bool, name: str) -> np.ndarray:
    dt = dtype.dtype if isinstance(dtype, _DtypeDraft) else None
    if dt is None:
        raise _refuse(name, "builds an array without a numeric dtype")
    data = _as_bytes(raw)
    if data is None:
        raise _refuse(name, "builds an array from Python objects")
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _refuse(name, f"declares an array shape {shape!r}")
    expected = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if expected != len(data):
        raise CifarError(f"'{name}' declares an array of shape {shape} ({expected} bytes) but holds {len(data)} "
                         "bytes; the file is truncated or corrupt.")
    return np.frombuffer(data, dtype=dt).reshape(shape, order="F" if fortran else "C")


def _call(func: object, args: object, name: str) -> object:
    if not isinstance(func, _Symbol) or not isinstance(args, tuple):
        raise _refuse(name, "calls something that is not a known array constructor")
    role = _ALLOWED[(func.module, func.name)]
    if role == "encode" and len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
        return args[0].encode("latin-1")
    if role == "dtype" and args and isinstance(args[0], str):
        return _DtypeDraft(args[0])
    if role == "reconstruct" and len(args) == 3 and isinstance(args[0], _Symbol) and args[0].name == "ndarray":
        return _ArrayDraft()
    if role == "frombuffer" and len(args) == 4:
        buf, dtype, shape, order = args
        return _array(buf, dtype, shape, order == "F", name)
    raise _refuse(name, f"calls {func.module}.{func.name} in a way a numpy array's pickle never does")


def _build(obj: object, state: object, name: str) -> None:
    if isinstance(obj, _DtypeDraft) and isinstance(state, tuple) and len(state) >= 2:
        dtype = _make_dtype(obj.spec, name)
        order = state[1]
        if order in ("<", ">") and dtype.itemsize > 1:
            dtype = dtype.newbyteorder(order)
        obj.dtype = dtype
        return
    if isinstance(obj, _ArrayDraft) and isinstance(state, tuple) and len(state) == 5:
        _version, shape, dtype, fortran, raw = state
        obj.array = _array(raw, dtype, shape, bool(fortran), name)
        return
    raise _refuse(name, "sets the state of an object (BUILD) outside a numpy array")


def _finish(value: object, name: str) -> Any:
    """Drafts replaced by arrays, bytes keys decoded (as ``pickle.load(encoding='latin1')`` would give str)."""
    if isinstance(value, _ArrayDraft):
        if value.array is None:
            raise _refuse(name, "leaves an array unbuilt")
        return value.array
    if isinstance(value, (_DtypeDraft, _Symbol)):
        raise _refuse(name, "returns a type, not data")
    if isinstance(value, dict):
        return {(k.decode("latin-1") if isinstance(k, bytes) else k): _finish(v, name) for k, v in value.items()}
    if isinstance(value, list):
        return [_finish(v, name) for v in value]
    if isinstance(value, tuple):
        return tuple(_finish(v, name) for v in value)
    return value


_PUSH_ARG = frozenset({
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
    "BINUNICODE8", "BYTEARRAY8",
})
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_IGNORED = frozenset({"PROTO", "FRAME"})


def read_restricted_pickle(data: bytes, *, name: str = "the file") -> Any:
    """Decode a pickle of dicts, lists, tuples, strings, bytes, numbers and numeric numpy arrays.

    Nothing from the file is imported or called: opcodes are read with ``pickletools.genops`` and interpreted
    here. Globals other than the handful a numpy array's pickle names, object construction (NEWOBJ, INST,
    OBJ), persistent ids and extension codes raise :class:`UnsafePickleError` naming what was asked for.
    """
    machine = _Machine(name)
    try:
        for op, arg, _pos in pickletools.genops(data):
            if op.name == "STOP":
                return machine.finish()
            machine.step(op.name, arg)
    except (UnsafePickleError, CifarError):
        raise
    except Exception as exc:  # genops raises ValueError on damaged data; IndexError/KeyError on bad stacks
        raise CifarError(f"'{name}' is not a valid pickle ({type(exc).__name__}: {exc}); the file is damaged "
                         "or not a CIFAR batch.") from exc
    raise CifarError(f"'{name}' is not a valid pickle (no STOP instruction: truncated)")


class _Machine:
    """The pickle stack machine, restricted: one handler per opcode the CIFAR layout uses; anything else (NEWOBJ,
    INST, OBJ, PERSID, EXT*, buffers, sets) is refused."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stack: list[object] = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}

    def step(self, code: str, arg: object) -> None:
        """Interpret one opcode."""
        if code in _IGNORED:
            return
        if code in _PUSH_ARG:
            self.stack.append(arg)
        elif code in _CONSTANTS:
            self.stack.append(_CONSTANTS[code])
        elif code in _HANDLERS:
            _HANDLERS[code](self, code, arg)
        else:
            raise _refuse(self.name, f"uses the {code} instruction (it builds objects or reaches outside the file)")

    def finish(self) -> Any:
        """The decoded object at STOP."""
        if len(self.stack) != 1:
            raise CifarError(f"'{self.name}' is not a valid pickle (the stack ends with {len(self.stack)} items)")
        return _finish(self.stack[0], self.name)

    def pop_mark(self, _code: str = "", _arg: object = None) -> list[object]:
        """The items pushed since the last MARK, taken off the stack."""
        if not self.marks:
            raise CifarError(f"'{self.name}' is not a valid pickle (a MARK is missing)")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def mark(self, _code: str, _arg: object) -> None:
        self.marks.append(len(self.stack))

    def empty(self, code: str, _arg: object) -> None:
        self.stack.append({} if code == "EMPTY_DICT" else [] if code == "EMPTY_LIST" else ())

    def collection(self, code: str, _arg: object) -> None:
        items = self.pop_mark()
        self.stack.append(dict(zip(items[::2], items[1::2], strict=True)) if code == "DICT"
                          else items if code == "LIST" else tuple(items))

    def small_tuple(self, code: str, _arg: object) -> None:
        n = int(code[-1])
        items = self.stack[-n:]
        del self.stack[-n:]
        self.stack.append(tuple(items))

    def append(self, _code: str, _arg: object) -> None:
        value = self.stack.pop()
        _target(self.stack[-1], list, self.name).append(value)

    def appends(self, _code: str, _arg: object) -> None:
        items = self.pop_mark()
        _target(self.stack[-1], list, self.name).extend(items)

    def setitem(self, _code: str, _arg: object) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        _target(self.stack[-1], dict, self.name)[_key(key, self.name)] = value

    def setitems(self, _code: str, _arg: object) -> None:
        items = self.pop_mark()
        target = _target(self.stack[-1], dict, self.name)
        for key, value in zip(items[::2], items[1::2], strict=True):
            target[_key(key, self.name)] = value

    def put(self, _code: str, arg: object) -> None:
        self.memo[int(arg)] = self.stack[-1]  # type: ignore[call-overload]

    def memoize(self, _code: str, _arg: object) -> None:
        self.memo[len(self.memo)] = self.stack[-1]

    def get(self, _code: str, arg: object) -> None:
        self.stack.append(self.memo[int(arg)])  # type: ignore[call-overload]

    def global_(self, code: str, arg: object) -> None:
        if code == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
        else:
            attr, module = self.stack.pop(), self.stack.pop()
        if (module, attr) not in _ALLOWED:
            raise _refuse(self.name, f"asks for the Python object {module}.{attr}")
        self.stack.append(_Symbol(str(module), str(attr)))

    def reduce(self, _code: str, _arg: object) -> None:
        args = self.stack.pop()
        self.stack.append(_call(self.stack.pop(), args, self.name))

    def build(self, _code: str, _arg: object) -> None:
        state = self.stack.pop()
        _build(self.stack[-1], state, self.name)

    def pop(self, _code: str, _arg: object) -> None:
        self.stack.pop()

    def dup(self, _code: str, _arg: object) -> None:
        self.stack.append(self.stack[-1])


_HANDLERS = {
    "MARK": _Machine.mark, "POP_MARK": _Machine.pop_mark, "POP": _Machine.pop, "DUP": _Machine.dup,
    **dict.fromkeys(("EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE"), _Machine.empty),
    **dict.fromkeys(("DICT", "LIST", "TUPLE"), _Machine.collection),
    **dict.fromkeys(("TUPLE1", "TUPLE2", "TUPLE3"), _Machine.small_tuple),
    "APPEND": _Machine.append, "APPENDS": _Machine.appends, "SETITEM": _Machine.setitem,
    "SETITEMS": _Machine.setitems, **dict.fromkeys(("PUT", "BINPUT", "LONG_BINPUT"), _Machine.put),
    "MEMOIZE": _Machine.memoize, **dict.fromkeys(("GET", "BINGET", "LONG_BINGET"), _Machine.get),
    **dict.fromkeys(("GLOBAL", "STACK_GLOBAL"), _Machine.global_), "REDUCE": _Machine.reduce,
    "BUILD": _Machine.build,
}


def _target(obj: object, kind: type, name: str) -> Any:
    if not isinstance(obj, kind):
        raise _refuse(name, f"adds items to a {type(obj).__name__}")
    return obj


def _key(key: object, name: str) -> object:
    if not isinstance(key, (str, bytes, int)):
        raise _refuse(name, f"uses a {type(key).__name__} as a dict key")
    return key


# --------------------------------------------------------------------------------------------------
# The two distributions


def _names_from_text(path: Path) -> tuple[str, ...]:
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def read_cifar_binary(path: str | os.PathLike[str], *, flavour: Flavour | None = None,
                      class_names: Sequence[str] | None = None) -> CifarSet:
    """One CIFAR binary file (``test_batch.bin``, ``test.bin``) as a memory-mapped :class:`CifarSet`.

    ``flavour`` (``cifar10``: 3,073-byte records, ``cifar100``: 3,074) defaults to what the folder holds
    (``fine_label_names.txt`` means CIFAR-100) or the file name; class names come from the folder's
    ``batches.meta.txt`` / ``fine_label_names.txt`` unless given. CIFAR-100 labels are the fine ones.
    """
    p = Path(path)
    folder = p.parent
    if flavour is None:
        if (folder / "fine_label_names.txt").is_file() or p.name in ("test.bin", "train.bin"):
            flavour = "cifar100"
        elif (folder / "batches.meta.txt").is_file() or p.name.startswith(("test_batch", "data_batch")):
            flavour = "cifar10"
        else:
            raise CifarError(f"cannot tell whether '{p.name}' is CIFAR-10 or CIFAR-100 (no batches.meta.txt or "
                             "fine_label_names.txt next to it); pass the flavour.")
    label_bytes = 1 if flavour == "cifar10" else 2
    record = label_bytes + PIXELS
    size = p.stat().st_size
    if size == 0 or size % record:
        other = 3074 if record == 3073 else 3073
        hint = f" (it fits {other}-byte records: is it {'CIFAR-100' if other == 3074 else 'CIFAR-10'}?)" \
            if size and size % other == 0 else ""
        raise CifarError(
            f"'{p.name}' is {size:,} bytes, not a whole number of {record:,}-byte {flavour.upper()} records "
            f"({label_bytes} label byte{'s' if label_bytes > 1 else ''} + 3,072 pixel bytes){hint}; the file is "
            "truncated or not a CIFAR binary batch."
        )
    records = np.memmap(p, dtype=np.uint8, mode="r").reshape(-1, record)
    labels = np.asarray(records[:, label_bytes - 1], dtype=np.int64)  # CIFAR-100: the fine label (2nd byte)
    names_file = folder / ("batches.meta.txt" if flavour == "cifar10" else "fine_label_names.txt")
    if class_names is not None:
        names = tuple(class_names)
    elif names_file.is_file():
        names = _names_from_text(names_file)
    else:
        names = tuple(str(i) for i in range(10 if flavour == "cifar10" else 100))
    _check_labels(labels, names, p.name)
    return CifarSet(p.name, flavour, labels, names, records[:, label_bytes:])


def read_cifar_python(path: str | os.PathLike[str], *, class_names: Sequence[str] | None = None) -> CifarSet:
    """One CIFAR python batch (``test_batch``, ``test``) through the restricted decoder.

    Names come from ``batches.meta`` (``label_names``) or ``meta`` (``fine_label_names``) next to it, decoded
    the same way.
    """
    p = Path(path)
    batch = read_restricted_pickle(p.read_bytes(), name=p.name)
    if not isinstance(batch, dict) or "data" not in batch:
        raise CifarError(f"'{p.name}' is not a CIFAR batch (a dict with 'data' and 'labels' or 'fine_labels')")
    flavour: Flavour = "cifar100" if "fine_labels" in batch else "cifar10"
    raw_labels = batch.get("fine_labels" if flavour == "cifar100" else "labels")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        shape = getattr(data, "shape", type(data).__name__)
        raise CifarError(f"'{p.name}': 'data' must be a uint8 array of shape (N, 3072), got {shape}")
    if not isinstance(raw_labels, (list, np.ndarray)) or len(raw_labels) != len(data):
        raise CifarError(f"'{p.name}': the labels do not match the {len(data)} images")
    labels = np.asarray(raw_labels, dtype=np.int64)
    names: tuple[str, ...]
    if class_names is not None:
        names = tuple(class_names)
    else:
        meta_file, key = (p.parent / "meta", "fine_label_names") if flavour == "cifar100" else \
            (p.parent / "batches.meta", "label_names")
        if meta_file.is_file():
            meta = read_restricted_pickle(meta_file.read_bytes(), name=meta_file.name)
            raw = meta.get(key) if isinstance(meta, dict) else None
            if not isinstance(raw, list):
                raise CifarError(f"'{meta_file.name}' has no list '{key}'")
            names = tuple(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in raw)
        else:
            names = tuple(str(i) for i in range(10 if flavour == "cifar10" else 100))
    _check_labels(labels, names, p.name)
    return CifarSet(p.name, flavour, labels, names, data)


def _check_labels(labels: np.ndarray, names: tuple[str, ...], file: str) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
        raise CifarError(f"'{file}' has label {int(labels.max())} but only {len(names)} class names")


TEST_FILES = ("test_batch.bin", "test.bin", "test_batch", "test")


def find_cifar(path: str | os.PathLike[str]) -> tuple[Path, Literal["binary", "python"]] | None:
    """The test file of a CIFAR folder (or the file itself) and its format; None when ``path`` is not CIFAR."""
    p = Path(path)
    if p.is_dir():
        for name in TEST_FILES:
            if (p / name).is_file():
                return p / name, ("binary" if name.endswith(".bin") else "python")
        return None
    if p.suffix == ".bin":
        return p, "binary"
    if p.name in ("test_batch", "test", "train") or p.name.startswith("data_batch"):
        return p, "python"
    return None
