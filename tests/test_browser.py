"""Real browser: `streamlit run app.py` headless, every page opened in Chromium through Playwright.

Needs Debian's /usr/bin/chromium (Playwright's own download does not work offline). Skipped when it is
missing, unless the environment variable CI is set (then it fails). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
# navigation label -> (screenshot name, Plotly charts the page draws on the demo image zoo)
PAGES = {"Home": ("home", 0), "Models": ("models", 0), "Attention maps": ("attention_maps", 1),
         "Part focus": ("part_focus", 2), "Alignment": ("alignment", 3), "Temporal saliency": ("temporal_saliency", 0)}

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (CI installs chromium: apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    pytest.importorskip("playwright.sync_api")
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "streamlit.log", "w")  # noqa: SIM115 - closed in the finaliser below
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.terminate()
        pytest.fail("streamlit did not start within 60 s; see test-artifacts/streamlit.log")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _settle(page) -> None:
    """Wait until Streamlit has finished running the script (its status widget disappears)."""
    page.wait_for_timeout(300)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=180_000)


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the sidebar select box labelled ``label``."""
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text=label)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    _settle(page)


def test_every_page_in_chromium(server: str) -> None:
    from playwright.sync_api import sync_playwright

    from kdviz.ui.sets import demo_folder

    has_zoo = (demo_folder("demo-image") / "zoo.json").is_file()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        try:
            # A deep link as the very first request goes through app.py (navigation, wide layout) and back.
            page.goto(f"{server}/models", wait_until="domcontentloaded")
            page.wait_for_selector("h1:has-text('Models')", timeout=90_000)
            page.wait_for_selector('[data-testid="stSidebarNav"] a:has-text("Attention maps")', timeout=60_000)
            assert page.locator('[data-testid="stSidebarNav"] a').filter(has_text="app").count() == 0
            start = time.monotonic()
            page.goto(server, wait_until="domcontentloaded")
            page.wait_for_selector("h1", timeout=60_000)
            (ARTIFACTS / "first_page_seconds.txt").write_text(f"{time.monotonic() - start:.2f}\n")
            page.wait_for_selector('[data-testid="stSidebar"] [data-testid="stSelectbox"]', timeout=90_000)
            _settle(page)
            _choose(page, "Method", "Saliency")  # cheap method: the test checks rendering, not speed
            for label, (name, n_charts) in PAGES.items():
                # Navigate inside the app (not page.goto), so the session and its sidebar choices persist.
                page.locator('[data-testid="stSidebarNav"] a').filter(has_text=label).first.click()
                _settle(page)
                if n_charts and has_zoo:
                    page.wait_for_function(
                        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n_charts}",
                        timeout=180_000,
                    )
                    page.wait_for_timeout(500)
                page.screenshot(path=str(ARTIFACTS / f"page_{name}.png"), full_page=True)
                assert page.locator('[data-testid="stException"]').count() == 0, f"exception on {label}"
                if n_charts and has_zoo:
                    assert page.locator(".js-plotly-plot").count() >= n_charts, label
        finally:
            browser.close()
