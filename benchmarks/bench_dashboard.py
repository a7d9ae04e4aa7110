"""Dashboard timings on the demo image zoo, two ways.

``browser`` (default): the app started exactly as the README starts it (``make run`` runs
``.venv/bin/python -m kdviz.ui.launch``: ``streamlit run app.py`` with the heavy imports warmed meanwhile),
driven by Chromium through Playwright at 1500×1000, as a presenter uses it:

* idle CPU of the server process over 5 s (after the first page is drawn; /proc/<pid>/stat);
* from ``streamlit run`` to the first Attention-maps grid drawn (deep link to /attention_maps);
* a method change (Grad-CAM, the default → Saliency), until the grid is redrawn;
* a parts change (SLIC n 50 → 40) and a k change (5 → 3), until the page shows the new numbers;
* a cached revisit: Home, then Attention maps again (timed from that click until the grid is drawn), twice.

Every figure is printed with ``uptime``'s load average: the machine is shared, say how busy it was.
``--extra`` passes options to ``streamlit run`` (``--extra=--server.fileWatcherType=auto`` reproduces the
file watcher that issue 11 item 1 turned off); ``--root`` runs another checkout (the "before" column of
issue 11's table ran ``git archive 65028cb`` with ``cp -al .venv`` inside it, so its watcher saw a
project-local .venv/ exactly as ``make run`` makes it).

``compute``: the server-side cost of one cold grid through ``compare_models`` (no browser), as before.

    python benchmarks/bench_dashboard.py [browser|compute] [--port 8765] [--extra=...] [--first-only]

Cold and warm start of the disk attribution cache: ``KDVIZ_CACHE_DIR=/tmp/c`` with an empty folder, then again.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
GRID = "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 1"


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split(" ")[0]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its threads (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu_percent(pid: int, seconds: float = 5.0) -> float:
    """Mean CPU use of ``pid`` over ``seconds`` while nobody touches the app (100% = one core)."""
    c0, t0 = process_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (process_cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def _settled(page, predicate: str, timeout_s: float = 900) -> None:
    """Wait for ``predicate`` (JS) and for Streamlit's running indicator to be gone."""
    page.wait_for_function(predicate, timeout=timeout_s * 1000)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=timeout_s * 1000)
    page.wait_for_function(predicate, timeout=timeout_s * 1000)


def _text(snippet: str) -> str:
    return f"document.body.innerText.includes({snippet!r})"


def _grid_title_has(snippet: str) -> str:
    return ("(() => { const g = document.querySelector('.js-plotly-plot');"
            f" return !!(g && g.layout && g.layout.title && String(g.layout.title.text).includes({snippet!r})); }})()")


def browser(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    port = args.port
    url = f"http://127.0.0.1:{port}"
    root = Path(args.root).resolve()
    if (root / "kdviz" / "ui" / "launch.py").exists():  # what `make run` runs
        cmd = [str(root / ".venv" / "bin" / "python"), "-m", "kdviz.ui.launch", "--server.port", str(port), *args.extra]
    else:  # an older checkout, whose `make run` was `streamlit run app.py`
        cmd = [str(root / ".venv" / "bin" / "streamlit"), "run", "app.py", "--server.port", str(port), *args.extra]
    log = open(args.log, "w")  # noqa: SIM115 - closed below
    start = time.monotonic()
    env = {**os.environ, "KDVIZ_LOG_RUNS": "1"}  # kdviz.ui.runlog: each page run's server-side seconds
    proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env)
    rows: list[tuple[str, float, str]] = []

    def record(name: str, value: float, server: str = "") -> None:
        rows.append((name, value, load_average()))
        print(f"{name:<44} {value:8.2f}   load {rows[-1][2]:<5} {server}", flush=True)

    def server_runs(since: float) -> str:
        """The page runs the server logged since wall time ``since``: seconds of the finished ones."""
        log.flush()
        done, stopped = [], 0
        for line in Path(args.log).read_text(errors="replace").splitlines():
            if line.startswith("kdviz-run ") and float(line.rsplit(" at ", 1)[1]) >= since:
                stopped += " stopped at " in line
                if " done at " in line:
                    done.append(float(line.rsplit(" s ", 1)[0].rsplit(" ", 1)[1]))
        return f"server runs: {' + '.join(f'{d:.2f}' for d in done) or '-'} s" + (
            f" ({stopped} stopped by a newer change)" if stopped else "")

    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(f"{url}/attention_maps" + (f"?{args.query}" if args.query else ""), wait_until="domcontentloaded")
            _settled(page, GRID)
            record("run → first Attention-maps grid (s)", time.monotonic() - start, server_runs(0.0))
            if args.first_only:  # cold vs warm start of the disk attribution cache (KDVIZ_CACHE_DIR)
                return
            page.wait_for_timeout(1000)
            record("server idle CPU over 5 s (% of a core)", idle_cpu_percent(proc.pid))

            def finished_run_since(wall: float, timeout_s: float = 900) -> None:
                """Wait for the server to log a page run that finished after ``wall``: a caption can show
                the new setting before the run that recomputes the page has ended."""
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    log.flush()
                    for line in Path(args.log).read_text(errors="replace").splitlines():
                        if line.startswith("kdviz-run ") and " done at " in line and float(
                                line.rsplit(" at ", 1)[1]) >= wall:
                            return
                    time.sleep(0.02)
                raise TimeoutError("no page run finished")

            logs_runs = (root / "kdviz" / "ui" / "runlog.py").exists()  # an older checkout does not log its runs

            def timed(name: str, action, predicate: str) -> None:
                t0, wall = time.monotonic(), time.time()
                action()
                if logs_runs:
                    finished_run_since(wall)
                _settled(page, predicate)
                record(name, time.monotonic() - t0, server_runs(wall))

            def choose(label: str, option: str) -> None:
                box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text=label)
                box.click()
                page.get_by_role("option", name=option, exact=True).click()

            def set_number(label: str, value: int) -> None:
                box = page.locator('[data-testid="stSidebar"] [data-testid="stNumberInput"]').filter(has_text=label)
                inp = box.locator("input")
                inp.fill(str(value))
                inp.press("Enter")

            def set_slider(label: str, value: int, current: int, step: int) -> None:
                thumb = page.locator('[data-testid="stSidebar"] [data-testid="stSlider"]').filter(
                    has_text=label).get_by_role("slider")
                thumb.focus()
                for _ in range(abs(current - value) // step):
                    thumb.press("ArrowLeft" if value < current else "ArrowRight")

            timed("method change Grad-CAM → Saliency (s)", lambda: choose("Method", "Saliency"), _grid_title_has("Saliency"))
            timed("parts change SLIC 50 → 40 (s)", lambda: set_slider("SLIC superpixels", 40, 50, 5),
                  _text("slic:40"))
            timed("k change 5 → 3 (s)", lambda: set_number("top-k", 3), _text("k = 3"))

            def home() -> None:
                page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Home").first.click()

            def attention() -> None:
                page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Attention maps").first.click()

            for _ in range(2):  # leave for Home, then come back to the drawn grid (cached): twice
                timed("leave for Home (s)", home, "!!document.querySelector(\"h1\") && " + _text("changes where models look"))
                timed("cached revisit of Attention maps (s)", attention, GRID + " && " + _grid_title_has("Saliency"))
            page.wait_for_timeout(1000)
            record("server idle CPU over 5 s, after use (%)", idle_cpu_percent(proc.pid))
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a busy machine can take longer to stop it
            proc.kill()
            proc.wait()
        log.close()
    overflow = Path(args.log).read_text(errors="replace").count("Inotify queue overflow")
    print(f"'Inotify queue overflowed' lines in the server log: {overflow}")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


def compute(args: argparse.Namespace) -> None:
    import torch

    from kdviz.analysis.compare import CompareOptions, compare_models
    from kdviz.io.builtin_datasets import load_dataset
    from kdviz.io.zoo.manifest import load_zoo

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    zoo = load_zoo(ROOT / "assets" / "zoo" / "mnist")
    ds = load_dataset("mnist")
    print(f"zoo + dataset load: {time.perf_counter() - start:.2f} s ({len(zoo.models)} models)")
    students = [m for m in zoo.models if m.role != "teacher"]
    times = []
    for i in range(args.inputs):
        display = ds.x_test[i : i + 1]
        t0 = time.perf_counter()
        compare_models(
            zoo.teacher, students, ds.model_input(display), labels=ds.y_test[i : i + 1],
            method="integrated_gradients", parts="slic:50", k=5,
            options=CompareOptions(method_params={"n_steps": args.steps}, device="cpu",
                                   images_for_slic=np.asarray(display)),
        )
        times.append(time.perf_counter() - t0)
        print(f"input {i}: {times[-1]:.2f} s")
    print(f"cold grid compute, {len(zoo.models)} models, IG {args.steps} steps: median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}), torch threads {torch.get_num_threads()}, "
          f"load {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["browser", "compute"], default="browser")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--extra", action="append", default=[], help="extra `streamlit run` option")
    parser.add_argument("--log", default="/tmp/kdviz_bench_streamlit.log")
    parser.add_argument("--root", default=str(ROOT), help="browser: the checkout to run (e.g. an older commit's copy "
                        "with its own .venv/ inside, to measure before and after on the same machine)")
    parser.add_argument("--first-only", action="store_true",
                        help="browser: stop after the first grid (run twice with one KDVIZ_CACHE_DIR: cold, then warm)")
    parser.add_argument("--query", default="", help="browser: the first page's address-bar settings, e.g. "
                        "'method=integrated_gradients&null=19' (a bookmarkable view)")
    parser.add_argument("--inputs", type=int, default=5, help="compute: distinct inputs, each timed cold")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="compute: torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.mode == "browser":
        if not Path(CHROMIUM).exists():
            sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
        browser(args)
    else:
        compute(args)


if __name__ == "__main__":
    main()
