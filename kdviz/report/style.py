"""The shared look of every kdviz figure: colours, colour scales, how a model is named and in what order.

Conventions, so a presentation reads consistently:

* the teacher is drawn first and in :data:`TEACHER_COLOUR`; students are coloured by distillation strength α
  (1.0 no KD, 0.5 mild, 0.1 strong) via :func:`alpha_colour`, students of another recipe by their recipe;
* a student is named by :func:`variant_label`: its α and its training method's suffix (``α=0.1 + SD``);
* architectures: the teacher's first, then the rest largest first (:func:`arch_order`);
* variants: plain KD by descending α (no KD first), then SD, KED, black-box KED and rationale students
  (:func:`variant_sort_key`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.colors as pc

from kdviz.errors import InvalidInputError, UnknownNameError
from kdviz.vocab import TrainingMethod

__all__ = [
    "ALPHA_COLOURS",
    "ALPHA_MEANING",
    "DIFFERS_COLOUR",
    "DIFF_SCALE",
    "GREY_SCALE",
    "MAP_SCALE",
    "SLIDE_SIZE",
    "TEACHER_COLOUR",
    "TEMPLATE",
    "alpha_colour",
    "arch_order",
    "browser_safe_scale",
    "legend_name",
    "plotly_config",
    "rho_range",
    "variant_label",
    "variant_sort_key",
]

TEACHER_COLOUR = "#222222"
DIFFERS_COLOUR = "#D81B60"  # a student whose prediction differs from the teacher's
# Colour-blind-safe (Okabe–Ito): no KD blue, mild KD orange, strong KD vermilion.
ALPHA_COLOURS: dict[float, str] = {1.0: "#0072B2", 0.5: "#E69F00", 0.1: "#D55E00"}
_EXTRA_COLOURS = ("#009E73", "#CC79A7", "#56B4E9", "#F0E442", "#999999")
# Students of another recipe (Okabe–Ito): SD bluish green, KED reddish purple, rationales sky blue.
_METHOD_COLOURS = {TrainingMethod.KD_SD: "#009E73", TrainingMethod.KED: "#CC79A7",
                   TrainingMethod.KED_BLACKBOX: "#CC79A7", TrainingMethod.RATIONALE: "#56B4E9"}
ALPHA_MEANING = {1.0: "no KD", 0.5: "mild KD", 0.1: "strong KD"}
TEMPLATE = "plotly_white"  # the Report's views
SLIDE_SIZE = (1920, 1080)  # 16:9 at full-HD, what a slide is projected at


def browser_safe_scale(name_or_colours: str | Sequence[str]) -> list[list]:
    """A Plotly colour scale as ``[[position, 'rgb(r, g, b)'], ...]`` that reaches the browser unchanged.

    Streamlit's Plotly front end rewrites the placeholder colours ``#000001`` … ``#000031`` in a
    figure's JSON to its own theme colours (Inferno's first stop ``#000004`` becomes violet
    ``#ab63fa``), so kdviz never sends hex colours: every stop is written as ``rgb(…)``.

    Parameters
    ----------
    name_or_colours : a Plotly colour scale name (``"Inferno"``) or a list of colours spread evenly

    Returns
    -------
    list of ``[position, "rgb(r, g, b)"]`` pairs
    """
    if isinstance(name_or_colours, str):
        scale = pc.get_colorscale(name_or_colours)
    else:
        colours = list(name_or_colours)
        scale = [[i / (len(colours) - 1), c] for i, c in enumerate(colours)]
    out = []
    for pos, colour in scale:
        r, g, b = (pc.hex_to_rgb(colour) if str(colour).startswith("#")
                   else tuple(round(float(v)) for v in pc.unlabel_rgb(colour)))
        out.append([round(float(pos), 6), f"rgb({int(r)}, {int(g)}, {int(b)})"])
    return out


# Sequential maps: Inferno (black = no attribution); differences: red/blue, white at 0; input: grey.
MAP_SCALE = browser_safe_scale("Inferno")
DIFF_SCALE = browser_safe_scale("RdBu_r")
GREY_SCALE = [[0.0, "rgb(0, 0, 0)"], [1.0, "rgb(255, 255, 255)"]]


def plotly_config(filename: str = "kdviz", *, fmt: str = "png", slide: bool = False,
                  size: tuple[int, int] | None = None) -> dict:
    """Plotly ``config`` with a download button in the toolbar: a named PNG at 2× scale, or SVG.

    With ``slide`` the image is 16:9 at :data:`SLIDE_SIZE` (1920×1080) for presentations. ``size`` (width,
    height in px) is for a figure laid out for a fixed size (the attention grid, whose captions are placed in
    pixels): with ``slide`` it is drawn at that size and scaled up to 1920 px wide as a whole, so its captions
    grow with it instead of staying small in a re-laid-out figure.
    """
    if fmt not in ("png", "svg"):
        raise InvalidInputError(f"fmt={fmt!r} is not one of ['png', 'svg']")
    options: dict = {"format": fmt, "filename": filename, "scale": 2}
    if slide and size is not None:
        options.update(width=int(size[0]), height=int(size[1]), scale=SLIDE_SIZE[0] / int(size[0]))
    elif slide:
        options.update(width=SLIDE_SIZE[0], height=SLIDE_SIZE[1], scale=1)
    return {"displaylogo": False, "toImageButtonOptions": options}


def _method(method: Any) -> TrainingMethod | None:
    """The training method named by ``method``; None for a missing or foreign one (a null copy's ``random``)."""
    if method is None or (not isinstance(method, str) and pd.isna(method)):
        return None
    try:
        return TrainingMethod.parse(str(method))
    except UnknownNameError:
        return None


def _unknown(alpha: Any) -> bool:
    return alpha is None or bool(pd.isna(alpha))


def variant_label(alpha: float | None, method: str | None = None) -> str:
    """A student's name in legends, table rows and column headers.

    ``α=1.0``, ``α=0.5``, ``α=0.1 + SD``, ``α=0.5 + KED (black-box)``, ``α=1.0 + rationale``; ``α=—`` when α
    is unknown. α has one decimal where that is exact, else all its digits (``α=0.05``); the suffix is the
    training method's (:attr:`kdviz.vocab.TrainingMethod.suffix`, empty for CE and plain KD).
    """
    if _unknown(alpha):
        text = "α=—"
    else:
        a = float(alpha)  # type: ignore[arg-type]
        text = f"α={a:.1f}" if round(a, 1) == a else f"α={a:g}"
    m = _method(method)
    return f"{text} {m.suffix}" if m is not None and m.suffix else text


_METHOD_RANK = {TrainingMethod.KD_SD: 1, TrainingMethod.KED: 2, TrainingMethod.KED_BLACKBOX: 3,
                TrainingMethod.RATIONALE: 4}


def variant_sort_key(alpha: float | None, method: str | None = None) -> tuple[int, float, str]:
    """Sort key of a variant: plain KD and CE by descending α (no KD first, unknown α last), then SD, KED,
    black-box KED and rationale students, each by descending α."""
    m = _method(method)
    return (_METHOD_RANK.get(m, 0) if m is not None else 0, 1.0 if _unknown(alpha) else -float(alpha),  # type: ignore[arg-type]
            str(method))


def legend_name(variant: str) -> str:
    """A plain-KD variant label with what its α means: ``α=0.5 (mild KD)``; other labels as they are."""
    m = re.fullmatch(r"α=([\d.]+)", variant)
    meaning = ALPHA_MEANING.get(float(m.group(1))) if m else None
    return f"{variant} ({meaning})" if meaning else variant


def alpha_colour(alpha: float | None, *, role: str = "student", method: str | None = None) -> str:
    """The colour of a model in every chart: teacher black, students by α or by their recipe (SD green)."""
    if role == "teacher":
        return TEACHER_COLOUR
    m = _method(method)
    if m in _METHOD_COLOURS:
        return _METHOD_COLOURS[m]  # type: ignore[index]
    if _unknown(alpha):
        return "#999999"
    a = round(float(alpha), 3)  # type: ignore[arg-type]
    if a in ALPHA_COLOURS:
        return ALPHA_COLOURS[a]
    return _EXTRA_COLOURS[int(a * 100) % len(_EXTRA_COLOURS)]


def _arch_size(arch: str) -> tuple[int, str]:
    nums = re.findall(r"\d+", arch)
    return (-int(nums[0]) if nums else 0, arch)


def arch_order(archs: Iterable[str], *, teacher: str | None = None) -> list[str]:
    """Distinct architectures: ``teacher``'s first when it is among them, then the rest largest first (by the
    first number in the name: resnet56, resnet32, …)."""
    order = sorted(dict.fromkeys(str(a) for a in archs), key=_arch_size)
    if teacher is not None and str(teacher) in order:
        order.remove(str(teacher))
        order.insert(0, str(teacher))
    return order


def rho_range(*values: Any) -> list[float]:
    """A fixed y range for a Spearman ρ axis: [0, 1] when every value is ≥ 0, else [−1, 1] (a little margin),
    so a ρ of −0.02 is drawn as the small number it is, not as a full-height bar."""
    v = np.concatenate([np.asarray(x, dtype=float).ravel() for x in values]) if values else np.zeros(1)
    v = v[np.isfinite(v)]
    return [-1.05 if v.size and v.min() < 0 else 0.0, 1.05]
