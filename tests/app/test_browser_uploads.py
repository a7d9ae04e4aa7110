"""Real browser, the app as `make run` starts it: the Models page's uploads of issues 20 and 21.

* "Save this set as a zoo" downloads a zip that the zoo loader reads and that the page's own zipped-zoo upload
  takes back;
* CIFAR-10 test sets uploaded as the python batches (``test_batch`` + ``batches.meta``, no extension) and as a
  ``.bin`` without its names file, with unnamed CIFAR-10 checkpoints: inputs shown, labels comparable;
* a tiny random BERT (``save_pretrained`` + tokenizer, zipped) uploaded there is a student on the Token rationales
  page with the α of its name, next to the shipped text zoo, for a typed sentence.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.app.test_browser import (  # noqa: F401 - the module's server
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    _settle,
    main_text,
    server,
    settled_after_uploads,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]


def _errors(page) -> list[str]:
    return page.locator('[data-testid="stAlertContentError"]').all_inner_texts()


def _open_models(page, url: str) -> None:
    page.goto(f"{url}/models", wait_until="domcontentloaded")
    page.wait_for_selector("h1:has-text('Models')", timeout=180_000)
    settled_after_uploads(page)


def test_save_the_demo_set_as_a_zoo_and_upload_it_back(server, tmp_path) -> None:  # noqa: F811 - fixture
    from playwright.sync_api import sync_playwright

    from kdviz.io.safezip import extract_zip
    from kdviz.io.zoo.manifest import load_zoo
    from kdviz.ui.sets import demo_folder

    if not (demo_folder("demo-image") / "zoo.json").is_file():
        pytest.skip("the demo image zoo is not built")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(viewport={"width": 1500, "height": 1400}, accept_downloads=True).new_page()
            _open_models(page, server.url)
            with page.expect_download(timeout=300_000) as info:
                page.get_by_role("button", name="Save this set as a zoo (.zip)").first.click()
            saved = tmp_path / "saved.zip"
            info.value.save_as(saved)
            names = zipfile.ZipFile(saved).namelist()
            folder = names[0].split("/")[0]
            assert f"{folder}/zoo.json" in names, names
            extract_zip(saved.read_bytes(), tmp_path / "x")
            zoo = load_zoo(tmp_path / "x" / folder)
            original = load_zoo(demo_folder("demo-image"))
            assert [(m.id, m.role, m.arch, m.alpha) for m in zoo.models] == [
                (m.id, m.role, m.arch, m.alpha) for m in (original.teacher, *original.students)]
            assert zoo.dataset == original.dataset
            up = page.locator('[data-testid="stFileUploader"] input[type="file"]')
            up.nth(0).set_input_files([str(saved)])
            settled_after_uploads(page, expect=f"zoo with {len(zoo.models)} models")
            page.wait_for_function(f"document.body.innerText.includes('zoo with {len(zoo.models)} models')",
                                   timeout=300_000)
            assert not _errors(page), _errors(page)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "models_save_zoo.png"), full_page=True)
        finally:
            browser.close()


def _checkpoint(arch: str, seed: int) -> bytes:
    from kdviz.models import seeded_model

    buf = io.BytesIO()
    torch.save(seeded_model(arch, seed=seed, num_classes=10, in_channels=3).state_dict(), buf)
    return buf.getvalue()


def test_cifar_python_and_bin_with_unnamed_cifar10_models(server, tmp_path) -> None:  # noqa: F811 - fixture
    from playwright.sync_api import sync_playwright

    from kdviz.io.class_names import CIFAR10

    rng = np.random.default_rng(0)
    n = 7
    batch = {"batch_label": "testing batch 1 of 1", "labels": [i % 10 for i in range(n)],
             "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "filenames": [f"{i}.png" for i in range(n)]}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({"label_names": list(CIFAR10)}, protocol=2))
    (tmp_path / "test_batch.bin").write_bytes(b"".join(bytes([i % 10]) + batch["data"][i].tobytes()
                                                       for i in range(5)))
    (tmp_path / "teacher.pth").write_bytes(_checkpoint("resnet20", 1))
    (tmp_path / "student_alpha0.5.pth").write_bytes(_checkpoint("resnet8", 2))
    checkpoints = [str(tmp_path / "teacher.pth"), str(tmp_path / "student_alpha0.5.pth")]
    buf = io.BytesIO()  # .npz: x as raw pixels (N, H, W, C), y, and the class names (no pickle)
    np.savez(buf, x=batch["data"][:6].reshape(6, 3, 32, 32).transpose(0, 2, 3, 1), y=np.arange(6),
             class_names=np.asarray(CIFAR10))
    (tmp_path / "six.npz").write_bytes(buf.getvalue())
    cases = ((["test_batch", "batches.meta"], n, "models_cifar_python.png"),
             (["test_batch.bin"], 5, "models_cifar_bin.png"),  # the .bin without its batches.meta.txt
             (["six.npz"], 6, "models_npz.png"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for data, count, shot in cases:  # a session each: an uploader adds files to those it holds
                page = browser.new_context(viewport={"width": 1500, "height": 2600}).new_page()
                _open_models(page, server.url)
                up = page.locator('[data-testid="stFileUploader"] input[type="file"]')
                up.nth(0).set_input_files(checkpoints)
                settled_after_uploads(page, expect="Uploaded set: teacher")
                up.nth(1).set_input_files([str(tmp_path / f) for f in data])
                settled_after_uploads(page, expect="input(s) loaded")
                body = main_text(page)
                assert f"{count} input(s) loaded" in body and "not comparable" not in body, body[-3000:]
                assert not _errors(page), _errors(page)
                assert ("named as in CIFAR-10" in body) == (data == ["test_batch.bin"]), body[-3000:]
                assert "Uploaded set: teacher teacher and 1 student(s)." in body
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
        finally:
            browser.close()


def test_uploaded_text_model_on_token_rationales(server, tmp_path) -> None:  # noqa: F811 - fixture
    from playwright.sync_api import sync_playwright

    from tests.text_models import save_tiny

    if not (ROOT / "assets" / "zoo" / "rotten-tomatoes" / "zoo.json").is_file():
        pytest.skip("the text zoo is not built")
    folder = save_tiny(tmp_path / "tiny", seed=5)
    zipped = tmp_path / "tiny_bert_alpha0.5.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f"tiny/{f.name}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 2000})
            _open_models(page, server.url)
            up = page.locator('[data-testid="stFileUploader"] input[type="file"]')
            up.nth(0).set_input_files([str(zipped)])
            settled_after_uploads(page, expect="text model(s) ready")
            (tmp_path / "reviews.csv").write_text('text,label\n"Witty, warm and wise.",fresh\nA dull plot.,rotten\n')
            up.nth(1).set_input_files([str(tmp_path / "reviews.csv")])  # sentences: for Token rationales
            settled_after_uploads(page, expect="sentence(s) ready")
            page.wait_for_function("document.body.innerText.includes('1 text model(s) ready')", timeout=300_000)
            assert "2 sentence(s) ready for the Token rationales page" in main_text(page)
            assert "bert-L2-H32" in main_text(page) and not _errors(page), _errors(page)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "models_text_upload.png"), full_page=True)
            # in-app navigation keeps the session (a new address would start a new one)
            page.locator('[data-testid="stSidebarNav"] a', has_text="Token rationales").first.click()
            page.wait_for_selector("h1:has-text('Token rationales')", timeout=180_000)
            _settle(page)
            box = page.locator('[data-testid="stMain"] [data-testid="stTextInput"] input').first
            box.wait_for(timeout=300_000)
            box.fill("The acting is wooden but the story is witty.")
            box.press("Enter")
            page.wait_for_function("document.body.innerText.includes('wooden') && "
                                   "document.querySelectorAll('span[title]').length >= 9 * 9", timeout=300_000)
            _settle(page)
            rows = page.locator("div[data-testid='stMarkdownContainer']:has(span[title])")
            assert rows.count() == 9  # the text zoo's teacher and 7 students, and the upload
            body = page.inner_text("body")
            assert "bert-L2-H32 (upload) · α=0.5" in body, body[:3000]
            assert rows.last.locator("span[title]").count() == 9  # every word of the typed sentence
            page.screenshot(path=str(ARTIFACTS / "token_rationales_upload.png"), full_page=True)
            assert "Uploaded on the Models page" in body  # the sentences uploaded there are a source here
        finally:
            browser.close()
