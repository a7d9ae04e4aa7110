"""One entry point for captum attribution methods, batched.

``attribute(model, x, *, method, target, **params)`` runs one captum method on a whole batch (one captum
call per model for N inputs, never N calls) and reduces the result as DESIGN.md defines it:

- ``raw``: the captum output, shape of the input (N, C, H, W) or (N, C, L);
- ``importance``: sum over channels of ``|A|``, shape (N, H, W) or (N, L);
- ``signed``: sum over channels of ``A``, for display.

``METHODS`` (:mod:`kdviz.attribution.methods`) is the method table: name -> captum class + parameter specs. The
UI builds its widgets from it, and ``attribute`` validates keyword parameters against it.

Thread safety: captum registers hooks on the model while it runs, and the dashboard shares one cached model
object between sessions, so calls on the same model object are serialised by a per-model lock. Methods that
draw random numbers (smoothgrad, gradient_shap) also take a global RNG lock, because captum draws from the
global torch/numpy generators; ``seed`` makes them reproducible without disturbing the caller's RNG state.

Internal batching (how many rows go through the model at once, "rows" = inputs x steps or samples): the
engine estimates the activation memory of one row once per (model, input shape) with a forward pass on a
single input that sums the sizes of every leaf module's output (x3 for saved activations, gradients and
temporaries; measured real use of CIFAR ResNets is 2-4x below this estimate, a margin we keep), and fits
as many rows as a budget allows: 60% of the free GPU memory on CUDA; on CPU and MPS a quarter of the
available RAM, at most 4 GiB (throughput per row on CPU keeps improving up to a few hundred rows). Rows are capped at what the method needs (e.g. N x n_steps for IG), so small jobs are a single
pass. On CUDA an ``OutOfMemoryError`` halves the row budget and retries (splitting the batch into chunks
when fewer than N rows fit), and the result's ``warnings`` say so.
"""

from __future__ import annotations

import copy
import itertools
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.ndimage
import torch
from captum.attr import (
    DeepLift,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import nn

from kdviz.attribution.ig_steps import MAX_STEPS, completeness_error, step_ladder
from kdviz.attribution.methods import BASELINES, METHODS, MethodSpec, ParamSpec
from kdviz.attribution.vision_transformer import attention_rollout, token_layout, vit_grad_cam

__all__ = [
    "METHODS",
    "Attribution",
    "MethodSpec",
    "ParamSpec",
    "as_batch",
    "attribute",
    "attribute_auto_steps",
    "find_last_conv",
    "make_baseline",
    "ModelGuard",
    "TRACE_GATE",
    "TraceGate",
    "model_lock",
    "predict_logits",
    "prepared",
    "resolve_device",
    "resolve_target",
    "reused_nonlinearities",
]

CPU_BUDGET_BYTES = 4 << 30  # at most 4 GiB of estimated activations per pass on CPU/MPS
CPU_AVAILABLE_FRACTION = 0.25  # ... and at most this fraction of the available RAM
CUDA_FREE_FRACTION = 0.6  # fraction of free GPU memory one pass may use
_BYTES_FACTOR = 3  # saved activations + their gradients + temporaries, per leaf-module output


# --------------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Attribution:
    """Attributions of one model on a batch (numpy inside, so it pickles).

    Attributes
    ----------
    method, params : the method name and every parameter used (defaults filled in).
    raw : (N, C, H, W) or (N, C, L) float32; for grad_cam C = 1 (the map has no channels).
    importance : (N, H, W) or (N, L), sum over channels of ``|raw|``.
    signed : same shape as ``importance``, sum over channels of ``raw``.
    delta : (N,) IG convergence delta (Σ attributions − (f(x) − f(baseline))), None for other methods.
    steps : (N,) IG steps each input ended with when ``auto_steps`` chose them (``kdviz.attribution.ig_steps``), else None.
    target : (N,) class explained for each input.
    internal_batch_size : rows per forward pass IG used (None for other methods).
    warnings : what the engine had to do differently (e.g. CUDA out-of-memory retries).
    """

    method: str
    params: dict[str, Any]
    raw: np.ndarray
    importance: np.ndarray
    signed: np.ndarray
    target: np.ndarray
    delta: np.ndarray | None = None
    device: str = "cpu"
    internal_batch_size: int | None = None
    elapsed_s: float = 0.0
    warnings: tuple[str, ...] = field(default_factory=tuple)
    steps: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of inputs."""
        return int(self.raw.shape[0])

    @property
    def completeness_error(self) -> np.ndarray | None:
        """(N,) IG's |δ| / |f(x) − f(baseline)| (``kdviz.attribution.ig_steps.completeness_error``); None without a delta."""
        return None if self.delta is None else completeness_error(self.raw, self.delta)


# --------------------------------------------------------------------------------------------------
# Locks, device, helpers
# --------------------------------------------------------------------------------------------------

_LOCKS: weakref.WeakKeyDictionary[nn.Module, ModelGuard] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
_RNG_LOCK = threading.RLock()
_ROW_BYTES: weakref.WeakKeyDictionary[nn.Module, dict[tuple, int]] = weakref.WeakKeyDictionary()


class TraceGate:
    """Keeps torch.fx tracing apart from every forward pass of the process.

    ``torch.fx.symbolic_trace`` (behind the inference twin's Conv+BN folding) patches ``nn.Module.__call__``
    and ``__getattr__`` on the class, for every thread: a forward pass that runs in another session while a
    twin is traced goes through the tracer and fails ("module is not installed as a submodule"; found by
    tests/test_thread_safety.py). Forward passes hold the gate shared (re-entrant per thread); a trace
    holds it alone. A waiting trace lets no new forward pass in, and gives up after ``timeout`` seconds
    (the caller then copies the model unfused, which needs no trace) so nested model locks cannot deadlock.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0
        self._local = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the gate for forward passes (many threads at once)."""
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            with self._cond:
                while self._writer or self._waiting:
                    self._cond.wait()
                self._readers += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._cond:
                    self._readers -= 1
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self, timeout: float = 10.0) -> Iterator[bool]:
        """Hold the gate alone (yields True), or yield False after ``timeout`` seconds without it."""
        holds = getattr(self._local, "depth", 0) > 0
        with self._cond:
            if holds:
                self._readers -= 1  # this thread's own forward passes are paused while it traces
            self._waiting += 1
            got = self._cond.wait_for(lambda: not self._writer and self._readers == 0, timeout=timeout)
            self._waiting -= 1
            if got:
                self._writer = True
            elif holds:
                self._readers += 1
            self._cond.notify_all()
        try:
            yield got
        finally:
            if got:
                with self._cond:
                    self._writer = False
                    if holds:
                        self._readers += 1
                    self._cond.notify_all()


TRACE_GATE = TraceGate()


class ModelGuard:
    """Context manager: ``model``'s own lock, then the trace gate shared (see :class:`TraceGate`)."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self._gates: threading.local = threading.local()

    def __enter__(self) -> ModelGuard:
        self.lock.acquire()
        gate = TRACE_GATE.shared()
        try:
            gate.__enter__()
        except BaseException:
            self.lock.release()
            raise
        stack = getattr(self._gates, "stack", None)
        if stack is None:
            stack = self._gates.stack = []
        stack.append(gate)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._gates.stack.pop().__exit__(None, None, None)
        finally:
            self.lock.release()


def model_lock(model: nn.Module) -> ModelGuard:
    """The lock that serialises attribution calls on ``model`` (one per model object, re-entrant); holding it
    also keeps torch.fx tracing elsewhere in the process from running during the forward passes."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = ModelGuard(threading.RLock())
        return lock


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else (None or ``"auto"``) cuda, then mps, then cpu."""
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
    """Hold the model's lock, move it to ``device`` and put it in eval mode; restore the mode after."""
    with model_lock(model):
        was_training = model.training
        model.to(device)
        model.eval()
        try:
            yield
        finally:
            model.train(was_training)


# Methods that only need d(output)/d(input); they may run on an inference twin of the model.
_INPUT_GRADIENT_ONLY = frozenset({"saliency", "integrated_gradients", "input_x_gradient", "smoothgrad", "gradient_shap"})
_TWINS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module]] = weakref.WeakKeyDictionary()


# Building a twin costs ~0.13 s for the demo's resnet56 and saves ~3 ms per forward+backward of one input,
# so below ~50 such passes it does not pay: saliency on one displayed digit (15 models) took 2.5 s with
# twins against 0.7 s without. An existing twin is always used.
TWIN_MIN_PASSES = 64


def _gradient_passes(params: dict[str, Any], n_inputs: int) -> int:
    """Forward+backward passes of one input an input-gradient method makes: inputs × steps × samples."""
    per_input = int(params.get("nt_samples") or 1) * int(params.get("n_samples") or 1)
    if "nt_samples" not in params or params.get("base") == "integrated_gradients":
        per_input *= int(params.get("n_steps") or 1)
    return n_inputs * per_input


def inference_twin(model: nn.Module, device: torch.device) -> nn.Module:
    """A copy of ``model`` (in eval mode) for methods that need only input gradients.

    Conv+BatchNorm pairs are folded (``torch.fx.experimental.optimization.fuse``), parameters are
    frozen so backward computes no weight gradients, and on the CPU 4-D weights are channels-last.
    Measured on the MNIST demo zoo's resnet56 (16 images, IG 32 steps, 2-core CPU): 3.1 s → 1.5 s.
    Attributions agree with the original model's to about 1e-4 of their range (float
    re-association). Models torch.fx cannot trace are copied unfused. Cached per model, rebuilt when
    a parameter or buffer is changed in place (its ``_version``) or the device changes.
    """
    key = (str(device), tuple(t._version for t in itertools.chain(model.parameters(), model.buffers())))
    cached = _TWINS.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    twin = None
    with TRACE_GATE.exclusive() as alone:  # tracing patches nn.Module for every thread: nobody else may run
        if alone:
            try:
                from torch.fx.experimental.optimization import fuse

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
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch and numpy's global generators for captum, restoring the caller's state afterwards."""
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
    """A float copy of ``inputs`` on ``device`` (never the caller's tensor, so it is never mutated)."""
    x = torch.as_tensor(np.asarray(inputs)) if isinstance(inputs, np.ndarray) else inputs
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"inputs must be a tensor or array, got {type(inputs).__name__}")
    if x.ndim not in (3, 4):
        raise ValueError(
            f"inputs must be a batch of images (N, C, H, W) or series (N, C, L), got shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError("inputs is an empty batch")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    return x.detach().to(device=device, dtype=dtype, copy=True)


def predict_logits(
    model: nn.Module, inputs: torch.Tensor | np.ndarray, *, device: str | torch.device | None = None
) -> np.ndarray:
    """Logits of ``model`` on a batch, (N, n_classes) float32, in eval mode and under the model's lock."""
    dev = resolve_device(device)
    x = as_batch(inputs, dev)
    with prepared(model, dev), torch.no_grad():
        return model(x).detach().float().cpu().numpy()


def resolve_target(
    model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor | np.ndarray | None
) -> torch.Tensor:
    n = x.shape[0]
    if target is None:
        with torch.no_grad():
            return model(x).argmax(dim=1)
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return torch.full((n,), int(target), dtype=torch.long, device=x.device)
    t = torch.as_tensor(np.asarray(target.cpu() if isinstance(target, torch.Tensor) else target))
    if t.ndim != 1 or t.shape[0] != n or t.is_floating_point() or t.dtype == torch.bool:
        raise ValueError(f"target must be an int or {n} integer class indices, got {target!r}")
    return t.to(device=x.device, dtype=torch.long)


def make_baseline(
    x: torch.Tensor, kind: str, *, blur_sigma: float = 5.0, seed: int = 0
) -> torch.Tensor:
    """Reference input for IG, DeepLIFT, GradientSHAP and occlusion, same shape as ``x``.

    ``zeros``; ``black`` (each input's per-channel minimum: black in pixel space for images with a black pixel,
    e.g. MNIST's background); ``blurred`` (Gaussian blur over the spatial/time axes, scipy.ndimage); ``mean``
    (each input's per-channel mean); ``noise`` (uniform noise within each input's [min, max], from a private
    generator seeded by ``seed`` so it does not touch the global RNG).
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
    raise ValueError(f"baseline={kind!r} is not one of {list(BASELINES)}")


def find_last_conv(model: nn.Module, *, spatial_dims: int = 2) -> nn.Module:
    """The last ``Conv{1,2}d`` module in registration order (Grad-CAM's layer); ValueError if none."""
    conv_type = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[spatial_dims]
    last = None
    for module in model.modules():
        if isinstance(module, conv_type):
            last = module
    if last is None:
        raise ValueError(f"grad_cam needs a {conv_type.__name__} layer; the model has none")
    return last


def _row_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Estimated bytes one input row costs in a forward+backward pass (cached per model and shape)."""
    key = (tuple(x.shape[1:]), x.dtype, x.device)
    with _LOCKS_GUARD:
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
    with _LOCKS_GUARD:
        cache[key] = nbytes
    return nbytes


def _row_budget(model: nn.Module, x: torch.Tensor) -> int:
    """How many rows fit in one pass under the memory budget (see the module docstring)."""
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


# --------------------------------------------------------------------------------------------------
# Method runners: each makes exactly one captum call on the batch it is given
# --------------------------------------------------------------------------------------------------

Runner = Callable[[nn.Module, torch.Tensor, torch.Tensor, dict[str, Any], int], tuple[torch.Tensor, Any]]


def _baseline(x: torch.Tensor, p: dict[str, Any]) -> torch.Tensor:
    return make_baseline(x, p["baseline"], blur_sigma=p["blur_sigma"], seed=p["seed"])


def _ig_internal(p: dict[str, Any], n: int, rows: int) -> int:
    """IG rows per pass: the row budget (user's internal_batch_size, else the memory estimate, halved on
    OOM), at most all N × n_steps rows, at least N (captum's minimum)."""
    return max(n, min(rows, n * p["n_steps"]))


def _run_saliency(model, x, t, p, rows):
    return Saliency(model).attribute(x, target=t, abs=p["abs"]), None


def _run_ixg(model, x, t, p, rows):
    return InputXGradient(model).attribute(x, target=t), None


def _run_ig(model, x, t, p, rows):
    ibs = _ig_internal(p, x.shape[0], rows)
    attr, delta = IntegratedGradients(model).attribute(
        x, baselines=_baseline(x, p), target=t, n_steps=p["n_steps"], method=p["integration"],
        internal_batch_size=ibs, return_convergence_delta=True,
    )
    return attr, delta


def _run_smoothgrad(model, x, t, p, rows):
    n = x.shape[0]
    per_sample = p["n_steps"] if p["base"] == "integrated_gradients" else 1
    nt_batch = int(min(p["nt_samples"], max(1, rows // (n * per_sample))))
    kwargs: dict[str, Any] = {}
    if p["base"] == "integrated_gradients":
        base = IntegratedGradients(model)
        kwargs = {"baselines": torch.zeros_like(x), "n_steps": p["n_steps"],
                  "internal_batch_size": max(n * nt_batch, min(rows, n * nt_batch * p["n_steps"]))}
    else:
        base = Saliency(model)
    attr = NoiseTunnel(base).attribute(
        x, nt_type=p["nt_type"], nt_samples=p["nt_samples"], nt_samples_batch_size=nt_batch,
        stdevs=p["stdevs"], target=t, **kwargs,
    )
    return attr, None


def _run_gradient_shap(model, x, t, p, rows):
    attr = GradientShap(model).attribute(
        x, baselines=_baseline(x, p), n_samples=p["n_samples"], stdevs=p["stdevs"], target=t
    )
    return attr, None


def reused_nonlinearities(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Names of non-linearity modules (ReLU, …) called more than once in one forward pass on ``x[:1]``.

    captum's DeepLIFT hooks each such module and needs it used exactly once: a reused one either raises
    deep inside captum or silently gives wrong attributions (captum issues #578, #1082, #1104).
    torchvision ResNets reuse ``self.relu`` in every block.
    """
    from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR

    names = {m: n for n, m in model.named_modules() if type(m) in SUPPORTED_NON_LINEAR}  # captum's own test
    calls: dict[nn.Module, int] = dict.fromkeys(names, 0)

    def count(module: nn.Module, _inputs: Any) -> None:
        calls[module] += 1

    handles = [m.register_forward_pre_hook(count) for m in names]
    try:
        with torch.no_grad():
            model(x[:1].detach())
    finally:
        for h in handles:
            h.remove()
    return [names[m] or type(m).__name__ for m, c in calls.items() if c > 1]


def _run_deeplift(model, x, t, p, rows):
    reused = reused_nonlinearities(model, x)
    if reused:
        raise ValueError(
            f"deeplift needs every non-linearity module used once, but this model reuses {reused[:3]}"
            f"{' …' if len(reused) > 3 else ''} (e.g. torchvision ResNets); use integrated_gradients or "
            "gradient_shap for this model"
        )
    return DeepLift(model).attribute(x, baselines=_baseline(x, p), target=t), None


def occlusion_windows(x_shape: Sequence[int], window: int, stride: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """captum ``sliding_window_shapes`` and ``strides`` for a square window (images) or a segment (series).

    The window spans every channel and is clipped to the input size.
    """
    c, *spatial = x_shape[1:]
    shapes = (c, *(min(window, s) for s in spatial))
    strides = (1, *(min(stride, s) for s in spatial))
    return shapes, strides


def _run_occlusion(model, x, t, p, rows):
    shapes, strides = occlusion_windows(x.shape, p["window"], p["stride"])
    n_windows = math.prod((s - w) // st + 1 for s, w, st in zip(x.shape[2:], shapes[1:], strides[1:], strict=True))
    per_eval = int(min(n_windows, max(1, rows // x.shape[0])))
    attr = Occlusion(model).attribute(
        x, sliding_window_shapes=shapes, strides=strides, baselines=_baseline(x, p), target=t,
        perturbations_per_eval=per_eval,
    )
    return attr, None


def _run_grad_cam(model, x, t, p, rows):
    if token_layout(model) is not None:  # a ViT: Grad-CAM on the patch-token grid
        mode = "bilinear" if p["interpolate"] == "linear" else "nearest"
        return vit_grad_cam(model, x, t, relu=p["relu"], interpolate=mode), None
    spatial = x.ndim - 2
    layer = find_last_conv(model, spatial_dims=spatial)
    cam = LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=p["relu"])
    mode = p["interpolate"]
    if mode == "linear":
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial]
    return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode=mode), None


def _run_rollout(model, x, t, p, rows):
    return attention_rollout(model, x, head_fusion=p["head_fusion"], residual=p["residual"]), None


_NEEDS_INPUT_GRAD = frozenset({"saliency", "input_x_gradient", "deeplift"})

_RUNNERS: dict[str, Runner] = {
    "saliency": _run_saliency,
    "integrated_gradients": _run_ig,
    "input_x_gradient": _run_ixg,
    "smoothgrad": _run_smoothgrad,
    "gradient_shap": _run_gradient_shap,
    "deeplift": _run_deeplift,
    "occlusion": _run_occlusion,
    "grad_cam": _run_grad_cam,
    "attention_rollout": _run_rollout,
}


def _is_cuda_oom(err: BaseException) -> bool:
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return oom is not None and isinstance(err, oom)


def _run_batched(
    runner: Runner, model: nn.Module, x: torch.Tensor, t: torch.Tensor, p: dict[str, Any], rows: int,
    warnings: list[str],
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """One captum call on the whole batch; on CUDA OOM halve the row budget and retry (in chunks of
    inputs once fewer than N rows fit). Returns attributions, delta and the row budget that worked."""
    n = x.shape[0]
    while True:
        chunk = min(n, rows)
        try:
            attrs, deltas = [], []
            for start in range(0, n, chunk):
                a, d = runner(model, x[start:start + chunk], t[start:start + chunk], p, rows)
                attrs.append(a.detach())
                deltas.append(None if d is None else d.detach())
            delta = None if deltas[0] is None else torch.cat(deltas)
            return torch.cat(attrs), delta, rows
        except Exception as err:  # noqa: BLE001 - only CUDA OOM is retried, everything else re-raised
            if not _is_cuda_oom(err) or rows <= 1:
                raise
        # Outside the except block, so the traceback (and the tensors its frames hold) is already freed.
        attrs = deltas = []
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        rows = max(1, rows // 2)
        warnings.append(f"CUDA out of memory: retried with {rows} rows per pass")


def attribute(
    model: nn.Module,
    inputs: torch.Tensor | np.ndarray,
    *,
    method: str,
    target: int | Sequence[int] | torch.Tensor | np.ndarray | None,
    device: str | torch.device | None = None,
    **params: Any,
) -> Attribution:
    """Attribute ``model``'s output for ``target`` to its inputs, for a whole batch at once.

    Parameters
    ----------
    model : nn.Module
        Classifier returning logits (N, n_classes). It is moved to ``device`` (in place, as
        ``nn.Module.to`` does) and run in eval mode; its train/eval mode is restored afterwards.
    inputs : tensor or array, (N, C, H, W) images or (N, C, L) series
        Not modified.
    method : str
        A key of ``METHODS``.
    target : int, sequence of N ints, tensor (N,), or None
        Class explained per input; None = the model's own prediction.
    device : str or torch.device, optional
        Default: cuda if available, then mps, then cpu.
    **params
        Method parameters (see ``METHODS[method].params``); unknown names raise ValueError.

    Returns
    -------
    Attribution
        ``raw`` (input shape), ``importance`` and ``signed`` ((N, H, W) or (N, L)), ``delta`` for IG.
    """
    spec = METHODS.get(method)
    if spec is None:
        raise ValueError(f"method={method!r} is not one of {sorted(METHODS)}")
    p = spec.resolve(params)
    if p.get("auto_steps"):
        return attribute_auto_steps(model, inputs, target=target, device=device, params=p)
    dev = resolve_device(device)
    x = as_batch(inputs, dev)
    warnings: list[str] = []
    start = time.perf_counter()
    with prepared(model, dev):
        t = resolve_target(model, x, target)
        if method in _NEEDS_INPUT_GRAD:
            x.requires_grad_()  # our private copy; saves captum a warning per call
        rows = p.get("internal_batch_size") or _row_budget(model, x)
        rng = _seeded(p["seed"], dev) if spec.stochastic else nullcontext()
        net = model
        if method in _INPUT_GRADIENT_ONLY and (model in _TWINS or _gradient_passes(p, len(x)) >= TWIN_MIN_PASSES):
            net = inference_twin(model, dev)
        with rng:
            attr, delta, rows = _run_batched(_RUNNERS[method], net, x, t, p, rows, warnings)
    raw = attr.float().cpu().numpy()
    return Attribution(
        method=method,
        params=p,
        raw=raw,
        importance=np.abs(raw).sum(axis=1),
        signed=raw.sum(axis=1),
        target=t.cpu().numpy(),
        delta=None if delta is None else delta.float().cpu().numpy(),
        device=str(dev),
        internal_batch_size=_ig_internal(p, x.shape[0], rows) if method == "integrated_gradients" else None,
        elapsed_s=time.perf_counter() - start,
        warnings=tuple(warnings),
    )


def attribute_auto_steps(
    model: torch.nn.Module,
    inputs: torch.Tensor | np.ndarray,
    *,
    target: Any,
    device: str | torch.device | None,
    params: dict[str, Any],
) -> Any:
    """IG with per-input step counts: each input gets the fewest ladder rungs whose error is ≤ ``tolerance``.

    ``params`` are IG's resolved parameters (``n_steps`` = the first rung, ``tolerance``). Returns a
    ``kdviz.attribution.engine.Attribution`` whose ``steps`` holds the count each input ended with; inputs that
    never met the tolerance end at :data:`MAX_STEPS` (their ``completeness_error`` says by how much).
    """
    dev = resolve_device(device)
    x = as_batch(inputs, dev)
    with prepared(model, dev), torch.no_grad():
        t = resolve_target(model, x, target)
    fixed = {k: v for k, v in params.items() if k not in ("n_steps", "auto_steps")}
    fixed["auto_steps"] = False
    n = x.shape[0]
    tol = float(params["tolerance"])
    raw: np.ndarray | None = None
    delta = np.zeros(n, dtype=np.float32)
    steps = np.zeros(n, dtype=np.int64)
    pending = np.arange(n)
    elapsed = 0.0
    warnings: list[str] = []
    last = None
    for rung in step_ladder(int(params["n_steps"])):
        last = attribute(model, x[pending], method="integrated_gradients", target=t[pending], device=dev,
                         n_steps=rung, **fixed)
        elapsed += last.elapsed_s
        warnings.extend(w for w in last.warnings if w not in warnings)
        if raw is None:
            raw = np.zeros((n, *last.raw.shape[1:]), dtype=last.raw.dtype)
        err = completeness_error(last.raw, last.delta)
        done = (err <= tol) | (rung >= MAX_STEPS)
        idx = pending[done]
        raw[idx], delta[idx], steps[idx] = last.raw[done], last.delta[done], rung
        pending = pending[~done]
        if pending.size == 0:
            break
    assert raw is not None and last is not None
    return replace(
        last, params=dict(params), raw=raw, importance=np.abs(raw).sum(axis=1), signed=raw.sum(axis=1),
        target=t.cpu().numpy(), delta=delta, steps=steps, elapsed_s=elapsed, warnings=tuple(warnings),
        internal_batch_size=None,
    )
