"""Superfeatures (KED, arXiv 2310.02572): groups of input features that interact in the teacher.

Recipe:

1. **Base features.** Images are first split into a coarse grid of cells (``grid:7x7`` on 28×28 MNIST:
   4×4-pixel cells), series into short windows (``segments:30`` on GunPoint's 150 steps: 5-step windows).
   Why coarse: a pixel-level Hessian has 784² entries per class and input and is dominated by neighbouring
   pixels that always move together; on cells the matrix is 49 × 49, cheap to estimate from a few hundred
   inputs, and the communities are readable as regions. A base feature g moves all its pixels/timesteps
   together: ``x(δ) = x + Σ_g δ_g·u_g`` with ``u_g`` the indicator of cell g.
2. **Interaction strengths** ``W_gh = mean_inputs |∂²f_c/∂δ_g∂δ_h|`` (c = the model's predicted class, f_c
   its logit), estimated by *central finite differences of gradients* with step ``h``:
   ``H[g] ≈ (∇_δ f_c(x + h·u_g) − ∇_δ f_c(x − h·u_g)) / 2h``, symmetrised. For the ReLU networks kdviz
   ships, the exact Hessian of a logit is zero almost everywhere (the network is piecewise linear), so
   Hessian–vector products by double backward would see nothing; a finite step measures the curvature the
   kinks produce over ±h, which is the interaction that matters. On a quadratic function the estimate is
   exact for any h. The diagonal is set to zero.
3. **Louvain communities** of the weighted graph W (``networkx.community.louvain_communities``, seeded),
   then merged or split to exactly M groups: while there are too many, the smallest community joins the
   one it interacts with most (total weight); while too few, the largest is bisected by Kernighan–Lin
   (seeded). Louvain's own count is kept when ``m`` is None.

The result labels every pixel/timestep with its superfeature (0..M−1) and is a fixed labelling per
(teacher, dataset), like user masks: :func:`save_superfeatures` stores it with the zoo as
``superfeatures_M<M>.npy`` (plain int64, read with ``allow_pickle=False``) plus a JSON record.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import torch
from scipy import sparse
from sknetwork.clustering import Louvain
from torch import nn

from kdviz.errors import InvalidInputError
from kdviz.io.builtin_datasets import load_dataset
from kdviz.io.zoo.manifest import MANIFEST, load_zoo, parse_manifest
from kdviz.modalities.parts import grid_labels, parse_parts, segment_labels

__all__ = [
    "LouvainCountError",
    "Superfeatures",
    "base_feature_labels",
    "build_paper_superfeatures",
    "build_superfeatures",
    "feature_interactions",
    "group_features",
    "hessian_graph",
    "load_superfeatures",
    "log_prob_hessian",
    "louvain_exact",
    "save_superfeatures",
    "superfeature_file",
]

DEFAULT_STEP = 0.5  # finite-difference step h, in model-input units (normalised pixels / z-scored series)


@dataclass(frozen=True, eq=False)
class Superfeatures:
    """A superfeature labelling and how it was made.

    labels : (H, W) or (L,) int64, superfeature 0..M−1 of every pixel / timestep.
    base_labels : (H, W) or (L,) int64, base feature (cell / window) 0..G−1 of every pixel / timestep.
    groups : the base features of each superfeature, ``groups[m]`` sorted.
    interactions : (G, G) mean |Hessian| between base features, zero diagonal.
    """

    labels: np.ndarray
    base_labels: np.ndarray
    groups: tuple[tuple[int, ...], ...]
    interactions: np.ndarray
    base: str  # 'grid:7x7' | 'segments:30'
    n_inputs: int
    step: float
    seed: int
    seconds: float
    resolution: float = math.nan  # Louvain resolution that gave M communities (the authors' recipe); NaN otherwise

    @property
    def m(self) -> int:
        return len(self.groups)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Pixels / timesteps per superfeature."""
        return tuple(int(c) for c in np.bincount(self.labels.ravel(), minlength=self.m))


# --------------------------------------------------------------------------------------------------
# Base features


def base_feature_labels(spatial_shape: tuple[int, ...], base: str) -> np.ndarray:
    """Labels of the base features: ``'grid:RxC'`` cells for (H, W) or ``'segments:N'`` windows for (L,)."""
    if base == "pixels":  # every pixel / timestep its own base feature (the authors' MLP superfeatures)
        return np.arange(int(np.prod(spatial_shape)), dtype=np.int64).reshape(spatial_shape)

    spec = parse_parts(base)
    if len(spatial_shape) == 2 and spec.kind == "grid":
        return grid_labels(*spatial_shape, rows=spec.rows, cols=spec.cols)
    if len(spatial_shape) == 1 and spec.kind == "segments":
        return segment_labels(spatial_shape[0], n_segments=spec.n)
    raise InvalidInputError(f"base={base!r} does not fit inputs of spatial shape {spatial_shape}: "
                     "use 'grid:RxC' for images, 'segments:N' for series")


# --------------------------------------------------------------------------------------------------
# Interactions


def _cell_gradients(model: nn.Module, xs: torch.Tensor, target: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """∇_δ f_c for each row of ``xs``: the input gradient summed over channels and over each base feature."""
    xs = xs.detach().requires_grad_(True)
    out = model(xs)
    picked = out.gather(1, target.view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(picked, xs)
    return grad.sum(dim=1).reshape(len(xs), -1) @ onehot  # (B, G)


def feature_interactions(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    *,
    base_labels: np.ndarray,
    target: torch.Tensor | np.ndarray | None = None,
    step: float = DEFAULT_STEP,
    batch_size: int = 256,
) -> np.ndarray:
    """Mean |∂²f_c/∂δ_g∂δ_h| over the inputs ``x`` (N, C, …), between the base features of ``base_labels``.

    ``target`` (N,) is the class c per input (default: the model's prediction). Central differences of
    gradients with step ``step``; each input costs 2·G gradient evaluations, batched ``batch_size`` rows at
    a time. Returns (G, G) float64, symmetric, zero diagonal.
    """
    if not step > 0:
        raise InvalidInputError(f"step must be > 0, got {step}")
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    lab = np.asarray(base_labels)
    if tuple(lab.shape) != tuple(xt.shape[2:]):
        raise InvalidInputError(f"base_labels have shape {lab.shape}, inputs have spatial shape {tuple(xt.shape[2:])}")
    g = int(lab.max()) + 1
    n = xt.shape[0]
    onehot = torch.nn.functional.one_hot(torch.as_tensor(lab.ravel()), g).to(torch.float32)  # (P, G)
    directions = onehot.T.reshape(g, 1, *lab.shape)  # u_g, broadcast over channels
    was_training = model.training
    model.eval()
    try:
        if target is None:
            with torch.no_grad():
                target_t = torch.cat([model(xt[i : i + batch_size]).argmax(1) for i in range(0, n, batch_size)])
        else:
            target_t = torch.as_tensor(np.asarray(target), dtype=torch.long).view(-1)
            if target_t.shape[0] != n:
                raise InvalidInputError(f"target has {target_t.shape[0]} entries for {n} inputs")
        total = np.zeros((g, g))
        per_input = max(1, batch_size // (2 * g))  # inputs whose 2G shifted copies fit one batch
        for start in range(0, n, per_input):
            xb = xt[start : start + per_input]  # (b, C, …)
            b = xb.shape[0]
            plus = xb.unsqueeze(1) + step * directions.unsqueeze(0)  # (b, G, C, …)
            minus = xb.unsqueeze(1) - step * directions.unsqueeze(0)
            rows = torch.cat([plus, minus], dim=1).reshape(b * 2 * g, *xb.shape[1:])
            tgt = target_t[start : start + b].repeat_interleave(2 * g)
            grads = _cell_gradients(model, rows, tgt, onehot).reshape(b, 2, g, g)
            hess = (grads[:, 0] - grads[:, 1]) / (2 * step)  # (b, G, G): row g = ∂/∂δ_g of ∇_δ f
            hess = 0.5 * (hess + hess.transpose(1, 2))
            total += hess.abs().sum(dim=0).double().numpy()
    finally:
        model.train(was_training)
    w = total / n
    np.fill_diagonal(w, 0.0)
    return w


# --------------------------------------------------------------------------------------------------
# Communities


def _graph(weights: np.ndarray) -> nx.Graph:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise InvalidInputError(f"weights must be a square matrix, got shape {w.shape}")
    graph = nx.Graph()
    graph.add_nodes_from(range(w.shape[0]))
    i, j = np.nonzero(np.triu(w, k=1) > 0)
    graph.add_weighted_edges_from((int(a), int(b), float(w[a, b])) for a, b in zip(i, j, strict=True))
    return graph


def _sorted(groups: list[set[int]]) -> list[set[int]]:
    return sorted(groups, key=min)


def group_features(
    weights: np.ndarray, *, m: int | None = None, seed: int = 0, resolution: float = 1.0
) -> tuple[tuple[int, ...], ...]:
    """Louvain communities of the interaction graph ``weights`` (G, G), merged or split to ``m`` groups.

    Groups are returned sorted by their smallest feature; features with no interaction at all are
    singletons before merging. ``m=None`` keeps Louvain's own communities.
    """
    graph = _graph(weights)
    g = graph.number_of_nodes()
    if m is not None and not 1 <= m <= g:
        raise InvalidInputError(f"m={m} must be between 1 and the number of base features {g}")
    groups = _sorted([set(c) for c in nx.community.louvain_communities(graph, weight="weight",
                                                                      resolution=resolution, seed=seed)])
    w = np.asarray(weights, dtype=np.float64)
    while m is not None and len(groups) > m:
        small = min(range(len(groups)), key=lambda i: (len(groups[i]), min(groups[i])))
        links = [(w[np.ix_(sorted(groups[small]), sorted(other))].sum(), -len(other), -min(other), j)
                 for j, other in enumerate(groups) if j != small]
        partner = max(links)[3]
        groups[partner] |= groups.pop(small)
        groups = _sorted(groups)
    while m is not None and len(groups) < m:
        big = max(range(len(groups)), key=lambda i: (len(groups[i]), -min(groups[i])))
        a, b = nx.community.kernighan_lin_bisection(graph.subgraph(groups[big]), weight="weight", seed=seed)
        groups[big:big + 1] = [set(a), set(b)]
        groups = _sorted(groups)
    return tuple(tuple(sorted(c)) for c in groups)


def build_superfeatures(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    *,
    base: str,
    m: int | None,
    target: torch.Tensor | np.ndarray | None = None,
    step: float = DEFAULT_STEP,
    seed: int = 0,
    batch_size: int = 256,
) -> Superfeatures:
    """Superfeatures of ``model`` from the inputs ``x`` (N, C, …) in model-input space (see module doc)."""
    start = time.perf_counter()
    base_lab = base_feature_labels(tuple(np.shape(x)[2:]), base)
    weights = feature_interactions(model, x, base_labels=base_lab, target=target, step=step,
                                   batch_size=batch_size)
    groups = group_features(weights, m=m, seed=seed)
    lookup = np.empty(int(base_lab.max()) + 1, dtype=np.int64)
    for k, members in enumerate(groups):
        lookup[list(members)] = k
    return Superfeatures(labels=lookup[base_lab], base_labels=base_lab, groups=groups, interactions=weights,
                         base=base, n_inputs=int(np.shape(x)[0]), step=step, seed=seed,
                         seconds=round(time.perf_counter() - start, 2))


# --------------------------------------------------------------------------------------------------
# Storage with the zoo


def superfeature_file(m: int) -> str:
    """File name of the M-superfeature labelling inside a zoo folder."""
    return f"superfeatures_M{int(m)}.npy"


def _record_file(m: int) -> str:
    return f"superfeatures_M{int(m)}.json"


def _graph_file(m: int) -> str:
    return f"superfeatures_M{int(m)}_graph.npy"


def save_superfeatures(sf: Superfeatures, root: str | os.PathLike[str], *, teacher: str = "") -> dict[str, object]:
    """Write ``superfeatures_M<M>.npy`` (labels, int64) and ``.json`` (how they were made) into ``root``.

    Returns the JSON record (also what the zoo manifest's ``superfeatures`` field lists)."""
    root = Path(root)
    np.save(root / superfeature_file(sf.m), np.asarray(sf.labels, dtype=np.int64), allow_pickle=False)
    record = {
        "m": sf.m, "file": superfeature_file(sf.m), "teacher": teacher, "base": sf.base,
        "groups": [list(c) for c in sf.groups], "sizes": list(sf.sizes), "n_inputs": sf.n_inputs,
        "step": None if math.isnan(sf.step) else sf.step, "seed": sf.seed, "seconds": sf.seconds,
    }
    if sf.base == "pixels":  # D×D with D = every pixel: too large for JSON; stored as float16 .npy
        record["resolution"] = sf.resolution
        np.save(root / _graph_file(sf.m), np.asarray(sf.interactions, dtype=np.float16), allow_pickle=False)
        record["graph_file"] = _graph_file(sf.m)
    else:
        record["interactions"] = np.round(sf.interactions, 6).tolist()
    (root / _record_file(sf.m)).write_text(json.dumps(record) + "\n", encoding="utf-8")
    return record


def load_superfeatures(root: str | os.PathLike[str], m: int) -> Superfeatures:
    """Read the labelling stored by :func:`save_superfeatures`; ValueError when the zoo has none for ``m``."""
    root = Path(root)
    path = root / superfeature_file(m)
    if not path.is_file():
        have = sorted(p.name for p in root.glob("superfeatures_M*.npy"))
        raise InvalidInputError(f"zoo {str(root)!r} has no {path.name} (has: {', '.join(have) or 'none'}); build it with "
                         "`python -m kdviz.modalities.superfeatures build`")
    labels = np.load(path, allow_pickle=False)
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim not in (1, 2):
        raise InvalidInputError(f"{path} must hold an integer (H, W) or (L,) labelling, got {labels.dtype} {labels.shape}")
    rec_path = root / _record_file(m)
    rec = json.loads(rec_path.read_text(encoding="utf-8")) if rec_path.is_file() else {}
    base = str(rec.get("base", ""))
    groups = tuple(tuple(int(v) for v in c) for c in rec.get("groups", []))
    if not groups:
        groups = tuple((k,) for k in range(int(labels.max()) + 1))
    if len(groups) != int(labels.max()) + 1:
        raise InvalidInputError(f"{path}: {int(labels.max()) + 1} superfeatures but the record lists {len(groups)} groups")
    base_lab = base_feature_labels(labels.shape, base) if base else labels.astype(np.int64)
    graph = root / str(rec.get("graph_file", ""))
    if rec.get("graph_file") and graph.is_file():
        inter = np.load(graph, allow_pickle=False).astype(np.float64)
    else:
        inter = np.asarray(rec.get("interactions", np.zeros((len(groups),) * 2)), dtype=np.float64)
    return Superfeatures(labels=labels.astype(np.int64), base_labels=base_lab, groups=groups, interactions=inter,
                         base=base, n_inputs=int(rec.get("n_inputs", 0)), step=float(rec.get("step") if rec.get("step") is not None else math.nan),
                         seed=int(rec.get("seed", 0)), seconds=float(rec.get("seconds", math.nan)),
                         resolution=float(rec.get("resolution", math.nan)))



def default_base(spatial_shape: tuple[int, ...]) -> str:
    """Base features used when none is given: ~4-pixel grid cells for images (7×7 on 28×28), ~5-step windows
    for series (30 on GunPoint's 150)."""
    if len(spatial_shape) == 2:
        h, w = spatial_shape
        return f"grid:{max(1, round(h / 4))}x{max(1, round(w / 4))}"
    return f"segments:{max(1, round(spatial_shape[0] / 5))}"


def build_for_zoo(
    root: str | os.PathLike[str],
    *,
    m: int,
    base: str | None = None,
    n_inputs: int = 256,
    step: float = DEFAULT_STEP,
    seed: int = 0,
) -> Superfeatures:
    """Build the zoo teacher's M superfeatures from its first ``n_inputs`` training inputs and store them
    with the zoo: ``superfeatures_M<M>.npy`` / ``.json`` and a record in ``zoo.json``'s ``superfeatures``."""
    root = Path(root)
    zoo = load_zoo(root)
    ds = load_dataset(zoo.dataset)
    x = ds.model_input(ds.x_train[:n_inputs])
    base = base or default_base(tuple(x.shape[2:]))
    sf = build_superfeatures(zoo.teacher.module, x, base=base, m=m, step=step, seed=seed)
    record = save_superfeatures(sf, root, teacher=zoo.teacher.id)
    summary = {k: v for k, v in record.items() if k not in ("groups", "interactions")}
    path = root / MANIFEST
    raw = json.loads(path.read_text(encoding="utf-8"))  # read fresh right before writing
    raw["superfeatures"] = [r for r in raw.get("superfeatures", []) if r.get("m") != sf.m] + [summary]
    raw["superfeatures"].sort(key=lambda r: r["m"])
    parse_manifest(raw, source=str(path))
    path.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    return sf


# --------------------------------------------------------------------------------------------------
# Superfeatures as the KED authors build them (GitHub scbwn/ked, MNIST.ipynb): exact input Hessian of
# Σ_c log p_c averaged over training inputs, W = |H| + |H|ᵀ with a zero diagonal, scikit-network's Louvain
# with the resolution stepped by ±0.01 until exactly M communities come out.

PAPER_N_INPUTS = 1000  # the authors' N_hess
PAPER_LOUVAIN_SEED = 100  # the authors' random_state


class LouvainCountError(ValueError):
    """Louvain did not give exactly M communities within the allowed resolution steps."""


def log_prob_hessian(model: nn.Module, x: torch.Tensor | np.ndarray, *, batch_size: int = 32) -> np.ndarray:
    """Mean over the inputs ``x`` (N, C, …) of the Hessian of ``Σ_c log p_c(x)`` w.r.t. the flattened input.

    Exact second derivatives (``torch.func.hessian``, forward-over-reverse), vmapped over ``batch_size``
    inputs at a time; for ReLU networks only the log-softmax curvature survives, ``−C·Jᵀ(diag p − ppᵀ)J``.
    Returns (D, D) float64, D = the number of input features (C·H·W).
    """
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    shape = tuple(xt.shape[1:])
    d = int(np.prod(shape))

    def objective(flat: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(model(flat.view(1, *shape)), dim=1).sum()

    per_input = torch.func.vmap(torch.func.hessian(objective))
    was_training = model.training
    model.eval()
    total = torch.zeros(d, d, dtype=torch.float64)
    try:
        for start in range(0, len(xt), batch_size):
            total += per_input(xt[start : start + batch_size].reshape(-1, d)).sum(dim=0).detach().double()
    finally:
        model.train(was_training)
    return (total / len(xt)).numpy()


def hessian_graph(hessian: np.ndarray) -> np.ndarray:
    """The authors' graph weights ``W = |H| + |H|ᵀ`` with a zero diagonal."""
    h = np.abs(np.asarray(hessian, dtype=np.float64))
    w = h + h.T
    np.fill_diagonal(w, 0.0)
    return w


def louvain_exact(weights: np.ndarray, m: int, *, resolution: float = 1.0, step: float = 0.01,
                  max_tries: int = 100, seed: int = PAPER_LOUVAIN_SEED) -> tuple[np.ndarray, float]:
    """Labels (D,) 0..M−1 from scikit-network's Louvain on ``weights``, stepping the resolution by ``step``
    (up when too few communities, down when too many) until exactly ``m`` come out; also the resolution.

    Raises :class:`LouvainCountError` after ``max_tries`` fits, as the authors' ``compute_sf`` does.
    """

    w = sparse.csr_matrix(np.asarray(weights, dtype=np.float64))
    if w.shape[0] != w.shape[1]:
        raise InvalidInputError(f"weights must be square, got shape {w.shape}")
    if not 1 <= m <= w.shape[0]:
        raise InvalidInputError(f"m={m} must be between 1 and the number of features {w.shape[0]}")
    counts = []
    for _ in range(max_tries):
        labels = np.asarray(Louvain(resolution=resolution, random_state=seed).fit_predict(w), dtype=np.int64)
        n = int(labels.max()) + 1
        counts.append(n)
        if n == m:
            return labels, round(resolution, 6)
        resolution += step if n < m else -step
    raise LouvainCountError(f"Louvain never gave {m} communities in {max_tries} tries (counts {counts[-5:]} …)")


def build_paper_superfeatures(model: nn.Module, x: torch.Tensor | np.ndarray, *, m: int,
                              seed: int = PAPER_LOUVAIN_SEED, batch_size: int = 32) -> Superfeatures:
    """The authors' superfeatures of ``model`` from the inputs ``x`` (N, C, H, W): every pixel a base feature.

    ``interactions`` holds the (D, D) graph W; ``labels`` the superfeature of every pixel (channels share a
    pixel's label only when C = 1, the MLP setting)."""
    start = time.perf_counter()
    spatial = tuple(np.shape(x)[2:])
    if np.shape(x)[1] != 1:
        raise InvalidInputError("pixel superfeatures need single-channel inputs (the authors' MLP setting)")
    weights = hessian_graph(log_prob_hessian(model, x, batch_size=batch_size))
    labels, resolution = louvain_exact(weights, m, seed=seed)
    groups = tuple(tuple(int(v) for v in np.flatnonzero(labels == k)) for k in range(m))
    return Superfeatures(labels=labels.reshape(spatial), base_labels=np.arange(labels.size).reshape(spatial),
                         groups=groups, interactions=weights, base="pixels", n_inputs=int(np.shape(x)[0]),
                         step=math.nan, seed=seed, seconds=round(time.perf_counter() - start, 2),
                         resolution=resolution)
