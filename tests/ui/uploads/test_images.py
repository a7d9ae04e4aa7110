"""Image uploads decoded for a model: a file that cannot be read is left out with its reason in ``errors``, the
others are used; none readable is an UploadError naming each."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from kdviz.io.untrusted import UploadError
from kdviz.ui.uploads.images import decode_images


def _png(value: int, size: tuple[int, int] = (12, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, color=value).save(buf, format="PNG")
    return buf.getvalue()


def test_a_bad_image_is_left_out_and_named_the_others_are_used() -> None:
    files = (("a.png", _png(255)), ("broken.png", b"not an image"), ("b.png", _png(0)))
    got = decode_images(files, mode="L", size=(8, 8))
    assert got.names == ("a.png", "b.png") and got.x.shape == (2, 1, 8, 8) and got.labels is None
    np.testing.assert_allclose(got.x[0], 1.0)
    np.testing.assert_allclose(got.x[1], 0.0)
    assert len(got.errors) == 1 and "broken.png" in got.errors[0]
    assert not any(e.startswith("ERROR") for e in (*got.errors, *got.warnings))


def test_no_readable_image_is_an_upload_error_naming_each() -> None:
    with pytest.raises(UploadError, match=r"none of the uploaded images could be read: .*x\.png.*y\.png"):
        decode_images((("x.png", b"nope"), ("y.png", b"nope")), mode="RGB", size=None)
