"""Teacher randomisation test (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

Does an attribution method's part ranking depend on what the teacher learnt, or mostly on the input? We
re-initialise the teacher's weights block by block and measure how much of its part ranking survives:

* **cascading**: re-initialise from the top (output layer) down, one more block each step, until the whole
  network is random;
* **independent**: re-initialise one block at a time, the rest trained.

Similarity is Spearman ρ between the trained teacher's part-importance vector and the randomised copy's, per
input (the same statistic as attention rank alignment, so the two are directly comparable). Randomised weights
come from the same ``create_model`` call as the architecture's (seeded), BatchNorm statistics included, as in
Quantus's MPRT. Every copy explains the class the *trained* teacher predicts.

The verdict rule lives here, in one place (``RANDOMISATION_VERDICT_RULE``):

* **passes** when the fully randomised teacher's part ranking agrees with the trained teacher's at a mean
  ρ ≤ ``PASS_MAX_RHO`` (0.5): at most moderate agreement, so the trained weights decide most of the ranking;
* **fails on this data** otherwise: the part ranking is mostly the input's, and differences between students'
  alignment that do not clear the random-weights null band (``kdviz.analysis.nulls``) are not evidence.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from kdviz.analysis.metrics import attention_rank_alignment, mean_ci
from kdviz.attribution.engine import Attribution, attribute, predict_logits
from kdviz.attribution.runtime import resolve_device
from kdviz.errors import InvalidInputError
from kdviz.modalities.parts import part_importance
from kdviz.models import seeded_model

__all__ = [
    "PASS_MAX_RHO",
    "RANDOMISATION_VERDICT_RULE",
    "RandomisationOptions",
    "RandomisationResult",
    "model_blocks",
    "randomisation_test",
    "randomised_copy",
    "verdict",
]

PASS_MAX_RHO = 0.5
RANDOMISATION_VERDICT_RULE = (
    "Teacher randomisation test (Adebayo et al. 2018): the teacher's weights are re-initialised from the output "
    "layer down, block by block, until the whole network is random. A method passes when the fully randomised "
    f"teacher ranks the parts like the trained one at a mean Spearman ρ ≤ {PASS_MAX_RHO} over inputs (the trained "
    "weights decide most of the ranking); otherwise it fails on this data: part rankings are mostly the input's, "
    "and alignment differences that stay within the random-weights null band are not evidence."
)
AttributeFn = Callable[[Any, np.ndarray, np.ndarray, str], Attribution]


@dataclass(frozen=True)
class RandomisationResult:
    """Outcome of :func:`randomisation_test` for one teacher, method and set of inputs.

    blocks : the re-initialised blocks, top (output) first — the cascading order.
    cascading_rho : (n_blocks, N) ρ after re-initialising ``blocks[:i+1]``, mean over seeds; the last row is
        the fully randomised teacher (only that row with ``full_only``).
    independent_rho : (n_blocks, N) ρ with only ``blocks[i]`` re-initialised, mean over seeds.
    """

    method: str
    parts: str
    blocks: tuple[str, ...]
    cascading_rho: np.ndarray
    independent_rho: np.ndarray
    seeds: tuple[int, ...]
    n_inputs: int
    verdict: str = field(init=False)
    full_rho: float = field(init=False)
    full_rho_low: float = field(init=False)
    full_rho_high: float = field(init=False)

    def __post_init__(self) -> None:
        full = self.cascading_rho[-1] if len(self.blocks) else np.full(self.n_inputs, np.nan)
        mean, lo, hi = mean_ci(full)
        object.__setattr__(self, "full_rho", mean)
        object.__setattr__(self, "full_rho_low", lo)
        object.__setattr__(self, "full_rho_high", hi)
        object.__setattr__(self, "verdict", verdict(mean))

    def cascading_means(self) -> np.ndarray:
        """Mean ρ over inputs after each cascading step (n_blocks,)."""
        return _nanmean_rows(self.cascading_rho)

    def independent_means(self) -> np.ndarray:
        """Mean ρ over inputs with each block re-initialised alone (n_blocks,)."""
        return _nanmean_rows(self.independent_rho)

    @property
    def undecided(self) -> bool:
        """Whether the 95% interval of the fully randomised teacher's mean ρ straddles ``PASS_MAX_RHO``: the
        verdict (on the mean) could go either way with other inputs, so a UI shows it as undecided."""
        lo, hi = self.full_rho_low, self.full_rho_high
        return bool(np.isfinite(lo) and np.isfinite(hi) and lo <= PASS_MAX_RHO < hi)

    def explanation(self) -> str:
        """One sentence for the UI: the verdict with its number (undecided when the interval straddles the rule)."""
        if np.isfinite(self.full_rho_low) and np.isfinite(self.full_rho_high):
            rho = f"{self.full_rho:.2f} [{self.full_rho_low:.2f}, {self.full_rho_high:.2f}]"
        else:  # one input: no interval, and the verdict rests on that input alone
            rho = f"{self.full_rho:.2f}, no interval from {self.n_inputs} input"
        if self.undecided:
            side = "≤" if self.verdict == "passes" else ">"
            return (f"undecided — {self.verdict} on the mean but not on its interval: mean ρ {rho} {side} "
                    f"{PASS_MAX_RHO} over {self.n_inputs} inputs, and the 95% interval straddles {PASS_MAX_RHO}; more "
                    "inputs would settle it.")
        if self.verdict == "passes":
            return (f"passes: a fully randomised teacher ranks the parts differently (mean ρ {rho} ≤ {PASS_MAX_RHO} "
                    f"over {self.n_inputs} inputs).")
        if self.verdict == "fails":
            return (f"fails on this data: a fully randomised teacher still ranks the parts alike (mean ρ {rho} > "
                    f"{PASS_MAX_RHO}); part rankings are mostly the input's, so alignment differences within the "
                    "null band are not evidence.")
        return "undefined: no input had a defined rank correlation."


def _nanmean_rows(a: np.ndarray) -> np.ndarray:
    out = np.full(a.shape[0], np.nan)
    for i, row in enumerate(a):
        ok = np.isfinite(row)
        if ok.any():
            out[i] = float(row[ok].mean())
    return out


def verdict(full_rho: float) -> str:
    """``passes`` / ``fails`` / ``undefined`` from the fully randomised teacher's mean ρ (``RANDOMISATION_VERDICT_RULE``)."""
    if not np.isfinite(full_rho):
        return "undefined"
    return "passes" if full_rho <= PASS_MAX_RHO else "fails"


def model_blocks(model: nn.Module) -> list[str]:
    """Top-level children that hold parameters, in registration (input → output) order.

    For the CIFAR ResNets: conv1, bn1, layer1, layer2, layer3, fc; for torchvision ResNets also layer4; for
    the 1D FCN: features, fc. These are the "blocks" the test re-initialises (the output end first).
    """
    return [name for name, child in model.named_children() if any(True for _ in child.parameters())]


def randomised_copy(model: nn.Module, random_model: nn.Module, blocks: Sequence[str]) -> nn.Module:
    """A copy of ``model`` whose ``blocks`` (children names) take ``random_model``'s weights and buffers."""
    out = copy.deepcopy(model)
    fresh = random_model.state_dict()
    state = out.state_dict()
    prefixes = tuple(f"{b}." for b in blocks)
    unknown = [b for b in blocks if not any(k.startswith(f"{b}.") for k in state)]
    if unknown:
        raise InvalidInputError(f"blocks {unknown} are not children with weights of this model ({model_blocks(model)})")
    for name in state:
        if name.startswith(prefixes):
            if name not in fresh or fresh[name].shape != state[name].shape:
                raise InvalidInputError(f"the random model has no matching {name!r}: is it the same architecture?")
            state[name] = fresh[name].to(dtype=state[name].dtype)
    out.load_state_dict(state)
    return out.eval()


@dataclass(frozen=True, eq=False)
class _Copy:
    id: str
    arch: str
    module: nn.Module
    alpha: float | None = None
    role: str = "randomised teacher"


@dataclass(frozen=True)
class RandomisationOptions:
    """How :func:`randomisation_test` runs.

    method_params : the attribution method's parameters
    seeds : one fully random network per seed; ρ is averaged over seeds
    device : where the copies run (default: the best available)
    attribute_fn : ``(entry, x, targets, device) -> Attribution`` (a cached one from a UI); default
        ``kdviz.attribution.engine.attribute`` with the method and ``method_params``. Copies' ids name the
        architecture, seed and blocks, not the teacher: a cache must key on the teacher too.
    progress : ``(done, total, copy_id)`` before each copy is attributed, and once at the end with ``""``
    parts_name : the parts' spec, recorded in the result
    full_only : only the fully randomised teacher (what the verdict needs): ``cascading_rho`` then has one row
        and ``independent_rho`` none — 1 attribution per seed instead of 2 × blocks
    """

    method_params: dict[str, Any] = field(default_factory=dict)
    seeds: Sequence[int] = (20_000, 20_001)
    device: str | torch.device | None = None
    attribute_fn: AttributeFn | None = None
    progress: Callable[[int, int, str], None] | None = None
    parts_name: str = ""
    full_only: bool = False


def randomisation_test(
    teacher: nn.Module,
    arch: str,
    inputs: np.ndarray | torch.Tensor,
    *,
    part_labels: np.ndarray,
    method: str = "integrated_gradients",
    options: RandomisationOptions | None = None,
) -> RandomisationResult:
    """Cascading and independent randomisation of ``teacher`` (architecture ``arch``) on ``inputs``.

    Parameters
    ----------
    teacher : the trained teacher (not modified; copies are randomised)
    arch : its registry name, so random weights come from the same ``create_model`` call
    inputs : (N, C, H, W) or (N, C, L), normalised as the teacher expects
    part_labels : (N, H, W) / (N, L) parts shared by every copy (e.g. ``compare.Comparison.part_labels``)
    method : the attribution method
    options : :class:`RandomisationOptions` (seeds, device, hooks, ``full_only``)
    """
    opts = options or RandomisationOptions()
    seeds, device, attribute_fn, progress = opts.seeds, opts.device, opts.attribute_fn, opts.progress
    full_only, parts_name, method_params = opts.full_only, opts.parts_name, opts.method_params
    x = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs, dtype=np.float32)
    labels = np.asarray(part_labels)
    if labels.shape != (x.shape[0], *x.shape[2:]):
        raise InvalidInputError(f"part_labels {labels.shape} do not match inputs {x.shape}")
    if not seeds:
        raise InvalidInputError("seeds must name at least one random network")
    dev = resolve_device(device)
    params = dict(method_params or {})
    n_parts = int(labels.max()) + 1
    teacher = teacher.eval()
    logits = predict_logits(teacher, x, device=dev)
    targets = logits.argmax(axis=1)
    blocks = list(reversed(model_blocks(teacher)))

    def run(entry: Any) -> np.ndarray:
        if attribute_fn is not None:
            attr = attribute_fn(entry, x, targets, str(dev))
        else:
            attr = attribute(entry.module, x, method=method, target=targets, device=dev, **params)
        return part_importance(attr.importance, labels, n_parts=n_parts)

    v_teacher = run(_Copy(f"teacher:{arch}", arch, teacher, role="teacher"))
    steps = [len(blocks) - 1] if full_only else list(range(len(blocks)))
    total = (1 if full_only else 2 * len(blocks)) * len(seeds)
    done = 0
    cascading = np.zeros((len(seeds), len(steps), x.shape[0]))
    independent = np.zeros((len(seeds), 0 if full_only else len(blocks), x.shape[0]))
    for si, seed in enumerate(seeds):
        random_model = seeded_model(arch, seed=seed, num_classes=logits.shape[1], in_channels=x.shape[1]).float()
        for row, step in enumerate(steps):
            kinds = [("cascading", blocks[: step + 1], cascading)]
            if not full_only:
                kinds.append(("independent", [blocks[step]], independent))
            for kind, chosen, out in kinds:
                copy_id = f"randomised:{arch}:seed{seed}:{kind}:{'+'.join(chosen)}"
                if progress is not None:
                    progress(done, total, copy_id)
                module = randomised_copy(teacher, random_model, chosen)
                out[si, row] = attention_rank_alignment(run(_Copy(copy_id, arch, module)), v_teacher)
                done += 1
    if progress is not None:
        progress(done, total, "")
    return RandomisationResult(
        method=method, parts=parts_name, blocks=tuple(blocks), cascading_rho=_mean_over_seeds(cascading),
        independent_rho=_mean_over_seeds(independent), seeds=tuple(int(s) for s in seeds), n_inputs=int(x.shape[0]),
    )


def _mean_over_seeds(a: np.ndarray) -> np.ndarray:
    """(seeds, blocks, N) -> (blocks, N), NaN-aware (a seed whose ρ is undefined on an input is left out)."""
    count = np.isfinite(a).sum(axis=0)
    total = np.where(np.isfinite(a), a, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
