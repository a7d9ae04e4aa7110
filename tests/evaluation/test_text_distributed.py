"""``evaluate_text_zoo(cluster=...)`` on a local one-CPU Ray cluster (loopback only): the single-process table and
a shared resume cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from kdviz.evaluation.distributed import ClusterOptions  # noqa: E402
from kdviz.evaluation.text import evaluate_text_zoo  # noqa: E402
from kdviz.io.hf_text import load_text_zoo  # noqa: E402
from tests.evaluation.tiny_text_zoo import SENTENCES, build_tiny_text_zoo  # noqa: E402

pytestmark = pytest.mark.slow  # a Ray cluster and its worker start in ~10 s

LABELS = np.array([1, 0, 0, 1, 0, 0])


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


def test_a_ray_worker_gives_the_single_process_table_and_shares_its_cache(cluster, tmp_path):
    zoo = load_text_zoo(build_tiny_text_zoo(tmp_path / "zoo"))
    kw = {"texts": SENTENCES, "labels": LABELS, "batch_size": 2, "null_copies": 2, "progress_bar": False}
    reference = evaluate_text_zoo(zoo, **kw)
    evaluate_text_zoo(zoo, limit=2, cache_dir=tmp_path / "cache", **kw)  # one batch in this process
    res = evaluate_text_zoo(zoo, cache_dir=tmp_path / "cache", cluster=ClusterOptions(workers=1), **kw)
    assert res.run["batches_resumed"] == 1 and res.run["batches_computed"] == 2
    assert res.run["cluster"]["workers"] == 1 and res.run["cluster"]["workers_lost"] == 0
    assert res.settings == reference.settings
    copies = [c for c in res.frame if c.endswith("_null_copies")]
    pd.testing.assert_frame_equal(res.frame.drop(columns=copies), reference.frame.drop(columns=copies),
                                  check_exact=False, atol=1e-6)
    students = (res.frame["role"] == "student").to_numpy()
    for c in copies:
        np.testing.assert_allclose(np.stack(res.frame.loc[students, c].to_numpy()),
                                   np.stack(reference.frame.loc[students, c].to_numpy()), atol=1e-6)
    pd.testing.assert_frame_equal(res.summary, reference.summary, check_exact=False, atol=1e-6)
