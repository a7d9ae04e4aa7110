"""Decoding uploaded images into model-ready arrays, refusing what cannot be read safely.

PIL does the decoding. kdviz checks the pixel count from the header before decoding
(decompression bombs), refuses truncated files instead of padding them with grey, and
converts 16-bit, palette, transparent, CMYK and animated images with a warning that
says what changed.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from kdviz.errors import InvalidInputError
from kdviz.io.safezip import MAX_TOTAL_BYTES, extract_zip
from kdviz.io.untrusted import ImageError, UploadError, upload_workspace

__all__ = ["LoadedImage", "ImageFolder", "class_root", "load_image", "load_image_folder", "MAX_PIXELS"]

MAX_PIXELS = 64_000_000  # a 64-megapixel photo; PIL's own guard warns at ~89 M and fails at ~179 M
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
Mode = Literal["L", "RGB"]


@dataclass(frozen=True)
class LoadedImage:
    """One decoded image.

    ``array`` is float32 in [0, 1] with shape (C, H, W), C = 1 for ``'L'`` and 3 for
    ``'RGB'``; ``display`` is the same picture as uint8, (H, W) or (H, W, 3), for
    ``st.image``. ``warnings`` lists every conversion a person should know about.
    """

    name: str
    array: np.ndarray
    display: np.ndarray
    original_mode: str
    original_size: tuple[int, int]  # (H, W) as stored in the file
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageFolder:
    """Images from a zip laid out like torchvision's ImageFolder (one subfolder per class).

    ``images`` is float32 (N, C, H, W) in [0, 1]; ``labels`` int64 (N,) indexes
    ``class_names`` (sorted folder names); ``files`` are the paths inside the zip.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    files: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Open lazily and check the header's pixel count before any pixel is decoded."""
    if not data:
        raise ImageError(f"'{name}' is empty (0 bytes); upload the image file itself.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"'{name}' declares more pixels than kdviz will decode ({exc}); refusing it as a possible "
            "decompression bomb. Resize the image below "
            f"{max_pixels / 1e6:.0f} megapixels."
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"'{name}' is not an image kdviz can read, or it is corrupt; upload PNG, JPEG, GIF, BMP, TIFF or WebP."
        ) from exc
    except Exception as exc:  # hostile headers raise many types (SyntaxError, struct.error, ...)
        raise ImageError(f"'{name}' has a corrupt or truncated image header ({exc}); re-export the image.") from exc
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(
            f"'{name}' is {width}×{height} = {width * height / 1e6:.0f} megapixels; the limit is "
            f"{max_pixels / 1e6:.0f} megapixels (a possible decompression bomb). Resize it first."
        )
    if width == 0 or height == 0:
        raise ImageError(f"'{name}' has zero width or height; re-export the image.")
    return img


def _decode_first_frame(img: Image.Image, name: str) -> tuple[Image.Image, list[str]]:
    """Decode pixels (first frame only), refusing truncated data; apply EXIF rotation."""
    notes: list[str] = []
    if getattr(img, "is_animated", False):
        notes.append(f"'{name}' is animated; kdviz uses the first frame only.")
        img.seek(0)
    try:
        img.load()
        img = ImageOps.exif_transpose(img) or img
    except Exception as exc:  # truncated data raises OSError; hostile data anything else
        raise ImageError(
            f"'{name}' could not be decoded ({exc}); the file is probably truncated or corrupt. "
            "Upload the complete file."
        ) from exc
    return img, notes


def _to_float(img: Image.Image, name: str, mode: Mode) -> tuple[np.ndarray, list[str]]:
    """Convert any PIL mode to float32 (H, W, C) in [0, 1] for ``mode``, noting lossy steps."""
    notes: list[str] = []
    source = img.mode
    if source in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        if source == "F" and low >= 0.0 and high <= 1.0:
            grey = values
        elif source != "F" and low >= 0 and high <= 65535:
            grey = values / 65535.0
            notes.append(f"'{name}' is a {source} (16-bit) image; scaled to [0, 1] from 16 bits.")
        else:
            grey = (values - low) / (high - low) if high > low else np.zeros_like(values)
            notes.append(f"'{name}' holds {source} values in [{low:g}, {high:g}]; rescaled to [0, 1].")
        grey = np.nan_to_num(grey, nan=0.0, posinf=1.0, neginf=0.0).astype(np.float32)[..., None]
        return (grey if mode == "L" else np.repeat(grey, 3, axis=2)), notes
    if source == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        notes.append(f"'{name}' has transparency; composited on a white background.")
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba).convert("RGB")
    elif img.mode == "CMYK":
        notes.append(f"'{name}' is CMYK; converted to RGB without a colour profile, colours may shift.")
    if mode == "L" and img.mode not in ("L", "1"):
        notes.append(f"'{name}' is colour ({img.mode}); converted to greyscale for a 1-channel model.")
    converted = img.convert(mode)
    array = np.asarray(converted, dtype=np.float32) / 255.0
    return (array[..., None] if mode == "L" else array), notes


def _resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize float (H, W, C) to ``size`` = (H, W) channel by channel, bilinear, antialiased."""
    height, width = size
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(array[..., c]), mode="F").resize(
            (width, height), Image.Resampling.BILINEAR
        ))
        for c in range(array.shape[2])
    ]
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0).astype(np.float32)


def _fit(array: np.ndarray, size: tuple[int, int], name: str) -> tuple[np.ndarray, str]:
    """``array`` (H, W, C) at ``size`` keeping its aspect ratio: scaled so it covers ``size``, then the centre
    cropped (as torchvision's evaluation transforms do), never squashed. Returns it and a note saying what was
    done (a 4,000×3,000 photo becomes a 224×224 crop of its middle)."""
    h, w = array.shape[:2]
    th, tw = size
    scale = max(th / h, tw / w)
    sh, sw = max(th, round(h * scale)), max(tw, round(w * scale))
    resized = _resize(array, (sh, sw)) if (sh, sw) != (h, w) else array
    top, left = (sh - th) // 2, (sw - tw) // 2
    out = np.ascontiguousarray(resized[top:top + th, left:left + tw])
    crop = "" if (sh, sw) == (th, tw) else f", centre-cropped from {sw}×{sh} (aspect ratio kept)"
    return out, f"'{name}' ({w}×{h} px) resized to {tw}×{th}{crop}."


def load_image(
    data: bytes,
    *,
    name: str,
    mode: Mode = "RGB",
    size: tuple[int, int] | None = None,
    max_pixels: int = MAX_PIXELS,
) -> LoadedImage:
    """Decode ``data`` to a :class:`LoadedImage` in ``mode`` (``'L'`` or ``'RGB'``), fitted to ``size`` = (H, W)
    (scaled to cover it and centre-cropped, the aspect ratio kept; a note says so).

    Refuses empty, non-image, truncated and oversized (> ``max_pixels``) files with
    :class:`~kdviz.io.untrusted.ImageError`; converts 16-bit, palette, RGBA (on white),
    CMYK and animated (first frame) images, listing each conversion in ``warnings``.
    """
    if mode not in ("L", "RGB"):
        raise InvalidInputError(f"mode must be 'L' or 'RGB', got {mode!r}")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise InvalidInputError(f"size must be (height, width) with positive values, got {size!r}")
    img = _open(bytes(data), name, max_pixels)
    original_mode, (width, height) = img.mode, img.size
    img, notes = _decode_first_frame(img, name)
    try:
        array, more = _to_float(img, name, mode)
    except Exception as exc:  # exotic modes (LAB, HSV, I;16B TIFFs...) that PIL cannot convert
        raise ImageError(
            f"'{name}' uses the {img.mode} pixel format, which kdviz cannot convert ({exc}); "
            "save it as 8-bit RGB or greyscale PNG."
        ) from exc
    notes += more
    if size is not None and tuple(size) != array.shape[:2]:
        array, note = _fit(array, (int(size[0]), int(size[1])), name)
        notes.append(note)
    display = np.rint(array * 255.0).astype(np.uint8)
    return LoadedImage(
        name=name,
        array=np.ascontiguousarray(array.transpose(2, 0, 1)),
        display=display[..., 0] if mode == "L" else display,
        original_mode=original_mode,
        original_size=(height, width),
        warnings=tuple(notes),
    )


def class_root(root: Path) -> Path:
    """The folder holding the class subfolders: descend through a single wrapping folder."""
    while True:
        children = [c for c in root.iterdir() if not c.name.startswith(".") and c.name != "__MACOSX"]
        if len(children) == 1 and children[0].is_dir() and any(p.is_dir() for p in children[0].iterdir()):
            root = children[0]
        else:
            return root


def load_image_folder(
    data: bytes | str | os.PathLike[str],
    *,
    mode: Mode = "RGB",
    size: tuple[int, int] | None = None,
    max_files: int = 10_000,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> ImageFolder:
    """Load a zip of ``class_name/image.png`` files into an :class:`ImageFolder`.

    The zip goes through :func:`kdviz.io.safezip.extract_zip` into a temporary folder
    removed afterwards. Without ``size`` all images must share one size. Hidden files
    and ``__MACOSX`` are skipped; other non-image files are skipped with a warning.
    """
    notes: list[str] = []
    with upload_workspace() as folder:
        extract_zip(data, folder, max_files=max_files, max_total_bytes=max_total_bytes)
        root = class_root(folder)
        classes = sorted(
            c.name for c in root.iterdir()
            if c.is_dir() and not c.name.startswith(".") and c.name != "__MACOSX"
        )
        if not classes:
            raise UploadError(
                "the zip has no class folders; lay it out as class_name/image.png "
                "(one folder per class), like torchvision's ImageFolder."
            )
        arrays: list[np.ndarray] = []
        labels: list[int] = []
        files: list[str] = []
        for index, cls in enumerate(classes):
            for path in sorted(p for p in (root / cls).rglob("*") if p.is_file()):
                rel = path.relative_to(folder).as_posix()
                if any(part.startswith(".") for part in path.relative_to(root).parts):
                    continue
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    notes.append(f"skipped '{rel}': not an image file.")
                    continue
                loaded = load_image(path.read_bytes(), name=rel, mode=mode, size=size, max_pixels=max_pixels)
                if arrays and loaded.array.shape != arrays[0].shape:
                    raise ImageError(
                        f"'{rel}' is {loaded.array.shape[1]}×{loaded.array.shape[2]} but '{files[0]}' is "
                        f"{arrays[0].shape[1]}×{arrays[0].shape[2]}; pass size=(H, W) to resize them all."
                    )
                arrays.append(loaded.array)
                labels.append(index)
                files.append(rel)
                notes.extend(loaded.warnings)
    if not arrays:
        raise UploadError("the zip's class folders hold no images; add PNG or JPEG files.")
    return ImageFolder(
        images=np.stack(arrays),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=tuple(classes),
        files=tuple(files),
        warnings=tuple(notes),
    )
