"""compare_models on texts: the same frame as every modality, numbers equal to the former text-only comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kdviz.analysis.compare import FRAME_COLUMNS, ComparedModel, CompareOptions, NullOptions, compare_models
from kdviz.io.text import vader_lexicon
from tests.text_models import tiny_bert, tiny_tokenizer

# The reference (data/text_batch_reference.npz) was computed by the former ``compare_text_batch`` on these models
# and sentences (k=3, two null copies, the VADER lexicon): grad_x_embedding in one call, IG (4 steps) in buckets
# of 2 texts.
TEXTS = ["The movie was great and the story is very good fun.", "a boring plot , dull acting but witty story .",
         "bad film", "this film is not fun , it is dull and boring but the acting is good ."]
LABELS = np.array([1, 0, 0, 1])
REFERENCE = Path(__file__).parent / "data" / "text_batch_reference.npz"


@pytest.fixture(scope="module")
def models() -> list[ComparedModel]:
    tok = tiny_tokenizer()
    return [ComparedModel("t", "bert-L2-H32", None, tiny_bert(0), role="teacher", method="ce", tokenizer=tok),
            ComparedModel("s1", "bert-L2-H32", 0.5, tiny_bert(1), tokenizer=tok),
            ComparedModel("s2", "bert-L1-H32", 0.1, tiny_bert(5, layers=1), tokenizer=tok)]


def _compare(models, method: str, **params):
    reading = {"lexicon": vader_lexicon(), "bucket": 2 if method == "integrated_gradients" else None}
    options = CompareOptions(method_params=params, input_ids=[10, 11, 12, 13], null=NullOptions(copies=2),
                             reading=reading)
    return compare_models(models[0], models[1:], TEXTS, labels=LABELS, method=method, k=3, options=options)


@pytest.mark.parametrize(("name", "method", "params"), [("gxe", "grad_x_embedding", {}),
                                                         ("ig", "integrated_gradients", {"n_steps": 4})])
def test_text_frame_equals_the_former_text_comparison(models, name, method, params) -> None:
    frame = _compare(models, method, **params).frame
    assert tuple(frame.columns) == FRAME_COLUMNS
    with np.load(REFERENCE) as ref:
        for key in (k for k in ref.files if k.startswith(f"{name}/")):
            col, want = key.split("/", 1)[1], ref[key]
            if col.endswith("_null_copies"):
                got = np.full((len(frame), 2), np.nan)
                for i, a in enumerate(frame[col]):
                    got[i, : len(a)] = a
            elif want.dtype.kind in "US":
                np.testing.assert_array_equal(frame[col].astype(str).to_numpy(), want, err_msg=col)
                continue
            else:
                got = frame[col].to_numpy(dtype=np.float64, na_value=np.nan)
            if name == "gxe":  # one call, as before: the same numbers
                np.testing.assert_array_equal(got, want, err_msg=col)
            else:  # IG in length buckets: the logits now come from one pass over the batch (float rounding)
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=col)
