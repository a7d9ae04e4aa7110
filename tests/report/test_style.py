"""kdviz.report.style: one colour, one name and one order per model in every figure."""

from __future__ import annotations

import re

import numpy as np
import plotly.colors as pc
import plotly.io as pio
import pytest

from kdviz.report.attention_grid import GridOptions, attention_grid
from kdviz.report.input_views import parts_figure, series_saliency
from kdviz.report.style import (
    ALPHA_COLOURS,
    DIFF_SCALE,
    MAP_SCALE,
    TEACHER_COLOUR,
    alpha_colour,
    arch_order,
    plotly_config,
    variant_label,
    variant_sort_key,
)
from tests.report.dashboard_frames import models_frame, random_maps


def test_colours_and_labels() -> None:
    assert alpha_colour(1.0, role="teacher") == TEACHER_COLOUR
    assert alpha_colour(0.1) == ALPHA_COLOURS[0.1] != alpha_colour(1.0)
    assert alpha_colour(0.5, method="kd+sd") not in ALPHA_COLOURS.values()
    assert variant_label(0.5) == "α=0.5" and variant_label(0.5, "kd+sd") == "α=0.5 + SD"
    assert variant_label(None) == "α=—"
    assert arch_order(["resnet8", "resnet56", "resnet20", "resnet8"]) == ["resnet56", "resnet20", "resnet8"]


def test_one_label_per_training_method() -> None:
    """The label is α with one decimal where exact, then the training method's suffix (rationale included)."""
    assert variant_label(1.0) == "α=1.0" and variant_label(0.05) == "α=0.05" and variant_label(float("nan")) == "α=—"
    assert variant_label(0.5, "ked") == "α=0.5 + KED"
    assert variant_label(0.5, "ked-blackbox") == "α=0.5 + KED (black-box)"
    assert variant_label(1.0, "rationale") == "α=1.0 + rationale"
    assert variant_label(1.0, "ce") == variant_label(1.0, "kd") == "α=1.0"
    assert variant_label(0.5, "a method kdviz does not know") == "α=0.5"


def test_variants_order_plain_alphas_first_then_other_recipes() -> None:
    variants = [(0.1, "kd+sd"), (0.5, "ked"), (0.1, "kd"), (None, "kd"), (1.0, "ce"), (0.5, "kd")]
    assert sorted(variants, key=lambda v: variant_sort_key(*v)) == [
        (1.0, "ce"), (0.5, "kd"), (0.1, "kd"), (None, "kd"), (0.1, "kd+sd"), (0.5, "ked")]


def test_the_teachers_architecture_first_then_largest_first() -> None:
    assert arch_order(["resnet8", "resnet56", "resnet20"], teacher="resnet20") == ["resnet20", "resnet56", "resnet8"]
    assert arch_order(["resnet8", "resnet20"], teacher="resnet56") == ["resnet20", "resnet8"]  # not a student's


def test_plotly_config_has_png_download() -> None:
    cfg = plotly_config("grid")
    assert cfg["toImageButtonOptions"]["format"] == "png" and cfg["toImageButtonOptions"]["filename"] == "grid"
    slide = plotly_config("grid", fmt="svg", slide=True)["toImageButtonOptions"]
    assert slide["format"] == "svg" and slide["width"] / slide["height"] == pytest.approx(16 / 9)
    assert slide["width"] == 1920
    with pytest.raises(ValueError, match="fmt"):
        plotly_config("grid", fmt="gif")


PLACEHOLDER = re.compile(r"#0000[0-3][0-9]\b", re.IGNORECASE)


def test_colour_scales_avoid_streamlits_placeholder_colours() -> None:
    # Streamlit's Plotly front end rewrites #000001…#000031 in a figure's JSON (Inferno's #000004 became violet).
    assert pc.sequential.Inferno[0] == "#000004"  # the colour that was swapped
    assert MAP_SCALE[0] == [0.0, "rgb(0, 0, 4)"]  # the same colour, written so it is left alone
    assert len(MAP_SCALE) == len(pc.sequential.Inferno)
    for (_, ours), theirs in zip(MAP_SCALE, pc.sequential.Inferno, strict=True):
        assert ours == "rgb({}, {}, {})".format(*pc.hex_to_rgb(theirs))
    assert DIFF_SCALE[5] == [0.5, "rgb(247, 247, 247)"]  # RdBu_r: white at zero difference
    models = models_frame()
    maps = random_maps(models)
    image = np.zeros((8, 8))
    figures = [attention_grid(image, maps, models, GridOptions(difference=True)),
               series_saliency(np.sin(np.arange(50) / 5), {m: np.ones(50) for m in models["model_id"]}, models),
               parts_figure(image, np.repeat(np.arange(4), 16).reshape(8, 8), [1])]
    for fig in figures:
        # kdviz's own data and layout; the template is Streamlit's (it registers one with placeholders on
        # import, which its front end fills in on purpose) and is left out.
        spec = fig.to_plotly_json()
        spec["layout"].pop("template", None)
        # validate=False: validating rebuilds a Figure, which re-applies the default template (Streamlit sets
        # its own as the default once it is imported, as earlier tests do)
        assert not PLACEHOLDER.search(pio.to_json(spec, validate=False)), fig.layout.title
