"""Shared fixtures for the UI tests: cheap, non-autouse; models are built once per module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Hermetic tests: no disk attribution cache (kdviz.attribution.cache) shared with the user or between runs; the
# cache's own tests pass a tmp folder. Apps started by browser tests inherit this.
os.environ["KDVIZ_CACHE_DIR"] = "off"

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


@pytest.fixture(scope="session")
def require_zoo():
    """``require_zoo(key)`` skips when a demo zoo is not built (it ships in assets/zoo; KDVIZ_DEMO_ZOOS can
    point elsewhere)."""

    def check(key: str) -> None:
        from kdviz.ui.sets import demo_folder

        if not (demo_folder(key) / "zoo.json").is_file():
            pytest.skip(f"demo zoo {demo_folder(key)} not built")

    return check


@pytest.fixture(scope="module")
def tiny_image_set():
    """A random 3-model image set (CIFAR ResNets on 8 MNIST digits) as the dashboard's ModelSet."""
    import torch

    from kdviz.io.builtin_datasets import load_dataset
    from kdviz.models import create_model
    from kdviz.ui.sets import InputPool, ModelSet, SetModel

    torch.manual_seed(0)
    ds = load_dataset("mnist")
    specs = [("resnet14", None, "teacher"), ("resnet8", 1.0, "student"), ("resnet8", 0.1, "student")]
    models = tuple(
        SetModel(f"{arch}_{role}_{alpha}", arch, alpha, create_model(arch, num_classes=10, in_channels=1).eval(),
                 role, "kd", f"tiny{i}", 0, None)
        for i, (arch, alpha, role) in enumerate(specs)
    )
    pool = InputPool(ds.x_test[:8], ds.y_test[:8], tuple(f"test #{i}" for i in range(8)))
    return ModelSet("uploaded", "tiny", "image", models, (1, 28, 28), ds.mean, ds.std, ds.class_names, pool)


@pytest.fixture(scope="session")
def app_path() -> str:
    """Path of the dashboard's entry file, for ``AppTest.from_file``."""
    return APP


@pytest.fixture(scope="session")
def gunpoint_zoo_zip(require_zoo) -> bytes:
    """The GunPoint demo zoo (zoo.json + safetensors) zipped under ``gunpoint/``, as a user uploads it."""
    import io
    import zipfile

    from kdviz.ui.sets import demo_folder

    require_zoo("demo-series")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(demo_folder("demo-series").iterdir()):
            if path.suffix in (".json", ".safetensors"):
                zf.write(path, f"gunpoint/{path.name}")
    return buf.getvalue()
