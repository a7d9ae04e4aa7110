"""The teacher randomisation test on a page: can the sidebar's method be trusted on these inputs?

Adebayo et al.'s cascading and independent randomisation (``kdviz.analysis.randomisation``) of the active set's
teacher, on the page's inputs and parts, with the method and parameters of the sidebar. Run on request
(a full cascade is 2 × blocks attributions of the teacher) under a progress bar; results are kept per
process by everything that changes them, so a revisit shows the last result at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np
import streamlit as st

from kdviz.analysis.compare import Comparison
from kdviz.analysis.randomisation import (
    RANDOMISATION_VERDICT_RULE,
    RandomisationOptions,
    RandomisationResult,
    randomisation_test,
)
from kdviz.models import model_info
from kdviz.report.randomisation_figure import randomisation_curve
from kdviz.ui.charts import chart
from kdviz.ui.sets import ModelSet, array_hash
from kdviz.ui.state import Settings

__all__ = ["randomisation_section", "MAX_INPUTS"]

MAX_INPUTS = 16  # the verdict's interval is over inputs; more inputs mostly cost time
SEEDS = (20_000,)  # one fully random network per seed (the same seed as `kdviz sanity`)


@st.cache_resource(show_spinner=False)
def _results() -> tuple[OrderedDict, threading.Lock]:
    """Finished tests by (teacher, inputs, method, parameters, parts, device): at most 32, oldest dropped."""
    return OrderedDict(), threading.Lock()


def _get(key: Hashable) -> RandomisationResult | None:
    store, lock = _results()
    with lock:
        return store.get(key)


def _put(key: Hashable, value: RandomisationResult) -> None:
    store, lock = _results()
    with lock:
        store[key] = value
        while len(store) > 32:
            store.popitem(last=False)


def _run(mset: ModelSet, x: np.ndarray, part_labels: np.ndarray, parts: str, settings: Settings
         ) -> RandomisationResult:
    bar = st.progress(0.0, text="Randomising the teacher…")

    def progress(done: int, total: int, copy_id: str) -> None:
        if copy_id:  # also where Streamlit stops the run when a widget changes
            blocks = copy_id.rsplit(":", 1)[-1]
            kind = "cascading" if ":cascading:" in copy_id else "independent"
            bar.progress(done / max(total, 1), text=f"{settings.method_label}: teacher with {blocks} re-initialised "
                                                    f"({kind}; {done + 1} of {total})")

    try:
        return randomisation_test(
            mset.teacher.module, mset.teacher.arch, x, part_labels=part_labels, method=settings.method,
            options=RandomisationOptions(method_params=dict(settings.method_params), seeds=SEEDS,
                                         device=settings.device, progress=progress, parts_name=parts),
        )
    finally:
        bar.empty()


def randomisation_section(mset: ModelSet, display: np.ndarray, comp: Comparison, settings: Settings, *,
                          key: str) -> None:
    """An expander with the randomisation verdict for the sidebar's method on (up to ``MAX_INPUTS`` of) the
    page's inputs ``display`` and the comparison's parts ``comp.part_labels``."""
    n = min(len(display), MAX_INPUTS)
    with st.expander("Can this method be trusted on these inputs? — teacher randomisation test",
                     expanded=_get(_key(mset, display[:n], settings)) is not None):
        st.caption(
            "If the teacher's weights are replaced by random ones and the attribution still ranks the parts the "
            "same way, the ranking comes from the input (edges, bright pixels), not from what the teacher "
            "learned — and then ρ between teacher and students says little about distillation. "
            f"This re-initialises the teacher block by block from the output down and compares part rankings "
            f"on the first {n} of the chosen inputs ({settings.method_label}, parts {comp.parts}).")
        try:
            model_info(mset.teacher.arch)
        except ValueError:
            st.info(f"The test re-initialises the teacher with random weights of its architecture; "
                    f"'{mset.teacher.arch}' is not a registered one, so it cannot run here. Set the teacher's "
                    "architecture on the Models page.")
            return
        x = mset.model_input(display[:n])
        labels = comp.part_labels[:n]
        test_key = _key(mset, display[:n], settings)
        result = _get(test_key)
        if result is None and st.button(f"Run the test on {n} input{'s' if n != 1 else ''}", key=f"{key}_rand_run",
                                        help="2 attributions of the teacher per block (cascading and independent)"):
            _put(test_key, _run(mset, x, labels, comp.parts, settings))
            st.rerun()  # drawn without the button from the kept result
        if result is None:
            return
        text = result.explanation()
        passes = result.verdict == "passes" and not result.undecided  # amber, not green, while undecided
        (st.success if passes else st.warning)(
            f"**{settings.method_label}** {text}",
            icon=":material/check_circle:" if passes else ":material/help:" if result.undecided else ":material/warning:")
        chart(_figure(result), name="randomisation_test")
        st.caption(RANDOMISATION_VERDICT_RULE + " The README's table \"Which method to trust\" gives the verdict of every "
                   "method on both demo zoos (`kdviz sanity`).")


def _figure(result: RandomisationResult) -> Any:
    return randomisation_curve(result)


def _key(mset: ModelSet, display: np.ndarray, settings: Settings) -> Hashable:
    return (mset.teacher.sha256, mset.teacher.arch, array_hash(display), settings.method, settings.params,
            settings.parts_for(mset.task), settings.device, SEEDS)
