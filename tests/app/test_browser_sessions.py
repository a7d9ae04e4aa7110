"""Three browser sessions upload different sets at once (same file names, different contents): none sees another's
files, errors or results (issue 21). The app runs as ``make run`` starts it; Chromium drives three contexts.

Session i uploads ``teacher.pth`` / ``student_alpha0.5.pth`` of its own architecture whose bias makes every
prediction class ``favourite[i]``, and a CIFAR-10 ``test_batch.bin`` of its own length (session 2's is damaged:
its error must stay in session 2).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from tests.app.test_browser import (  # noqa: F401 - the module's app fixture
    ARTIFACTS,
    GRID,
    _settle,
    main_text,
    server,
    settled_after_uploads,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

SESSIONS = (("resnet8", 3, 4), ("resnet14", 5, 6), ("resnet20", 7, None))  # arch, favourite class, records


def _checkpoint(arch: str, favourite: int) -> bytes:
    from kdviz.models import seeded_model

    state = seeded_model(arch, seed=favourite, num_classes=10, in_channels=3).state_dict()
    state["fc.bias"] = torch.zeros(10)
    state["fc.bias"][favourite] = 1e4
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _cifar_bin(n: int | None) -> bytes:
    rng = np.random.default_rng(0)
    if n is None:
        return bytes(3073 * 2 + 11)  # not whole records
    return b"".join(bytes([i % 10]) + rng.integers(0, 256, 3072, dtype=np.uint8).tobytes() for i in range(n))




def test_three_sessions_upload_at_once(server, tmp_path) -> None:  # noqa: F811 - the fixture imported above
    from playwright.sync_api import sync_playwright

    from tests.app.test_browser import ARGS, CHROMIUM

    files = []
    for i, (arch, favourite, n) in enumerate(SESSIONS):
        folder = tmp_path / f"s{i}"
        folder.mkdir()
        (folder / "teacher.pth").write_bytes(_checkpoint(arch, favourite))
        (folder / "student_alpha0.5.pth").write_bytes(_checkpoint(arch, favourite))
        (folder / "test_batch.bin").write_bytes(_cifar_bin(n))
        files.append(folder)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            pages = [browser.new_context(viewport={"width": 1500, "height": 1000}).new_page() for _ in SESSIONS]
            for page in pages:
                page.goto(f"{server.url}/models", wait_until="domcontentloaded")
            for page in pages:
                page.wait_for_selector("h1:has-text('Models')", timeout=180_000)
                _settle(page)
            uploads = [page.locator('[data-testid="stFileUploader"] input[type="file"]') for page in pages]
            for up, folder in zip(uploads, files, strict=True):  # all three before any settles: concurrent runs
                up.nth(0).set_input_files([str(folder / "teacher.pth"), str(folder / "student_alpha0.5.pth")])
            for page in pages:
                settled_after_uploads(page, expect="Uploaded set: teacher")
            for up, folder in zip(uploads, files, strict=True):
                up.nth(1).set_input_files([str(folder / "test_batch.bin")])
            for page in pages:
                settled_after_uploads(page, expect="input(s) loaded")  # or session 2's error
            bodies = [main_text(page) for page in pages]  # the sidebar lists the demo zoos' models
            for i, (page, body) in enumerate(zip(pages, bodies, strict=True)):
                page.screenshot(path=str(ARTIFACTS / f"three_sessions_{i}.png"), full_page=True)
                arch, _favourite, n = SESSIONS[i]
                others = [a for j, (a, _, _) in enumerate(SESSIONS) if j != i]
                assert arch in body and not any(o in body for o in others), (i, body[:2000])
                errors = page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
                if n is None:
                    assert any("not a whole number" in e for e in errors), (i, errors)
                else:
                    assert f"{n} input(s) loaded" in body, (i, body[:2000])
                    assert not any("whole number" in e for e in errors), (i, errors)
                    assert not any(f"{m} input(s) loaded" in body for _, _, m in SESSIONS if m and m != n)
            for i in (0, 1):  # the sessions with data: their own set, their own predictions
                pages[i].get_by_role("button", name="Use the uploaded set").click()
                _settle(pages[i])
            for i in (0, 1):  # in-app navigation: a new address would start a new session
                pages[i].locator('[data-testid="stSidebarNav"] a', has_text="Attention maps").first.click()
            for i in (0, 1):
                pages[i].wait_for_function(GRID, timeout=300_000)
                _settle(pages[i])
                text = main_text(pages[i]) + pages[i].evaluate(
                    "() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => JSON.stringify("
                    "g.layout.annotations || []) + (g.layout.title && g.layout.title.text || '')).join(' ')")
                pages[i].screenshot(path=str(ARTIFACTS / f"three_sessions_grid_{i}.png"))
                assert "Demo:" not in text and SESSIONS[i][0] in text and SESSIONS[1 - i][0] not in text, (i, text[:3000])
        finally:
            browser.close()
