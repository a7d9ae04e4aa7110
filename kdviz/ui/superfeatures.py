"""Superfeatures in the dashboard: the stored labelling of a set, the ``superfeatures:M`` parts it resolves
to, and a page section with teacher and students' explanations over superfeatures side by side.

The labelling is read from the zoo folder (``superfeatures_M<M>.npy``, built once by
``kdviz zoo superfeatures``), never recomputed when a page opens. Uploaded sets have no zoo folder, so they
have no superfeatures (the section says how to build them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from kdviz.attribution.groups import explain_branches, explain_groups
from kdviz.errors import InvalidInputError
from kdviz.modalities.parts import PartSpec, parse_parts
from kdviz.modalities.superfeatures import load_superfeatures
from kdviz.report.superfeature_figures import superfeature_explanations, superfeature_layout
from kdviz.ui.charts import chart
from kdviz.ui.sets import DEMO_SETS, ModelSet, array_hash, demo_folder
from kdviz.vocab import Modality

__all__ = ["available_m", "set_superfeatures", "superfeature_parts", "superfeature_section"]


def _folder(mset: ModelSet) -> Path | None:
    return demo_folder(mset.key) if mset.key in DEMO_SETS else None


def available_m(mset: ModelSet | None = None, *, key: str | None = None) -> list[int]:
    """The M values whose labelling is stored with the set's zoo (empty for uploads)."""
    folder = _folder(mset) if mset is not None else (demo_folder(key) if key in DEMO_SETS else None)
    if folder is None or not (folder / "zoo.json").is_file():
        return []
    try:
        records = json.loads((folder / "zoo.json").read_text(encoding="utf-8")).get("superfeatures", [])
    except (OSError, json.JSONDecodeError):
        return []
    return sorted(int(r["m"]) for r in records if (folder / str(r.get("file", ""))).is_file())


@st.cache_data(show_spinner=False, max_entries=8)
def _load(folder: str, m: int, stamp: float) -> tuple[np.ndarray, str, float, int]:
    sf = load_superfeatures(folder, m)
    return sf.labels, sf.base, sf.seconds, sf.n_inputs


def set_superfeatures(mset: ModelSet, m: int) -> tuple[np.ndarray, str, float, int]:
    """(labels, base features, build seconds, inputs used) of the set's M superfeatures; ValueError if none."""
    folder = _folder(mset)
    if folder is None:
        raise InvalidInputError("superfeatures are stored with a zoo; this set has none. Build them for a zoo folder "
                         "with `kdviz zoo superfeatures FOLDER --m 8`.")
    path = folder / f"superfeatures_M{int(m)}.npy"
    stamp = path.stat().st_mtime if path.is_file() else 0.0
    return _load(str(folder), int(m), stamp)


def superfeature_parts(mset: ModelSet, parts: str) -> str | PartSpec:
    """``parts`` unchanged, except ``'superfeatures:M'`` which becomes a PartSpec carrying the stored labels."""
    spec = parse_parts(parts)
    if spec.kind != "superfeatures":
        return parts
    labels = set_superfeatures(mset, spec.n)[0]
    return PartSpec("superfeatures", n=spec.n, masks=labels)


@st.cache_data(show_spinner=False, max_entries=32)
def _explain(model_hashes: tuple[str, ...], input_hash: str, m: int, tau: float, _mset: ModelSet,
             _x: np.ndarray, _labels: np.ndarray, _ids: tuple[str, ...]) -> dict[str, tuple]:
    """Shapley values and exp_m of each chosen model on one input, for the teacher's predicted class.

    An explaining network (KED as in the paper) whose branches are these superfeatures explains itself: each
    branch's class distribution and its share of the total logit (``explain_branches``); every other model is
    explained by masking (``explain_groups``)."""
    x = torch.as_tensor(_x)
    base = _baseline(_mset)
    teacher = _mset.teacher.module
    with torch.no_grad():
        target = teacher(x).argmax(1)
    out = {}
    for model in _mset.models:
        if model.id in _ids:
            if _own_branches(model.module, _labels):
                exp = explain_branches(model.module, x, target=target, tau=tau)
            else:
                exp = explain_groups(model.module, x, labels=_labels, target=target, tau=tau, baseline=base)
            out[model.id] = (exp.shapley[0], exp.distributions[0], int(target[0]), exp.exact)
    return out


def _own_branches(module: object, labels: np.ndarray) -> bool:
    """True when ``module`` is an explaining network whose branches are exactly the superfeatures ``labels``."""
    own = getattr(module, "superfeatures", None)
    return (hasattr(module, "branch_log_probs") and own is not None and own.numel() == labels.size
            and bool((own.cpu().numpy() == labels.ravel()).all()))


def _baseline(mset: ModelSet):
    """Black pixel for images, 0 (the series mean) for z-normalised series, in model-input space (the
    baseline KED and SD train with, kdviz.training.loop.sd_baseline)."""
    mean = torch.tensor(mset.mean, dtype=torch.float32)
    std = torch.tensor(mset.std, dtype=torch.float32)
    return (-mean / std) if mset.task == Modality.IMAGE else torch.zeros_like(mean)


def _default_models(mset: ModelSet) -> list[str]:
    """Teacher, the KED and SD students, and the KD students of the same architecture (for the paper's KED,
    whose students are explaining networks of equal size: any architecture) and α."""
    variants = [s for s in mset.students if s.method in ("ked", "ked-blackbox", "kd+sd")]
    siblings = [s for s in mset.students if s.method == "kd"
                and any((s.arch == v.arch or v.method == "ked") and s.alpha == v.alpha for v in variants)]
    picked = [mset.teacher.id] + [s.id for s in siblings[:1]] + [s.id for s in variants[:3]]
    return list(dict.fromkeys(picked))


def superfeature_section(mset: ModelSet, parts: str, display: np.ndarray, names: list[str], *, key: str) -> None:
    """A page section: the superfeatures over a chosen input and each chosen model's explanation over them.

    Drawn when ``parts`` is ``superfeatures:M`` (otherwise a one-line hint), so other part kinds keep the
    page as it was."""
    ms = available_m(mset)
    spec = parse_parts(parts)
    if spec.kind != "superfeatures":  # drawn when the sidebar's parts are the teacher's superfeatures
        if ms:
            st.caption(":material/info: Choose *superfeatures* as parts in the sidebar to see each model's explanation over the "
                       "teacher's superfeatures (groups of interacting input features, as in KED).")
        return
    st.subheader("Superfeature explanations (KED)")
    if not ms:
        st.info("This set has no stored superfeatures (groups of interacting input features, arXiv 2310.02572). "
                "Build them for a zoo folder with `kdviz zoo superfeatures FOLDER --m 8`.")
        return
    m_default = spec.n if spec.n in ms else ms[0]
    c1, c2, c3 = st.columns([1, 1, 3])
    m = c1.selectbox("Superfeatures M", ms, index=ms.index(m_default), key=f"{key}_sf_m")
    tau = c2.select_slider("Temperature τ", options=[1.0, 2.0, 4.0, 10.0], value=1.0, key=f"{key}_sf_tau",
                           help="exp_m = softmax(output with only superfeature m kept / τ); explaining networks: "
                                "softmax(log p_m / τ) of branch m. KED trains with τ = 10 (paper), 4 (black-box)")
    i = c3.selectbox("Input", range(len(names)), format_func=lambda j: names[j], key=f"{key}_sf_input")
    ids = st.multiselect("Models", [mm.id for mm in mset.models], default=_default_models(mset),
                         key=f"{key}_sf_models", max_selections=6)
    labels, base, seconds, n_inputs = set_superfeatures(mset, int(m))
    st.caption(f"{m} superfeatures of the teacher: Louvain communities of its averaged |Hessian| between "
               f"{base} base features ({n_inputs} training inputs, built once in {seconds:.0f} s and stored "
               "with the zoo). Shapley values are exact (2^M coalitions), for the teacher's predicted class; "
               "the rest of the input is set to the baseline (black / series mean).")
    if _own_branches(mset.teacher.module, labels):
        st.caption("The teacher is an *explaining* network (KED as in arXiv 2310.02572): one branch per "
                   "superfeature, each ending in a softmax. Models marked *own branches* are explained by their "
                   "branches, no masking: each branch's class distribution (bottom) and its share "
                   "log p_m(c) − log π_c of the total logit (top; they sum to logit_c − log π_c). The others are "
                   "explained by masking.")
    x = mset.model_input(display[i : i + 1])
    if not ids:
        ids = [mset.teacher.id]
    ordered = tuple(mm.id for mm in mset.models if mm.id in ids)
    result = _explain(mset.hashes, array_hash(x), int(m), float(tau), mset, x, labels, ordered)
    target = next(iter(result.values()))[2]
    left, right = st.columns([1, 3])
    with left:
        chart(superfeature_layout(display[i], labels, title=f"{m} superfeatures over {names[i]}"),
              name="superfeatures", key=f"{key}_sf_layout")
    with right:
        chart(superfeature_explanations(
            display[i], labels, {k: v[0] for k, v in result.items()}, {k: v[1] for k, v in result.items()},
            class_names=mset.class_names, tau=float(tau), target_name=mset.class_name(target),
            titles={mm.id: (f"{mm.id} ({mm.method})" if mm.role == "student" else f"{mm.id} (teacher)")
                    + (" · own branches" if _own_branches(mm.module, labels) else "") for mm in mset.models}),
            name="superfeature_explanations", key=f"{key}_sf_expl")
