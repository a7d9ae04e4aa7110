"""Numeric precision for attribution and evaluation: fp32, or bf16/fp16 autocast where the device has them.

``precision_context(device, "bf16")`` is a context manager: ``torch.autocast`` with the chosen dtype on
that device, or nothing for fp32. Convolutions and matrix products run in the lower precision, reductions
and the losses captum differentiates stay in fp32 (autocast's own op lists), and kdviz converts every
attribution and logit back to float32 before it leaves the library.

Lower precision is only faster on hardware that computes in it. On a CPU without native bf16 (AVX-512 BF16
or AMX, the ``avx512_bf16`` / ``amx_bf16`` flags of ``/proc/cpuinfo``) PyTorch emulates it and the run is
slower than fp32 for worse numbers, so :func:`check_precision` refuses with the reason;
``allow_emulated=True`` lets a fidelity measurement run anyway (the numbers are bf16's, the speed is not).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from kdviz.errors import InvalidInputError

__all__ = [
    "PRECISIONS",
    "PrecisionSupport",
    "available_precisions",
    "check_precision",
    "cpu_flags",
    "cpu_precision_support",
    "precision_context",
    "precision_support",
]

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

# /proc/cpuinfo flags that mean the CPU computes in the format natively (Intel Cooper Lake / Sapphire
# Rapids, AMD Zen 4+); without them oneDNN falls back to conversions around fp32 arithmetic.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPU_FP16_FLAGS = ("avx512_fp16", "amx_fp16")


@dataclass(frozen=True)
class PrecisionSupport:
    """Whether ``precision`` runs natively on ``device``, and why (or why not)."""

    precision: str
    device: str
    supported: bool
    reason: str


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU feature flags of the first processor in ``cpuinfo`` text (default: ``/proc/cpuinfo``).

    Empty when the file cannot be read (not Linux): then no lower precision counts as supported.
    """
    if cpuinfo is None:
        cpuinfo = _read_cpuinfo()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.cache
def _read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_precision_support(precision: str, flags: frozenset[str] | None = None) -> PrecisionSupport:
    """Native support for ``precision`` on this CPU (or on one with these ``flags``)."""
    _dtype(precision)
    flags = cpu_flags() if flags is None else flags
    if precision == "fp32":
        return PrecisionSupport("fp32", "cpu", True, "fp32 runs everywhere")
    wanted = CPU_BF16_FLAGS if precision == "bf16" else CPU_FP16_FLAGS
    found = [f for f in wanted if f in flags]
    if found:
        return PrecisionSupport(precision, "cpu", True, f"the CPU has {', '.join(found)}")
    return PrecisionSupport(
        precision, "cpu", False,
        f"{precision} on the CPU needs {' or '.join(wanted)} (AVX-512 {precision.upper()} or AMX), and this CPU's "
        f"flags have neither; PyTorch would emulate {precision}, slower than fp32 and less exact. "
        "Use fp32 here, or a GPU",
    )


def precision_support(device: str | torch.device, precision: str) -> PrecisionSupport:
    """Native support for ``precision`` on ``device`` (cpu: CPU flags; cuda: the GPU's capability)."""
    _dtype(precision)
    dev = torch.device(device)
    if dev.type == "cpu":
        return cpu_precision_support(precision)
    if precision == "fp32":
        return PrecisionSupport("fp32", str(dev), True, "fp32 runs everywhere")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return PrecisionSupport(precision, str(dev), False, "no CUDA device is available")
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            name = torch.cuda.get_device_name(dev)
            return PrecisionSupport(precision, str(dev), False, f"{name} has no bf16 (needs compute capability 8.0+)")
        return PrecisionSupport(precision, str(dev), True, f"{torch.cuda.get_device_name(dev)} autocast")
    if dev.type == "mps" and precision == "fp16":
        return PrecisionSupport(precision, str(dev), True, "MPS autocast fp16")
    return PrecisionSupport(precision, str(dev), False, f"{precision} autocast is not supported on {dev.type}")


def available_precisions(device: str | torch.device) -> tuple[list[str], list[PrecisionSupport]]:
    """Precisions that run natively on ``device`` (fp32 first), and the support records of those that do not."""
    supports = [precision_support(device, p) for p in PRECISIONS]
    return [s.precision for s in supports if s.supported], [s for s in supports if not s.supported]


def check_precision(device: str | torch.device, precision: str, *, allow_emulated: bool = False) -> None:
    """ValueError saying why, if ``precision`` does not run natively on ``device``.

    ``allow_emulated`` lets an unsupported CPU precision through (fidelity measurements only).
    """
    support = precision_support(device, precision)
    if support.supported or (allow_emulated and support.device == "cpu"):
        return
    raise InvalidInputError(f"precision={precision!r} is not available on {support.device}: {support.reason}")


@contextmanager
def precision_context(
    device: str | torch.device, precision: str = "fp32", *, allow_emulated: bool = False
) -> Iterator[None]:
    """Run the enclosed model calls in ``precision`` on ``device`` (autocast), after :func:`check_precision`.

    fp32 disables any autocast a caller may have opened, so an fp32 run is fp32 whatever surrounds it.
    """
    dtype = _dtype(precision)
    check_precision(device, precision, allow_emulated=allow_emulated)
    dev_type = torch.device(device).type
    if dtype is None:
        ctx = torch.autocast(dev_type, enabled=False) if dev_type in ("cpu", "cuda") else nullcontext()
    else:
        ctx = torch.autocast(dev_type, dtype=dtype)
    with ctx:
        yield


def _dtype(precision: str) -> torch.dtype | None:
    if precision not in PRECISIONS:
        raise InvalidInputError(f"precision={precision!r} is not one of {list(PRECISIONS)}")
    return PRECISIONS[precision]
