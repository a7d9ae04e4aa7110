"""Series uploads decoded for a model: files checked against the model and each other, a bad one left out with
its reason in ``errors``, UCR's label column read as labels (a warning says so)."""

from __future__ import annotations

import numpy as np
import pytest

from kdviz.io.untrusted import UploadError
from kdviz.ui.uploads.series import decode_series


def _csv(rows: list[list[float]]) -> bytes:
    return "".join(",".join(f"{v:g}" for v in row) + "\n" for row in rows).encode()


def test_a_file_of_another_length_is_left_out_and_named() -> None:
    good = _csv([[0, 1, 2, 3], [3, 2, 1, 0]])
    other = _csv([[0, 1, 2, 3, 4, 5]])
    got = decode_series((("good.csv", good), ("other.csv", other)), channels=1, length=None)
    assert got.x.shape == (2, 1, 4) and got.names == ("good.csv #0", "good.csv #1")
    np.testing.assert_allclose(got.x[1, 0], [3, 2, 1, 0])
    assert len(got.errors) == 1 and got.errors[0].startswith("'other.csv' holds series of shape")


def test_ucr_layout_reads_the_first_column_as_labels() -> None:
    ucr = _csv([[1, 0.5, 0.25, 0.0], [2, 0.0, 0.25, 0.5]])
    got = decode_series((("ucr.csv", ucr),), channels=1, length=3)
    assert got.x.shape == (2, 1, 3) and got.labels is not None and not got.errors
    assert any("first column was read as the class label" in w for w in got.warnings)


def test_no_usable_file_is_an_upload_error() -> None:
    with pytest.raises(UploadError, match="none of the uploaded series files could be used"):
        decode_series((("a.csv", _csv([[0, 1, 2]])),), channels=1, length=5)
