"""Per-model and per-variant summaries: replicates, hierarchical intervals, margin alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from kdviz.analysis.aggregate import hierarchical_ci, margin_rho_ci, summarize_models, summarize_variants
from kdviz.analysis.metrics import mean_ci


def _frame(seed_means: dict[str, float], *, n: int = 40, noise: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """A long table: a teacher and three seeds of one student variant whose per-seed means differ."""
    rng = np.random.default_rng(seed)
    rows = []
    teacher_margin = rng.normal(size=n)
    for mid, mean in {"teacher": 1.0, **seed_means}.items():
        role = "teacher" if mid == "teacher" else "student"
        rows.append(pd.DataFrame({
            "model_id": mid, "role": role, "arch": "resnet56" if role == "teacher" else "resnet8",
            "alpha": np.nan if role == "teacher" else 0.5, "method": "ce" if role == "teacher" else "kd",
            "input_id": np.arange(n), "attention_rho": mean + noise * rng.normal(size=n),
            "correct": rng.random(n) < 0.9,
            "logit_margin": teacher_margin if role == "teacher" else teacher_margin + rng.normal(size=n),
        }))
    return pd.concat(rows, ignore_index=True)


def test_replicates_aggregate_to_the_mean_of_per_seed_means() -> None:
    frame = _frame({"r8_s1": 0.5, "r8_s2": 0.6, "r8_s3": 0.7})
    frame = frame[~((frame["model_id"] == "r8_s3") & (frame["input_id"] >= 20))]  # unequal counts per seed
    per_model = summarize_models(frame)
    variants = summarize_variants(frame)
    assert list(variants["n_seeds"]) == [1, 3]
    row = variants.iloc[1]
    seeds = per_model[per_model["role"] == "student"]
    assert row["attention_rho"] == pytest.approx(seeds["attention_rho"].mean())  # not the pooled row mean
    assert row["attention_rho"] != pytest.approx(frame.loc[frame["role"] == "student", "attention_rho"].mean())
    assert row["model_ids"] == "r8_s1,r8_s2,r8_s3" and row["model_id"] == "resnet8 α=0.5 kd"
    assert variants.iloc[0]["model_id"] == "teacher"  # a one-model variant keeps its id


def test_hierarchical_interval_is_wider_than_inputs_only() -> None:
    frame = _frame({"r8_s1": 0.5, "r8_s2": 0.6, "r8_s3": 0.7})
    students = frame[frame["role"] == "student"]
    groups = [g["attention_rho"].to_numpy() for _, g in students.groupby("model_id")]
    mean, lo, hi = hierarchical_ci(groups)
    _, lo_in, hi_in = mean_ci(np.concatenate(groups))
    assert lo < mean < hi
    assert hi - lo > 3 * (hi_in - lo_in)  # seed-to-seed spread (0.1) dwarfs the inputs' noise
    one_mean, one_lo, one_hi = hierarchical_ci(groups[:1])  # one seed: the ordinary bootstrap
    ref = mean_ci(groups[0])
    assert one_mean == pytest.approx(ref[0]) and one_lo == pytest.approx(ref[1], abs=0.01)
    assert np.isnan(hierarchical_ci([np.array([np.nan])])[0])


def test_margin_alignment_equals_scipy_spearman() -> None:
    frame = _frame({"r8_s1": 0.5}, n=60)
    summary = summarize_models(frame)
    t = frame[frame["role"] == "teacher"]["logit_margin"].to_numpy()
    s = frame[frame["model_id"] == "r8_s1"]["logit_margin"].to_numpy()
    expected = scipy.stats.spearmanr(s, t).statistic
    row = summary.set_index("model_id").loc["r8_s1"]
    assert row["margin_rho"] == pytest.approx(expected, abs=1e-12)
    assert row["margin_rho_low"] < expected < row["margin_rho_high"]
    assert summary.set_index("model_id").loc["teacher", "margin_rho"] == pytest.approx(1.0)
    rho, lo, hi = margin_rho_ci(np.array([1.0, 2.0]), np.array([2.0, 1.0]))
    assert np.isnan(rho) and np.isnan(lo)  # two inputs rank nothing


def test_text_frames_get_the_vader_share_with_its_null_and_image_frames_do_not():
    """One summary for every modality: the VADER share (a text metric) with the null's mean, SD, z and rank p."""
    copies = [np.array([0.2, 0.4, 0.0]), np.array([0.4, 0.6, 0.2])]  # per input, the 3 copies' values
    frame = pd.DataFrame({"model_id": "s", "role": "student", "arch": "bert", "alpha": 0.5, "method": "kd",
                          "input_id": [0, 1], "vader": [0.6, 0.8], "n_words": [7, 9],
                          "vader_null_copies": copies, "attention_rho": [0.5, 0.7]})
    row = summarize_models(frame, n_resamples=200).iloc[0]
    means = np.array([0.3, 0.5, 0.1])  # each copy's mean over the inputs
    assert row["vader"] == pytest.approx(0.7) and row["n_words"] == pytest.approx(8.0)
    assert row["vader_null"] == pytest.approx(means.mean()) and row["vader_null_sd"] == pytest.approx(means.std(ddof=1))
    assert row["vader_p"] == pytest.approx(1 / 4) and row["null_copies"] == 3
    image = frame.assign(vader=np.nan, n_words=pd.array([pd.NA, pd.NA], dtype="Int64"),
                         vader_null_copies=[np.empty(0), np.empty(0)])
    assert not {"vader", "vader_null", "n_words"} & set(summarize_models(image, n_resamples=200).columns)
