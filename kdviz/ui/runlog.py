"""Server-side time of each page run, printed to the server's log when ``KDVIZ_LOG_RUNS=1``.

For ``benchmarks/bench_dashboard.py``, which sets it: a browser timing mixes the server's run with the
front end's drawing, and on a small machine the two compete; this line says how much was the server.
Kept apart from the other ``kdviz.ui`` modules so ``app.py`` imports nothing heavy.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

ENV = "KDVIZ_LOG_RUNS"


def run_page(page: Any) -> None:
    """``page.run()``; with ``KDVIZ_LOG_RUNS=1`` also logs ``kdviz-run <title> <seconds>`` (also when the run
    is stopped by a rerun, which Streamlit signals with an exception)."""
    if os.environ.get(ENV) != "1":
        page.run()
        return
    start = time.perf_counter()
    outcome = "stopped"
    try:
        page.run()
        outcome = "done"
    finally:
        print(f"kdviz-run {page.title!r} {time.perf_counter() - start:.3f} s {outcome} at {time.time():.3f}",
              file=sys.stderr, flush=True)
