"""Tests for kdviz/metrics.py: hand-computed cases and scipy / scikit-image / numpy called directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.metrics import structural_similarity

from kdviz.analysis.metrics import (
    METRICS,
    agreement,
    attention_rank_alignment,
    bootstrap_ci,
    focus_fraction,
    focus_ratio,
    format_metric,
    logit_alignment,
    map_pearson,
    map_ssim,
    mean_ci,
    pearson_rows,
    predictive_divergence,
    spearman_rows,
    topk_overlap,
)

# Small integers make ties (and constant rows) common, which is where rank correlations go wrong.
tied_rows = arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 12)), elements=st.integers(0, 4))


@settings(max_examples=60, deadline=None)
@given(a=tied_rows, seed=st.integers(0, 1000))
def test_spearman_matches_scipy_per_row(a: np.ndarray, seed: int) -> None:
    b = np.random.default_rng(seed).integers(0, 4, size=a.shape).astype(float)
    ours = spearman_rows(a, b)
    for i in range(a.shape[0]):
        if a.shape[1] < 3:
            assert math.isnan(ours[i])  # two values rank as ±1 whatever they are: undefined, by kdviz's rule
        elif np.ptp(a[i]) == 0 or np.ptp(b[i]) == 0:
            assert math.isnan(ours[i])  # scipy warns and returns NaN too
        else:
            assert ours[i] == pytest.approx(scipy.stats.spearmanr(a[i], b[i]).statistic, abs=1e-12)


def test_pearson_matches_corrcoef_on_random_data() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(20, 30)), rng.normal(size=(20, 30))
    b[3] = 2 * a[3] + 1
    expected = [np.corrcoef(a[i], b[i])[0, 1] for i in range(20)]
    np.testing.assert_allclose(pearson_rows(a, b), expected, atol=1e-12)
    assert pearson_rows(a, b)[3] == pytest.approx(1.0)


def test_constant_vectors_give_nan_never_zero() -> None:
    const = np.array([[0.2, 0.2, 0.2, 0.2], [1.0, 2.0, 3.0, 4.0]])
    other = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    for fn in (spearman_rows, pearson_rows, attention_rank_alignment, logit_alignment):
        out = fn(const, other)
        assert math.isnan(out[0]) and out[1] == pytest.approx(1.0)
        assert math.isnan(fn(other, const)[0])
    maps = np.random.default_rng(0).random((2, 8, 8))
    flat = maps.copy()
    flat[0] = 0.3
    assert math.isnan(map_ssim(flat, maps)[0]) and not math.isnan(map_ssim(flat, maps)[1])
    assert math.isnan(map_pearson(flat, maps)[0])


def test_nan_parts_are_left_out_of_ranks() -> None:
    v = np.array([[1.0, 2.0, np.nan, 3.0]])
    t = np.array([[3.0, 2.0, np.nan, 1.0]])
    assert spearman_rows(v, t)[0] == pytest.approx(-1.0)


def test_focus_by_hand() -> None:
    teacher = np.array([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]] * 4)
    student = np.array([
        [1.0, 1.0, 0.0, 0.0, 2.0, 0.0],  # M_in = 2, M_out = 2
        [3.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # all mass inside: ratio ∞, fraction 1
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # no mass: undefined
        [0.0, 0.0, 1.0, 1.0, 1.0, 1.0],  # all outside
    ])
    np.testing.assert_allclose(focus_ratio(student, teacher, k=2), [1.0, np.inf, np.nan, 0.0])
    np.testing.assert_allclose(focus_fraction(student, teacher, k=2), [0.5, 1.0, np.nan, 0.0])
    # The teacher against itself: its top-2 hold 9 of 15.
    assert focus_fraction(teacher, teacher, k=2)[0] == pytest.approx(9 / 15)
    assert focus_ratio(teacher, teacher, k=2)[0] == pytest.approx(9 / 6)


def test_topk_overlap_by_hand_with_ties() -> None:
    teacher = np.array([[4.0, 3.0, 3.0, 0.0, 1.0]])  # top-2 = {0, 1} (tie 1/2 -> lower index)
    student = np.array([[0.0, 9.0, 9.0, 0.0, 1.0]])  # top-2 = {1, 2}
    assert topk_overlap(student, teacher, k=2)[0] == pytest.approx(0.5)
    assert topk_overlap(teacher, teacher, k=5)[0] == 1.0


@pytest.mark.parametrize("fn", [focus_ratio, focus_fraction, topk_overlap])
def test_k_larger_than_k_parts_raises_naming_both(fn) -> None:
    v = np.ones((2, 4))
    with pytest.raises(ValueError, match=r"k=5.*K=4"):
        fn(v, v, k=5)


def test_output_metrics_by_hand_and_against_scipy() -> None:
    rng = np.random.default_rng(2)
    s, t = rng.normal(size=(6, 10)), rng.normal(size=(6, 10))
    s[0] = t[0]
    kl = predictive_divergence(s, t)
    p_t, p_s = scipy.special.softmax(t, axis=1), scipy.special.softmax(s, axis=1)
    np.testing.assert_allclose(kl, scipy.stats.entropy(p_t, p_s, axis=1), atol=1e-12)
    assert kl[0] == pytest.approx(0.0, abs=1e-12) and np.all(kl >= 0)
    np.testing.assert_array_equal(agreement(s, t), (s.argmax(1) == t.argmax(1)).astype(float))
    assert agreement(s, t)[0] == 1.0
    assert agreement(np.array([[0.0, 1.0], [2.0, 1.0]]), np.array([[0.0, 3.0], [0.0, 1.0]])).tolist() == [1.0, 0.0]


def test_ssim_matches_skimage_on_normalised_maps() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random((3, 16, 16)) * 5, rng.random((3, 16, 16)) * 0.1
    norm = lambda m: (m - m.min()) / (m.max() - m.min())  # noqa: E731
    expected = [structural_similarity(norm(a[i]), norm(b[i]), data_range=1.0) for i in range(3)]
    np.testing.assert_allclose(map_ssim(a, b), expected, atol=1e-12)
    np.testing.assert_allclose(map_ssim(a, a), 1.0)
    noisy = a + rng.normal(scale=2.0, size=a.shape)
    smooth = a + rng.normal(scale=0.2, size=a.shape)
    assert np.all(map_ssim(noisy, a) < map_ssim(smooth, a))
    # Series maps (N, L) and maps smaller than the default window work too.
    series = rng.random((2, 40))
    assert map_ssim(series, series) == pytest.approx([1.0, 1.0])
    assert map_ssim(rng.random((1, 5, 5)), rng.random((1, 5, 5))).shape == (1,)


def test_map_pearson_matches_corrcoef() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.random((3, 6, 6)), rng.random((3, 6, 6))
    expected = [np.corrcoef(a[i].ravel(), b[i].ravel())[0, 1] for i in range(3)]
    np.testing.assert_allclose(map_pearson(a, b), expected, atol=1e-12)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shape"):
        attention_rank_alignment(np.ones((2, 3)), np.ones((2, 4)))


def test_bootstrap_interval() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(loc=0.5, scale=0.2, size=200)
    low, high = bootstrap_ci(values, seed=1)
    assert low < values.mean() < high
    assert (low, high) == bootstrap_ci(values, seed=1)  # seeded: reproducible
    assert high - low < 0.1
    wide = bootstrap_ci(values[:10], seed=1)
    assert wide[1] - wide[0] > high - low
    with_nan = np.concatenate([values, [np.nan] * 5])
    assert bootstrap_ci(with_nan, seed=1) == (low, high)  # NaNs dropped
    assert all(math.isnan(x) for x in bootstrap_ci(np.full(4, np.nan)))
    assert bootstrap_ci(np.ones(7)) == (1.0, 1.0)
    assert all(math.isnan(x) for x in mean_ci(np.array([np.nan])))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(values, confidence=95)


def test_format_metric() -> None:
    assert format_metric(float("nan")) == "undefined"
    assert format_metric(None) == "undefined"
    assert format_metric(0.123456) == "0.12"
    assert format_metric(0.5, digits=3) == "0.500"
    assert format_metric(float("inf")) == "∞"


def test_registry_attributes() -> None:
    assert set(METRICS) >= {
        "focus_ratio", "focus_fraction", "attention_rank_alignment", "logit_alignment", "topk_overlap",
        "agreement", "predictive_divergence", "map_ssim", "map_pearson",
    }
    for name, fn in METRICS.items():
        assert isinstance(fn.higher_is_better, bool), name
        assert fn.category in ("parts", "logits", "maps"), name
        assert fn.label
    assert METRICS["predictive_divergence"].higher_is_better is False


def test_two_class_logit_alignment_is_undefined_with_a_reason() -> None:
    from kdviz.analysis.metrics import logit_alignment, undefined_reason

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    assert np.isnan(logit_alignment(a, b)).all()  # ranks of two logits are ±1 whatever the model
    assert "2 classes" in undefined_reason("logit_rho", n_classes=2)
    assert undefined_reason("logit_rho", n_classes=10) is None
    assert "parts" in undefined_reason("attention_rho", n_parts=2)
    three = rng.normal(size=(6, 3))
    assert np.isfinite(logit_alignment(three, three + 0.1 * rng.normal(size=(6, 3)))).all()


def test_logit_margins_and_margin_alignment_against_scipy() -> None:
    from kdviz.analysis.metrics import logit_margin, margin_alignment, output_margin_class

    z = np.array([[2.0, 0.5, 1.0], [0.0, 3.0, -1.0]])
    np.testing.assert_allclose(logit_margin(z, np.array([0, 2])), [1.0, -4.0])  # z_c − max_{j≠c} z_j
    binary = np.array([[0.2, 1.2], [2.0, -1.0]])
    np.testing.assert_array_equal(output_margin_class(binary), [1, 1])  # log-odds of class 1
    np.testing.assert_allclose(logit_margin(binary, output_margin_class(binary)), [1.0, -3.0])
    np.testing.assert_array_equal(output_margin_class(z), [0, 1])  # ≥ 3 classes: the teacher's prediction
    rng = np.random.default_rng(4)
    t = rng.normal(size=50)
    s = t + rng.normal(size=50)
    assert margin_alignment(s, t) == pytest.approx(scipy.stats.spearmanr(s, t).statistic, abs=1e-12)
    assert math.isnan(margin_alignment(s[:2], t[:2]))
    assert math.isnan(margin_alignment(np.ones(10), t[:10]))
