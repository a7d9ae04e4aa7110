"""Parts: labellings of pixels or timesteps into K disjoint parts, and per-part importance.

A labelling is an integer array with labels 0..K-1: (H, W) or (N, H, W) for images, (L,) or (N, L) for
series. Every pixel/timestep belongs to exactly one part. Sources: SLIC superpixels from scikit-image (run on
the *display* image), a regular grid, user masks, K equal time segments. The words of a text are parts too
(kind ``words``); the text modality (``kdviz.modalities.text``) labels them.

``part_importance`` turns an importance map into the part importance vector ``v_k = Σ_{i ∈ part k} imp_i``
with one ``np.bincount`` over the whole batch; ``top_k_parts`` picks the k most important parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from skimage.segmentation import slic

from kdviz.errors import InvalidInputError, UnknownNameError

__all__ = [
    "PartSpec",
    "label_parts",
    "parse_parts",
    "grid_labels",
    "mask_labels",
    "part_importance",
    "relabel_contiguous",
    "segment_labels",
    "slic_labels",
    "top_k_parts",
    "topk_ties_note",
]


def relabel_contiguous(labels: np.ndarray) -> np.ndarray:
    """Map the distinct values of one labelling to 0..K-1 (order preserved); returns a new int64 array."""
    _, inverse = np.unique(np.asarray(labels), return_inverse=True)
    return inverse.reshape(np.shape(labels)).astype(np.int64)


def _to_channel_last(images: np.ndarray, channel_axis: int | None | str) -> tuple[np.ndarray, bool]:
    """(N, H, W[, C]) float array and whether it has colour channels."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        return x, False
    if x.ndim != 4:
        raise InvalidInputError(f"images must be (N, H, W), (N, H, W, C) or (N, C, H, W), got shape {x.shape}")
    if channel_axis == "auto":
        channel_axis = 1 if x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3) else -1
    if channel_axis in (1, -3):
        x = np.moveaxis(x, 1, -1)
    elif channel_axis not in (-1, 3):
        raise InvalidInputError(f"channel_axis={channel_axis!r} must be 1, -1, 'auto' or None")
    if x.shape[-1] == 1:
        return x[..., 0], False
    return x, True


def slic_labels(
    images: np.ndarray,
    *,
    n_segments: int = 50,
    compactness: float | None = None,
    sigma: float = 0.0,
    channel_axis: int | str = "auto",
) -> np.ndarray:
    """SLIC superpixels for each image, relabelled contiguous 0..K_i-1.

    Parameters
    ----------
    images : (N, H, W) grey, (N, H, W, C) or (N, C, H, W) with C in {1, 3}
        Display images (un-normalised). Each image is min-max scaled to [0, 1] first, so the default
        compactness suits any intensity range.
    n_segments : int
        Approximate number of superpixels (skimage's ``n_segments``); the actual K_i varies per image.
    compactness : float, optional
        skimage's compactness; default 10 for colour (SLIC works in Lab there) and 0.1 for grey in [0, 1].
    sigma : float
        Gaussian pre-smoothing, as in skimage.
    channel_axis : 1, -1 or "auto"
        Where the channels are for 4-D input ("auto": axis 1 if it has size 1 or 3 and the last axis does not).

    Returns
    -------
    (N, H, W) int64
        Labels 0..K_i-1 per image (skimage's ``start_label`` is undone by relabelling).
    """
    if int(n_segments) < 1:
        raise InvalidInputError(f"n_segments must be >= 1, got {n_segments}")
    x, colour = _to_channel_last(images, channel_axis)
    lo = x.reshape(x.shape[0], -1).min(axis=1)
    hi = x.reshape(x.shape[0], -1).max(axis=1)
    span = np.where(hi > lo, hi - lo, 1.0)
    shape = (-1,) + (1,) * (x.ndim - 1)
    x = (x - lo.reshape(shape)) / span.reshape(shape)
    if compactness is None:
        compactness = 10.0 if colour else 0.1
    out = np.empty(x.shape[:3], dtype=np.int64)
    for i, image in enumerate(x):  # skimage segments one image at a time
        seg = slic(
            image, n_segments=int(n_segments), compactness=float(compactness), sigma=sigma,
            channel_axis=-1 if colour else None, start_label=0,
        )
        out[i] = relabel_contiguous(seg)
    return out


def grid_labels(height: int, width: int, *, rows: int, cols: int) -> np.ndarray:
    """Regular rows × cols grid over an H × W image, (H, W) int64 labels ``row * cols + col``.

    Cells differ in size by at most one pixel when H or W is not divisible (numpy array_split rule).
    """
    if not 1 <= rows <= height:
        raise InvalidInputError(f"rows={rows} must be between 1 and the image height {height}")
    if not 1 <= cols <= width:
        raise InvalidInputError(f"cols={cols} must be between 1 and the image width {width}")
    r = (np.arange(height) * rows) // height
    c = (np.arange(width) * cols) // width
    return (r[:, None] * cols + c[None, :]).astype(np.int64)


def segment_labels(length: int, *, n_segments: int) -> np.ndarray:
    """K equal time segments over L timesteps, (L,) int64 labels (sizes differ by at most one)."""
    if not 1 <= n_segments <= length:
        raise InvalidInputError(f"n_segments={n_segments} must be between 1 and the series length {length}")
    return ((np.arange(length) * n_segments) // length).astype(np.int64)


def mask_labels(masks: np.ndarray, *, shape: tuple[int, ...]) -> np.ndarray:
    """Validate user masks (integer labels, one per pixel/timestep) and relabel them 0..K-1 per input.

    Parameters
    ----------
    masks : (H, W) / (L,) shared by every input, or (N, H, W) / (N, L)
        Integer labels; any distinct values (e.g. 0 = background, 1..K) are accepted.
    shape : the batch's spatial shape ``(N, H, W)`` or ``(N, L)``.
    """
    m = np.asarray(masks)
    if not (np.issubdtype(m.dtype, np.integer) or np.issubdtype(m.dtype, np.bool_)):
        raise InvalidInputError(f"masks must hold integer labels, got dtype {m.dtype}")
    if m.shape == tuple(shape[1:]):
        m = np.broadcast_to(m, tuple(shape))
    if m.shape != tuple(shape):
        raise InvalidInputError(f"masks have shape {m.shape}, expected {tuple(shape[1:])} or {tuple(shape)}")
    return np.stack([relabel_contiguous(mi) for mi in m])


def part_importance(
    importance: np.ndarray, labels: np.ndarray, *, n_parts: int | None = None
) -> np.ndarray:
    """Part importance vectors ``v_k = Σ_{i ∈ part k} importance_i`` for a batch.

    Parameters
    ----------
    importance : (N, H, W) or (N, L)
    labels : same shape, or one labelling (H, W) / (L,) shared by the batch; values 0..K-1
    n_parts : K; default ``labels.max() + 1``

    Returns
    -------
    (N, K) float64
        A part absent from an input's labelling (SLIC gives each image its own K_i) is NaN there, so it
        is neither counted as "zero importance" nor ranked.
    """
    imp = np.asarray(importance, dtype=np.float64)
    lab = np.asarray(labels)
    if not np.issubdtype(lab.dtype, np.integer):
        raise InvalidInputError(f"labels must be integers, got dtype {lab.dtype}")
    if lab.shape != imp.shape:
        if lab.shape != imp.shape[1:]:
            raise InvalidInputError(f"labels shape {lab.shape} does not match importance shape {imp.shape}")
        lab = np.broadcast_to(lab, imp.shape)
    if lab.size and lab.min() < 0:
        raise InvalidInputError("labels must be >= 0")
    k = int(lab.max()) + 1 if n_parts is None else int(n_parts)
    if lab.size and lab.max() >= k:
        raise InvalidInputError(f"labels go up to {lab.max()} but n_parts={k}")
    n = imp.shape[0]
    # One bincount over the batch: part k of input i lands in bin i*K + k.
    flat = (lab.reshape(n, -1) + k * np.arange(n)[:, None]).ravel()
    sums = np.bincount(flat, weights=imp.ravel(), minlength=n * k).reshape(n, k)
    counts = np.bincount(flat, minlength=n * k).reshape(n, k)
    return np.where(counts > 0, sums, np.nan)


def top_k_parts(v: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k most important parts per row, most important first.

    Parameters
    ----------
    v : (N, K) or (K,) part importance vectors
    k : 1 <= k <= K

    Returns
    -------
    (N, k) or (k,) int64
        Ties are broken by the lower part index (stable sort); NaN parts rank last.
    """
    arr = np.asarray(v, dtype=np.float64)
    n_parts = arr.shape[-1]
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got k={k!r}")
    if k > n_parts:
        raise InvalidInputError(f"k={k} exceeds the number of parts K={n_parts}")
    key = np.where(np.isnan(arr), np.inf, -arr)
    return np.argsort(key, axis=-1, kind="stable")[..., :k].astype(np.int64)


def topk_ties_note(v: np.ndarray, k: int) -> str | None:
    """Why the teacher's top-k of one part vector ``v`` (K,) is partly arbitrary, or None when it is not.

    ``top_k_parts`` breaks ties by the lower part index. When fewer than k parts carry any importance (the
    rest are 0, as with Grad-CAM or saliency on flat time-series segments), or the k-th and (k+1)-th parts
    tie, some of the "top-k" are picked by index, not by importance: a note says how many.
    """
    arr = np.asarray(v, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    if k < 1 or arr.size <= k:
        return None
    desc = np.sort(arr)[::-1]
    positive = int((desc > 0).sum())
    if positive < k:
        return (f"only {positive} of {arr.size} parts have non-zero importance for the teacher here: the other "
                f"{k - positive} of its top-{k} are ties at zero, picked by position (lowest part index first).")
    kth = desc[k - 1]
    same = np.isclose(arr, kth, rtol=1e-9, atol=0.0)
    tied, above = int(same.sum()), int(((arr > kth) & ~same).sum())
    if np.isclose(desc[k], kth, rtol=1e-9, atol=0.0):
        return (f"{tied} parts tie at the teacher's k-th importance ({kth:.3g}) for {k - above} place(s) in its "
                f"top-{k}: those are picked by position (lowest part index first).")
    return None


# --------------------------------------------------------------------------------------------------
# Part specifications


@dataclass(frozen=True)
class PartSpec:
    """How to split inputs into parts: ``slic`` (n superpixels), ``grid`` (rows × cols), ``segments``
    (n equal time segments), ``mask`` (user labels in ``masks``), ``superfeatures`` (the teacher's n
    superfeatures, kdviz.modalities.superfeatures: a fixed labelling per teacher and dataset, given in ``masks``)
    or ``words`` (the words of a text)."""

    kind: Literal["slic", "grid", "segments", "mask", "superfeatures", "words"]
    n: int = 0
    rows: int = 0
    cols: int = 0
    masks: np.ndarray | None = field(default=None, compare=False)
    compactness: float | None = None

    def __str__(self) -> str:
        if self.kind == "grid":
            return f"grid:{self.rows}x{self.cols}"
        if self.kind in ("mask", "words"):
            return self.kind
        return f"{self.kind}:{self.n}"


_PART_RE = {
    "slic": re.compile(r"slic:(\d+)"),
    "segments": re.compile(r"segments:(\d+)"),
    "grid": re.compile(r"grid:(\d+)x(\d+)"),
    "superfeatures": re.compile(r"superfeatures:(\d+)"),
}


def parse_parts(spec: str | PartSpec) -> PartSpec:
    """``'slic:50'``, ``'grid:4x4'``, ``'segments:10'``, ``'words'`` (or a PartSpec) -> PartSpec; ValueError naming
    a bad one."""
    if isinstance(spec, PartSpec):
        return spec
    if not isinstance(spec, str):
        raise InvalidInputError(f"parts={spec!r} must be a string like 'slic:50' or a PartSpec")
    text = spec.strip().lower()
    if text == "words":
        return PartSpec("words")
    for kind, pattern in _PART_RE.items():
        m = pattern.fullmatch(text)
        if m is None:
            continue
        numbers = [int(g) for g in m.groups()]
        if min(numbers) < 1:
            raise InvalidInputError(f"parts={spec!r}: counts must be >= 1")
        if kind == "grid":
            return PartSpec("grid", rows=numbers[0], cols=numbers[1])
        return PartSpec(kind, n=numbers[0])  # type: ignore[arg-type]
    raise UnknownNameError(f"parts={spec!r} is not one of 'slic:N', 'grid:RxC', 'segments:N', 'superfeatures:M', "
                           "'words' (or a PartSpec)")


def _given_labels(spec: PartSpec, shape: tuple[int, ...]) -> np.ndarray:
    """The labels a ``mask`` or ``superfeatures`` spec carries, checked against the batch's ``shape``."""
    if spec.masks is None:
        if spec.kind == "mask":
            raise InvalidInputError("parts kind 'mask' needs masks")
        raise InvalidInputError(f"parts={spec} needs the teacher's labelling: PartSpec('superfeatures', n=M, "
                                "masks=kdviz.modalities.superfeatures.load_superfeatures(zoo_folder, M).labels)")
    lab = mask_labels(spec.masks, shape=shape)
    if spec.kind == "superfeatures" and int(lab.max()) + 1 != spec.n:
        raise InvalidInputError(f"parts={spec}: the labelling given has {int(lab.max()) + 1} superfeatures")
    return lab


def label_parts(spec: PartSpec | str, x: np.ndarray, images_for_slic: np.ndarray | None = None) -> np.ndarray:
    """Part labels (N, H, W) or (N, L) of the batch ``x`` (N, C, …) under ``spec`` — the labelling
    ``kdviz.analysis.compare.compare_models`` uses, for callers that cache it (the dashboard) and pass it back as
    ``part_labels``. ``images_for_slic``: display images for SLIC (default: ``x`` min-max scaled)."""
    spec = parse_parts(spec)
    if spec.kind == "words":
        raise InvalidInputError("parts=words is for texts; use 'slic:N' or 'grid:RxC' for images, 'segments:N' "
                                "for series")
    n, spatial = x.shape[0], x.shape[2:]
    is_image = len(spatial) == 2
    if spec.kind in ("mask", "superfeatures"):
        return _given_labels(spec, (n, *spatial))
    if spec.kind == "segments":
        if is_image:
            raise InvalidInputError(f"parts={spec} is for series; use 'slic:N' or 'grid:RxC' for images")
        return np.broadcast_to(segment_labels(spatial[0], n_segments=spec.n), (n, *spatial)).copy()
    if not is_image:
        raise InvalidInputError(f"parts={spec} is for images; use 'segments:N' for series")
    if spec.kind == "grid":
        return np.broadcast_to(grid_labels(*spatial, rows=spec.rows, cols=spec.cols), (n, *spatial)).copy()
    display = x if images_for_slic is None else np.asarray(images_for_slic)
    if display.shape[0] != n:
        raise InvalidInputError(f"images_for_slic has {display.shape[0]} images for {n} inputs")
    labels = slic_labels(display, n_segments=spec.n, compactness=spec.compactness)
    if labels.shape[1:] != spatial:
        raise InvalidInputError(f"images_for_slic are {labels.shape[1:]} but inputs are {spatial}")
    return labels
