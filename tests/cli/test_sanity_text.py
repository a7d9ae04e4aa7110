"""``kdviz sanity`` on a text zoo (tiny saved BERTs): the table's numbers against the library called directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdviz.analysis.text_sanity import PASS_MAX_RHO, text_randomisation_test
from kdviz.cli import main
from kdviz.evaluation.text import evaluate_text_zoo, text_test_set
from kdviz.io.hf_text import load_text_zoo
from tests.evaluation.tiny_text_zoo import build_tiny_text_zoo


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return build_tiny_text_zoo(tmp_path_factory.mktemp("tiny-text"))


def test_text_sanity_table_equals_the_library(zoo, tmp_path, capsys):
    out = tmp_path / "sanity.csv"
    rc = main(["sanity", "--zoo", str(zoo), "--methods", "grad_x_embedding,ig", "--steps", "8", "--n", "4",
               "--null-copies", "2", "--students", "l1_a0.5,l2h16_a0.5", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "teacher_randomised_rho" in printed and "integrated_gradients" in printed
    table = pd.read_csv(out).set_index("method")
    assert list(table.index) == ["grad_x_embedding", "integrated_gradients"]
    loaded = load_text_zoo(zoo)
    texts = text_test_set(loaded)[0][:4]
    teacher = loaded.teacher.text
    for method, params in (("grad_x_embedding", {}), ("integrated_gradients", {"n_steps": 8})):
        direct = text_randomisation_test(teacher.model, teacher.tokenizer, texts, method=method, seeds=(20_000,),
                                         special_ids=teacher.special_ids, max_length=32, **params)
        row = table.loc[method]
        assert row["teacher_randomised_rho"] == pytest.approx(direct.full_rho, abs=1e-9)
        assert row["embeddings_kept_rho"] == pytest.approx(direct.embeddings_kept_rho, abs=1e-9)
        assert row["verdict"] == ("passes" if direct.full_rho <= PASS_MAX_RHO else "fails")
        summary = evaluate_text_zoo(loaded, method=method, method_params=params, limit=4, null_copies=2,
                                    progress_bar=False).summary.set_index("model_id").loc[["l1_a0.5", "l2h16_a0.5"]]
        assert row["students"] == 2
        assert row["students_rho"] == pytest.approx(np.nanmean(summary["attention_rho"]), abs=1e-9)
        assert row["null_rho"] == pytest.approx(np.nanmean(summary["attention_rho_null"]), abs=1e-9)
        assert row["students_excess"] == pytest.approx(np.nanmean(summary["attention_rho_excess"]), abs=1e-9)
        assert row["students_above_null"] == int((summary["attention_rho_p"] <= 0.05).sum())


@pytest.mark.parametrize("extra, message", [
    (["--write"], "--write records a recommendation for image and series zoos"),
    (["--parts", "slic:50"], "parts are its words"),
    (["--methods", "grad_cam"], "is not a text method"),
    (["--students", "nobody"], "no student ['nobody']"),
])
def test_text_sanity_refusals(zoo, extra, message):
    with pytest.raises(SystemExit) as err:
        main(["sanity", "--zoo", str(zoo), "--n", "2", "--null-copies", "0", "--methods", "grad_x_embedding",
              *extra])
    assert message in str(err.value)
