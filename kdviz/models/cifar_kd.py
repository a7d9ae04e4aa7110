"""The CIFAR architectures of the knowledge-distillation benchmarks, with their upstream parameter names.

RepDistiller (Tian et al., CRD, ICLR 2020, github.com/HobbitLong/RepDistiller, ``models/``) defined the
CIFAR-100 teacher–student zoo that mdistiller (github.com/megvii-research/mdistiller,
``mdistiller/models/cifar/``) reuses unchanged: wide ResNets ``wrn_d_k``, VGG with batch norm, MobileNetV2
at half width (``mobile_half``), ShuffleNet V1/V2 and a CIFAR ResNet-18/50 (``resnetv2.py``). torchdistill
(github.com/yoshitomo-matsubara/torchdistill, ``models/classification/wide_resnet.py``) adds its own wide
ResNets. The modules below are written afresh from those files so that a ``state_dict`` saved by them loads
with ``strict=True`` here: every parameter and buffer keeps its upstream name and shape.

Deliberate differences that change no parameter name: the first convolution takes ``in_channels``; the
final fixed-size average pools (``AvgPool2d(8)``, ``avg_pool2d(…, 4)``, MobileNetV2's ``AvgPool2d(2)``)
are adaptive, which is the same operation at 32×32 and also works at 28×28; every ReLU is its own module,
not in-place, so hooks (DeepLIFT, Grad-CAM) see each non-linearity once; the feature-returning
``is_feat`` paths are left out (kdviz needs logits only).

Registry names are RepDistiller's ``model_dict`` names where they are free (``wrn_40_2``, ``MobileNetV2``,
``ShuffleV1``, ``ShuffleV2``); names torchvision already uses get a ``cifar_`` prefix (RepDistiller's
``vgg13`` is ``cifar_vgg13``, its ``ResNet50`` is ``cifar_resnet50``); ``UPSTREAM_NAMES`` maps back.
"""

from __future__ import annotations

import torch
from torch import nn

from kdviz.errors import InvalidInputError
from kdviz.models.registry import register_model

__all__ = ["UPSTREAM_NAMES"]

# kdviz registry name -> the name RepDistiller / mdistiller / torchdistill use for it.
UPSTREAM_NAMES: dict[str, str] = {}


def _register(name: str, upstream: str):  # type: ignore[no-untyped-def]
    UPSTREAM_NAMES[name] = upstream
    return register_model(name, family="cifar_kd", input_kind="image", default_in_channels=3)


def _init_like_upstream(model: nn.Module) -> None:
    """He-normal convolutions, unit/zero batch norm (the upstream files' initialisation, up to details)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------------------------------
# Wide ResNets, RepDistiller ``models/wrn.py`` (pre-activation blocks; depth = 6n + 4)


class WRNBlock(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, padding=1, bias=False)
        self.equal_in_out = in_planes == out_planes
        self.convShortcut = (
            None if self.equal_in_out else nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(pre))))
        return out + (x if self.convShortcut is None else self.convShortcut(pre))


class NetworkBlock(nn.Module):
    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(
            *[WRNBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1) for i in range(n)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth: int, widen: int, *, num_classes: int, in_channels: int):
        super().__init__()
        if (depth - 4) % 6:
            raise InvalidInputError(f"wide ResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        ch = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(in_channels, ch[0], 3, padding=1, bias=False)
        self.block1 = NetworkBlock(n, ch[0], ch[1], 1)
        self.block2 = NetworkBlock(n, ch[1], ch[2], 2)
        self.block3 = NetworkBlock(n, ch[2], ch[3], 2)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(ch[3], num_classes)
        _init_like_upstream(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(self.relu(self.bn1(x))), 1))


for _depth, _widen in ((16, 1), (16, 2), (40, 1), (40, 2)):
    _register(f"wrn_{_depth}_{_widen}", f"wrn_{_depth}_{_widen}")(
        lambda *, num_classes, in_channels, _d=_depth, _w=_widen: WideResNet(
            _d, _w, num_classes=num_classes, in_channels=in_channels)
    )


# --------------------------------------------------------------------------------------------------
# VGG with batch norm, RepDistiller ``models/vgg.py``: five blocks (Sequentials whose last ReLU is dropped),
# max-pools between them, global average pool, one Linear ``classifier``.

_VGG_CFG = {
    8: [[64], [128], [256], [512], [512]],
    11: [[64], [128], [256, 256], [512, 512], [512, 512]],
    13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    16: [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    19: [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


def _vgg_block(widths: list[int], cin: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
        cin = w
    return nn.Sequential(*layers[:-1])


class CifarVGG(nn.Module):
    def __init__(self, depth: int, *, num_classes: int, in_channels: int):
        super().__init__()
        cfg = _VGG_CFG[depth]
        cins = [in_channels] + [c[-1] for c in cfg[:-1]]
        for i, (widths, cin) in enumerate(zip(cfg, cins, strict=True)):
            setattr(self, f"block{i}", _vgg_block(widths, cin))
            setattr(self, f"relu{i}", nn.ReLU())
        for i in range(4):
            setattr(self, f"pool{i}", nn.MaxPool2d(2, 2))
        self.pool4 = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(512, num_classes)
        _init_like_upstream(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        x = self.pool0(self.relu0(self.block0(x)))
        x = self.pool1(self.relu1(self.block1(x)))
        x = self.pool2(self.relu2(self.block2(x)))
        x = self.relu3(self.block3(x))
        if h == 64:  # upstream pools a fourth time only for 64×64 (Tiny-ImageNet) inputs
            x = self.pool3(x)
        x = self.relu4(self.block4(x))
        return self.classifier(torch.flatten(self.pool4(x), 1))


for _depth in _VGG_CFG:
    _register(f"cifar_vgg{_depth}", f"vgg{_depth}")(
        lambda *, num_classes, in_channels, _d=_depth: CifarVGG(_d, num_classes=num_classes, in_channels=in_channels)
    )


# --------------------------------------------------------------------------------------------------
# CIFAR ResNet-18/50, RepDistiller ``models/resnetv2.py`` (kuangliu style: 4 stages, ``shortcut``, ``linear``)


class V2Basic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _v2_shortcut(cin, planes, stride)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


class V2Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.shortcut = _v2_shortcut(cin, 4 * planes, stride)
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))
        return self.relu3(self.bn3(self.conv3(out)) + self.shortcut(x))


def _v2_shortcut(cin: int, cout: int, stride: int) -> nn.Sequential:
    if stride == 1 and cin == cout:
        return nn.Sequential()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


class CifarResNetV2(nn.Module):
    def __init__(self, block: type[V2Basic | V2Bottleneck], blocks: tuple[int, int, int, int], *,
                 num_classes: int, in_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        cin = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
            layers = []
            for j in range(n):
                layers.append(block(cin, planes, (1 if i == 0 else 2) if j == 0 else 1))
                cin = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(512 * block.expansion, num_classes)
        _init_like_upstream(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(torch.flatten(self.avgpool(x), 1))


_register("cifar_resnet18", "ResNet18")(
    lambda *, num_classes, in_channels: CifarResNetV2(V2Basic, (2, 2, 2, 2), num_classes=num_classes,
                                                      in_channels=in_channels))
_register("cifar_resnet50", "ResNet50")(
    lambda *, num_classes, in_channels: CifarResNetV2(V2Bottleneck, (3, 4, 6, 3), num_classes=num_classes,
                                                      in_channels=in_channels))


# --------------------------------------------------------------------------------------------------
# MobileNetV2 at half width (``mobile_half``: expansion T = 6, width 0.5), RepDistiller ``models/mobilenetv2.py``


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.use_res_connect = stride == 1 and cin == cout
        self.conv = nn.Sequential(  # upstream keeps the expansion conv even when expand == 1
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class CifarMobileNetV2(nn.Module):
    SETTING = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1))  # (expansion t, channels c, repeats n, stride s) at width 1; t=1 first row

    def __init__(self, *, num_classes: int, in_channels: int, expand: int = 6, width: float = 0.5):
        super().__init__()
        cin = int(32 * width)
        self.conv1 = _conv_bn_relu(in_channels, cin, 3, 2)
        self.blocks = nn.ModuleList()
        for t, c, n, s in self.SETTING:
            cout = int(c * width)
            layers = []
            for j in range(n):
                layers.append(InvertedResidual(cin, cout, s if j == 0 else 1, t if t == 1 else expand))
                cin = cout
            self.blocks.append(nn.Sequential(*layers))
        last = int(1280 * width) if width > 1.0 else 1280
        self.conv2 = _conv_bn_relu(cin, last, 1, 1)
        self.classifier = nn.Sequential(nn.Linear(last, num_classes))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        _init_like_upstream(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(torch.flatten(self.avgpool(self.conv2(x)), 1))


_register("MobileNetV2", "MobileNetV2 (mobile_half)")(
    lambda *, num_classes, in_channels: CifarMobileNetV2(num_classes=num_classes, in_channels=in_channels))


# --------------------------------------------------------------------------------------------------
# ShuffleNet V1 (groups 3) and V2 (size 1.0), RepDistiller ``models/ShuffleNetv1.py`` / ``ShuffleNetv2.py``


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, g, C/g, H, W] -> transpose -> [N, C, H, W]."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleV1Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, groups: int):
        super().__init__()
        mid = cout // 4
        self.stride = stride
        self.g = 1 if cin == 24 else groups  # the first block after the stem is not grouped
        self.conv1 = nn.Conv2d(cin, mid, 1, groups=self.g, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(mid, cout, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1)) if stride == 2 else nn.Sequential()
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = channel_shuffle(self.relu1(self.bn1(self.conv1(x))), self.g)
        out = self.bn3(self.conv3(self.relu2(self.bn2(self.conv2(out)))))
        res = self.shortcut(x)
        return self.relu3(torch.cat([out, res], 1) if self.stride == 2 else out + res)


class CifarShuffleV1(nn.Module):
    def __init__(self, *, num_classes: int, in_channels: int, out_planes=(240, 480, 960), blocks=(4, 8, 4), groups=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.relu = nn.ReLU()
        cin = 24
        for i, (cout, n) in enumerate(zip(out_planes, blocks, strict=True)):
            layers = []
            for j in range(n):
                layers.append(ShuffleV1Block(cin, cout - (cin if j == 0 else 0), 2 if j == 0 else 1, groups))
                cin = cout
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(out_planes[-1], num_classes)
        _init_like_upstream(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x))))))
        return self.linear(torch.flatten(self.pool(x), 1))


class ShuffleV2Basic(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        c = channels // 2
        self.conv1 = nn.Conv2d(c, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1] // 2
        x1, x2 = x[:, :c], x[:, c:]
        out = self.relu3(self.bn3(self.conv3(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x2))))))))
        return channel_shuffle(torch.cat([x1, out], 1), 2)


class ShuffleV2Down(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // 2
        self.conv1 = nn.Conv2d(cin, cin, 3, stride=2, padding=1, groups=cin, bias=False)  # left branch
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv2 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(cin, mid, 1, bias=False)  # right branch
        self.bn3 = nn.BatchNorm2d(mid)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv2d(mid, mid, 3, stride=2, padding=1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)
        self.relu5 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = self.relu2(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = self.bn4(self.conv4(self.relu3(self.bn3(self.conv3(x)))))
        right = self.relu5(self.bn5(self.conv5(right)))
        return channel_shuffle(torch.cat([left, right], 1), 2)


class CifarShuffleV2(nn.Module):
    def __init__(self, *, num_classes: int, in_channels: int, channels=(116, 232, 464, 1024), blocks=(3, 7, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.relu1 = nn.ReLU()
        cin = 24
        for i, (cout, n) in enumerate(zip(channels[:3], blocks, strict=True)):
            setattr(self, f"layer{i + 1}", nn.Sequential(ShuffleV2Down(cin, cout), *[ShuffleV2Basic(cout) for _ in range(n)]))
            cin = cout
        self.conv2 = nn.Conv2d(channels[2], channels[3], 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels[3])
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(channels[3], num_classes)
        _init_like_upstream(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.relu1(self.bn1(self.conv1(x))))))
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.linear(torch.flatten(self.pool(x), 1))


_register("ShuffleV1", "ShuffleV1")(
    lambda *, num_classes, in_channels: CifarShuffleV1(num_classes=num_classes, in_channels=in_channels))
_register("ShuffleV2", "ShuffleV2")(
    lambda *, num_classes, in_channels: CifarShuffleV2(num_classes=num_classes, in_channels=in_channels))


# --------------------------------------------------------------------------------------------------
# torchdistill's wide ResNets (``wide_resnet40_4``, ``wide_resnet28_10``, ``wide_resnet16_8``):
# ``layer1..3`` of pre-activation blocks with a ``shortcut`` Sequential, then ``bn1`` and ``fc``.


class TDWideBlock(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride=stride, padding=1, bias=False)
        self.dropout = nn.Dropout(0.3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, planes, 1, stride=stride, bias=False))
                         if stride != 1 or cin != planes else nn.Sequential())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout(self.conv1(self.relu1(self.bn1(x))))
        return self.conv2(self.relu2(self.bn2(out))) + self.shortcut(x)


class TDWideResNet(nn.Module):
    def __init__(self, depth: int, k: int, *, num_classes: int, in_channels: int):
        super().__init__()
        n = (depth - 4) // 6
        sizes = [16, 16 * k, 32 * k, 64 * k]
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        cin = 16
        for i in range(3):
            layers = []
            for j in range(n):
                layers.append(TDWideBlock(cin, sizes[i + 1], (1 if i == 0 else 2) if j == 0 else 1))
                cin = sizes[i + 1]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.bn1 = nn.BatchNorm2d(sizes[3])
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(sizes[3], num_classes)
        _init_like_upstream(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(self.relu(self.bn1(x))), 1))


for _depth, _k in ((16, 8), (28, 10), (40, 4)):
    _register(f"wide_resnet{_depth}_{_k}", f"wide_resnet{_depth}_{_k} (torchdistill)")(
        lambda *, num_classes, in_channels, _d=_depth, _kk=_k: TDWideResNet(
            _d, _kk, num_classes=num_classes, in_channels=in_channels)
    )
