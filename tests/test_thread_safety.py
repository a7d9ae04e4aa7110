"""Process-wide registries and caches under concurrent sessions (issue 21).

Streamlit runs every session in its own thread of one process. The races live in cold state (the lazy
torchvision registration, the key index, the first inference twin, the first random-weights copies), so
the heavy checks run in fresh processes (``tests/concurrency_worker.py``).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _python(code_or_args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *code_or_args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_issue_reproduction_parallel_loads_of_lazy_family(tmp_path: Path) -> None:
    """The issue's reproduction in a fresh process: resnet8 and a torchvision resnet18 loaded by 2 threads."""
    import torchvision

    from kdviz.models import create_model

    torch.save(create_model("resnet8", num_classes=10).state_dict(), tmp_path / "resnet8.pth")
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), tmp_path / "resnet18.pth")
    code = (
        "import sys; from concurrent.futures import ThreadPoolExecutor\n"
        "from kdviz.io.checkpoints import load_checkpoint\n"
        f"paths = [{str(tmp_path / 'resnet8.pth')!r}, {str(tmp_path / 'resnet18.pth')!r}] * 2\n"
        "print(' '.join(c.arch for c in ThreadPoolExecutor(2).map(load_checkpoint, paths)))\n"
    )
    done = _python(["-c", code])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["resnet8", "resnet18", "resnet8", "resnet18"]


def test_stress_8_threads_16_checkpoints_identical_to_serial(tmp_path: Path) -> None:
    """8 threads load (architecture guessed), attribute (saliency; IG through the fused twin), predict and
    build random-weights copies for 16 mixed checkpoints: every array equals a serial run's, bit for bit."""
    worker = ["-m", "tests.concurrency_worker"]
    made = _python([*worker, "make", str(tmp_path / "ckpts")])
    assert made.returncode == 0, made.stderr[-2000:]
    start = time.perf_counter()
    for name, threads in (("serial", 1), ("threads", 8)):
        done = _python([*worker, "run", str(tmp_path / "ckpts"), str(tmp_path / f"{name}.npz"), str(threads)])
        assert done.returncode == 0, done.stderr[-3000:]
    elapsed = time.perf_counter() - start
    serial, threaded = np.load(tmp_path / "serial.npz"), np.load(tmp_path / "threads.npz")
    assert sorted(serial.files) == sorted(threaded.files)
    assert len({k.split("/")[0] for k in serial.files}) == 16
    differ = [k for k in serial.files if not np.array_equal(serial[k], threaded[k])]
    assert not differ, f"concurrent results differ from serial ones: {differ}"
    archs = sorted(str(serial[k][0]) for k in serial.files if k.endswith("/meta"))
    assert {"resnet18", "fcn_w16", "MobileNetV2", "shufflenet_v2_x0_5"} <= set(archs)
    print(f"stress test: serial + 8 threads in {elapsed:.1f} s")  # a figure for notes, never asserted (CI load)


def test_seeded_model_is_the_same_from_many_threads() -> None:
    """Seeded builds draw from their own generator: 8 threads at once give the serial weights."""
    from kdviz.models import seeded_model

    jobs = [("resnet8", s) for s in range(4)] + [("fcn_w16", s) for s in range(4)]

    def build(job: tuple[str, int]) -> dict[str, torch.Tensor]:
        arch, seed = job
        return seeded_model(arch, seed=seed, num_classes=10, in_channels=3 if arch == "resnet8" else 1).state_dict()

    serial = [build(j) for j in jobs]
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(build, jobs * 2))
    assert torch.equal(torch.random.get_rng_state(), before)  # the global generator is left alone
    for ref, got in zip(serial * 2, threaded, strict=True):
        assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_seeded_model_matches_manual_seed() -> None:
    """The thread-local generator yields what ``torch.manual_seed`` + ``create_model`` gave (shipped nulls)."""
    from kdviz.models import create_model, seeded_model

    for arch in ("resnet8", "ShuffleV2", "fcn_w32"):
        channels = 1 if arch.startswith("fcn") else 3
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(10_000)
            ref = create_model(arch, num_classes=10, in_channels=channels).state_dict()
        got = seeded_model(arch, seed=10_000, num_classes=10, in_channels=channels).state_dict()
        assert all(torch.equal(ref[k], got[k]) for k in ref), arch


def test_text_null_copies_are_the_same_from_many_threads_and_as_manual_seed() -> None:
    """``random_text_copy`` (the text null's untrained copies) is seeded per thread too, while another thread draws
    from the global generator: 8 threads give the serial weights, which are those ``torch.manual_seed`` gave
    before (so the shipped text zoo's null copies are unchanged)."""
    from transformers import AutoModelForSequenceClassification

    from kdviz.models.hf_text import random_text_copy
    from tests.text_models import tiny_bert

    config = tiny_bert(0).config
    seeds = list(range(10_000, 10_006))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(10_000)
        before = AutoModelForSequenceClassification.from_config(config).state_dict()
    serial = [random_text_copy(config, s).state_dict() for s in seeds]
    assert all(torch.equal(before[k], serial[0][k]) for k in before)
    stop = threading.Event()

    def noise() -> None:  # another session drawing from the global generator meanwhile
        while not stop.is_set():
            torch.rand(64)

    other = threading.Thread(target=noise)
    other.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            threaded = list(pool.map(lambda s: random_text_copy(config, s).state_dict(), seeds * 2))
    finally:
        stop.set()
        other.join()
    for ref, got in zip(serial * 2, threaded, strict=True):
        assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_one_tokenizer_encodes_from_many_threads_as_serially() -> None:
    """Token rationales sessions share the zoo's tokenizers; each call sets the Rust tokenizer's truncation, so
    unlocked calls with different lengths took each other's (about a third differed)."""
    from kdviz.attribution.text import encode_words
    from tests.text_models import tiny_tokenizer

    tok = tiny_tokenizer()
    texts = ["the movie was great and the story is very good fun " * (i % 5 + 1) for i in range(30)]

    def encode(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        enc = encode_words(tok, texts[: i % 30 + 1], max_length=8 + i % 40)
        return enc.input_ids, enc.token_word

    serial = [encode(i) for i in range(160)]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(encode, range(160)))
    differ = [i for i, (a, b) in enumerate(zip(serial, threaded, strict=True))
              if not (torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]))]
    assert not differ, f"{len(differ)} of 160 concurrent encodings differ from serial ones"


def test_trace_gate_keeps_forward_passes_out_while_tracing() -> None:
    """A trace waits for running forward passes, lets no new one in, and gives up after its timeout."""
    from kdviz.attribution.locks import TraceGate

    gate = TraceGate()
    events: list[str] = []
    reader_in, release_reader = threading.Event(), threading.Event()

    def reader() -> None:
        with gate.shared():
            events.append("reader in")
            reader_in.set()
            release_reader.wait(5)
            events.append("reader out")

    t = threading.Thread(target=reader)
    t.start()
    reader_in.wait(5)
    with gate.exclusive(timeout=0.05) as alone:
        assert not alone  # a forward pass is running: the trace gives up rather than wait forever
    release_reader.set()
    t.join(5)
    with gate.exclusive(timeout=1) as alone:
        assert alone
        late = threading.Thread(target=lambda: (gate.shared().__enter__(), events.append("late reader")))
        late.start()
        late.join(0.1)
        assert "late reader" not in events  # blocked while the trace holds the gate
    late.join(5)
    assert events == ["reader in", "reader out", "late reader"]
    with gate.shared(), gate.shared(), gate.exclusive(timeout=1) as alone:  # re-entrant, and upgradable
        assert alone


def test_key_index_follows_the_registry() -> None:
    """An architecture registered after the first guess is in the key index (fresh process: the registry is global)."""
    code = (
        "from torch import nn\n"
        "from kdviz.models import arch_guess, register_model\n"
        "before = arch_guess.key_index()\n"
        "register_model('tiny_late', family='cifar_kd', input_kind='image', default_in_channels=3)(\n"
        "    lambda *, num_classes, in_channels: nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.AdaptiveAvgPool2d(1),\n"
        "                                                     nn.Flatten(), nn.Linear(4, num_classes)))\n"
        "print('tiny_late' in before, 'tiny_late' in arch_guess.key_index())\n"
    )
    done = _python(["-c", code])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("threads", [8])
def test_attribution_of_one_shared_model_from_many_threads(threads: int) -> None:
    """Sessions share one cached model object: concurrent attributions on it equal the serial one."""
    from kdviz.attribution.engine import attribute
    from kdviz.models import seeded_model

    model = seeded_model("resnet8", seed=0, num_classes=10, in_channels=1).eval()
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    ref = attribute(model, x, method="integrated_gradients", target=0, device="cpu", n_steps=32).raw
    with ThreadPoolExecutor(threads) as pool:
        outs = list(pool.map(lambda _: attribute(model, x, method="integrated_gradients", target=0, device="cpu",
                                                 n_steps=32).raw, range(threads)))
    for out in outs:
        np.testing.assert_array_equal(out, ref)
