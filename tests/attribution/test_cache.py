"""The disk attribution cache (kdviz.attribution.cache): keys, round trips, LRU bound, damage, threads, processes."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.attribution.cache import AttributionCache, array_digest, cached_attribute_fn, weights_key
from kdviz.attribution.engine import attribute
from kdviz.models import seeded_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return seeded_model("resnet8", seed=0, num_classes=10, in_channels=1).eval()


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)


def _key(**over: object) -> str:
    fields = dict(weights="w", inputs="i", method="integrated_gradients", params={"n_steps": 8}, targets=[1, 2],
                  precision="fp32", device="cpu")
    return AttributionCache.key(**{**fields, **over})


def test_every_field_is_in_the_key() -> None:
    base = _key()
    assert _key() == base and _key(device="cpu:0") == base  # the device *type* counts
    for change in (dict(weights="v"), dict(inputs="j"), dict(method="saliency"), dict(params={"n_steps": 16}),
                   dict(targets=[1, 3]), dict(precision="bf16"), dict(device="cuda")):
        assert _key(**change) != base, change


def test_round_trip_equals_the_computed_attribution(tmp_path: Path, model, x) -> None:
    cache = AttributionCache(tmp_path)
    computed = attribute(model, x, method="integrated_gradients", target=[1, 2, 3], device="cpu", n_steps=8)
    key = _key(weights=weights_key(model), inputs=array_digest(x))
    cache.put(key, computed)
    got = cache.get(key)
    for name in ("raw", "importance", "signed", "target", "delta"):
        np.testing.assert_array_equal(getattr(got, name), getattr(computed, name))
    assert got.params == computed.params and got.method == computed.method
    assert cache.stats.hits == 1 and cache.stats.writes == 1
    assert cache.get(_key(weights="other")) is None and cache.stats.misses == 1


def test_weights_key_follows_the_weights(model) -> None:
    twin = seeded_model("resnet8", seed=0, num_classes=10, in_channels=1)
    other = seeded_model("resnet8", seed=1, num_classes=10, in_channels=1)
    assert weights_key(twin) == weights_key(model) != weights_key(other)
    before = weights_key(twin)
    with torch.no_grad():
        next(twin.parameters()).add_(1.0)  # changed in place: the key must change
    assert weights_key(twin) != before


def test_lru_bound_and_refresh(tmp_path: Path, model, x) -> None:
    one = attribute(model, x, method="saliency", target=0, device="cpu")
    probe = AttributionCache(tmp_path / "probe")
    probe.put("00probe", one)
    size = probe.size_bytes()
    cache = AttributionCache(tmp_path / "c", max_bytes=int(size * 3.5))
    keys = [f"{i:02d}" + "a" * 62 for i in range(3)]
    for i, key in enumerate(keys):
        cache.put(key, one)
        stamp = time.time() - 100 + i
        import os

        os.utime(cache.path(key), (stamp, stamp))
    assert cache.get(keys[0]) is not None  # a hit makes the oldest the newest
    cache.put("99" + "b" * 62, one)
    cache.put("98" + "c" * 62, one)  # over 3.5 entries: back to ≤ 90% by removing the least recently used
    assert cache.get(keys[1]) is None and cache.get(keys[0]) is not None
    assert cache.size_bytes() <= cache.max_bytes
    assert cache.stats.evicted >= 1


def test_damaged_or_pickled_entries_are_misses_and_removed(tmp_path: Path, model, x) -> None:
    cache = AttributionCache(tmp_path)
    key = "ab" + "0" * 62
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_bytes(b"PK\x03\x04 truncated")
    assert cache.get(key) is None and not cache.path(key).exists()
    np.savez(cache.path(key), raw=np.array([object()], dtype=object), meta=np.zeros(1, np.uint8))
    assert cache.get(key) is None and not cache.path(key).exists()  # allow_pickle=False: never unpickled


def test_safe_to_delete_while_in_use(tmp_path: Path, model, x) -> None:
    import shutil

    cache = AttributionCache(tmp_path / "c")
    one = attribute(model, x, method="saliency", target=0, device="cpu")
    cache.put("cd" + "1" * 62, one)
    shutil.rmtree(tmp_path / "c")
    assert cache.get("cd" + "1" * 62) is None
    cache.put("cd" + "1" * 62, one)
    assert cache.get("cd" + "1" * 62) is not None


def test_threads_share_entries(tmp_path: Path, model, x) -> None:
    cache = AttributionCache(tmp_path)
    fn = cached_attribute_fn("integrated_gradients", {"n_steps": 8}, cache=cache)

    class Entry:
        module = model

    ref = attribute(model, x, method="integrated_gradients", target=np.array([0, 1, 2]), device="cpu", n_steps=8)
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda _: fn(Entry, x, np.array([0, 1, 2]), "cpu"), range(16)))
    for out in outs:
        np.testing.assert_array_equal(out.raw, ref.raw)
    assert cache.stats.hits + cache.stats.misses == 16 and len(cache.entries()) == 1


def test_processes_write_the_same_entries_at_once(tmp_path: Path) -> None:
    """Two processes fill one cache at the same time; a third reads every entry whole."""
    code = (
        "import sys, numpy as np\n"
        "from kdviz.attribution.cache import AttributionCache\n"
        "from kdviz.attribution.engine import attribute\n"
        "from kdviz.models import seeded_model\n"
        "m = seeded_model('resnet8', seed=0, num_classes=10, in_channels=1).eval()\n"
        "c = AttributionCache(sys.argv[1])\n"
        "for i in range(12):\n"
        "    x = np.full((1, 1, 28, 28), i, np.float32)\n"
        "    c.get_or_compute(f'{i:02d}' + 'e' * 62, lambda: attribute(m, x, method='saliency', target=0, device='cpu'))\n"
        "print(c.stats.hits + c.stats.misses)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        assert out.split() == ["12"]
    reader = AttributionCache(tmp_path)
    assert all(reader.get(f"{i:02d}" + "e" * 62) is not None for i in range(12))
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_compare_models_with_the_disk_cache(tmp_path: Path, model, x) -> None:
    from kdviz.analysis.compare import CompareOptions, Hooks, NullOptions, compare_models

    class Entry:
        def __init__(self, mid: str, seed: int, role: str) -> None:
            self.id, self.arch, self.alpha, self.role, self.method = mid, "resnet8", 1.0, role, "kd"
            self.module = seeded_model("resnet8", seed=seed, num_classes=10, in_channels=1).eval()

    cache = AttributionCache(tmp_path)
    teacher, student = Entry("t", 0, "teacher"), Entry("s", 1, "student")
    kwargs = dict(method="saliency", parts="grid:4x4", k=3)

    def options(attribute_fn=None) -> CompareOptions:
        return CompareOptions(device="cpu", null=NullOptions(copies=2), hooks=Hooks(attribute_fn=attribute_fn))

    plain = compare_models(teacher, [student], x, **kwargs, options=options())
    first = compare_models(teacher, [student], x, **kwargs,
                           options=options(cached_attribute_fn("saliency", {}, cache=cache)))
    second = compare_models(teacher, [student], x, **kwargs,
                            options=options(cached_attribute_fn("saliency", {}, cache=cache)))
    assert cache.stats.writes == 4 and cache.stats.hits == 4  # teacher, student, 2 random copies
    cols = ["attention_rho", "topk_overlap", "attention_rho_null"]
    for frame in (first.frame, second.frame):
        np.testing.assert_array_equal(frame[cols].to_numpy(), plain.frame[cols].to_numpy())


def test_logits_entries(tmp_path: Path, model, x) -> None:
    from kdviz.attribution.engine import predict_logits

    cache = AttributionCache(tmp_path)
    key = cache.logits_key(weights=weights_key(model), inputs=array_digest(x), device="cpu")
    assert key != cache.logits_key(weights=weights_key(model), inputs=array_digest(x[:2]), device="cpu")
    first = cache.logits(key, lambda: predict_logits(model, x, device="cpu"))
    again = cache.logits(key, lambda: pytest.fail("recomputed"))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, predict_logits(model, x, device="cpu"))
    assert (cache.stats.misses, cache.stats.hits, cache.stats.writes) == (1, 1, 1)
    with pytest.raises(RuntimeError):  # a failing model is never cached
        cache.logits("ff" + "0" * 62, lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert not cache.path("ff" + "0" * 62).exists()
