"""kdviz.models: the registry, parametrised over every entry so a new model is tested for free."""

import pytest
import torch

from kdviz import models
from kdviz.models import arch_guess

ALL = models.list_models()
SMALL_IMAGE = ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "squeezenet1_1", "shufflenet_v2_x0_5", "vit_b_16"]


def test_registry_has_every_family():
    assert {"resnet18", "resnet50", "wide_resnet50_2", "mobilenet_v2", "efficientnet_b0", "convnext_tiny", "vit_b_16"} <= set(ALL)
    assert models.list_models("cifar_resnet") == sorted(
        ["resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet8x4", "resnet32x4"]
    )
    assert models.list_models("timeseries") == ["fcn", "resnet1d"]
    assert {"wrn_40_2", "wrn_16_2", "cifar_vgg8", "cifar_vgg13", "MobileNetV2", "ShuffleV1", "ShuffleV2",
            "cifar_resnet50"} <= set(models.list_models("cifar_kd"))
    assert {"deit_tiny_patch16_224", "deit_tiny_distilled_patch16_224", "vit_tiny_patch16_224"} <= set(
        models.list_models("timm"))


def test_any_timm_name_is_accepted_on_demand():
    info = models.model_info("convnext_atto")
    assert (info.family, info.input_kind) == ("timm", "image")
    sig = models.state_dict_signature("convnext_atto", 4, 1)
    assert sig["head.fc.weight"][0] == 4 and sig["stem.0.weight"][1] == 1


@pytest.mark.parametrize("arch", ALL)
def test_every_registered_model_adapts_classes_and_channels(arch):
    """Built with empty weights: the first conv takes 1 channel and the classifier gives 7 classes."""
    sig = models.state_dict_signature(arch, 7, 1)
    state = {k: torch.empty(shape, device="meta") for k, shape in sig.items()}
    assert models.infer_dims_from_state_dict(state) == (7, 1)
    # The shipped key index (kdviz.models.key_index) still describes this architecture: same names, and the same
    # shapes once the num_classes / in_channels axes it records are set aside.
    entry = arch_guess.key_index()[arch]
    assert arch_guess.fingerprint_of_keys(sig) == (entry.keys_sha, entry.n_keys)
    assert arch_guess.shape_fingerprint(sig, entry.axes) == entry.shapes_sha


@pytest.mark.parametrize("arch", models.list_models("cifar_resnet"))
def test_cifar_resnets_run_on_28_and_32_pixels(arch):
    model = models.create_model(arch, num_classes=10, in_channels=1).eval()
    for size in (28, 32):
        assert model(torch.zeros(2, 1, size, size)).shape == (2, 10)


@pytest.mark.parametrize(
    ("arch", "depth"), [("resnet8", 8), ("resnet14", 14), ("resnet20", 20), ("resnet32", 32), ("resnet56", 56), ("resnet110", 110)]
)
def test_cifar_resnet_depth_counts_weighted_layers(arch, depth):
    """6n+2 weighted layers: convs on the main path (no 1×1 shortcuts) plus the classifier."""
    model = models.create_model(arch, num_classes=10)
    convs = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and "downsample" not in name]
    assert len(convs) + 1 == depth


def test_cifar_resnet_uses_repdistiller_parameter_names():
    keys = set(models.create_model("resnet8x4", num_classes=100).state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.0.downsample.0.weight",
            "layer3.0.bn2.weight", "fc.weight", "fc.bias"} <= keys
    # RepDistiller's resnet56 has 0.86 M parameters with 100 classes (its model table lists 0.86 M).
    resnet56 = models.create_model("resnet56", num_classes=100)
    assert round(sum(p.numel() for p in resnet56.parameters()) / 1e6, 2) == 0.86


@pytest.mark.parametrize("arch", SMALL_IMAGE)
def test_torchvision_models_forward_one_channel(arch):
    model = models.create_model(arch, num_classes=5, in_channels=1).eval()
    size = 224 if arch.startswith("vit") else 64
    with torch.no_grad():
        assert model(torch.zeros(1, 1, size, size)).shape == (1, 5)


@pytest.mark.parametrize(("arch", "width"), [("fcn", 128), ("fcn_w32", 32), ("resnet1d", 64), ("resnet1d_w16", 16)])
def test_series_models_take_any_length_and_width(arch, width):
    model = models.create_model(arch, num_classes=3, in_channels=2).eval()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv1d))
    assert (first.in_channels, first.out_channels) == (2, width)
    for length in (24, 150):
        assert model(torch.zeros(4, 2, length)).shape == (4, 3)


def test_fcn_layout_follows_wang_et_al():
    model = models.create_model("fcn", num_classes=2)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(c.kernel_size[0], c.out_channels) for c in convs] == [(8, 128), (5, 256), (3, 128)]


def test_width_name_round_trips():
    assert models.width_name("fcn", 128) == "fcn"
    assert models.width_name("fcn", 32) == "fcn_w32"
    assert models.model_info("fcn_w32").family == "timeseries"


def test_unknown_name_lists_close_valid_names():
    with pytest.raises(models.UnknownModelError, match="resnet18") as info:
        models.create_model("resnet19", num_classes=10)
    assert "did you mean" in str(info.value)
    with pytest.raises(ValueError, match="num_classes"):
        models.create_model("resnet8", num_classes=0)


def test_models_are_built_in_train_mode_with_fresh_weights():
    a = models.create_model("resnet8", num_classes=10)
    b = models.create_model("resnet8", num_classes=10)
    assert a.training
    assert not torch.equal(a.conv1.weight, b.conv1.weight)


@pytest.mark.parametrize("arch", ["regnet_x_400mf", "vit_b_16", "resnet20", "fcn_w8"])
def test_signature_equals_a_real_build(arch):
    real = {k: tuple(v.shape) for k, v in models.create_model(arch, num_classes=10, in_channels=1).state_dict().items()}
    assert models.state_dict_signature(arch, 10, 1) == real


def test_signatures_do_not_disturb_models_built_in_other_threads():
    """Empty-weight building is thread-local: a concurrent real build gets real CPU weights."""
    import threading

    errors = []

    def build_real():
        for _ in range(10):
            try:
                model = models.create_model("resnet8", num_classes=10)
                assert model.conv1.weight.device.type == "cpu"
                model(torch.zeros(1, 3, 32, 32))
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

    thread = threading.Thread(target=build_real)
    thread.start()
    for arch in ("resnet18", "resnet34", "mobilenet_v2", "densenet121", "resnet110", "fcn"):
        models.state_dict_signature.__wrapped__(arch, 10, 1)
    thread.join()
    assert errors == []
