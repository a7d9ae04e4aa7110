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
# url path -> number of Plotly charts the page draws on the demo image zoo (0: none expected)
PAGES = {"": 0, "models": 0, "attention_maps": 1, "part_focus": 2, "alignment": 3}

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
         "--browser.gatherUsageStats", "false"],
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


def test_every_page_in_chromium(server: str) -> None:
    from playwright.sync_api import sync_playwright

    from kdviz.ui.sets import demo_folder

    has_zoo = (demo_folder("demo-image") / "zoo.json").is_file()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            for path, n_charts in PAGES.items():
                page.goto(f"{server}/{path}", wait_until="domcontentloaded")
                page.wait_for_selector('[data-testid="stSidebar"] [data-testid="stSelectbox"]', timeout=90_000)
                if n_charts and has_zoo:
                    page.wait_for_function(
                        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n_charts}",
                        timeout=120_000,
                    )
                page.wait_for_timeout(500)
                # Streamlit shows a running indicator while the script runs; wait for it to go.
                page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=120_000)
                page.screenshot(path=str(ARTIFACTS / f"page_{path or 'home'}.png"), full_page=True)
                assert page.locator('[data-testid="stException"]').count() == 0, f"exception on /{path}"
                if n_charts and has_zoo:
                    assert page.locator(".js-plotly-plot").count() >= n_charts, path
        finally:
            browser.close()
