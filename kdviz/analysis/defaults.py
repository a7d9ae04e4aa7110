"""One evidence-based attribution default: the zoo's recommendation, else one constant per input kind.

``kdviz sanity --write`` records in a zoo's ``zoo.json`` the setting (method, parameters, parts) that passed the
teacher randomisation test and whose trained students stand furthest above the random-weights null, with the
table it came from (``kdviz.io.zoo.manifest.Recommendation``). ``kdviz evaluate``, ``kdviz sanity``, the sidebar and the
Report start from :func:`default_setting`; :func:`randomisation_failure` says when a chosen method failed the
randomisation test on that zoo (a CLI warning, a badge in the UI).

The constants (README, "Which method to trust on which data"): on images Grad-CAM, the one method that passes
on MNIST (every gradient method's part ranking there is the digit's, trained or not); on series Integrated
Gradients with the zeros baseline, which passes on GunPoint and separates trained students best.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kdviz.vocab import Modality

__all__ = [
    "DEFAULT_METHODS",
    "DEFAULT_PARAMS",
    "DEFAULT_PARTS",
    "DefaultSetting",
    "default_method",
    "default_setting",
    "randomisation_failure",
]

# One library constant per modality of tensors (the dashboard, the CLI and the Report fall back to these).
DEFAULT_METHODS: dict[Modality, str] = {Modality.IMAGE: "grad_cam", Modality.SERIES: "integrated_gradients"}
DEFAULT_PARAMS: dict[Modality, dict[str, Any]] = {Modality.IMAGE: {},
                                                  Modality.SERIES: {"baseline": "zeros", "n_steps": 32}}
DEFAULT_PARTS: dict[Modality, str] = {Modality.IMAGE: "slic:50", Modality.SERIES: "segments:10"}


@dataclass(frozen=True)
class DefaultSetting:
    """The setting to open with, and where it came from (``'zoo'``: its ``kdviz sanity`` table; ``'library'``)."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)
    parts: str = "slic:50"
    source: str = "library"


def default_method(kind: str) -> str:
    """Return the library's method for an input kind (``image``, ``timeseries``; anything else: the image one)."""
    return DEFAULT_METHODS.get(kind, DEFAULT_METHODS[Modality.IMAGE])


def _recommended(zoo: Any) -> Any:
    manifest = getattr(zoo, "manifest", zoo)
    return getattr(manifest, "recommended", None)


def default_setting(zoo: Any = None, *, kind: str | None = None) -> DefaultSetting:
    """The zoo's recommended setting (``zoo`` a ``Zoo`` or ``ZooManifest``) when it has one, else the constants
    for ``kind`` (default: the zoo's task, else image)."""
    rec = _recommended(zoo) if zoo is not None else None
    if rec is not None:
        return DefaultSetting(rec.method, dict(rec.params), rec.parts, "zoo")
    task = kind or str(getattr(getattr(zoo, "manifest", zoo), "task", "image") or "image")
    task = task if task in DEFAULT_METHODS else Modality.IMAGE
    return DefaultSetting(DEFAULT_METHODS[task], dict(DEFAULT_PARAMS[task]), DEFAULT_PARTS[task], "library")


def _matches(row: Mapping[str, Any], method: str, params: Mapping[str, Any] | None, parts: str | None) -> bool:
    if row.get("method") != method:
        return False
    if parts is not None and row.get("parts") not in (None, parts):
        return False
    baseline = (params or {}).get("baseline")
    row_params = str(row.get("params", ""))
    return baseline is None or "baseline=" not in row_params or f"baseline={baseline}" in row_params


def randomisation_failure(zoo: Any, method: str, *, params: Mapping[str, Any] | None = None,
                          parts: str | None = None) -> str | None:
    """A sentence when ``method`` (with ``params``' baseline and ``parts`` where given) failed the teacher
    randomisation test in every matching row of the zoo's sanity table; None when it passed, or was not tested."""
    rec = _recommended(zoo) if zoo is not None else None
    if rec is None:
        return None
    rows = [r for r in rec.table if _matches(r, method, params, parts)]
    if not rows or any(str(r.get("verdict")) == "passes" for r in rows):
        return None
    rhos = [float(r["teacher_randomised_rho"]) for r in rows if r.get("teacher_randomised_rho") is not None]
    rho = f" (randomised-teacher ρ {min(rhos):.2f}–{max(rhos):.2f} > 0.5)" if rhos else ""
    return (f"{method} fails the randomisation test on this data{rho}: its part rankings are mostly the input's, "
            f"so alignment differences are not evidence; this zoo recommends {rec.method} ({rec.parts}).")
