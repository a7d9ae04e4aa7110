"""kdviz.io.images: values known by hand for each conversion, and ImageFolder zips."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from kdviz.io.images import load_image, load_image_folder
from kdviz.io.untrusted import ImageError, UnsafeArchiveError, UploadError


def _encode(img: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_rgb_roundtrip_shapes_and_range() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = load_image(_encode(Image.fromarray(pixels)), name="x.png")
    assert out.array.shape == (3, 5, 7) and out.array.dtype == np.float32
    np.testing.assert_allclose(out.array, pixels.transpose(2, 0, 1) / 255.0, atol=1e-7)
    np.testing.assert_array_equal(out.display, pixels)
    assert out.original_size == (5, 7) and out.original_mode == "RGB" and out.warnings == ()


def test_sixteen_bit_scaled_not_clipped() -> None:
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    out = load_image(_encode(Image.fromarray(values)), name="d.png", mode="L")
    np.testing.assert_allclose(out.array[0, 0], values[0] / 65535.0, atol=1e-6)
    assert out.display[0].tolist() == [0, 1, 128, 255]


def test_rgba_composited_on_white() -> None:
    pixels = np.array([[[255, 0, 0, 0], [0, 0, 255, 255], [0, 0, 0, 128]]], dtype=np.uint8)
    out = load_image(_encode(Image.fromarray(pixels, mode="RGBA")), name="a.png")
    assert out.display[0, 0].tolist() == [255, 255, 255]  # fully transparent -> white
    assert out.display[0, 1].tolist() == [0, 0, 255]  # opaque unchanged
    assert 120 <= out.display[0, 2, 0] <= 135  # half-transparent black -> mid grey
    assert any("white" in w for w in out.warnings)


def test_grey_image_for_rgb_model_repeats_channel() -> None:
    out = load_image(_encode(Image.new("L", (4, 4), 51)), name="g.png", mode="RGB")
    assert out.array.shape == (3, 4, 4)
    np.testing.assert_allclose(out.array, 0.2, atol=1e-6)


def test_animated_uses_first_frame() -> None:
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    out = load_image(data, name="anim.gif")
    assert out.display[0, 0].tolist() == [255, 0, 0]
    assert any("first frame" in w for w in out.warnings)


def test_resize_to_model_size() -> None:
    out = load_image(_encode(Image.new("RGB", (64, 32), (255, 255, 255))), name="w.png", size=(28, 20))
    assert out.array.shape == (3, 28, 20) and out.display.shape == (28, 20, 3)
    np.testing.assert_allclose(out.array, 1.0, atol=1e-5)


def test_exif_rotation_applied() -> None:
    img = Image.new("RGB", (6, 2))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    out = load_image(_encode(img, "JPEG", exif=exif), name="phone.jpg")
    assert out.array.shape == (3, 6, 2)


def test_max_pixels_is_per_call() -> None:
    data = _encode(Image.new("L", (100, 100)))
    with pytest.raises(ImageError, match="megapixels"):
        load_image(data, name="p.png", max_pixels=9_999)
    assert load_image(data, name="p.png", max_pixels=10_000).array.shape == (3, 100, 100)


def test_bad_options_rejected() -> None:
    data = _encode(Image.new("L", (2, 2)))
    with pytest.raises(ValueError, match="mode"):
        load_image(data, name="p.png", mode="CMYK")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        load_image(data, name="p.png", size=(0, 4))


def test_image_folder_labels_from_sorted_folders() -> None:
    png = _encode(Image.new("L", (8, 8), 200))
    data = _zip({
        "digits/zebra/1.png": png, "digits/ant/2.png": png, "digits/ant/3.png": png,
        "digits/ant/.DS_Store": b"junk", "__MACOSX/digits/ant/._2.png": b"junk", "digits/ant/notes.txt": b"hi",
    })
    folder = load_image_folder(data, mode="L")
    assert folder.class_names == ("ant", "zebra")
    assert folder.labels.tolist() == [0, 0, 1]
    assert folder.images.shape == (3, 1, 8, 8)
    assert any("notes.txt" in w for w in folder.warnings)


def test_image_folder_mixed_sizes_need_size() -> None:
    data = _zip({"a/1.png": _encode(Image.new("L", (8, 8))), "b/2.png": _encode(Image.new("L", (4, 4)))})
    with pytest.raises(ImageError, match=r"pass size=\(H, W\)"):
        load_image_folder(data)
    assert load_image_folder(data, size=(6, 6)).images.shape == (2, 3, 6, 6)


def test_image_folder_refusals() -> None:
    with pytest.raises(UploadError, match="no class folders"):
        load_image_folder(_zip({"loose.png": _encode(Image.new("L", (2, 2)))}))
    with pytest.raises(UnsafeArchiveError, match="escapes"):
        load_image_folder(_zip({"a/../../x.png": b""}))


def test_a_photo_keeps_its_aspect_ratio_and_says_so() -> None:
    """Issue 23 item 7: a 4:3 photo is scaled to cover 224×224 and its middle cropped, not squashed."""
    img = Image.new("RGB", (400, 300), (0, 0, 0))
    img.paste((255, 255, 255), (150, 0, 250, 300))  # a white vertical band, 100 px wide, in the middle
    out = load_image(_encode(img), name="photo.png", size=(224, 224))
    row = out.array[0, 112]
    white = np.flatnonzero(row > 0.5)
    assert 70 <= len(white) <= 80  # 100 px × 224/300 ≈ 75 px wide (squashed it would be 56)
    assert abs((white[0] + white[-1]) / 2 - 111.5) <= 2  # still in the middle
    assert any("400×300" in w and "centre-cropped" in w for w in out.warnings)
