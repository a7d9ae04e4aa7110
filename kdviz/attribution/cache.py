"""A persistent attribution cache on disk, shared by the dashboard and ``kdviz evaluate`` (the dashboard keeps
its models' logits there too: a cold first forward pass of a model set costs about as much as its attributions).

An attribution is stored under a SHA-256 of everything that decides it: the model's weights (a hash of its
parameters and buffers, :func:`weights_key`), the input batch's bytes, the method and its resolved
parameters, the explained classes, the precision, the device type and the versions of kdviz's cache format,
torch and captum. A restart therefore recomputes nothing it has computed before.

* **Where**: ``$KDVIZ_CACHE_DIR`` if set (``off`` turns the cache off), else ``$XDG_CACHE_HOME/kdviz/attributions``
  (``~/.cache/kdviz/attributions``). Safe to delete at any time, whole or in part.
* **Bounded**: ``$KDVIZ_CACHE_MAX_MB`` (default 1024); past it, the least recently used entries are removed
  (a hit refreshes an entry's time).
* **Safe**: entries are plain ``.npz`` arrays plus JSON (``allow_pickle=False``: reading one never unpickles);
  written to a temporary file and renamed into place, so a reader in another thread or process sees a whole
  entry or none; a damaged entry is a miss and is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import threading
import time
import weakref
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import captum
import numpy as np
import torch
from torch import nn

from kdviz.attribution.engine import Attribution, attribute
from kdviz.errors import InvalidInputError

__all__ = [
    "CACHE_DIR_ENV",
    "CACHE_MAX_ENV",
    "AttributionCache",
    "CacheStats",
    "array_digest",
    "cached_attribute_fn",
    "default_cache",
    "default_cache_dir",
    "weights_key",
]

CACHE_DIR_ENV = "KDVIZ_CACHE_DIR"
CACHE_MAX_ENV = "KDVIZ_CACHE_MAX_MB"
FORMAT = 1  # bump when what an entry holds, or how it is computed, changes
DEFAULT_MAX_MB = 1024


def default_cache_dir() -> Path | None:
    """``$KDVIZ_CACHE_DIR`` (None when it is ``off``/``0``/``none``), else the user's cache folder."""
    value = os.environ.get(CACHE_DIR_ENV, "").strip()
    if value.lower() in ("off", "0", "none", "false"):
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "kdviz" / "attributions"


def array_digest(*arrays: np.ndarray | torch.Tensor) -> str:
    """SHA-256 of arrays' dtype, shape and bytes."""
    h = hashlib.sha256()
    for a in arrays:
        arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


_WEIGHT_KEYS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, str]] = weakref.WeakKeyDictionary()
_WEIGHT_KEYS_LOCK = threading.Lock()


def weights_key(model: nn.Module) -> str:
    """SHA-256 of a model's parameters and buffers (names, dtypes, shapes, bytes), computed once per module
    and again only when one of its tensors changes in place. Keyed by the weights themselves, never by a file
    name or a manifest's claim."""
    module = getattr(model, "module", model)  # a zoo / set entry, or the module itself
    state = module.state_dict()
    version = tuple(t._version for t in state.values())
    with _WEIGHT_KEYS_LOCK:
        found = _WEIGHT_KEYS.get(module)
    if found is not None and found[0] == version:
        return found[1]
    h = hashlib.sha256()
    for name, tensor in state.items():
        arr = tensor.detach().cpu()
        h.update(f"{name}|{arr.dtype}|{tuple(arr.shape)}|".encode())
        h.update(arr.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if arr.numel() else b"")
    key = h.hexdigest()
    with _WEIGHT_KEYS_LOCK:
        _WEIGHT_KEYS[module] = (version, key)
    return key


@dataclass
class CacheStats:
    """Counts since this process opened the cache."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    evicted: int = 0


def _jsonable(value: object) -> object:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items())}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


class AttributionCache:
    """Attributions on disk under ``root`` (two-level fan-out), at most ``max_bytes`` in all (LRU)."""

    def __init__(self, root: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_MB << 20) -> None:
        if max_bytes <= 0:
            raise InvalidInputError(f"max_bytes must be positive, got {max_bytes}")
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._held: int | None = None  # bytes on disk as last counted plus what this process wrote since

    # keys ------------------------------------------------------------------------------------------------
    @staticmethod
    def key(*, weights: str, inputs: str, method: str, params: Mapping[str, object], targets: Sequence[int] | None,
            precision: str = "fp32", device: str | torch.device = "cpu") -> str:
        """The entry's name: SHA-256 over every field that decides the attribution."""
        blob = json.dumps({
            "format": FORMAT, "torch": torch.__version__.split("+")[0], "captum": captum.__version__,
            "weights": weights, "inputs": inputs, "method": method, "params": _jsonable(dict(params)),
            "targets": None if targets is None else [int(t) for t in targets], "precision": precision,
            "device": torch.device(device).type,
        }, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    # reading and writing --------------------------------------------------------------------------------------
    def get(self, key: str) -> Attribution | None:
        """The stored attribution, or None (a damaged entry is removed)."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {k: stored[k] for k in stored.files}
        except FileNotFoundError:
            with self._lock:
                self.stats.misses += 1
            return None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
            path.unlink(missing_ok=True)
            with self._lock:
                self.stats.misses += 1
            return None
        try:
            meta = json.loads(bytes(arrays.pop("meta")).decode())
            raw = arrays["raw"]
            result = Attribution(
                method=meta["method"], params=meta["params"], raw=raw, importance=np.abs(raw).sum(axis=1),
                signed=raw.sum(axis=1), target=arrays["target"], delta=arrays.get("delta"),
                device=meta["device"], internal_batch_size=meta["internal_batch_size"],
                elapsed_s=float(meta["elapsed_s"]), warnings=tuple(meta["warnings"]), steps=arrays.get("steps"),
            )
        except (KeyError, TypeError, ValueError, UnicodeDecodeError):
            path.unlink(missing_ok=True)
            with self._lock:
                self.stats.misses += 1
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently used = oldest time
        with self._lock:
            self.stats.hits += 1
        return result

    def put(self, key: str, result: Attribution) -> None:
        """Store ``result`` atomically (temporary file, then rename), then keep the folder under its bound."""
        meta = {"method": result.method, "params": _jsonable(result.params), "device": result.device,
                "internal_batch_size": result.internal_batch_size, "elapsed_s": result.elapsed_s,
                "warnings": list(result.warnings)}
        arrays: dict[str, np.ndarray] = {
            "raw": np.asarray(result.raw), "target": np.asarray(result.target),
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        }
        if result.delta is not None:
            arrays["delta"] = np.asarray(result.delta)
        if result.steps is not None:
            arrays["steps"] = np.asarray(result.steps)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        self._write(self.path(key), buffer.getvalue())

    @staticmethod
    def logits_key(*, weights: str, inputs: str, device: str | torch.device = "cpu") -> str:
        """The name of a logits entry (model outputs on a batch): weights, inputs, device type, versions."""
        blob = json.dumps({"format": FORMAT, "kind": "logits", "torch": torch.__version__.split("+")[0],
                           "weights": weights, "inputs": inputs, "device": torch.device(device).type}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def logits(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Stored logits under ``key``, else ``compute()`` stored and returned (same file rules as attributions)."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as stored:
                found = np.array(stored["logits"])
            with contextlib.suppress(OSError):
                os.utime(path)
            with self._lock:
                self.stats.hits += 1
            return found
        except FileNotFoundError:
            pass
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
            path.unlink(missing_ok=True)
        with self._lock:
            self.stats.misses += 1
        value = np.asarray(compute())
        with contextlib.suppress(OSError):
            buffer = io.BytesIO()
            np.savez(buffer, logits=value)
            self._write(path, buffer.getvalue())
        return value

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        with self._lock:
            self.stats.writes += 1
            if self._held is not None:
                self._held += len(data)
            over = self._held is None or self._held > self.max_bytes
        if over:
            self.evict()

    def get_or_compute(self, key: str, compute: Callable[[], Attribution]) -> Attribution:
        """The stored attribution, else ``compute()`` stored and returned (a failed write is not an error)."""
        found = self.get(key)
        if found is not None:
            return found
        result = compute()
        with contextlib.suppress(OSError):  # a full or read-only disk: the cache is an optimisation, never a failure
            self.put(key, result)
        return result

    # size ------------------------------------------------------------------------------------------------
    def entries(self) -> list[tuple[float, int, Path]]:
        """(time, bytes, path) of every entry, oldest first (temporary files of interrupted writes included
        once they are an hour old)."""
        out = []
        if not self.root.is_dir():
            return out
        now = time.time()
        for sub in os.scandir(self.root):
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub.path):
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                if entry.name.startswith(".tmp-") and now - st.st_mtime < 3600:
                    continue
                out.append((st.st_mtime, st.st_size, Path(entry.path)))
        out.sort()
        return out

    def evict(self) -> int:
        """Remove the least recently used entries until the cache holds at most 90% of ``max_bytes``."""
        with self._lock:
            entries = self.entries()
            held = sum(size for _, size, _ in entries)
            removed = 0
            if held > self.max_bytes:
                for _, size, path in entries:
                    if held <= 0.9 * self.max_bytes:
                        break
                    path.unlink(missing_ok=True)  # another process may have removed it first
                    held -= size
                    removed += 1
            self._held = held
            self.stats.evicted += removed
            return removed

    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def clear(self) -> None:
        """Remove every entry (the folder itself stays)."""
        for _, _, path in self.entries():
            path.unlink(missing_ok=True)
        with self._lock:
            self._held = 0


_DEFAULT: dict[tuple[str, int], AttributionCache] = {}
_DEFAULT_LOCK = threading.Lock()


def default_cache() -> AttributionCache | None:
    """The process's cache at :func:`default_cache_dir` (None when turned off); one object per folder."""
    root = default_cache_dir()
    if root is None:
        return None
    try:
        max_mb = int(os.environ.get(CACHE_MAX_ENV, "") or DEFAULT_MAX_MB)
    except ValueError:
        max_mb = DEFAULT_MAX_MB
    key = (str(root), max_mb)
    with _DEFAULT_LOCK:
        cache = _DEFAULT.get(key)
        if cache is None:
            cache = _DEFAULT[key] = AttributionCache(root, max_bytes=max(1, max_mb) << 20)
        return cache


def cached_attribute_fn(method: str, method_params: Mapping[str, object], *, precision: str = "fp32",
                        cache: AttributionCache | None = None
                        ) -> Callable[[Any, np.ndarray, np.ndarray, str], Attribution] | None:
    """An ``attribute_fn`` for ``kdviz.analysis.compare.compare_models`` that reads and fills the disk cache
    (``entry, x, targets, device -> Attribution``); None when the cache is off. The caller runs it under the
    precision it names (the key records ``precision``)."""
    store = cache or default_cache()
    if store is None:
        return None
    params = dict(method_params)

    def run(entry: Any, x: np.ndarray, targets: np.ndarray, device: str) -> Attribution:
        key = store.key(weights=weights_key(entry.module), inputs=array_digest(x), method=method, params=params,
                        targets=[int(t) for t in np.asarray(targets).ravel()], precision=precision, device=device)
        return store.get_or_compute(key, lambda: attribute(entry.module, x, method=method, target=targets,
                                                           device=device, **params))

    return run
