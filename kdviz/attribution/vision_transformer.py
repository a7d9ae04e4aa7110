"""Attribution for Vision Transformers: Grad-CAM through the token grid, and attention rollout.

A ViT has no last convolution for Grad-CAM: its blocks output tokens (N, T, D). Following the usual
practice for ViTs (the ``reshape_transform`` of pytorch-grad-cam), the last block's first LayerNorm output is
taken, its class / distillation tokens dropped, and the patch tokens reshaped to their (D, h, w) grid; from
there Grad-CAM is the convolutional one, computed by captum's ``LayerGradCam`` on an identity layer that
sees the grid.

Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers", §3): with each
layer's attention averaged over heads, ``Â_l = 0.5·A_l + 0.5·I`` (the residual connection), rows
re-normalised, the rollout is ``Â_L ⋯ Â_1``; the class token's row over the patch tokens, reshaped to the
grid, is the map. It uses no gradient and no target class. Only models with attention layers have it;
others are refused with the reason.

Supported layouts: timm ``VisionTransformer`` / DeiT (``blocks[i].attn``, ``num_prefix_tokens``) and
torchvision ``VisionTransformer`` (``encoder.layers[i].self_attention``, one class token).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from torch import nn

from kdviz.errors import InvalidInputError, UnsupportedModelError

__all__ = [
    "ModelKind",
    "TokenLayout",
    "attention_rollout",
    "model_kind",
    "token_layout",
    "vit_cam",
    "vit_grad_cam",
]

ModelKind = Literal["cnn", "vit", "series", "other"]


@dataclass(frozen=True)
class TokenLayout:
    """Where a ViT keeps its tokens: the blocks, the layer Grad-CAM reads, prefix tokens, the patch grid."""

    blocks: tuple[nn.Module, ...]
    cam_layer: nn.Module
    prefix_tokens: int  # class (+ distillation) tokens in front of the patch tokens
    grid: tuple[int, int]
    style: Literal["timm", "torchvision"]


def token_layout(model: nn.Module) -> TokenLayout | None:
    """The token layout of a timm or torchvision ViT, None for any other model."""
    blocks = getattr(model, "blocks", None)
    patch_embed = getattr(model, "patch_embed", None)
    if isinstance(blocks, nn.Sequential) and len(blocks) and patch_embed is not None and hasattr(blocks[-1], "attn"):
        grid = tuple(int(g) for g in patch_embed.grid_size)
        return TokenLayout(tuple(blocks), blocks[-1].norm1, int(getattr(model, "num_prefix_tokens", 1)),
                           (grid[0], grid[1]), "timm")
    encoder = getattr(model, "encoder", None)
    layers = getattr(encoder, "layers", None)
    if layers is not None and hasattr(model, "class_token") and hasattr(model, "patch_size"):
        side = int(model.image_size) // int(model.patch_size)
        return TokenLayout(tuple(layers), layers[-1].ln_1, 1, (side, side), "torchvision")
    return None


def model_kind(model: nn.Module) -> ModelKind:
    """'vit' (token grid with attention), 'cnn' (2-D convolutions), 'series' (1-D convolutions) or 'other'."""
    if token_layout(model) is not None:
        return "vit"
    kinds = {type(m) for m in model.modules()}
    if nn.Conv2d in kinds:
        return "cnn"
    if nn.Conv1d in kinds:
        return "series"
    return "other"


class _Grid(nn.Identity):
    """Identity on the (N, D, h, w) token grid: the layer captum's LayerGradCam reads."""


@contextmanager
def _grid_exposed(layout: TokenLayout) -> Iterator[nn.Module]:
    """While open, ``cam_layer``'s token output goes through an identity layer as a (N, D, h, w) grid."""
    grid_layer = _Grid()
    h, w = layout.grid
    p = layout.prefix_tokens

    def through_grid(_module: nn.Module, _inputs: Any, out: torch.Tensor) -> torch.Tensor:
        prefix, patches = out[:, :p], out[:, p:]
        n, t, d = patches.shape
        if t != h * w:
            raise UnsupportedModelError(f"the model has {t} patch tokens, not the {h}×{w} grid it was built for")
        grid = grid_layer(patches.transpose(1, 2).reshape(n, d, h, w))
        return torch.cat([prefix, grid.reshape(n, d, t).transpose(1, 2)], dim=1)

    handle = layout.cam_layer.register_forward_hook(through_grid)
    try:
        yield grid_layer
    finally:
        handle.remove()


def vit_cam(model: nn.Module, x: torch.Tensor, layer_map: Callable[[nn.Module], torch.Tensor], *,
            interpolate: str = "bilinear") -> torch.Tensor:
    """A CAM of a ViT on the patch-token grid of its last block, upsampled to the input: (N, 1, H, W).

    Parameters
    ----------
    model : nn.Module
        A timm or torchvision Vision Transformer.
    x : torch.Tensor
        (N, C, H, W) images.
    layer_map : callable
        ``layer -> (N, 1, h, w)`` map computed on the identity layer that sees the (N, D, h, w) token grid
        (e.g. captum ``LayerGradCam(model, layer).attribute(...)``).
    interpolate : str, default "bilinear"
        ``bilinear`` or ``nearest`` upsampling.

    Returns
    -------
    torch.Tensor

    Raises
    ------
    UnsupportedModelError
        When ``model`` has no token grid.
    """
    layout = token_layout(model)
    if layout is None:
        raise UnsupportedModelError("a ViT CAM needs a Vision Transformer (timm or torchvision layout)")
    with _grid_exposed(layout) as grid_layer:
        cam = layer_map(grid_layer)
    return F.interpolate(cam, size=tuple(x.shape[2:]), mode=interpolate,
                         **({"align_corners": False} if interpolate == "bilinear" else {}))


def vit_grad_cam(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, relu: bool = True,
                 interpolate: str = "bilinear") -> torch.Tensor:
    """Grad-CAM of a ViT on the patch-token grid of its last block, upsampled to the input: (N, 1, H, W).

    Parameters
    ----------
    model : nn.Module
        A timm or torchvision Vision Transformer.
    x : torch.Tensor
        (N, C, H, W) images.
    target : torch.Tensor
        (N,) classes explained.
    relu : bool, default True
        Keep only positive evidence.
    interpolate : str, default "bilinear"
        ``bilinear`` or ``nearest`` upsampling.

    Returns
    -------
    torch.Tensor
    """
    return vit_cam(model, x, lambda layer: LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=relu),
                   interpolate=interpolate)


@contextmanager
def _attention_maps(layout: TokenLayout) -> Iterator[list[torch.Tensor]]:
    """Collect every block's attention probabilities (N, heads, T, T) during the forward passes inside."""
    maps: list[torch.Tensor] = []
    handles = []
    restore: list[tuple[nn.Module, bool]] = []
    for block in layout.blocks:
        if layout.style == "timm":
            attn = block.attn
            if not hasattr(attn, "attn_drop"):
                raise UnsupportedModelError(f"rollout cannot read the attention of {type(attn).__name__}")
            restore.append((attn, bool(getattr(attn, "fused_attn", False))))
            attn.fused_attn = False  # so the softmax probabilities pass through attn_drop, where we read them
            handles.append(attn.attn_drop.register_forward_hook(lambda _m, inp, _out: maps.append(inp[0].detach())))
        else:
            mha = block.self_attention

            def ask_weights(_m: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
                return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

            handles.append(mha.register_forward_pre_hook(ask_weights, with_kwargs=True))
            handles.append(mha.register_forward_hook(lambda _m, _inp, out: maps.append(out[1].detach())))
    try:
        yield maps
    finally:
        for h in handles:
            h.remove()
        for attn, fused in restore:
            attn.fused_attn = fused


def attention_rollout(model: nn.Module, x: torch.Tensor, *, head_fusion: str = "mean",
                      residual: float = 0.5, token: int = 0, interpolate: str = "bilinear") -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020) from prefix token ``token`` to the patches: (N, 1, H, W).

    ``head_fusion`` combines heads (``mean`` as in the paper; ``max``/``min`` as in later ViT tooling);
    ``residual`` is the weight of the identity added for the residual connection (0.5 in the paper).
    Raises UnsupportedModelError, with the reason, for a model without attention layers.
    """
    layout = token_layout(model)
    if layout is None:
        raise UnsupportedModelError(
            f"attention rollout needs attention layers (a ViT or DeiT); {type(model).__name__} has none — use "
            "grad_cam or a gradient method for it"
        )
    if not 0 <= token < layout.prefix_tokens:
        raise InvalidInputError(f"token={token} is not a prefix token; this model has {layout.prefix_tokens}")
    with _attention_maps(layout) as maps, torch.no_grad():
        model(x)
    if len(maps) != len(layout.blocks):
        raise UnsupportedModelError(f"read {len(maps)} attention maps from {len(layout.blocks)} blocks")
    fuse = {"mean": lambda a: a.mean(1), "max": lambda a: a.amax(1), "min": lambda a: a.amin(1)}[head_fusion]
    rollout = None
    for a in maps:
        fused = fuse(a.float())
        eye = torch.eye(fused.shape[-1], device=fused.device, dtype=fused.dtype)
        step = (1 - residual) * fused + residual * eye
        step = step / step.sum(dim=-1, keepdim=True)
        rollout = step if rollout is None else step @ rollout
    assert rollout is not None
    h, w = layout.grid
    row = rollout[:, token, layout.prefix_tokens:]
    grid = row.reshape(-1, 1, h, w)
    return F.interpolate(grid, size=tuple(x.shape[2:]), mode=interpolate,
                         **({"align_corners": False} if interpolate == "bilinear" else {}))
