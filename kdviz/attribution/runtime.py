"""How the engine runs a method: device, eval mode, inference twins, seeded RNG, inputs, targets, baselines,
the memory budget and the out-of-memory retry.

Internal batching (how many rows go through the model at once, "rows" = inputs × steps or samples): the
engine estimates the activation memory of one row once per (model, input shape) with a forward pass on a
single input that sums the sizes of every leaf module's output (×3 for saved activations, gradients and
temporaries; real use of CIFAR ResNets is 2-4× below this estimate, a margin we keep), and fits as many rows
as a budget allows: 60% of the free GPU memory on CUDA; on CPU and MPS a quarter of the available RAM, at most
4 GiB. Rows are capped at what the method needs (e.g. N × n_steps for IG), so small jobs are a single pass. On
CUDA an ``OutOfMemoryError`` halves the row budget and retries (splitting the batch into chunks when fewer than
N rows fit), and the result's ``warnings`` say so.

Methods that draw random numbers take a global RNG lock, because captum draws from the global torch/numpy
generators; ``seed`` makes them reproducible without disturbing the caller's RNG state.
"""

from __future__ import annotations

import copy
import itertools
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.ndimage
import torch
from torch import nn
from torch.fx.experimental.optimization import fuse

from kdviz.attribution.locks import TRACE_GATE, model_lock
from kdviz.attribution.registry import AttributionMethod
from kdviz.errors import InvalidInputError

__all__ = [
    "BASELINES",
    "CPU_AVAILABLE_FRACTION",
    "CPU_BUDGET_BYTES",
    "CUDA_FREE_FRACTION",
    "TWIN_MIN_PASSES",
    "as_batch",
    "gradient_passes",
    "has_twin",
    "inference_twin",
    "is_cuda_oom",
    "make_baseline",
    "prepared",
    "resolve_device",
    "resolve_target",
    "row_budget",
    "run_batched",
    "seeded",
]

BASELINES = ("zeros", "black", "blurred", "mean", "noise")
CPU_BUDGET_BYTES = 4 << 30  # at most 4 GiB of estimated activations per pass on CPU/MPS
CPU_AVAILABLE_FRACTION = 0.25  # ... and at most this fraction of the available RAM
CUDA_FREE_FRACTION = 0.6  # fraction of free GPU memory one pass may use
_BYTES_FACTOR = 3  # saved activations + their gradients + temporaries, per leaf-module output

# Building a twin (tracing, folding, copying) costs more than it saves on a handful of gradient passes; from
# this many passes of one input on it pays (benchmarks/bench_attribution.py). An existing twin is always used.
TWIN_MIN_PASSES = 64

_RNG_LOCK = threading.RLock()
_CACHE_GUARD = threading.Lock()
_ROW_BYTES: weakref.WeakKeyDictionary[nn.Module, dict[tuple, int]] = weakref.WeakKeyDictionary()
_TWINS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module]] = weakref.WeakKeyDictionary()


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on.

    Parameters
    ----------
    device : str or torch.device, optional
        Used as given; None or ``"auto"`` picks cuda, then mps, then cpu.

    Returns
    -------
    torch.device
    """
    if device is not None and device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@contextmanager
def prepared(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Hold the model's lock, move it to ``device`` and put it in eval mode; restore the mode after.

    Parameters
    ----------
    model : nn.Module
    device : torch.device

    Yields
    ------
    None
    """
    with model_lock(model):
        was_training = model.training
        model.to(device)
        model.eval()
        try:
            yield
        finally:
            model.train(was_training)


def gradient_passes(params: dict[str, Any], n_inputs: int) -> int:
    """Forward+backward passes of one input an input-gradient method makes: inputs × steps × samples.

    Parameters
    ----------
    params : dict
        The method's resolved parameters (``n_steps``, ``nt_samples``, ``n_samples``, ``base`` are read).
    n_inputs : int

    Returns
    -------
    int
    """
    per_input = int(params.get("nt_samples") or 1) * int(params.get("n_samples") or 1)
    if "nt_samples" not in params or params.get("base") == "integrated_gradients":
        per_input *= int(params.get("n_steps") or 1)
    return n_inputs * per_input


def has_twin(model: nn.Module) -> bool:
    """Whether an inference twin of ``model`` was built already.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    bool
    """
    return model in _TWINS


def inference_twin(model: nn.Module, device: torch.device) -> nn.Module:
    """A copy of ``model`` (in eval mode) for methods that need only input gradients.

    Conv+BatchNorm pairs are folded (``torch.fx.experimental.optimization.fuse``), parameters are frozen so
    backward computes no weight gradients, and on the CPU 4-D weights are channels-last. Attributions agree
    with the original model's to about 1e-4 of their range (float re-association). Models torch.fx cannot
    trace are copied unfused. Cached per model, rebuilt when a parameter or buffer is changed in place (its
    ``_version``) or the device changes.

    Parameters
    ----------
    model : nn.Module
    device : torch.device

    Returns
    -------
    nn.Module
        The twin (never ``model`` itself).
    """
    key = (str(device), tuple(t._version for t in itertools.chain(model.parameters(), model.buffers())))
    cached = _TWINS.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    twin = None
    with TRACE_GATE.exclusive() as alone:  # tracing patches nn.Module for every thread: nobody else may run
        if alone:
            try:
                twin = fuse(model)  # works on a deep copy
            except Exception:  # noqa: BLE001 - not fx-traceable (control flow): an unfused copy still helps
                twin = None
    if twin is None:
        twin = copy.deepcopy(model)
    twin.eval().requires_grad_(False)
    if device.type == "cpu":
        twin = twin.to(memory_format=torch.channels_last)
    _TWINS[model] = (key, twin)
    return twin


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch and numpy's global generators for captum, restoring the caller's state afterwards.

    Parameters
    ----------
    seed : int
    device : torch.device
        Its generator is forked too when it is a CUDA device.

    Yields
    ------
    None
    """
    with _RNG_LOCK:
        devices = [device] if device.type == "cuda" else []
        np_state = np.random.get_state()
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            np.random.seed(seed)
            try:
                yield
            finally:
                np.random.set_state(np_state)


def as_batch(inputs: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
    """A float copy of ``inputs`` on ``device`` (never the caller's tensor, so it is never mutated).

    Parameters
    ----------
    inputs : tensor or array
        (N, C, H, W) images or (N, C, L) series.
    device : torch.device

    Returns
    -------
    torch.Tensor

    Raises
    ------
    InvalidInputError
        For anything else, or an empty batch.
    """
    x = torch.as_tensor(np.asarray(inputs)) if isinstance(inputs, np.ndarray) else inputs
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"inputs must be a tensor or array, got {type(inputs).__name__}")
    if x.ndim not in (3, 4):
        raise InvalidInputError(
            f"inputs must be a batch of images (N, C, H, W) or series (N, C, L), got shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise InvalidInputError("inputs is an empty batch")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    return x.detach().to(device=device, dtype=dtype, copy=True)


def resolve_target(
    model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor | np.ndarray | None
) -> torch.Tensor:
    """The class explained for each input.

    Parameters
    ----------
    model : nn.Module
        Asked for its prediction when ``target`` is None.
    x : torch.Tensor
        (N, ...) inputs.
    target : int, sequence of N ints, tensor, array or None

    Returns
    -------
    torch.Tensor
        (N,) int64 on ``x``'s device.

    Raises
    ------
    InvalidInputError
        When ``target`` is not one int or N integer class indices.
    """
    n = x.shape[0]
    if target is None:
        with torch.no_grad():
            return model(x).argmax(dim=1)
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return torch.full((n,), int(target), dtype=torch.long, device=x.device)
    t = torch.as_tensor(np.asarray(target.cpu() if isinstance(target, torch.Tensor) else target))
    if t.ndim != 1 or t.shape[0] != n or t.is_floating_point() or t.dtype == torch.bool:
        raise InvalidInputError(f"target must be an int or {n} integer class indices, got {target!r}")
    return t.to(device=x.device, dtype=torch.long)


def make_baseline(x: torch.Tensor, kind: str, *, blur_sigma: float = 5.0, seed: int = 0) -> torch.Tensor:
    """Reference input for IG, DeepLIFT, GradientSHAP and occlusion, same shape as ``x``.

    Parameters
    ----------
    x : torch.Tensor
        (N, C, ...) inputs.
    kind : str
        ``zeros``; ``black`` (each input's per-channel minimum: black in pixel space for images with a black
        pixel, e.g. MNIST's background); ``blurred`` (Gaussian blur over the spatial/time axes,
        scipy.ndimage); ``mean`` (each input's per-channel mean); ``noise`` (uniform noise within each input's
        [min, max], from a private generator seeded by ``seed`` so it does not touch the global RNG).
    blur_sigma : float, default 5.0
        σ of the blur, in pixels or timesteps.
    seed : int, default 0
        Seed of the noise.

    Returns
    -------
    torch.Tensor

    Raises
    ------
    InvalidInputError
        For a ``kind`` not in :data:`BASELINES`.
    """
    if kind == "zeros":
        return torch.zeros_like(x)
    spatial = tuple(range(2, x.ndim))
    if kind == "mean":
        return x.mean(dim=spatial, keepdim=True).expand_as(x).clone()
    if kind == "black":
        return x.amin(dim=spatial, keepdim=True).expand_as(x).clone()
    if kind == "blurred":
        arr = x.detach().float().cpu().numpy()
        sigma = (0, 0) + (blur_sigma,) * len(spatial)
        return torch.as_tensor(scipy.ndimage.gaussian_filter(arr, sigma=sigma, mode="reflect")).to(x)
    if kind == "noise":
        gen = torch.Generator().manual_seed(seed)
        flat = x.detach().float().cpu().reshape(x.shape[0], -1)
        lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
        u = torch.rand(flat.shape, generator=gen)
        return (lo[:, None] + u * (hi - lo)[:, None]).reshape(x.shape).to(x)
    raise InvalidInputError(f"baseline={kind!r} is not one of {list(BASELINES)}")


def _row_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Estimated bytes one input row costs in a forward+backward pass (cached per model and shape)."""
    key = (tuple(x.shape[1:]), x.dtype, x.device)
    with _CACHE_GUARD:
        cache = _ROW_BYTES.setdefault(model, {})
        if key in cache:
            return cache[key]
    total = [x[:1].numel()]

    def count(_module: nn.Module, _inputs: Any, output: Any) -> None:
        outs = output if isinstance(output, (tuple, list)) else (output,)
        total[0] += sum(o.numel() for o in outs if isinstance(o, torch.Tensor))

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    nbytes = max(1, total[0] * x.element_size() * _BYTES_FACTOR)
    with _CACHE_GUARD:
        cache[key] = nbytes
    return nbytes


def row_budget(model: nn.Module, x: torch.Tensor) -> int:
    """How many rows fit in one pass under the memory budget (see the module docstring).

    Parameters
    ----------
    model : nn.Module
    x : torch.Tensor
        The batch, on the device it will be attributed on.

    Returns
    -------
    int
        At least 1.
    """
    if x.device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(x.device)
        budget = int(free * CUDA_FREE_FRACTION)
    else:
        budget = min(CPU_BUDGET_BYTES, int(_available_ram() * CPU_AVAILABLE_FRACTION))
    return max(1, budget // _row_bytes(model, x))


def _available_ram() -> int:
    """Available RAM in bytes (Linux ``MemAvailable``); 4 GiB / fraction when it cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(CPU_BUDGET_BYTES / CPU_AVAILABLE_FRACTION)


def is_cuda_oom(err: BaseException) -> bool:
    """Whether ``err`` is CUDA running out of memory.

    Parameters
    ----------
    err : BaseException

    Returns
    -------
    bool
    """
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return oom is not None and isinstance(err, oom)


def run_batched(
    method: AttributionMethod, model: nn.Module, x: torch.Tensor, t: torch.Tensor, p: dict[str, Any], rows: int,
    warnings: list[str],
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """One run of ``method`` on the whole batch; on CUDA OOM halve the row budget and retry.

    Once fewer than N rows fit, the batch is run in chunks of inputs.

    Parameters
    ----------
    method : AttributionMethod
        A tensor method.
    model : nn.Module
    x, t : torch.Tensor
        Inputs (N, ...) and targets (N,).
    p : dict
        The resolved parameters.
    rows : int
        The row budget to start from.
    warnings : list of str
        Appended to on every retry.

    Returns
    -------
    tuple
        Attributions, delta (or None) and the row budget that worked.
    """
    n = x.shape[0]
    while True:
        chunk = min(n, rows)
        try:
            attrs, deltas = [], []
            for start in range(0, n, chunk):
                a, d = method.run(model, x[start:start + chunk], t[start:start + chunk], p, rows)
                attrs.append(a.detach())
                deltas.append(None if d is None else d.detach())
            delta = None if deltas[0] is None else torch.cat(deltas)
            return torch.cat(attrs), delta, rows
        except Exception as err:  # noqa: BLE001 - only CUDA OOM is retried, everything else re-raised
            if not is_cuda_oom(err) or rows <= 1:
                raise
        # Outside the except block, so the traceback (and the tensors its frames hold) is already freed.
        attrs = deltas = []
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        rows = max(1, rows // 2)
        warnings.append(f"CUDA out of memory: retried with {rows} rows per pass")
