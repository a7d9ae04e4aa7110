"""kdviz.io.presets: normalisation guessed from the architecture family, and enlarged previews of small inputs."""

import numpy as np
import pytest

from kdviz.io.presets import PRESETS, display_scale, guess_preset, preset_names, preview_strip


@pytest.mark.parametrize(
    ("arch", "classes", "expected"),
    [("resnet8x4", 100, "CIFAR-100"), ("wrn_40_2", 10, "CIFAR-10"), ("ShuffleV1", 100, "CIFAR-100"),
     ("resnet50", 1000, "ImageNet"), ("deit_tiny_distilled_patch16_224", 1000, "ImageNet")],
)
def test_preset_follows_the_family(arch, classes, expected):
    assert guess_preset(arch, classes) is PRESETS[expected]
    assert preset_names(arch, classes)[0] == expected and sorted(preset_names(arch, classes)) == sorted(PRESETS)


def test_timm_vits_get_what_timm_records_for_them():
    """timm's vit_* configs normalise with mean = std = 0.5 (not ImageNet's); *_384 models take 384×384."""
    vit = guess_preset("vit_tiny_patch16_224", 1000)
    assert (vit.mean, vit.std, vit.size) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (224, 224))
    assert guess_preset("vit_tiny_patch16_384", 1000).size == (384, 384)
    assert preset_names("vit_tiny_patch16_224", 1000)[0] == "timm vit_tiny_patch16_224"


def test_cifar100_statistics_are_repdistillers_and_grey_models_get_the_average():
    p = PRESETS["CIFAR-100"]
    assert p.mean == (0.5071, 0.4867, 0.4408) and p.std == (0.2675, 0.2565, 0.2761)
    mean, std = p.for_channels(1)
    assert mean == (round((0.5071 + 0.4867 + 0.4408) / 3, 4),) and len(std) == 1
    assert preset_names("fcn", 2) == [] and guess_preset("fcn", 2) is None


def test_small_inputs_are_enlarged_with_square_pixels():
    assert display_scale(32, 32) == 5 and display_scale(28, 28) == 6 and display_scale(224, 224) == 1
    x = np.arange(2 * 3 * 32 * 32, dtype=np.float32).reshape(2, 3, 32, 32)
    strip = preview_strip(x)  # at least 96 pixels a side: 32×32 drawn 3× larger
    assert strip.shape == (96, 192, 3) and strip.dtype == np.uint8
    assert (strip[:3, :3] == strip[0, 0]).all() and (strip[3, 0] != strip[0, 0]).any()  # a pixel is a 3×3 square
    assert strip[0, 0, 0] == 0 and strip[-1, 95, 2] == 255 and strip[0, 96, 0] == 0  # each image scaled on its own
    grey = preview_strip(np.random.default_rng(0).random((3, 1, 28, 28)))
    assert grey.shape == (112, 336)  # 28×28 drawn 4× larger
    with pytest.raises(ValueError, match="needs images"):
        preview_strip(np.zeros((2, 5, 8, 8)))
