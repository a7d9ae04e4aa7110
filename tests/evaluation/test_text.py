"""kdviz.evaluation.text on a tiny text zoo: numbers against scipy and transformers called directly, the null's
rank p, resume, the results file, and the VADER share counted by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from kdviz.evaluation.evaluate import load_results, save_results
from kdviz.evaluation.text import evaluate_text_zoo, text_test_set
from kdviz.io.hf_text import load_text_zoo
from kdviz.io.text import read_rotten_tomatoes, vader_lexicon
from tests.evaluation.tiny_text_zoo import SENTENCES, build_tiny_text_zoo, direct_word_saliency

LABELS = np.array([1, 0, 0, 1, 0, 0])


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return load_text_zoo(build_tiny_text_zoo(tmp_path_factory.mktemp("tiny-text")))


@pytest.fixture(scope="module")
def result(zoo):
    return evaluate_text_zoo(zoo, texts=SENTENCES, labels=LABELS, batch_size=4, null_copies=3, progress_bar=False)


def test_rho_overlap_and_accuracy_equal_scipy_on_directly_computed_word_vectors(zoo, result):
    models = {m.id: m.text for m in zoo.models}
    t = models["teacher"]
    target = [int(t.model(**t.tokenizer(s, return_tensors="pt")).logits.argmax()) for s in SENTENCES]
    v_t = [direct_word_saliency(t.model, t.tokenizer, s, c) for s, c in zip(SENTENCES, target, strict=True)]
    f = result.frame.set_index(["model_id", "input_id"])
    summary = result.summary.set_index("model_id")
    for mid in ("l1_a0.5", "l2h16_a0.5"):
        m = models[mid]
        rhos, overlaps = [], []
        for i, s in enumerate(SENTENCES):
            v = direct_word_saliency(m.model, m.tokenizer, s, target[i])
            if len(v) < 3:  # a rank correlation of two words can only be ±1: kdviz leaves it undefined
                assert np.isnan(f.loc[(mid, i), "attention_rho"])
                continue
            rho = scipy.stats.spearmanr(v, v_t[i]).statistic
            assert f.loc[(mid, i), "attention_rho"] == pytest.approx(rho, abs=1e-6)
            rhos.append(rho)
            if len(v) > 5:  # a text of at most k words has no top-k overlap
                top = set(np.argsort(-v, kind="stable")[:5]) & set(np.argsort(-v_t[i], kind="stable")[:5])
                overlaps.append(len(top) / 5)
                assert f.loc[(mid, i), "topk_overlap"] == pytest.approx(len(top) / 5)
            else:
                assert np.isnan(f.loc[(mid, i), "topk_overlap"])
        assert summary.loc[mid, "attention_rho"] == pytest.approx(np.mean(rhos), abs=1e-6)
        assert summary.loc[mid, "topk_overlap"] == pytest.approx(np.mean(overlaps))
        preds = [int(m.model(**m.tokenizer(s, return_tensors="pt")).logits.argmax()) for s in SENTENCES]
        assert summary.loc[mid, "accuracy"] == pytest.approx(np.mean(np.array(preds) == LABELS))
        assert summary.loc[mid, "agree"] == pytest.approx(np.mean(np.array(preds) == np.array(target)))


def test_the_teacher_against_itself(result):
    s = result.summary.set_index("model_id").loc["teacher"]
    assert s["attention_rho"] == pytest.approx(1.0) and s["topk_overlap"] == pytest.approx(1.0)
    assert s["pearson"] == pytest.approx(1.0) and s["kl_to_teacher"] == pytest.approx(0.0)
    assert s["agree"] == 1.0 and np.isnan(s["logit_rho"])  # two classes: logit ρ undefined, margin ρ instead
    assert s["margin_rho"] == pytest.approx(1.0)
    assert list(result.frame["model_id"].drop_duplicates()) == ["teacher", "l1_a1", "l1_a0.5", "l1_a0.1", "l2h16_a0.5"]


def test_the_null_rank_p_z_and_excess_from_the_copies(result):
    R = 3
    for mid, g in result.frame[result.frame["role"] == "student"].groupby("model_id"):
        s = result.summary.set_index("model_id").loc[mid]
        assert s["null_copies"] == R
        for m in ("attention_rho", "topk_overlap", "focus_ratio", "vader"):
            copies = np.stack(g[f"{m}_null_copies"].to_numpy())  # (N, R)
            means = np.nanmean(np.where(np.isinf(copies), np.nan, copies), axis=0)
            assert s[f"{m}_null"] == pytest.approx(means.mean())
            model = s[m]
            assert s[f"{m}_p"] == pytest.approx((1 + np.sum(means >= model)) / (R + 1))
            assert 1 / (R + 1) <= s[f"{m}_p"] <= 1.0
            assert s[f"{m}_z"] == pytest.approx((model - means.mean()) / means.std(ddof=1))
        rho, null = g["attention_rho"].to_numpy(float), g["attention_rho_null"].to_numpy(float)
        np.testing.assert_allclose(g["attention_rho_excess"], (rho - null) / (1 - null))
    # copies of one architecture are shared by its students
    a, b = (np.stack(result.frame.loc[result.frame["model_id"] == i, "attention_rho_null_copies"].to_numpy())
            for i in ("l1_a1", "l1_a0.1"))
    np.testing.assert_array_equal(a, b)


def test_vader_share_is_a_hand_count_of_the_top_words(result):
    lex = vader_lexicon()
    for _, row in result.frame.iterrows():
        words = row["top_words"].split()
        assert len(words) == min(5, row["n_words"])
        assert row["vader"] == pytest.approx(np.mean([w.lower() in lex for w in words]))


def test_resume_and_the_results_file(zoo, result, tmp_path):
    seen = []
    kw = {"texts": SENTENCES, "labels": LABELS, "batch_size": 4, "null_copies": 3, "progress_bar": False}
    first = evaluate_text_zoo(zoo, limit=4, cache_dir=tmp_path, **kw)
    assert first.run["batches_computed"] == 1
    again = evaluate_text_zoo(zoo, cache_dir=tmp_path, progress=seen.append, **kw)
    assert again.run["batches_resumed"] == 1 and again.run["batches_computed"] == 1
    assert seen[-1].fraction == 1.0
    pd.testing.assert_frame_equal(again.frame.drop(columns=[c for c in again.frame if c.endswith("_copies")]),
                                  result.frame.drop(columns=[c for c in result.frame if c.endswith("_copies")]))
    path = save_results(again, tmp_path / "r.parquet")
    back = load_results(path)
    assert back.settings == again.settings and back.settings.parts == "words"
    assert back.settings.method == "grad_x_embedding" and back.settings.null_copies == 3
    assert back.summary["vader_p"].notna().sum() == 4


def test_the_recorded_test_split_and_ig(zoo):
    texts, labels = text_test_set(zoo)
    df = read_rotten_tomatoes()
    assert texts == df["text"].iloc[:8].tolist() and list(labels) == df["label"].iloc[:8].tolist()
    r = evaluate_text_zoo(zoo, limit=3, method="ig", method_params={"n_steps": 4}, null_copies=0,
                          progress_bar=False)
    assert r.settings.n_inputs == 3 and r.settings.method == "integrated_gradients"
    assert (r.frame["ig_steps"] == 4).all() and r.frame["attention_rho_null"].isna().all()
    assert "attention_rho_p" not in r.summary


def test_ig_completeness_error_equals_captum_called_directly(zoo):
    import torch
    from captum.attr import LayerIntegratedGradients

    texts = [SENTENCES[0], SENTENCES[2]]  # no punctuation: every piece but [CLS]/[SEP] belongs to a word
    r = evaluate_text_zoo(zoo, texts=texts, labels=LABELS[:2], method="ig", method_params={"n_steps": 2},
                          null_copies=0, progress_bar=False)
    t = next(m.text for m in zoo.models if m.id == "teacher")
    f = r.frame[r.frame["model_id"] == "teacher"].set_index("input_id")
    wants = []
    for i, text in enumerate(texts):
        enc = t.tokenizer(text, return_tensors="pt")
        ids, mask = enc["input_ids"], enc["attention_mask"]
        base = ids.clone()
        base[0, 1:-1] = t.tokenizer.pad_token_id  # [CLS] … [SEP] kept, word pieces -> [PAD]

        def forward(x, m):
            return t.model(input_ids=x, attention_mask=m).logits

        with torch.no_grad():
            target = int(forward(ids, mask).argmax())
            gap = float(forward(ids, mask)[0, target] - forward(base, mask)[0, target])
        lig = LayerIntegratedGradients(forward, t.model.get_input_embeddings())
        attr = lig.attribute(ids, baselines=base, additional_forward_args=(mask,), target=target, n_steps=2)
        want = abs(float(attr.sum()) - gap) / abs(gap)
        wants.append(want)
        assert f.loc[i, "ig_completeness_error"] == pytest.approx(want, abs=3e-4)  # float32 noise ~1e-4
    assert max(wants) > 5e-3  # 2 steps: an error well above float32 noise (~1e-4)


def test_ig_in_length_buckets_equals_one_call(zoo):
    from kdviz.analysis.compare import CompareOptions, NullOptions, compare_models
    from kdviz.evaluation.text import text_entries

    entries = text_entries(zoo)

    def frame(bucket: int) -> pd.DataFrame:
        options = CompareOptions(method_params={"n_steps": 4}, null=NullOptions(copies=1),
                                 reading={"bucket": bucket})
        return compare_models(entries[0], entries[1:], SENTENCES, labels=LABELS, method="integrated_gradients",
                              parts="words", options=options).frame

    one, split = frame(0), frame(2)  # one call; 3 calls, sorted by length
    for col in ("attention_rho", "topk_overlap", "focus_ratio", "logit_margin", "attention_rho_null"):
        np.testing.assert_allclose(split[col].to_numpy(float), one[col].to_numpy(float), atol=1e-4, err_msg=col)
    # the completeness error is a ratio of float32 sums of the order of its noise (~1e-3 here)
    np.testing.assert_allclose(split["ig_completeness_error"].to_numpy(float),
                               one["ig_completeness_error"].to_numpy(float), atol=3e-3)
    assert [list(np.atleast_1d(w)) for w in split["top_words"]] == [list(np.atleast_1d(w)) for w in one["top_words"]]


def test_shipped_text_results_agree_with_a_fresh_evaluation():
    """The shipped text zoo's results (when built) were made from its current models and read back the same."""
    from pathlib import Path

    from kdviz.io.zoo.manifest import read_manifest

    path = Path(__file__).resolve().parents[2] / "assets" / "zoo" / "rotten-tomatoes" / "results.parquet"
    if not path.exists():
        pytest.skip("shipped text zoo results not built yet")
    shipped = load_results(path)
    s = shipped.settings
    manifest = read_manifest(path.parent)
    assert dict(s.models) == {m.id: m.sha256 for m in manifest.models}, "results made from other checkpoints"
    assert s.parts == "words" and s.null_copies >= 19
    students = shipped.summary[shipped.summary["role"] != "teacher"]
    assert ((students["topk_overlap_p"] >= 1 / (students["null_copies"] + 1) - 1e-12)
            & (students["topk_overlap_p"] <= 1)).all()
    n = 3
    fresh = evaluate_text_zoo(path.parent, method=s.method, method_params=s.method_params, k=s.k, limit=n,
                              null_copies=0, progress_bar=False)
    old = shipped.frame[shipped.frame["input_id"] < n].reset_index(drop=True)
    new = fresh.frame.reset_index(drop=True)
    assert list(old["model_id"]) == list(new["model_id"]) and (old["pred"] == new["pred"]).all()
    for col in ("confidence", "attention_rho", "topk_overlap", "focus_fraction", "vader"):
        np.testing.assert_allclose(new[col].to_numpy(float), old[col].to_numpy(float), atol=2e-3, err_msg=col)


def test_the_library_entry_point_evaluates_a_text_zoo(zoo):
    """``kdviz.evaluate_zoo`` (the README's library call) takes a text zoo too, and refuses image-only options."""
    import kdviz

    via_api = kdviz.evaluate_zoo(zoo, limit=4, null_copies=0, progress_bar=False)
    direct = evaluate_text_zoo(zoo, limit=4, null_copies=0, progress_bar=False)
    cols = ["model_id", "input_id", "attention_rho", "topk_overlap"]
    pd.testing.assert_frame_equal(via_api.frame[cols], direct.frame[cols])
    with pytest.raises(ValueError, match="parts"):
        kdviz.evaluate_zoo(zoo, parts="slic:50", limit=4, progress_bar=False)


def test_the_library_entry_point_takes_a_labs_own_texts(zoo, tmp_path):
    """``kdviz.evaluate_zoo(text_zoo, dataset=read_labelled_texts(...))`` evaluates those texts, as
    ``evaluate_text_zoo(texts=..., labels=...)`` does, under the file's fingerprinted name."""
    import kdviz
    from kdviz.io.text import read_labelled_texts
    from tests.evaluation.tiny_text_zoo import SENTENCES

    pd.DataFrame({"text": SENTENCES[:3], "label": ["fresh", "rotten", "fresh"]}).to_csv(tmp_path / "t.csv",
                                                                                       index=False)
    own = read_labelled_texts(tmp_path / "t.csv", ("rotten", "fresh"))
    via_api = kdviz.evaluate_zoo(zoo, dataset=own, null_copies=0, progress_bar=False)
    direct = evaluate_text_zoo(zoo, texts=SENTENCES[:3], labels=np.array([1, 0, 1]), null_copies=0,
                               progress_bar=False)
    cols = ["model_id", "input_id", "attention_rho", "topk_overlap", "correct"]
    pd.testing.assert_frame_equal(via_api.frame[cols], direct.frame[cols])
    assert via_api.settings.dataset == own.name and direct.settings.dataset.startswith("texts#")
    with pytest.raises(ValueError, match="dataset"):
        kdviz.evaluate_zoo(zoo, dataset="mnist", limit=2, progress_bar=False)
