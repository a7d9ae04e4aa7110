"""kdviz.models.arch_guess: exact key-and-shape matching across the whole registry, look-alikes and ties."""

import pytest
import torch

from kdviz import models
from kdviz.io.checkpoints import load_checkpoint
from kdviz.models import arch_guess


def shapes(arch, num_classes=100, in_channels=3):
    return models.state_dict_signature(arch, num_classes, in_channels)


# Pairs whose layouts look alike at a glance: the first has every key the old rule of thumb checked for the second.
LOOK_ALIKES = [
    ("ShuffleV1", "resnet8"),  # layer1.0.conv1.weight, no layer4: was taken for a CIFAR ResNet
    ("cifar_resnet50", "resnet50"),  # layer4 (+ linear): was taken for a torchvision ResNet
    ("cifar_resnet18", "resnet18"),
    ("resnet50", "wide_resnet50_2"),  # torchvision: the same key names, other shapes
    ("resnext50_32x4d", "resnet50"),
    ("wrn_16_2", "wide_resnet16_8"),  # RepDistiller vs torchdistill wide ResNets
    ("resnet8", "resnet8x4"),
    ("ShuffleV2", "shufflenet_v2_x1_0"),
    ("MobileNetV2", "mobilenet_v2"),
    ("efficientnet_b0", "mobilenet_v2"),  # features.0.0.weight, as in kdviz's 1-D FCN: was taken for fcn_w32
    ("cifar_vgg13", "vgg13_bn"),
]


@pytest.mark.parametrize(("arch", "other"), LOOK_ALIKES)
def test_look_alikes_are_told_apart(arch, other):
    for a, b in ((arch, other), (other, arch)):
        g = arch_guess.guess(shapes(a))
        assert (g.arch, g.exact, g.score, g.dims) == (a, True, 1.0, (100, 3))
        assert b not in g.ties


def test_the_old_rules_of_thumb_are_gone():
    """ShuffleV1 has layer1.0.conv1.weight and no layer4; the CIFAR ResNet50 has layer4 and a 'linear' head."""
    assert "layer1.0.conv1.weight" in shapes("ShuffleV1") and "layer4.0.conv1.weight" not in shapes("ShuffleV1")
    assert "layer4.0.conv1.weight" in shapes("cifar_resnet50") and "linear.weight" in shapes("cifar_resnet50")


def test_identical_networks_are_reported_as_a_tie_not_resolved_silently():
    g = arch_guess.guess(shapes("vit_tiny_patch16_224", 10))
    assert g.exact and {g.arch, *g.ties} == {"deit_tiny_patch16_224", "vit_tiny_patch16_224"}
    assert arch_guess.guess(shapes("vit_tiny_patch16_224", 10), hint=["vit_tiny_patch16_224"]).arch == "vit_tiny_patch16_224"
    state = {k: torch.zeros(s) for k, s in shapes("vit_tiny_patch16_224", 10).items()}
    buffer = __import__("io").BytesIO()
    torch.save(state, buffer)
    loaded = load_checkpoint(buffer.getvalue())
    assert loaded.arch_ties and any("exactly as well" in w for w in loaded.warnings)
    assert loaded.summary()["arch_ties"] == list(loaded.arch_ties)


def test_distilled_deit_is_not_tied_with_plain_deit():
    g = arch_guess.guess(shapes("deit_tiny_distilled_patch16_224", 10))
    assert (g.arch, g.ties) == ("deit_tiny_distilled_patch16_224", ())


def test_timm_vits_outside_the_registry_are_found_by_name():
    """vit_tiny_patch16_384 is not registered: timm's name list, filtered by width, patch and tokens, finds it."""
    assert "vit_tiny_patch16_384" not in models.list_models()
    sig = models.state_dict_signature("vit_tiny_patch16_384", 10, 3)
    g = arch_guess.guess(sig)
    assert g.exact and "vit_tiny_patch16_384" in (g.arch, *g.ties)


def test_missing_num_batches_tracked_still_matches_exactly():
    sig = {k: s for k, s in shapes("wrn_40_2").items() if not k.endswith("num_batches_tracked")}
    assert arch_guess.guess(sig).arch == "wrn_40_2"


def test_near_miss_names_the_closest_with_a_score():
    sig = dict(shapes("ShuffleV2"))
    sig.pop("layer3.3.conv1.weight")
    g = arch_guess.guess(sig)
    assert not g.exact and g.arch == "ShuffleV2" and 0.9 < g.score < 1.0
    nothing = arch_guess.guess({"weird.weight": (3, 3)})
    assert nothing.arch is None and not nothing.exact


def test_index_matches_the_installed_libraries():
    index = arch_guess.key_index()
    assert set(index) == set(models.list_models())
    assert all(e.shapes_sha is not None for e in index.values()), "regenerate: python -m kdviz.models.arch_guess kdviz/models/key_index.py"
