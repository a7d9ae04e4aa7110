"""Real browser: the Token rationales page on the shipped text zoo, a typed sentence, one row per model."""

from __future__ import annotations

import pytest

from tests.app.test_browser import ARGS, ARTIFACTS, CHROMIUM, _settle, server  # noqa: F401 - the module's server

pytestmark = pytest.mark.browser


def test_token_rationales_rows_in_the_browser(server):  # noqa: F811 - pytest fixture
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        page.goto(f"{server.url}/token_rationales?tr_method=grad_x_embedding", timeout=120_000)
        # the text box itself (the radio above it is labelled "Sentence" too, and may be drawn first)
        box = page.locator('[data-testid="stMain"] [data-testid="stTextInput"] input').first
        box.wait_for(timeout=180_000)
        box.fill("The acting is wooden but the score is wonderful.")
        box.press("Enter")
        page.wait_for_function("document.body.innerText.includes('wonderful') && "
                               "document.querySelectorAll('span[title]').length >= 8 * 9", timeout=180_000)
        _settle(page)
        rows = page.locator("div[data-testid='stMarkdownContainer']:has(span[title])")
        assert rows.count() == 8
        assert rows.first.locator("span[style*='border-bottom']").count() == 5  # the teacher's top-5 words
        assert "+rationale" in page.inner_text("body")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "token_rationales.png"), full_page=True)
        browser.close()


def test_token_rationales_dataset_view_in_the_browser(server):  # noqa: F811 - pytest fixture
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        page.goto(f"{server.url}/token_rationales?tr_method=grad_x_embedding&tr_n=8&tr_null=1", timeout=120_000)
        page.wait_for_function("document.querySelectorAll('span[title]').length > 0", timeout=180_000)
        page.get_by_text("Compute", exact=True).click()
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=180_000)
        _settle(page)
        assert page.locator(".js-plotly-plot").count() == 3  # top-5 overlap, rho, VADER share
        assert "top-5 overlap with the teacher" in page.inner_text("body")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "token_rationales_dataset.png"), full_page=True)
        browser.close()
