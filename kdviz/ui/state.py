"""Session-state keys and the sidebar's :class:`Settings`: what every UI module reads, importing nothing of the UI.

Keeping them here (not in ``sidebar``) lets charts, widgets and page sections read the session's settings
without importing the sidebar, so the UI modules form no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kdviz.analysis.nulls import DEFAULT_NULL_COPIES
from kdviz.attribution.methods import get_method
from kdviz.vocab import Modality

K_SET = "kdviz_set"
K_DEVICE = "kdviz_device"
K_PRECISION = "kdviz_precision"
K_METHOD = "kdviz_method"
K_PARTS_KIND = "kdviz_parts_kind"
K_SLIC_N = "kdviz_slic_n"
K_GRID_R = "kdviz_grid_rows"
K_GRID_C = "kdviz_grid_cols"
K_SEGMENTS = "kdviz_segments"
K_SF_SERIES = "kdviz_sf_series"
K_TOPK = "kdviz_k"
K_TARGET = "kdviz_target"  # which class is explained: the teacher's prediction, the true class, a class by name
K_TARGET_CLASS = "kdviz_target_class"
K_NULL = "kdviz_null_copies"
K_PRESENT = "kdviz_present"
K_FORMAT = "kdviz_figure_format"
K_SETTINGS = "kdviz_settings"
UPLOAD_SET = "kdviz_upload_set"  # the ModelSet built on the Models page
# The page choices last written, by widget key: a page left and opened again starts from them (Streamlit
# forgets a widget's state on a run that does not draw it, and the address then holds another page's view).
PAGE_CHOICES = "kdviz_page_choices"


@dataclass(frozen=True)
class Settings:
    """Everything the sidebar decides; each page gets it from :func:`render_sidebar`."""

    set_key: str
    device: str
    method: str
    params: tuple[tuple[str, Any], ...]
    parts_image: str  # 'slic:50' | 'grid:4x4'
    parts_series: str  # 'segments:10'
    k: int
    null_copies: int = DEFAULT_NULL_COPIES  # R random-weights copies per student architecture (0 = no reference)
    presenting: bool = False  # presentation mode: larger fonts, folded sidebar, 16:9 downloads
    figure_format: str = "png"  # download format of the charts' camera button: png | svg
    precision: str = "fp32"  # autocast precision of attributions (kdviz.attribution.precision): fp32 | bf16 | fp16
    target: str = "teacher"  # the class explained: 'teacher' (its prediction) | 'label' (true class) | 'class:<name>'

    def parts_for(self, task: str) -> str:
        """The part spec for a set of modality ``task``: series segments, else image parts."""
        return self.parts_series if task == Modality.SERIES else self.parts_image

    @property
    def method_params(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def target_label(self) -> str:
        """What the attributions explain, in words."""
        if self.target.startswith("class:"):
            return f"class {self.target.removeprefix('class:')}"
        return {"label": "the true class"}.get(self.target, "the teacher's prediction")

    @property
    def method_label(self) -> str:
        return get_method(self.method).label
