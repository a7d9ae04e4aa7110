"""The registry of architectures and its one factory, ``create_model``.

The registry knows no family: each family module imports this one and registers itself (timm's
``_registry.py`` pattern), so adding a family is adding a file. The families (``kdviz.models`` imports them all):

* ``cifar_resnet`` (:mod:`kdviz.models.cifar_resnet`): the CIFAR-style ResNets of the distillation literature
  (resnet8 … resnet110, resnet8x4, resnet32x4), with parameter names in the RepDistiller/mdistiller layout;
* ``cifar_kd`` (:mod:`kdviz.models.cifar_kd`): the rest of the CIFAR distillation-benchmark zoo (wide ResNets,
  VGG, MobileNetV2, ShuffleNet V1/V2, CIFAR ResNet-18/50);
* ``timeseries`` (:mod:`kdviz.models.timeseries`): 1D CNNs for time series, FCN and ResNet1D at any width
  (``fcn_w32``, resolved on demand);
* ``timm`` (:mod:`kdviz.models.timm_family`): ViT and DeiT registered outright, any other timm name on demand;
* ``torchvision`` (:mod:`kdviz.models.torchvision_family`): every torchvision classification model, registered
  on first need (importing torchvision costs seconds).

A family adds builders with ``@register_model``, names it resolves on demand with :func:`register_resolver`,
and a batch it registers on first need with :func:`register_lazy_family`. ``create_model(name, …)`` builds;
an unknown name raises an error that lists the closest valid names.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Literal

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from kdviz.errors import InvalidInputError, UnknownNameError

__all__ = [
    "OPTIONAL_KEY_SUFFIXES",
    "ModelInfo",
    "UnknownModelError",
    "create_model",
    "infer_dims_from_state_dict",
    "key_fingerprint",
    "list_models",
    "model_info",
    "register_lazy_family",
    "register_model",
    "register_resolver",
    "registry_version",
    "seeded_draws",
    "seeded_model",
    "state_dict_signature",
]

Family = Literal["torchvision", "cifar_resnet", "cifar_kd", "timm", "timeseries", "ked"]
InputKind = Literal["image", "series"]  # what the registered tensor families read (text models: models.hf_text)


class UnknownModelError(UnknownNameError):
    """Raised for an architecture name that is not in the registry; the message lists the closest valid names."""


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one architecture."""

    name: str
    family: Family
    input_kind: InputKind
    default_in_channels: int
    builder: Callable[..., nn.Module]


Resolver = Callable[[str], "ModelInfo | None"]

_REGISTRY: dict[str, ModelInfo] = {}
_RESOLVERS: list[Resolver] = []
_LAZY_FAMILIES: list[tuple[Family, Callable[[], None]]] = []
_LAZY_LOADED = threading.Event()  # set only after every lazy family has finished registering
_LOCK = threading.RLock()  # guards the registry's dicts and lists; re-entrant: lazy loaders call register_model
_VERSION = [0]  # bumped on every registration: caches built from the registry (arch_guess.key_index) key on it


def register_model(
    name: str, *, family: Family, input_kind: InputKind, default_in_channels: int
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder ``fn(*, num_classes, in_channels, **kwargs) -> nn.Module`` under ``name`` (a decorator)."""

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        with _LOCK:
            if name in _REGISTRY:
                raise InvalidInputError(f"model {name!r} is registered twice")
            _REGISTRY[name] = ModelInfo(name, family, input_kind, default_in_channels, fn)
            _VERSION[0] += 1
        return fn

    return decorate


def register_resolver(resolver: Resolver) -> Resolver:
    """Add ``resolver(name) -> ModelInfo | None`` for names a family builds on demand (``fcn_w32``, timm names).

    Resolvers are asked in registration order, after the registered names, for a name nobody registered.
    """
    with _LOCK:
        _RESOLVERS.append(resolver)
    return resolver


def register_lazy_family(family: Family, load: Callable[[], None]) -> Callable[[], None]:
    """Add ``load()``, which registers the whole ``family``, to run once on the first lookup that needs it."""
    with _LOCK:
        _LAZY_FAMILIES.append((family, load))
        _LAZY_LOADED.clear()
    return load


def registry_version() -> int:
    """Return a number that changes whenever an architecture is registered (lazy families loaded first).

    A cache derived from the whole registry keys on it, so it can tell it is stale.
    """
    _load_lazy_families()
    with _LOCK:
        return _VERSION[0]


def _load_lazy_families(family: Family | None = None) -> None:
    """Run the lazy families' ``load`` exactly once (only ``family``'s when given); other threads wait.

    The "loaded" event is set only after the last registration, so no thread ever reads a half-filled
    registry (a flag set before the loop would let a second thread guess from an incomplete one).
    """
    if _LAZY_LOADED.is_set():
        return
    with _LOCK:
        if _LAZY_LOADED.is_set():
            return
        for entry in list(_LAZY_FAMILIES):
            if family is None or entry[0] == family:
                entry[1]()
                _LAZY_FAMILIES.remove(entry)  # only once it has succeeded: a failed load is retried next time
        if not _LAZY_FAMILIES:
            _LAZY_LOADED.set()


def list_models(family: Family | None = None) -> list[str]:
    """List the registered architecture names, sorted; optionally one family only."""
    _load_lazy_families(family)
    with _LOCK:
        return sorted(n for n, info in _REGISTRY.items() if family is None or info.family == family)


def model_info(arch: str) -> ModelInfo:
    """Registry entry for ``arch`` (names resolved on demand, like ``fcn_w32`` or a timm name, included)."""
    with _LOCK:
        found = _REGISTRY.get(arch)
    if found is not None:
        return found
    _load_lazy_families()
    with _LOCK:
        found = _REGISTRY.get(arch)
        resolvers = list(_RESOLVERS)
    if found is not None:
        return found
    for resolve in resolvers:
        info = resolve(arch)
        if info is not None:
            return info
    with _LOCK:
        names = list(_REGISTRY)
    close = difflib.get_close_matches(arch, names, n=6, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"valid names include {', '.join(sorted(names)[:12])} …"
    raise UnknownModelError(f"unknown architecture {arch!r}: {hint} (kdviz.models.list_models() lists all)")


def create_model(
    arch: str, *, num_classes: int, in_channels: int | None = None, **kwargs: object
) -> nn.Module:
    """Build architecture ``arch`` with random weights, in train mode.

    Parameters
    ----------
    arch : registry name (``resnet18``, ``resnet56``, ``fcn_w32`` …).
    num_classes : size of the output layer.
    in_channels : input channels; defaults to the family's (3 for images, 1 for series).
    **kwargs : passed to the builder (for example ``width`` for the 1D models).
    """
    info = model_info(arch)
    if num_classes < 1:
        raise InvalidInputError(f"num_classes must be ≥ 1, got {num_classes}")
    channels = info.default_in_channels if in_channels is None else int(in_channels)
    if channels < 1:
        raise InvalidInputError(f"in_channels must be ≥ 1, got {in_channels}")
    return info.builder(num_classes=num_classes, in_channels=channels, **kwargs)


@cache
def state_dict_signature(arch: str, num_classes: int = 10, in_channels: int | None = None) -> dict[str, tuple[int, ...]]:
    """Parameter and buffer names with shapes, built with empty weights (no memory, fast)."""
    with _empty_weights():
        model = create_model(arch, num_classes=num_classes, in_channels=in_channels)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


class _FactoriesOnMeta(TorchFunctionMode):
    """Tensor factories that layers use for their weights (empty, zeros, ones …) allocate on meta.

    ``with torch.device("meta")`` would also move the tensors some constructors compute with
    (torchvision's RegNet rounds its widths with ``torch.arange``/``torch.round`` and ``.tolist()``),
    so only the factories are redirected. A function mode is thread-local: other threads building
    real models at the same time are unaffected (a patched ``nn.Module`` method would not be).
    """

    FACTORIES = frozenset({torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn})

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = dict(kwargs or {})
        if func in self.FACTORIES and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


@contextmanager
def _empty_weights() -> Iterator[None]:
    """Build modules whose parameters and buffers live on the meta device (no memory, no init cost)."""
    with _FactoriesOnMeta():
        yield


def infer_dims_from_state_dict(state: dict[str, torch.Tensor]) -> tuple[int | None, int | None]:
    """Read (num_classes, in_channels) from a state dict's shapes.

    The classifier is the last weight of rank ≥ 2 (a Linear, or a 1×1 conv as in SqueezeNet); the input layer is
    the first convolution weight.
    """
    weights = [v for k, v in state.items() if k.endswith("weight")]
    first_conv = next((v for v in weights if v.ndim in (3, 4, 5)), None)
    classifier = next((v for v in reversed(weights) if v.ndim >= 2), None)
    in_channels = None if first_conv is None else int(first_conv.shape[1])
    num_classes = None if classifier is None else int(classifier.shape[0])
    return num_classes, in_channels



def key_fingerprint(arch: str) -> tuple[str, int]:
    """(SHA-1 of the sorted parameter/buffer names, their count) for ``arch``, optional buffers left out.

    Names do not depend on num_classes or in_channels, so one fingerprint per architecture finds every
    architecture whose key set equals a checkpoint's (``kdviz.models.key_index`` ships them precomputed).
    """
    keys = sorted(k for k in state_dict_signature(arch, 10, None) if not k.endswith(OPTIONAL_KEY_SUFFIXES))
    return hashlib.sha1("\n".join(keys).encode()).hexdigest(), len(keys)


class _OwnGenerator(TorchFunctionMode):
    """Random draws without a ``generator`` (layer initialisers, ``torch.rand*``) take this thread's own one.

    The global generator is shared by every thread: two sessions building seeded models at once interleaved
    their draws and got different weights (tests/test_thread_safety.py). A function mode is thread-local, and a
    ``torch.Generator`` seeded with s yields the same numbers as the global one after ``torch.manual_seed(s)``,
    so the weights are the ones ``fork_rng`` + ``manual_seed`` gave before (tests/models/test_registry.py).
    """

    IN_PLACE = frozenset({"uniform_", "normal_", "bernoulli_", "random_", "exponential_", "cauchy_",
                          "log_normal_", "geometric_"})
    FACTORIES = frozenset({torch.rand, torch.randn, torch.randint, torch.randperm, torch.normal,
                           torch.bernoulli, torch.multinomial})

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = dict(kwargs or {})
        # nn.init's functions (kaiming_uniform_ …) reach the mode themselves, and the tensor method they call
        # inside runs with the mode off: they take a ``generator`` argument, so hand it to them.
        if kwargs.get("generator") is None and (getattr(func, "__name__", "") in self.IN_PLACE
                                                or func in self.FACTORIES or _takes_generator(func)):
            kwargs["generator"] = self.generator
        return func(*args, **kwargs)


@cache
def _takes_generator(func: Callable[..., object]) -> bool:
    try:
        return "generator" in inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def seeded_model(arch: str, *, seed: int, num_classes: int, in_channels: int) -> nn.Module:
    """Build ``arch`` like ``create_model``, with initial weights fixed by ``seed``.

    The global RNG is neither read nor changed, so threads building seeded models at the same time get the same
    weights as one after another.
    """
    with seeded_draws(seed):
        return create_model(arch, num_classes=num_classes, in_channels=in_channels)


@contextmanager
def seeded_draws(seed: int) -> Iterator[None]:
    """Make random draws inside (layer initialisers, ``torch.rand*``) those ``torch.manual_seed(seed)`` gives.

    They are taken from this thread's own generator: the global RNG is neither read nor changed, so seeded builds
    in several threads at once equal serial ones (``seeded_model``, the text null's ``random_text_copy``).
    """
    # The global generator is seeded too, for any draw the mode cannot redirect (``torch.rand_like``, numpy):
    # such a build is still seeded one at a time, as before.
    with _SEED_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with _OwnGenerator(seed):
            yield


_SEED_LOCK = threading.Lock()


# Buffers some codebases never saved (PyTorch 0.4.0 had no num_batches_tracked); not used at inference.
OPTIONAL_KEY_SUFFIXES = ("num_batches_tracked",)

