"""Which registered architecture a state dict belongs to, by exact key and shape match.

Every registered architecture is a candidate; none is ruled out by a rule of thumb such as "has
``layer1.0.conv1`` so it is a CIFAR ResNet" (ShuffleV1 has that key too). Building every architecture to
read its keys takes tens of seconds, so ``kdviz.models.key_index`` ships, per architecture, a hash of
its sorted parameter names, a hash of their shapes (with the axes that follow num_classes and in_channels
left as placeholders) and those axes: a checkpoint's own hashes find the architectures that fit it exactly
without building any. Architectures the index lacks are built on the meta device (no memory) instead. timm
ViT/DeiT names outside the registry are searched the same way, after filtering timm's name list by the width,
patch size and token count the weights show.

The answer says whether the match is exact, which other architectures fit *exactly as well* (a tie the
weights cannot break, e.g. ``deit_tiny_patch16_224`` and ``vit_tiny_patch16_224`` are the same network),
and the nearest non-exact alternatives.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version as package_version

import torch

from kdviz import models
from kdviz.models.timm_family import timm_vit_candidates

__all__ = ["ArchGuess", "clear_caches", "fingerprint_of_keys", "guess", "key_index", "write_key_index"]

OPTIONAL = models.OPTIONAL_KEY_SUFFIXES


@dataclass(frozen=True)
class ArchGuess:
    """The outcome of guessing an architecture from weights.

    arch : the chosen architecture (exact match when ``exact``), or None when nothing comes close.
    exact : every key and shape fits ``arch`` (missing ``num_batches_tracked`` buffers allowed).
    score : fraction of tensors with the same name and shape (1.0 when exact).
    dims : (num_classes, in_channels) ``arch`` needs to hold the weights.
    ties : other architectures that fit exactly as well; the weights cannot tell them apart.
    alternatives : nearest non-exact architectures with their scores, best first (looked for only when
        nothing fits exactly: scoring them means building them).
    """

    arch: str | None
    exact: bool
    score: float
    dims: tuple[int, int] | None
    ties: tuple[str, ...] = ()
    alternatives: tuple[tuple[str, float], ...] = ()


def _required(keys: Sequence[str] | Mapping[str, object]) -> list[str]:
    return sorted(k for k in keys if not k.endswith(OPTIONAL))


def fingerprint_of_keys(keys: Sequence[str] | Mapping[str, object]) -> tuple[str, int]:
    """(SHA-1 of the sorted required key names, how many) — the same as ``models.key_fingerprint``."""
    req = _required(keys)
    return hashlib.sha1("\n".join(req).encode()).hexdigest(), len(req)


def _top_modules(keys: Sequence[str] | Mapping[str, object]) -> frozenset[str]:
    return frozenset(k.split(".", 1)[0] for k in keys)


def _library_versions() -> dict[str, str]:
    return {name: package_version(name).split("+")[0] for name in ("torch", "torchvision", "timm")}


Axes = tuple[tuple[str, int, str], ...]


@dataclass(frozen=True)
class IndexEntry:
    """What the key index knows about one architecture without building it."""

    keys_sha: str  # fingerprint_of_keys
    n_keys: int
    top: frozenset[str]  # top-level module names
    shapes_sha: str | None = None  # shape_fingerprint at the dim axes below; None = build to compare
    axes: Axes = ()


def shape_fingerprint(shapes: Mapping[str, tuple[int, ...]], axes: Axes) -> str:
    """SHA-1 of every required tensor's name and shape, with the num_classes / in_channels axes as C / I."""
    marks = {(k, ax): "C" if what == "classes" else "I" for k, ax, what in axes}
    rows = [f"{k}:{','.join(marks.get((k, i), str(d)) for i, d in enumerate(shapes[k]))}" for k in _required(shapes)]
    return hashlib.sha1("\n".join(rows).encode()).hexdigest()


@cache
def _stored_index() -> dict[str, tuple]:
    """``kdviz.models.key_index.INDEX`` when it was made with the installed torch/torchvision/timm, else {}."""
    try:
        from kdviz.models.key_index import INDEX, VERSIONS  # noqa: PLC0415 - a generated module, maybe absent
    except ImportError:  # not generated yet
        return {}
    return INDEX if _library_versions() == VERSIONS else {}


def _stored_entry(arch: str) -> IndexEntry | None:
    row = _stored_index().get(arch)
    if row is None:
        return None
    sha, n, top, shapes_sha, axes = row
    return IndexEntry(sha, n, frozenset(top.split()), shapes_sha, tuple(tuple(a) for a in axes))


_INDEX_LOCK = threading.Lock()
_INDEX: list[tuple[int, dict[str, IndexEntry]]] = []  # [(registry version, index)]: at most one, the newest


def key_index() -> dict[str, IndexEntry]:
    """arch -> IndexEntry for every registered architecture (treat as read-only: it is shared).

    Read from ``kdviz.models.key_index`` when it was made with the installed torch/torchvision/timm;
    otherwise (and for any architecture it lacks) key names are computed by building on meta. Built once
    per registry version under a lock: concurrent sessions never see a half-built index, and a family
    registered later (a module imported after the first guess) is picked up.
    """
    version = models.registry_version()  # waits for lazy families: never an index of a half-filled registry
    with _INDEX_LOCK:
        if _INDEX and _INDEX[0][0] == version:
            return _INDEX[0][1]
        out = {}
        for arch in models.list_models():
            entry = _stored_entry(arch)
            if entry is None:
                sig = models.state_dict_signature(arch, 10, None)
                entry = IndexEntry(*fingerprint_of_keys(sig), _top_modules(sig))
            out[arch] = entry
        _INDEX[:] = [(version, out)]
        return out


def clear_caches() -> None:
    """Forget the key index and the per-architecture axes (benchmarks time a cold guess with it)."""
    with _INDEX_LOCK:
        _INDEX.clear()
    _dim_axes.cache_clear()


def write_key_index(path: str) -> int:
    """Regenerate ``kdviz/models/key_index.py`` (``python -m kdviz.models.arch_guess PATH``); returns the entry count."""
    lines = [
        '"""Generated by ``python -m kdviz.models.arch_guess kdviz/models/key_index.py``: do not edit by hand.',
        "",
        "arch -> (SHA-1 of its sorted parameter/buffer names without num_batches_tracked, their count, top-level",
        "modules, SHA-1 of their shapes with the num_classes/in_channels axes as placeholders, those axes).",
        'Valid for the library versions below; kdviz.models.arch_guess recomputes when they differ."""',
        "",
        f"VERSIONS = {_library_versions()!r}",
        "",
        "INDEX = {",
    ]
    archs = models.list_models()
    for arch in archs:
        sig = models.state_dict_signature(arch, 10, 3)
        sha, n = fingerprint_of_keys(sig)
        axes = _dim_axes(arch)
        top = " ".join(sorted(_top_modules(sig)))
        lines.append(f"    {arch!r}: ({sha!r}, {n}, {top!r}, {shape_fingerprint(sig, axes)!r}, {axes!r}),")
    lines.append("}")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return len(archs)


# --------------------------------------------------------------------------------------------------
# Dimensions and scores


@cache
def _dim_axes(arch: str) -> tuple[tuple[str, int, str], ...]:
    """(key, axis, 'classes'|'channels') for every tensor whose shape follows num_classes or in_channels.

    Found by building the architecture twice with different dims, so it holds for any registered model
    and does not depend on the order of keys in the file (safetensors stores them sorted).
    """
    base, other = models.state_dict_signature(arch, 10, 3), models.state_dict_signature(arch, 11, 2)
    axes = []
    for key, shape in base.items():
        for axis, (a, b) in enumerate(zip(shape, other[key], strict=True)):
            if (a, b) == (10, 11):
                axes.append((key, axis, "classes"))
            elif (a, b) == (3, 2):
                axes.append((key, axis, "channels"))
    return tuple(axes)


def _axes(arch: str) -> Axes:
    # one architecture's stored entry first: key_index() lists every model, torchvision's included (slow)
    entry = _stored_entry(arch) or key_index().get(arch)
    return entry.axes if entry is not None and entry.shapes_sha is not None else _dim_axes(arch)


def dims_for(arch: str, shapes: Mapping[str, tuple[int, ...]]) -> tuple[int, int] | None:
    """(num_classes, in_channels) that ``arch`` would need to hold these weights; None if unreadable."""
    found: dict[str, set[int]] = {"classes": set(), "channels": set()}
    try:
        axes = _axes(arch)
    except Exception:  # noqa: BLE001 - an architecture that cannot be built at these sizes cannot hold them
        return None
    for key, axis, what in axes:
        if key not in shapes or len(shapes[key]) <= axis:
            return None
        found[what].add(shapes[key][axis])
    if len(found["classes"]) != 1 or len(found["channels"]) != 1:
        return None
    return found["classes"].pop(), found["channels"].pop()


def _score(arch: str, shapes: Mapping[str, tuple[int, ...]]) -> tuple[float, tuple[int, int] | None]:
    """Fraction of tensors (union of both key sets) with the same name and shape; 1.0 = exact."""
    dims = dims_for(arch, shapes)
    if dims is None:
        return 0.0, None
    entry = key_index().get(arch)
    if (entry is not None and entry.shapes_sha is not None and not _stray_optional(shapes)
            and fingerprint_of_keys(shapes)[0] == entry.keys_sha
            and shape_fingerprint(shapes, entry.axes) == entry.shapes_sha):
        return 1.0, dims  # exact, read from the index without building
    try:
        sig = models.state_dict_signature(arch, *dims)
    except Exception:  # noqa: BLE001 - e.g. a model that cannot take these dims
        return 0.0, None
    have, want = set(_required(shapes)), set(_required(sig))
    same = sum(1 for k in have & want if shapes[k] == sig[k])
    extra_optional = [k for k in shapes if k.endswith(OPTIONAL) and k not in sig]
    score = same / len(have | want) if have | want else 0.0
    if extra_optional and score == 1.0:
        score = 1.0 - 1e-9  # an unexpected buffer is not an exact fit
    return score, dims


def _index_verdict(arch: str, shapes: Mapping[str, tuple[int, ...]]) -> bool | None:
    """Whether ``shapes`` (already known to have ``arch``'s key names) fit ``arch`` exactly, from the index
    alone; None when the index cannot say (the architecture must be built)."""
    entry = key_index().get(arch)
    if entry is None or entry.shapes_sha is None:
        return None
    return not _stray_optional(shapes) and shape_fingerprint(shapes, entry.axes) == entry.shapes_sha


def _stray_optional(shapes: Mapping[str, tuple[int, ...]]) -> bool:
    """An optional buffer (``bn.num_batches_tracked``) outside a batch-norm layer: not from this family."""
    return any(k.endswith(OPTIONAL) and k.rsplit(".", 1)[0] + ".running_mean" not in shapes for k in shapes)


def _timeseries_arch(shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """1D models share keys across widths; the width (a name suffix, not a registry entry) is in the shapes."""
    fcn, res = shapes.get("features.0.0.weight", ()), shapes.get("block1.conv1.0.weight", ())
    if len(res) == 3:  # Conv1d weights only: torchvision's mobilenet_v2 also has features.0.0.weight (Conv2d)
        return models.width_name("resnet1d", int(res[0]))
    if len(fcn) == 3:
        return models.width_name("fcn", int(fcn[0]))
    return None


def _timm_vit_candidates(shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    proj, pos = shapes.get("patch_embed.proj.weight"), shapes.get("pos_embed")
    if proj is None or pos is None or len(proj) != 4 or len(pos) != 3 or "blocks.0.attn.qkv.weight" not in shapes:
        return []
    return timm_vit_candidates(embed_dim=int(proj[0]), patch=int(proj[2]), tokens=int(pos[1]))


def guess(state: Mapping[str, torch.Tensor] | Mapping[str, tuple[int, ...]], *,
          hint: str | Sequence[str] | None = None, near: int = 3) -> ArchGuess:
    """Guess the architecture of ``state`` (tensors, or shapes) across the whole registry.

    ``hint`` (architectures named by the checkpoint's container or file name, first wins) breaks a tie when
    it is one of the exact matches; it never overrides the weights. ``near`` bounds the alternatives listed.
    """
    shapes = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else tuple(v) for k, v in state.items()}
    ts = _timeseries_arch(shapes)
    if ts is not None:
        score, dims = _score(ts, shapes)
        return ArchGuess(ts, score == 1.0, score, dims)
    sha, _n = fingerprint_of_keys(shapes)
    index = key_index()
    same_keys = [a for a, e in index.items() if e.keys_sha == sha]
    live = [a for a in _timm_vit_candidates(shapes) if a not in index]
    same_keys += [a for a in live if models.key_fingerprint(a)[0] == sha]
    verdicts = {a: _index_verdict(a, shapes) for a in same_keys}
    scored = {a: (1.0, dims_for(a, shapes)) for a, v in verdicts.items() if v}
    scored |= {a: _score(a, shapes) for a, v in verdicts.items() if v is None}  # not in the index: build
    exact = sorted(a for a, (s, d) in scored.items() if s == 1.0 and d is not None)
    if not exact:  # nearest by shared top-level modules, then by tensors that fit (these are built)
        for a in same_keys:
            scored.setdefault(a, _score(a, shapes))
        top = _top_modules(shapes)
        overlap = {a: len(top & e.top) / len(top | e.top) for a, e in index.items() if top | e.top}
        pool = sorted((a for a in overlap if overlap[a] >= 0.5), key=lambda a: -overlap[a])[:8]
        for a in pool + live:
            scored.setdefault(a, _score(a, shapes))
    ranked = sorted(((a, s) for a, (s, _) in scored.items() if s > 0), key=lambda item: (-item[1], item[0]))
    if exact:
        hints = [hint] if isinstance(hint, str) else list(hint or ())
        chosen = next((h for h in hints if h in exact), exact[0])
        ties = tuple(a for a in exact if a != chosen)
        others = tuple((a, s) for a, s in ranked if a not in exact)[:near]
        return ArchGuess(chosen, True, 1.0, scored[chosen][1], ties, others)
    if not ranked:
        return ArchGuess(None, False, 0.0, None)
    best, score = ranked[0]
    return ArchGuess(best, False, score, scored[best][1], (), tuple(ranked[1 : 1 + near]))


if __name__ == "__main__":
    import sys

    print(f"{write_key_index(sys.argv[1])} architectures written to {sys.argv[1]}")
