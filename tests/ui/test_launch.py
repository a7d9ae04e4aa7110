"""kdviz.ui.launch (what `make run` runs) and kdviz.ui.runlog (server-side page timings for benchmarks)."""

from __future__ import annotations

import sys

import pytest

from kdviz.ui import launch, runlog


def test_warm_up_imports_the_modules_and_loads_the_data() -> None:
    sys.modules.pop("colorsys", None)
    seconds = launch.warm_up(("colorsys",), datasets=("gunpoint",))
    assert "colorsys" in sys.modules and seconds >= 0
    from kdviz.io.builtin_datasets import load_dataset

    assert load_dataset.cache_info().currsize >= 1  # the page's load_dataset("gunpoint") is now a cache hit


def test_main_runs_streamlit_on_app_py_with_one_core_left_to_the_browser(monkeypatch) -> None:
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    seen: dict = {}
    monkeypatch.setattr(cli, "main", lambda: seen.update(argv=list(sys.argv)))
    monkeypatch.setattr(launch, "warm_up", lambda *a, **k: 0.0)
    monkeypatch.delenv("KDVIZ_TORCH_THREADS", raising=False)
    monkeypatch.setattr(PagesManager, "uses_pages_directory", None)
    launch.main(["--server.port", "8599"])
    assert seen["argv"] == ["streamlit", "run", str(launch.APP), "--server.port", "8599"]
    assert launch.APP.name == "app.py" and launch.APP.exists()
    import os

    assert os.environ["KDVIZ_TORCH_THREADS"] == "auto"
    # a deep link runs app.py (st.navigation) from the first request, not the page on its own
    assert PagesManager.uses_pages_directory is False


def test_run_page_logs_its_time_only_when_asked(monkeypatch, capsys) -> None:
    class Page:
        title = "Attention maps"

        def __init__(self, fail: bool = False) -> None:
            self.fail, self.runs = fail, 0

        def run(self) -> None:
            self.runs += 1
            if self.fail:
                raise RuntimeError("rerun")

    monkeypatch.delenv(runlog.ENV, raising=False)
    page = Page()
    runlog.run_page(page)
    assert page.runs == 1 and capsys.readouterr().err == ""
    monkeypatch.setenv(runlog.ENV, "1")
    runlog.run_page(page)
    line = capsys.readouterr().err.strip()
    assert line.startswith("kdviz-run 'Attention maps' ") and " s done at " in line
    with pytest.raises(RuntimeError):
        runlog.run_page(Page(fail=True))
    assert " s stopped at " in capsys.readouterr().err
