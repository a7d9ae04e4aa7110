"""kdviz.attribution.vision_transformer: Grad-CAM through a ViT's token grid and attention rollout, on tiny random DeiTs."""

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision

from kdviz import models
from kdviz.attribution.engine import attribute
from kdviz.attribution.methods import get_method
from kdviz.attribution.vision_transformer import attention_rollout, model_kind, token_layout, vit_grad_cam


def tiny_deit(distilled=True, seed=0):
    """A 2-block DeiT on 32×32 inputs with 8×8 patches (a 4×4 grid), random weights, eval mode."""
    torch.manual_seed(seed)
    name = "deit_tiny_distilled_patch16_224" if distilled else "deit_tiny_patch16_224"
    return timm.create_model(name, pretrained=False, num_classes=5, img_size=32, patch_size=8, depth=2,
                             embed_dim=32, num_heads=2).eval()


def no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in model.modules())


@pytest.fixture
def batch():
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_layouts_and_kinds():
    deit = tiny_deit()
    layout = token_layout(deit)
    assert (layout.prefix_tokens, layout.grid, len(layout.blocks)) == (2, (4, 4), 2)  # class + distillation
    assert token_layout(tiny_deit(distilled=False)).prefix_tokens == 1
    assert model_kind(deit) == "vit"
    assert model_kind(models.create_model("resnet8", num_classes=3)) == "cnn"
    assert model_kind(models.create_model("fcn_w8", num_classes=3)) == "series"


def test_grad_cam_equals_the_hand_computation_on_the_patch_grid(batch):
    """Grad-CAM by hand: the last block's norm1 tokens without class/distillation tokens, as a (D, 4, 4) grid;
    weights = spatial mean of d logit / d grid; ReLU of the weighted sum; bilinear upsampling."""
    model, target = tiny_deit(), torch.tensor([0, 3, 4])
    cam = vit_grad_cam(model, batch, target)
    assert cam.shape == (3, 1, 32, 32) and no_hooks(model)

    saved = {}
    handle = model.blocks[-1].norm1.register_forward_hook(lambda m, i, o: saved.setdefault("tokens", o))
    logits = model(batch)
    handle.remove()
    tokens = saved["tokens"]
    (grads,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), tokens)
    acts = tokens[:, 2:].transpose(1, 2).reshape(3, -1, 4, 4)
    g = grads[:, 2:].transpose(1, 2).reshape(3, -1, 4, 4)
    expected = F.relu((g.mean(dim=(2, 3), keepdim=True) * acts).sum(1, keepdim=True))
    expected = F.interpolate(expected, size=(32, 32), mode="bilinear", align_corners=False)
    torch.testing.assert_close(cam, expected.detach(), rtol=1e-4, atol=1e-6)


def test_rollout_equals_the_paper_formula(batch):
    """Abnar & Zuidema: Â = 0.5·mean_heads(A) + 0.5·I, rows normalised, multiplied from the first layer up."""
    model = tiny_deit(distilled=False)
    got = attention_rollout(model, batch, interpolate="nearest")
    assert got.shape == (3, 1, 32, 32) and no_hooks(model)
    assert all(b.attn.fused_attn == timm.layers.use_fused_attn() for b in model.blocks)  # restored

    # The attention probabilities computed independently from each block's qkv projection.
    x = model.patch_embed(batch)
    x = model._pos_embed(x)
    x = model.norm_pre(x)
    rollout = torch.eye(x.shape[1]).expand(3, -1, -1)
    with torch.no_grad():
        for block in model.blocks:
            h = block.norm1(x)
            qkv = block.attn.qkv(h).reshape(3, h.shape[1], 3, 2, 16).permute(2, 0, 3, 1, 4)
            a = ((qkv[0] * 16**-0.5) @ qkv[1].transpose(-2, -1)).softmax(-1).mean(1)
            step = 0.5 * a + 0.5 * torch.eye(a.shape[-1])
            rollout = (step / step.sum(-1, keepdim=True)) @ rollout
            x = block(x)
    expected = rollout[:, 0, 1:].reshape(3, 1, 4, 4).repeat_interleave(8, 2).repeat_interleave(8, 3)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    # Rows of a product of row-stochastic matrices sum to one; the patch part is that minus the class token.
    assert (got[:, 0, ::8, ::8].sum(dim=(1, 2)) < 1.0).all()


def test_rollout_of_a_model_without_attention_is_refused_with_a_reason(batch):
    cnn = models.create_model("resnet8", num_classes=5).eval()
    with pytest.raises(ValueError, match="needs attention layers.*has none"):
        attention_rollout(cnn, batch)
    with pytest.raises(ValueError, match="needs attention layers"):
        attribute(cnn, batch, method="attention_rollout", target=None, device="cpu")
    rollout = get_method("attention_rollout")
    assert rollout.reason_not_applicable("cnn") == rollout.not_applicable
    assert rollout.reason_not_applicable("vit") is None
    assert get_method("deeplift").reason_not_applicable("vit") and get_method("grad_cam").reason_not_applicable("vit") is None


@pytest.mark.parametrize("method", ["grad_cam", "attention_rollout", "saliency", "integrated_gradients"])
def test_engine_gives_maps_of_the_input_size_on_a_deit(method, batch):
    model = tiny_deit()
    params = {"n_steps": 4} if method == "integrated_gradients" else {}
    result = attribute(model, batch, method=method, target=[0, 1, 2], device="cpu", **params)
    channels = 1 if method in ("grad_cam", "attention_rollout") else 3
    assert result.raw.shape == (3, channels, 32, 32) and result.importance.shape == (3, 32, 32)
    assert np.isfinite(result.raw).all() and result.importance.sum() > 0
    assert no_hooks(model)


def test_torchvision_vit_is_supported_too(batch):
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
                                               mlp_dim=32, num_classes=3).eval()
    assert token_layout(vit).grid == (4, 4)
    assert vit_grad_cam(vit, batch, torch.tensor([0, 1, 2])).shape == (3, 1, 32, 32)
    assert attention_rollout(vit, batch).shape == (3, 1, 32, 32)
    assert no_hooks(vit)
