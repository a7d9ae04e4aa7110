"""kdviz.io.series: the three formats against known arrays, and the model-fit check."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from kdviz.io.series import check_series_fits, load_series
from kdviz.io.untrusted import SeriesError, SeriesShapeError


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_bundled_ucr_ts_file_matches_aeon() -> None:
    import aeon.datasets
    from aeon.datasets import load_classification

    path = Path(aeon.datasets.__file__).parent / "data" / "GunPoint" / "GunPoint_TRAIN.ts"
    out = load_series(path.read_bytes(), name="GunPoint_TRAIN.ts")
    x, y = load_classification("GunPoint", split="train")
    assert out.x.shape == (50, 1, 150) and out.x.dtype == np.float32
    np.testing.assert_allclose(out.x, x, rtol=1e-6)
    assert out.class_names == ("1", "2")
    np.testing.assert_array_equal(np.asarray(out.class_names)[out.labels], y)


def test_multivariate_ts() -> None:
    text = (
        "@problemName mv\n@timeStamps false\n@univariate false\n@dimensions 2\n@equalLength true\n"
        "@seriesLength 3\n@classLabel true up down\n@data\n1,2,3:4,5,6:up\n3,2,1:6,5,4:down\n"
    )
    out = load_series(text.encode(), name="mv.ts")
    assert out.x.shape == (2, 2, 3)
    assert out.x[1, 1].tolist() == [6, 5, 4]
    assert out.class_names == ("down", "up") and out.labels.tolist() == [1, 0]


def test_csv_plain_rows() -> None:
    out = load_series(b"1,2,3\n4,5,6\n", name="x.csv")
    assert out.x.shape == (2, 1, 3) and out.labels is None and out.class_names == ()


def test_csv_text_labels_and_header() -> None:
    out = load_series(b"class,t0,t1\ncat,1,2\ndog,3,4\ncat,5,6\n", name="x.csv")
    assert out.x[:, 0].tolist() == [[1, 2], [3, 4], [5, 6]]
    assert out.class_names == ("cat", "dog") and out.labels.tolist() == [0, 1, 0]


def test_ucr_tsv_numeric_label_column() -> None:
    out = load_series(b"2\t0.5\t0.25\n10\t1\t2\n", name="UCR.tsv", label_column="first")
    assert out.class_names == ("2", "10")  # numeric labels sort numerically
    assert out.labels.tolist() == [0, 1]
    assert out.x.shape == (2, 1, 2)


def test_npy_shapes() -> None:
    assert load_series(_npy(np.arange(5.0)), name="a.npy").x.shape == (1, 1, 5)
    assert load_series(_npy(np.zeros((4, 5), np.int16)), name="a.npy").x.shape == (4, 1, 5)
    assert load_series(_npy(np.zeros((4, 2, 5), np.float64)), name="a.npy").x.dtype == np.float32


def test_npy_input_not_mutated() -> None:
    data = _npy(np.array([[1.0, np.nan, 3.0]]))
    before = bytes(data)
    out = load_series(data, name="n.npy", missing="interpolate")
    assert out.x[0, 0].tolist() == [1.0, 2.0, 3.0]
    assert data == before


def test_interpolation_refuses_all_missing_row() -> None:
    with pytest.raises(SeriesError, match="entirely missing"):
        load_series(b"1,2\nnan,nan\n", name="x.csv", missing="interpolate")


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="missing"):
        load_series(b"1", name="x.csv", missing="zero")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="label_column"):
        load_series(b"1", name="x.csv", label_column="last")  # type: ignore[arg-type]


def test_check_series_fits() -> None:
    x = np.zeros((2, 1, 150), np.float32)
    check_series_fits(x, in_channels=1, length=150)
    with pytest.raises(SeriesShapeError, match="3-channel"):
        check_series_fits(x, in_channels=3)
    with pytest.raises(SeriesShapeError, match="at least 200"):
        check_series_fits(x, in_channels=1, min_length=200)
    with pytest.raises(SeriesShapeError, match=r"\(series, channels, length\)"):
        check_series_fits(np.zeros((150,)), in_channels=1)


def test_values_beyond_float32_refused() -> None:
    with pytest.raises(SeriesError, match="line 2 holds a value beyond float32"):
        load_series(b"1,2\n1e39,2\n", name="x.csv")
