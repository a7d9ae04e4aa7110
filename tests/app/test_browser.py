"""Real browser: the app as `make run` starts it (`streamlit run app.py` via kdviz.ui.launch), headless,
every page opened in Chromium through Playwright.

Needs Debian's /usr/bin/chromium (Playwright's own download does not work offline). Skipped when it is
missing, unless the environment variable CI is set (then it fails). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
# navigation label -> (screenshot name, Plotly charts the page draws on the demo image zoo)
PAGES = {"Home": ("home", 0), "Models": ("models", 0), "Attention maps": ("attention_maps", 1),
         "Part focus": ("part_focus", 2), "Alignment": ("alignment", 3), "Temporal saliency": ("temporal_saliency", 0)}

# Bounded, but a 2-core machine shared with other jobs needs more than pytest's default 300 s per test.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]


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
    # Started as the README starts it (`make run` runs kdviz.ui.launch: `streamlit run app.py` with warmed
    # imports); .streamlit/config.toml decides the rest.
    proc = subprocess.Popen(
        [sys.executable, "-m", "kdviz.ui.launch", "--server.port", str(port)],
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
    yield types.SimpleNamespace(url=url, pid=proc.pid, log=ARTIFACTS / "streamlit.log")
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _settle(page) -> None:
    """Wait until Streamlit has finished running the script: its status widget gone and staying gone for a second.

    A rerun that an upload or a click starts can take a moment to show the widget (longer on a loaded machine), so
    one look after a fixed pause is not enough; the widget must stay away over several looks.
    """
    page.wait_for_timeout(300)
    quiet = 0
    deadline = time.monotonic() + 300
    while quiet < 4:
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=180_000)
        page.wait_for_timeout(250)
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        quiet = 0 if running else quiet + 1
        assert time.monotonic() < deadline, "the app kept running for 5 minutes"


def settled_after_uploads(page, expect: str | None = None) -> None:
    """Streamlit idle, no upload still being read ("Loading … checkpoint(s)…" gone) and, when given, ``expect``
    (a text the upload should bring) or an error on the page: the upload's rerun has really happened."""
    _settle(page)
    if expect is not None:
        page.wait_for_function(
            "t => document.body.innerText.includes(t) || "
            "document.querySelector('[data-testid=\"stAlertContentError\"]') !== null", arg=expect, timeout=300_000)
    page.wait_for_function("() => !document.body.innerText.includes('Loading ')", timeout=300_000)
    _settle(page)


def main_text(page) -> str:
    """The page's main column as text (the sidebar left out)."""
    main = page.locator('[data-testid="stMain"]')
    return main.inner_text() if main.count() else page.inner_text("body")


def _open_grid(page, url: str) -> None:
    """Open ``url`` (an Attention-maps address) and wait until its grid is drawn and the run has finished."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function(GRID, timeout=300_000)
    _settle(page)


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the sidebar select box labelled ``label``."""
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text=label)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    _settle(page)


def test_every_page_in_chromium(server) -> None:
    server = server.url
    from playwright.sync_api import sync_playwright

    from kdviz.ui.sets import demo_folder

    has_zoo = (demo_folder("demo-image") / "zoo.json").is_file()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        try:
            # A deep link as the very first request goes through app.py (navigation, wide layout) and back.
            page.goto(f"{server}/models?null=0", wait_until="domcontentloaded")
            page.wait_for_selector("h1:has-text('Models')", timeout=90_000)
            page.wait_for_selector('[data-testid="stSidebarNav"] a:has-text("Attention maps")', timeout=60_000)
            assert page.locator('[data-testid="stSidebarNav"] a').filter(has_text="app").count() == 0
            start = time.monotonic()
            page.goto(f"{server}/?null=0", wait_until="domcontentloaded")  # random-weights null off: a render test
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


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _browser(p, width: int = 1500, height: int = 1000):
    browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    return browser, browser.new_page(viewport={"width": width, "height": height})


GRID = "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 1"


def test_idle_server_is_quiet_and_the_drawn_grid_fits_one_screen(server, require_zoo) -> None:
    """Item 1: the idle server uses < 2% of a core, no inotify flood. Item 2: the colour scale reaches the
    browser as kdviz defines it. Item 6: the demo grid fits 1500×1000."""
    require_zoo("demo-image")
    from playwright.sync_api import sync_playwright

    from kdviz.report.style import MAP_SCALE

    with sync_playwright() as p:
        browser, page = _browser(p)
        try:
            _open_grid(page, f"{server.url}/attention_maps?method=saliency")
            page.wait_for_timeout(2000)  # let torch's worker threads go to sleep
            c0, t0 = _cpu_seconds(server.pid), time.monotonic()
            time.sleep(5)
            idle = 100 * (_cpu_seconds(server.pid) - c0) / (time.monotonic() - t0)
            (ARTIFACTS / "idle_cpu_percent.txt").write_text(f"{idle:.2f}\n")
            assert idle < 2.0, f"idle server used {idle:.1f}% of a core"
            assert "Inotify" not in server.log.read_text(errors="replace")
            drawn = page.evaluate("() => { const g = document.querySelector('.js-plotly-plot');"
                                  " return {scale: g._fullLayout.coloraxis.colorscale,"
                                  " cells: Object.keys(g.layout.meta.cells).length}; }")
            assert drawn["scale"] == MAP_SCALE  # not Streamlit's placeholder swap (#000004 -> #ab63fa)
            assert drawn["cells"] == 15  # teacher + 13 KD/SD students + the KED student
            box = page.locator(".js-plotly-plot").first.bounding_box()
            page.screenshot(path=str(ARTIFACTS / "attention_grid_1500x1000.png"))
            assert box["width"] <= 1500 and 400 <= box["height"] <= 800, box  # one screen, maps not tiny
            assert box["y"] + box["height"] <= 1000 + 350, box  # below a compact header: scroll < 1/3 screen
        finally:
            browser.close()


def test_deep_link_restores_the_view(server, require_zoo) -> None:
    """Item 9: sidebar settings and the page's choices come back from the URL in a new browser session."""
    require_zoo("demo-image")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _browser(p)
        try:
            page.goto(f"{server.url}/attention_maps?method=saliency&k=3&slic=40&att_overlay=map+alone&att_pos=2",
                      wait_until="domcontentloaded")
            page.wait_for_function(GRID, timeout=300_000)
            _settle(page)
            body = page.inner_text("body")
            assert "Saliency · parts slic:40 · k = 3" in body
            assert page.get_by_role("radio", name="map alone").is_checked()
            title = page.evaluate("() => document.querySelector('.js-plotly-plot').layout.title.text")
            assert title.startswith("test #2 ")
            assert "k=3" in page.url and "method=saliency" in page.url
        finally:
            browser.close()


def test_back_button_undoes_a_setting_change(server, require_zoo) -> None:
    """Item 9: each run writes the view into the address in one history entry, and the browser's back button
    brings the previous settings back (Streamlit reruns the page with the older query string)."""
    require_zoo("demo-image")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _browser(p)
        try:
            _open_grid(page, f"{server.url}/attention_maps?method=saliency&k=5&null=0")
            page.wait_for_function("location.search.includes('att_pos=0')", timeout=60_000)
            box = page.locator('[data-testid="stSidebar"] [data-testid="stNumberInput"]').filter(has_text="top-k")
            box.locator("input").fill("3")
            box.locator("input").press("Enter")
            page.wait_for_function("location.search.includes('k=3')", timeout=120_000)
            _settle(page)
            assert "· k = 3" in page.inner_text("body")
            page.go_back()
            page.wait_for_function("location.search.includes('k=5')", timeout=120_000)
            page.wait_for_function("document.body.innerText.includes('· k = 5')", timeout=120_000)
            _settle(page)
            assert "method=saliency" in page.url and "k=5" in page.url
            page.go_forward()
            page.wait_for_function("document.body.innerText.includes('· k = 3')", timeout=120_000)
            assert "k=3" in page.url
        finally:
            browser.close()


def _tiny_checkpoints(folder: Path) -> list[Path]:
    import torch
    from PIL import Image

    from kdviz.models import create_model

    paths = []
    for seed, name in ((0, "resnet14_teacher.pth"), (1, "resnet8_alpha0.5.pth")):
        torch.manual_seed(seed)
        arch = name.split("_")[0]
        torch.save(create_model(arch, num_classes=10, in_channels=3).state_dict(), folder / name)
        paths.append(folder / name)
    from skimage import data

    Image.fromarray(data.astronaut()[::16, ::16]).save(folder / "one.png")  # 32×32 RGB
    return paths + [folder / "one.png"]


def test_one_uploaded_image_on_every_page(server, tmp_path) -> None:
    """Item 3: two uploaded checkpoints and one image: every page draws without an exception box."""
    from playwright.sync_api import sync_playwright

    teacher, student, image = _tiny_checkpoints(tmp_path)
    with sync_playwright() as p:
        browser, page = _browser(p)
        try:
            page.goto(f"{server.url}/models", wait_until="domcontentloaded")
            page.wait_for_selector("h1:has-text('Models')", timeout=120_000)
            _settle(page)
            uploads = page.locator('[data-testid="stFileUploader"] input[type="file"]')
            uploads.nth(0).set_input_files([str(teacher), str(student)])
            _settle(page)
            uploads.nth(1).set_input_files([str(image)])
            _settle(page)
            page.get_by_role("button", name="Use the uploaded set").click()
            _settle(page)
            for label in ("Attention maps", "Part focus", "Alignment", "Temporal saliency", "Report", "Models"):
                page.locator('[data-testid="stSidebarNav"] a').filter(has_text=label).first.click()
                _settle(page)
                page.wait_for_timeout(300)
                assert page.locator('[data-testid="stException"]').count() == 0, label
                assert page.locator('[data-testid="stAlertContentError"]').count() == 0, label
                if label in ("Attention maps", "Part focus", "Alignment"):
                    page.wait_for_function(GRID, timeout=120_000)
                page.screenshot(path=str(ARTIFACTS / f"one_upload_{label.replace(' ', '_').lower()}.png"))
            # The Models page kept the files and the editor after the visits (item 7).
            assert page.locator('[data-testid="stDataFrame"], [data-testid="stDataEditor"]').count() >= 2
            assert "resnet8_alpha0.5.pth" in page.inner_text("body")
        finally:
            browser.close()


# Issue 23: every shipped set, the Report's bar charts, an ImageFolder upload.
DRAWN = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => {
  const finite = v => typeof v === 'number' && isFinite(v);
  const count = a => !a ? 0 : (ArrayBuffer.isView(a) || Array.isArray(a)) ?
      Array.from(a).reduce((n, v) => n + (Array.isArray(v) || ArrayBuffer.isView(v) ? count(v) : finite(v) ? 1 : 0), 0) : 0;
  return {title: (g.layout.title && g.layout.title.text) || '', values: g._fullData.reduce(
      (n, t) => n + (t.type === 'table' ? 1 : count(t.z) + count(t.y) + count(t.x)), 0)};
})"""


def _drawn(page, url: str, charts: int) -> list[dict]:
    """Open ``url``, wait for ``charts`` Plotly charts and the end of the run; fail on an error box or a chart
    with no finite value in it (an empty chart)."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts} || "
                           "document.querySelector('[data-testid=\"stAlertContentError\"]')", timeout=300_000)
    _settle(page)
    errors = page.locator('[data-testid="stAlertContentError"], [data-testid="stException"]').all_inner_texts()
    assert not errors, (url, errors)
    drawn = page.evaluate(DRAWN)
    assert len(drawn) >= charts, (url, drawn)
    assert all(d["values"] > 0 for d in drawn), (url, drawn)
    return drawn


@pytest.mark.parametrize("set_key", ["demo-image", "demo-series", "demo-seeds"])
def test_part_focus_alignment_and_maps_on_every_shipped_set(server, require_zoo, set_key: str) -> None:
    """Part focus, Alignment and the maps page of the set's kind draw without an error and no chart is empty
    (the seed set's duplicate labels, GunPoint's empty logit charts)."""
    require_zoo(set_key)
    from playwright.sync_api import sync_playwright

    query = f"set={set_key}&method=saliency&null=0"
    maps = "temporal_saliency" if set_key == "demo-series" else "attention_maps"
    with sync_playwright() as p:
        browser, page = _browser(p)
        try:
            for path, charts in (("part_focus", 2), ("alignment", 3), (maps, 1)):
                drawn = _drawn(page, f"{server.url}/{path}?{query}", charts)
                page.screenshot(path=str(ARTIFACTS / f"set_{set_key}_{path}.png"))
                if set_key == "demo-series" and path == "alignment":  # 2 classes: margin alignment, said so
                    assert any("margin" in d["title"] for d in drawn), drawn
                    assert "undefined with 2 classes" in page.inner_text("body")
            if set_key == "demo-seeds":  # one seed at a time, named
                assert "training seed 1" in page.evaluate(
                    "() => document.querySelector('.js-plotly-plot').layout.title.text")
        finally:
            browser.close()


def test_settle_waits_for_the_end_of_a_long_run(server, require_zoo) -> None:
    """The seed-replicate Report computes for seconds before its findings appear: ``_settle`` must see the run
    (Streamlit's status widget, shown with toolbarMode 'viewer'; 'minimal' hid it and every wait became a pause)."""
    require_zoo("demo-seeds")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _browser(p)
        try:
            page.goto(f"{server.url}/report?set=demo-seeds", wait_until="domcontentloaded")
            page.wait_for_selector('[data-testid="stStatusWidget"]', timeout=60_000)  # the run is visible
            _settle(page)
            assert "findings on this zoo" in main_text(page)
        finally:
            browser.close()


def _plot_areas(page) -> list[dict]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .filter(g => g.data.some(t => t.type === 'bar'))
        .map(g => ({title: g.layout.title.text, plot: g._fullLayout._size.w, width: g._fullLayout.width}))""")


def test_report_bar_charts_keep_a_wide_plot_area(server, require_zoo) -> None:
    """The Report's bar charts (accuracy, focus, attention): the plot area takes most of the chart's width at
    1500×1000 and in presentation mode (a legend beside it squeezed it to ~115 of 512 px)."""
    require_zoo("demo-image")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _browser(p)
        try:
            for present in ("0", "1"):
                page.goto(f"{server.url}/report?set=demo-image&present={present}", wait_until="domcontentloaded")
                page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5",
                                       timeout=300_000)
                _settle(page)
                areas = _plot_areas(page)
                page.screenshot(path=str(ARTIFACTS / f"report_bars_present{present}.png"), full_page=True)
                assert len(areas) == 3, areas
                for a in areas:
                    assert a["plot"] >= 0.75 * a["width"], (present, a)
        finally:
            browser.close()


def test_image_folder_upload_shows_folder_names_as_true_classes(server, tmp_path) -> None:
    """A CIFAR-100-sized teacher and student with an ImageFolder zip (cat/cup/person): the folder names are the
    true classes ("cup" is a CIFAR-100 class, "cat" and "person" are not: labels not comparable)."""
    import io
    import zipfile

    import torch
    from PIL import Image
    from playwright.sync_api import sync_playwright
    from skimage import data

    from kdviz.models import create_model

    paths = []
    for seed, name in ((0, "resnet14_teacher.pth"), (1, "resnet8_alpha0.5.pth")):
        torch.manual_seed(seed)
        torch.save(create_model(name.split("_")[0], num_classes=100, in_channels=3).state_dict(), tmp_path / name)
        paths.append(tmp_path / name)
    folder = tmp_path / "photos.zip"
    with zipfile.ZipFile(folder, "w") as zf:
        for cls, image in (("cat", data.chelsea()), ("cup", data.coffee()), ("person", data.astronaut())):
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format="PNG")
            zf.writestr(f"photos/{cls}/{cls}1.png", buf.getvalue())
    with sync_playwright() as p:
        browser, page = _browser(p)
        try:
            page.goto(f"{server.url}/models", wait_until="domcontentloaded")
            page.wait_for_selector("h1:has-text('Models')", timeout=120_000)
            _settle(page)
            uploads = page.locator('[data-testid="stFileUploader"] input[type="file"]')
            uploads.nth(0).set_input_files([str(q) for q in paths])
            _settle(page)
            uploads.nth(1).set_input_files([str(folder)])
            _settle(page)
            assert "labels not comparable" in page.inner_text("body")
            page.get_by_role("button", name="Use the uploaded set").click()
            _settle(page)
            page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Attention maps").first.click()
            page.wait_for_function(GRID, timeout=180_000)
            _settle(page)
            title = page.evaluate("() => document.querySelector('.js-plotly-plot').layout.title.text")
            page.screenshot(path=str(ARTIFACTS / "image_folder_upload.png"))
            assert "true class cat" in title, title
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0
        finally:
            browser.close()
