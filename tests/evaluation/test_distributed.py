"""``evaluate_zoo(cluster=...)`` on a local 2-worker Ray cluster (loopback only): the single-process table,
a shared resume cache, and a worker killed mid-run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from kdviz.evaluation import evaluate as ev  # noqa: E402
from kdviz.evaluation.distributed import ClusterOptions, RayEvaluator  # noqa: E402

pytestmark = pytest.mark.slow  # a Ray cluster and its workers start in ~10 s on an idle 2-core machine

ROOT = Path(__file__).resolve().parents[2]
FAST = {"method": "ig", "method_params": {"n_steps": 8}, "parts": "segments:10", "k": 3, "device": "cpu"}


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def demo():
    from kdviz.io.builtin_datasets import load_dataset
    from kdviz.io.zoo.manifest import load_zoo

    zoo = load_zoo(ROOT / "assets" / "zoo" / "gunpoint")
    return zoo, load_dataset(zoo.dataset)


@pytest.fixture(scope="module")
def reference(demo):
    zoo, data = demo
    return ev.evaluate_zoo(zoo, dataset=data, limit=5, batch_size=2, progress_bar=False, **FAST)


def _same_table(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert list(zip(got["model_id"], got["input_id"], strict=True)) == list(
        zip(want["model_id"], want["input_id"], strict=True))  # order exact
    pd.testing.assert_frame_equal(got, want, check_exact=False, atol=1e-5, rtol=1e-4)


def test_two_workers_give_the_single_process_table_and_share_its_cache(cluster, demo, reference, tmp_path):
    zoo, data = demo
    # a single process finishes the first batch, then the cluster resumes from the same cache
    ev.evaluate_zoo(zoo, dataset=data, limit=2, batch_size=2, cache_dir=tmp_path, progress_bar=False, **FAST)
    seen: list[ev.EvalProgress] = []
    res = ev.evaluate_zoo(zoo, dataset=data, limit=5, batch_size=2, cache_dir=tmp_path, progress=seen.append,
                          progress_bar=False, cluster=ClusterOptions(workers=2), **FAST)
    _same_table(res.frame, reference.frame)
    assert res.settings == reference.settings
    assert res.run["batches_resumed"] == 1 and res.run["batches_computed"] == 2
    assert res.run["cluster"]["workers"] == 2 and res.run["cluster"]["workers_lost"] == 0
    assert sorted(p.batch for p in seen) == [0, 1, 2] and seen[-1].fraction == 1.0
    pd.testing.assert_frame_equal(res.summary, reference.summary, check_exact=False, atol=1e-5, rtol=1e-4)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(cluster, demo, reference):
    zoo, data = demo
    killed: list[str] = []
    with RayEvaluator(ClusterOptions(workers=2)) as pool:

        def kill_a_busy_worker(p: ev.EvalProgress) -> None:
            if not killed:  # the batch sent last (just now, when this one came back) cannot have finished yet
                _batch, actor = pool.busy_workers()[-1]
                ray.kill(actor)
                killed.append("yes")

        # 3 batches on 2 workers: when the first is reported, both workers hold one (the reference's batches,
        # so the numbers are computed on the same inputs together)
        res = ev.evaluate_zoo(zoo, dataset=data, limit=5, batch_size=2, progress=kill_a_busy_worker,
                              progress_bar=False, cluster=pool, **FAST)
        assert pool.workers_lost == 1 and len(pool.retried_batches) == 1
    assert killed and res.run["cluster"]["workers_lost"] == 1
    rows = list(zip(res.frame["model_id"], res.frame["input_id"], strict=True))
    assert len(rows) == len(set(rows)) == len(zoo.models) * 5
    _same_table(res.frame, reference.frame)


def test_a_lazy_test_set_is_decoded_one_batch_at_a_time_for_the_workers(cluster, demo, reference):
    """The driver sends each worker its batch's slice: a file-based set (``LazyImages``) is never decoded whole."""
    from kdviz.io.user_datasets import LazyImages

    zoo, data = demo
    x = data.x_test[:5]
    slices: list[tuple[int, int]] = []

    def load(lo: int, hi: int):
        slices.append((lo, hi))
        return x[lo:hi]

    lazy = type("Lazy", (), {"name": data.name, "x_test": LazyImages(len(x), x.shape[1:], load),
                              "y_test": data.y_test[:5]})()
    res = ev.evaluate_zoo(zoo, dataset=lazy, batch_size=2, progress_bar=False, cluster=ClusterOptions(workers=2),
                          **FAST)
    assert set(slices) == {(0, 2), (2, 4), (4, 5)}  # batches only (the null's extension reads them again)
    _same_table(res.frame, reference.frame)
