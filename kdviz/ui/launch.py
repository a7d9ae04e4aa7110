"""Start the dashboard (``make run``): ``streamlit run app.py`` with the heavy libraries imported meanwhile.

Streamlit runs ``app.py`` only when a browser connects, so the first page would also pay for importing
torch, captum, scipy and pandas (seconds) and reading the MNIST digits. Here a background
thread does that while the server starts and the browser loads Streamlit's front end; a page that needs
a module still importing simply waits for it (Python's per-module import lock), so nothing runs twice.
Only modules that do not import streamlit are warmed: ``st.cache_data`` functions must be created under the
running server.

    python -m kdviz.ui.launch [streamlit run options …]
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app.py"
WARM_MODULES = ("torch", "captum.attr", "scipy.stats", "pandas", "plotly.graph_objects", "skimage.segmentation",
                "kdviz.attribution.engine", "kdviz.analysis.compare", "kdviz.analysis.metrics", "kdviz.report.attention_grid", "kdviz.io.zoo.manifest")


def warm_up(modules: tuple[str, ...] = WARM_MODULES, datasets: tuple[str, ...] = ("mnist",)) -> float:
    """Import ``modules`` and load ``datasets`` (``kdviz.io.builtin_datasets.load_dataset`` keeps them); returns seconds."""
    start = time.perf_counter()
    for name in modules:
        importlib.import_module(name)
    from kdviz.io.builtin_datasets import load_dataset  # noqa: PLC0415 - the point: imported in the warm-up thread

    for name in datasets:
        load_dataset(name)
    return time.perf_counter() - start


def _warm_quietly() -> None:
    try:
        warm_up()
    except Exception as err:  # noqa: BLE001 - a page importing the same module reports the real error
        print(f"kdviz: warming up failed ({type(err).__name__}: {err}); pages will import on first use",
              file=sys.stderr)


def _use_navigation_from_the_first_run() -> None:
    """Tell Streamlit that ``app.py`` uses ``st.navigation``: with a ``pages/`` folder next to it, Streamlit
    otherwise runs a deep-linked page on its own first (legacy multipage apps), and
    ``kdviz.ui.sidebar.ensure_navigation`` has to send it back through ``app.py`` (one more run and round
    trip). Streamlit sets the same flag itself once ``st.navigation`` has run."""
    try:
        from streamlit.runtime.pages_manager import PagesManager  # noqa: PLC0415 - optional Streamlit internal
    except ImportError:  # a Streamlit without it: ensure_navigation still repairs a deep link
        return
    if hasattr(PagesManager, "uses_pages_directory"):
        PagesManager.uses_pages_directory = False


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("KDVIZ_TORCH_THREADS", "auto")  # one core left to the browser (kdviz.ui.compute)
    threading.Thread(target=_warm_quietly, name="kdviz-warm-up", daemon=True).start()
    from streamlit.web import cli  # noqa: PLC0415 - after the warm-up thread started, so both run at once

    _use_navigation_from_the_first_run()

    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    cli.main()


if __name__ == "__main__":
    main()
