"""Explaining architectures of KED (Knowledge Explaining Distillation, arXiv 2310.02572) as its authors build them.

Read from the authors' code (GitHub ``scbwn/ked``: ``MNIST.ipynb``, ``notMNIST.ipynb`` — their Fashion-MNIST
notebook —, ``kd/kd_resnet.py``):

* **Plain MLP** (``mlp_h<H>``): flatten, ``n_hl = 2`` hidden ReLU layers of width H, a linear output. The
  authors' teachers are ``mlp_h500``; their students ``mlp_h60`` (Fashion-MNIST) and ``mlp_h20`` (MNIST).
* **Explaining MLP** (``ked_mlp_m<M>_h<H>``): M branches, branch i an MLP of the same depth over the inputs of
  superfeature i only, ending in a softmax over the classes, ``p_i``. The total logit is
  ``Σ_i log p_i − (M−1)·log π`` with π the class prior (the mean prediction of the plain teacher over the
  training set). The superfeature of every input feature (``superfeatures``, int64 (d,)) and ``log π``
  (``log_prior``, (C,)) are buffers, so a checkpoint carries them; until :meth:`ExplainingMLP.set_superfeatures`
  is called they are an equal contiguous split and a uniform prior.
* **Explaining CIFAR ResNet** (``ked_resnet<depth>_m<M>_f<F>``): the stages 1–2 of a CIFAR ResNet shared, a
  1×1 convolution (+BN+ReLU) to M·F channels split into M groups, each group its own stage 3 with F filters,
  global pooling and a linear layer with softmax; total logit ``Σ_i log p_i`` (no prior in their CNN code).

Widths are solved so that explaining and plain networks have the same number of parameters
(:func:`solve_branch_width`, the authors' ``solve``: the largest integer width whose count does not exceed
the plain network's). Branch i's first layer is stored packed as one ``(H, d)`` matrix whose column j belongs
to the branch of feature j: the parameter count is exactly the authors' ``d·H + M·H + …`` and the shapes
depend on the name only, so ``create_model`` rebuilds any checkpoint.

Differences from the authors' Keras code that change no parameter count: ``log_softmax`` instead of
``log(softmax + 1e-15)``; PyTorch layers (Keras' Glorot-uniform init with zero biases is reproduced for the MLPs).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdviz.errors import InvalidInputError
from kdviz.models.registry import ModelInfo, register_resolver

__all__ = [
    "DEPTH",
    "ExplainingMLP",
    "ExplainingResNet",
    "MLPShape",
    "PlainMLP",
    "branch_mlp_params",
    "explaining_mlp_name",
    "is_explaining",
    "mlp_params",
    "solve_branch_width",
    "solve_resnet_branch_filters",
]

DEPTH = 2  # hidden layers per (branch) MLP, the authors' n_hl
IMAGE_SIZE = 28 * 28  # default pixels per input (MNIST, Fashion-MNIST); builders take input_size=P

_MLP = re.compile(r"^mlp_h(?P<h>[1-9][0-9]{0,4})$")
_KED_MLP = re.compile(r"^ked_mlp_m(?P<m>[1-9][0-9]?)_h(?P<h>[1-9][0-9]{0,4})$")
_KED_RESNET = re.compile(r"^ked_resnet(?P<depth>[1-9][0-9]{0,2})_m(?P<m>[1-9][0-9]?)_f(?P<f>[1-9][0-9]{0,3})$")


# --------------------------------------------------------------------------------------------------
# Parameter counts and the width solver


@dataclass(frozen=True)
class MLPShape:
    """Sizes of an (explaining) MLP: input features d, hidden width h, classes c, branches m, hidden layers."""

    d: int
    h: int
    c: int
    m: int = 1
    depth: int = DEPTH


def mlp_params(d: int, h: int, c: int, *, depth: int = DEPTH) -> int:
    """Parameters of a plain MLP ``d → h (×depth) → c`` with biases."""
    return d * h + h + (depth - 1) * (h * h + h) + h * c + c


def branch_mlp_params(d: int, h: int, c: int, m: int, *, depth: int = DEPTH) -> int:
    """Parameters of an explaining MLP: M branches of width h whose input layers split the d features."""
    return d * h + m * h + m * (depth - 1) * (h * h + h) + m * (h * c + c)


def solve_branch_width(n_params: int, *, d: int, c: int, m: int, depth: int = DEPTH) -> int:
    """The largest branch width h with ``branch_mlp_params(d, h, c, m) ≤ n_params`` (the authors' ``solve``).

    It is the integer part of the positive root of ``m(depth−1)h² + (m(depth+c)+d)h + mc − n_params = 0``.
    """
    a = m * (depth - 1)
    b = m * (depth + c) + d
    k = m * c - n_params
    if a == 0:
        h = int(-k // b)
    else:
        disc = b * b - 4 * a * k
        if disc < 0:
            raise InvalidInputError(f"no branch width fits {n_params} parameters")
        h = int((-b + math.sqrt(disc)) / (2 * a))
    while h > 0 and branch_mlp_params(d, h, c, m, depth=depth) > n_params:  # guard float rounding
        h -= 1
    while branch_mlp_params(d, h + 1, c, m, depth=depth) <= n_params:
        h += 1
    if h < 1:
        raise InvalidInputError(f"{n_params} parameters leave no branch width ≥ 1 for m={m}, d={d}, c={c}")
    return h


def explaining_mlp_name(plain_width: int, *, m: int, d: int = IMAGE_SIZE, c: int = 10) -> str:
    """Registry name of the explaining MLP with as many parameters as ``mlp_h<plain_width>``."""
    h = solve_branch_width(mlp_params(d, plain_width, c), d=d, c=c, m=m)
    return f"ked_mlp_m{m}_h{h}"


# --------------------------------------------------------------------------------------------------
# MLPs


def _glorot_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """Keras' default ``glorot_uniform`` (in place)."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.uniform_(-limit, limit)


def _dense(fan_in: int, fan_out: int) -> nn.Linear:
    """A Keras-initialised Dense layer (Glorot-uniform weight, zero bias)."""
    layer = nn.Linear(fan_in, fan_out)
    _glorot_(layer.weight, fan_in, fan_out)
    nn.init.zeros_(layer.bias)
    return layer


def _tail(h: int, c: int, depth: int) -> nn.Sequential:
    """ReLU, the remaining hidden layers, the output layer (logits)."""
    layers: list[nn.Module] = [nn.ReLU()]
    for _ in range(depth - 1):
        layers += [_dense(h, h), nn.ReLU()]
    layers.append(_dense(h, c))
    return nn.Sequential(*layers)


class PlainMLP(nn.Module):
    """The authors' teacher and KD student: ``d → h → … → c`` with ReLU, logits out.

    The input layer's weight is stored as (h, C, P) — channels C, pixels P — so that a checkpoint shows its
    number of input channels (kdviz reads ``in_channels`` from the weights' shapes)."""

    def __init__(self, shape: MLPShape, *, in_channels: int = 1) -> None:
        super().__init__()
        if shape.d % in_channels:
            raise InvalidInputError(f"d={shape.d} is not a multiple of in_channels={in_channels}")
        self.shape = shape
        self.first_weight = nn.Parameter(torch.empty(shape.h, in_channels, shape.d // in_channels))
        self.first_bias = nn.Parameter(torch.zeros(shape.h))
        self.tail = _tail(shape.h, shape.c, shape.depth)
        if not self.first_weight.is_meta:
            _glorot_(self.first_weight, shape.d, shape.h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(x.flatten(1) @ self.first_weight.flatten(1).T + self.first_bias)


class ExplainingMLP(nn.Module):
    """M superfeature branches, each ending in a softmax; the total logit is ``Σ_i log p_i − (M−1)·log π``.

    ``superfeatures`` labels the P pixels (every channel of a pixel goes to the pixel's branch); the packed
    input-layer weight is (h, C, P), branch i owning the columns of its pixels."""

    def __init__(self, shape: MLPShape, *, in_channels: int = 1) -> None:
        super().__init__()
        if shape.d % in_channels:
            raise InvalidInputError(f"d={shape.d} is not a multiple of in_channels={in_channels}")
        pixels = shape.d // in_channels
        if not 1 <= shape.m <= pixels:
            raise InvalidInputError(f"m must be in [1, {pixels}], got {shape.m}")
        self.shape = shape
        self.first_weight = nn.Parameter(torch.empty(shape.h, in_channels, pixels))
        self.first_bias = nn.Parameter(torch.zeros(shape.m, shape.h))
        self.branches = nn.ModuleList(_tail(shape.h, shape.c, shape.depth) for _ in range(shape.m))
        self.register_buffer("superfeatures", torch.arange(pixels) * shape.m // pixels)
        self.register_buffer("log_prior", torch.full((shape.c,), -math.log(shape.c)))
        self.reset_first_layer()

    @property
    def m(self) -> int:
        return self.shape.m

    def reset_first_layer(self, generator: torch.Generator | None = None) -> None:
        """Glorot-uniform init of each branch's input layer with its own fan-in (C·|superfeature i|, h)."""
        if self.first_weight.is_meta:
            return
        with torch.no_grad():
            channels = self.first_weight.shape[1]
            sizes = torch.bincount(self.superfeatures, minlength=self.m).tolist()
            limits = torch.tensor([math.sqrt(6.0 / (max(channels * s, 1) + self.shape.h)) for s in sizes])
            u = torch.rand(self.first_weight.shape, generator=generator) * 2 - 1
            self.first_weight.copy_(u * limits[self.superfeatures].view(1, 1, -1))
            self.first_bias.zero_()

    def set_superfeatures(self, labels: np.ndarray | torch.Tensor, log_prior: np.ndarray | torch.Tensor,
                          *, generator: torch.Generator | None = None) -> None:
        """Fix the superfeature of every pixel (values 0..M−1, each used) and the class log-prior, then
        re-initialise the input layers for the new fan-ins. Call before training."""
        lab = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1)
        if lab.numel() != self.superfeatures.numel():
            raise InvalidInputError(f"labels have {lab.numel()} entries, the model takes {self.superfeatures.numel()} pixels")
        if int(lab.min()) < 0 or set(lab.unique().tolist()) != set(range(self.m)):
            raise InvalidInputError(f"labels must use every superfeature 0..{self.m - 1}")
        prior = torch.as_tensor(np.asarray(log_prior), dtype=torch.float32).reshape(-1)
        if prior.numel() != self.shape.c:
            raise InvalidInputError(f"log_prior has {prior.numel()} entries for {self.shape.c} classes")
        self.superfeatures.copy_(lab)
        self.log_prior.copy_(prior)
        self.reset_first_layer(generator)

    def branch_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """``log p_i(x)``, (N, M, C): each branch's class log-probabilities from its superfeature alone."""
        pix = x.flatten(2)  # (N, C, P)
        order = torch.argsort(self.superfeatures, stable=True)  # pixels grouped by branch
        sizes = torch.bincount(self.superfeatures, minlength=self.m).tolist()
        xs = pix[:, :, order].split(sizes, dim=2)
        ws = self.first_weight[:, :, order].split(sizes, dim=2)
        return torch.stack([F.log_softmax(branch(xi.flatten(1) @ wi.flatten(1).T + bi), dim=1)
                            for xi, wi, bi, branch in zip(xs, ws, self.first_bias, self.branches, strict=True)],
                           dim=1)

    def combine(self, branch_log_probs: torch.Tensor) -> torch.Tensor:
        """Total logit from branch log-probabilities (N, M, C)."""
        return branch_log_probs.sum(dim=1) - (self.m - 1) * self.log_prior

    def forward_with_branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(total logits (N, C), branch log-probabilities (N, M, C)) in one pass."""
        lp = self.branch_log_probs(x)
        return self.combine(lp), lp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine(self.branch_log_probs(x))


# --------------------------------------------------------------------------------------------------
# CIFAR-style ResNet with channel-group branches (kd/kd_resnet.py)


class _Block(nn.Module):
    """CIFAR ResNet basic block with the parameter-free shortcut (zero-padded channels, option A)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.relu2 = nn.ReLU()
        self.stride, self.pad = stride, cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        short = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.pad:
            short = F.pad(short, (0, 0, 0, 0, self.pad - self.pad // 2, self.pad // 2))
        return self.relu2(out + short)


def _stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(*[_Block(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(blocks)])


class ExplainingResNet(nn.Module):
    """The authors' KED ResNet: shared stem and stages 1–2 (16, 32 filters), a 1×1 conv to M·F channels, M
    branches each a stage 3 with F filters + pooling + linear + softmax; total logit ``Σ_i log p_i``."""

    def __init__(self, *, depth: int, m: int, f: int, num_classes: int, in_channels: int) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise InvalidInputError(f"depth must be 6n+2 (8, 20, 32, 44, 56 …), got {depth}")
        n = (depth - 2) // 6
        self.m = m
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.shared = nn.Sequential(_stage(16, 16, n, 1), _stage(16, 32, n, 2))
        self.split = nn.Sequential(nn.Conv2d(32, m * f, 1, bias=False), nn.BatchNorm2d(m * f), nn.ReLU())
        self.branches = nn.ModuleList(_stage(f, f, n, 2) for _ in range(m))
        self.heads = nn.ModuleList(nn.Linear(f, num_classes) for _ in range(m))
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")  # Keras he_normal-like

    def branch_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """``log p_i(x)``, (N, M, C), one per channel group."""
        groups = self.split(self.shared(self.stem(x))).chunk(self.m, dim=1)
        return torch.stack([F.log_softmax(head(branch(g).mean(dim=(2, 3))), dim=1)
                            for g, branch, head in zip(groups, self.branches, self.heads, strict=True)], dim=1)

    def combine(self, branch_log_probs: torch.Tensor) -> torch.Tensor:
        return branch_log_probs.sum(dim=1)

    def forward_with_branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lp = self.branch_log_probs(x)
        return self.combine(lp), lp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine(self.branch_log_probs(x))


def solve_resnet_branch_filters(n_params: int, *, depth: int, m: int, num_classes: int, in_channels: int = 3) -> int:
    """The largest F with ``ked_resnet<depth>_m<M>_f<F>`` at most ``n_params`` parameters (counted by building)."""
    def count(f: int) -> int:
        with torch.device("meta"):
            net = ExplainingResNet(depth=depth, m=m, f=f, num_classes=num_classes, in_channels=in_channels)
        return sum(p.numel() for p in net.parameters())

    lo, hi = 1, 1
    while count(hi) <= n_params:
        lo, hi = hi, hi * 2
    if count(lo) > n_params:
        raise InvalidInputError(f"no branch width fits {n_params} parameters")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) <= n_params else (lo, mid)
    return lo


def is_explaining(model: nn.Module) -> bool:
    """True for a model with KED branches (``branch_log_probs`` and ``forward_with_branches``)."""
    return isinstance(model, (ExplainingMLP, ExplainingResNet))


# --------------------------------------------------------------------------------------------------
# Registration: names resolved on demand


def _resolve(name: str) -> ModelInfo | None:
    if match := _MLP.match(name):
        h = int(match["h"])

        def build_mlp(*, num_classes: int, in_channels: int, input_size: int | None = None) -> nn.Module:
            d = in_channels * (input_size or IMAGE_SIZE)
            return PlainMLP(MLPShape(d=d, h=h, c=num_classes), in_channels=in_channels)

        return ModelInfo(name, "ked", "image", 1, build_mlp)
    if match := _KED_MLP.match(name):
        m, h = int(match["m"]), int(match["h"])

        def build_ked_mlp(*, num_classes: int, in_channels: int, input_size: int | None = None) -> nn.Module:
            d = in_channels * (input_size or IMAGE_SIZE)
            return ExplainingMLP(MLPShape(d=d, h=h, c=num_classes, m=m), in_channels=in_channels)

        return ModelInfo(name, "ked", "image", 1, build_ked_mlp)
    if match := _KED_RESNET.match(name):
        depth, m, f = int(match["depth"]), int(match["m"]), int(match["f"])

        def build_ked_resnet(*, num_classes: int, in_channels: int) -> nn.Module:
            return ExplainingResNet(depth=depth, m=m, f=f, num_classes=num_classes, in_channels=in_channels)

        return ModelInfo(name, "ked", "image", 3, build_ked_resnet)
    return None


register_resolver(_resolve)
