"""PyTorch truth for tests/parity_test.ts: the 11 networks of the paper as PyTorch builds them.

For each model the test exports xscore's weights with the code path of `weights.safetensors`
(train/safetensors.ts `torchStateDict` + `encodeSafetensors`) and writes its own results (eval
logits, one training step's gradients and BatchNorm running statistics) next to them. This script
builds the reference network, loads the exported weights with `load_state_dict(strict=True)`,
runs it in float64 and prints one JSON object: per model, how far xscore is from PyTorch.

References (docs/protocol.md §4.2): torchvision `mobilenet_v2` and its `EfficientNet` class with
the B0_2M table, timm `fbnetc_100`, and timm's `EfficientNet` with the B0 arch_def at depth 0.5
for TinyNet; the other seven (ConvMixer, ConvNeXt, GhostNet, MobileOne,
MobileViT, ShuffleNet, StarNet) are PyTorch modules written here from the architecture description
of docs/protocol.md §4.2 (the authors' code is not vendored), with the authors' module names.

    /usr/bin/python3 tests/parity_reference.py <dir>    # <dir>/cases.json written by the test
    /usr/bin/python3 tests/parity_reference.py --check  # exit 0 when torch, torchvision, timm import

Needs python3-torch, python3-torchvision (Debian) and timm (PyPI). No network access.
"""
import json
import math
import struct
import sys
import time

if len(sys.argv) > 1 and sys.argv[1] == "--check":
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
        import timm  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import failure means "no reference here"
        print(f"{type(err).__name__}: {err}")
        sys.exit(1)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}")
    sys.exit(0)

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
VERBOSE = bool(__import__("os").environ.get("XS_PARITY_VERBOSE"))

# ---------------------------------------------------------------------------------------------
# The seven networks written from docs/protocol.md §4.2 (names = the authors' state_dict keys).


def conv_bn(cin, cout, k, s=1, p=None, groups=1, bias=False):
    """Sequential(conv, bn) with named children, the re-param branch of MobileOne / GhostNetV3."""
    m = nn.Sequential()
    m.add_module("conv", nn.Conv2d(cin, cout, k, s, (k - 1) // 2 if p is None else p, groups=groups, bias=bias))
    m.add_module("bn", nn.BatchNorm2d(cout))
    return m


class ConvMixerLayer(nn.Module):
    def __init__(self, dim, k):
        super().__init__()
        self.depthwise = nn.Sequential(nn.Conv2d(dim, dim, k, groups=dim, padding=k // 2), nn.GELU(), nn.BatchNorm2d(dim))
        self.pointwise = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.GELU(), nn.BatchNorm2d(dim))

    def forward(self, x):
        return self.pointwise(x + self.depthwise(x))


class ConvMixer(nn.Module):
    """ConvMixerModel(dim=512, depth=8, kernel_size=5, patch_size=7)."""

    def __init__(self, num_classes, dim=512, depth=8, k=5, patch=7):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, dim, patch, stride=patch), nn.GELU(), nn.BatchNorm2d(dim))
        self.blocks = nn.Sequential(*[ConvMixerLayer(dim, k) for _ in range(depth)])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(dim, num_classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class LayerNormCF(nn.Module):
    """ConvNeXt's hand-written channels-first LayerNorm (mean / pow / sqrt over C)."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class Permute(nn.Module):
    def __init__(self, *dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


class ConvNextBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(d, d, 7, padding=3, groups=d),
            Permute(0, 2, 3, 1),
            nn.LayerNorm(d, eps=1e-6),
            nn.Linear(d, 4 * d),
            nn.GELU(),
            nn.Linear(4 * d, d),
            Permute(0, 3, 1, 2),
        )
        self.gamma = nn.Parameter(torch.full((d, 1, 1), 1e-6))  # the authors' γ shape (d, 1, 1)

    def forward(self, x):
        return x + self.gamma * self.block(x)


class ConvNextStage(nn.Module):
    def __init__(self, d, depth):
        super().__init__()
        self.blocks = nn.Sequential(*[ConvNextBlock(d) for _ in range(depth)])

    def forward(self, x):
        return self.blocks(x)


class ConvNext(nn.Module):
    """ConvNext(layer_dims=[32, 64, 128, 512], depths=[1, 1, 1, 1], patch_size=4, drop_rate=0)."""

    def __init__(self, num_classes, dims=(32, 64, 128, 512), depths=(1, 1, 1, 1), patch=4):
        super().__init__()
        self.downsample_layers = nn.ModuleList([nn.Sequential(nn.Conv2d(3, dims[0], patch, stride=patch), LayerNormCF(dims[0]))])
        for i in range(1, len(dims)):
            self.downsample_layers.append(nn.Sequential(LayerNormCF(dims[i - 1]), nn.Conv2d(dims[i - 1], dims[i], 2, stride=2)))
        self.stage_layers = nn.ModuleList([ConvNextStage(d, n) for d, n in zip(dims, depths)])
        self.cls = nn.Sequential(nn.LayerNorm(dims[-1], eps=1e-6), nn.Linear(dims[-1], num_classes))

    def forward(self, x):
        for down, stage in zip(self.downsample_layers, self.stage_layers):
            x = stage(down(x))
        return self.cls(x.mean(dim=(-2, -1)))


def hard_sigmoid(x):
    return F.relu6(x + 3.0) / 6.0


def make_divisible(v, divisor, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class GhostSE(nn.Module):
    """avgpool → 1×1 conv (+bias) → ReLU → 1×1 conv (+bias) → hard-sigmoid → multiply."""

    def __init__(self, c):
        super().__init__()
        r = make_divisible(c * 0.25, 4)
        self.conv_reduce = nn.Conv2d(c, r, 1, bias=True)
        self.conv_expand = nn.Conv2d(r, c, 1, bias=True)

    def forward(self, x):
        s = self.conv_expand(F.relu(self.conv_reduce(x.mean((2, 3), keepdim=True))))
        return x * hard_sigmoid(s)


class GhostModuleV3(nn.Module):
    """GhostModule(inp → oup), ratio 2, 1×1 primary, 3×3 DW cheap op, 3 branches each."""

    def __init__(self, inp, oup, relu, dfc):
        super().__init__()
        init = math.ceil(oup / 2)
        self.oup, self.relu, self.dfc = oup, relu, dfc
        if dfc:
            self.short_conv = nn.Sequential(
                nn.Conv2d(inp, oup, 1, bias=False),
                nn.BatchNorm2d(oup),
                nn.Conv2d(oup, oup, (1, 5), padding=(0, 2), groups=oup, bias=False),
                nn.BatchNorm2d(oup),
                nn.Conv2d(oup, oup, (5, 1), padding=(2, 0), groups=oup, bias=False),
                nn.BatchNorm2d(oup),
            )
        self.primary_rpr_conv = nn.ModuleList([conv_bn(inp, init, 1) for _ in range(3)])
        self.cheap_rpr_skip = nn.BatchNorm2d(init)
        self.cheap_rpr_conv = nn.ModuleList([conv_bn(init, init, 3, groups=init) for _ in range(3)])
        self.cheap_rpr_scale = conv_bn(init, init, 1, groups=init)

    def forward(self, x):
        x1 = sum(b(x) for b in self.primary_rpr_conv)
        if self.relu:
            x1 = F.relu(x1)
        x2 = self.cheap_rpr_skip(x1) + sum(b(x1) for b in self.cheap_rpr_conv) + self.cheap_rpr_scale(x1)
        if self.relu:
            x2 = F.relu(x2)
        out = torch.cat([x1, x2], 1)[:, : self.oup]
        if self.dfc:
            res = self.short_conv(F.avg_pool2d(x, 2, 2))
            out = out * F.interpolate(torch.sigmoid(res), size=out.shape[-2:], mode="nearest")
        return out


class GhostBottleneckV3(nn.Module):
    def __init__(self, cin, mid, cout, k, s, se, layer_id):
        super().__init__()
        self.s = s
        self.ghost1 = GhostModuleV3(cin, mid, relu=True, dfc=layer_id > 1)
        if s > 1:
            self.dw_rpr_conv = nn.ModuleList([conv_bn(mid, mid, k, s, groups=mid) for _ in range(3)])
            self.dw_rpr_scale = conv_bn(mid, mid, 1, 2, p=0, groups=mid)
        self.se = GhostSE(mid) if se else None
        self.ghost2 = GhostModuleV3(mid, cout, relu=False, dfc=False)
        if cin == cout and s == 1:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cin, k, s, (k - 1) // 2, groups=cin, bias=False),
                nn.BatchNorm2d(cin),
                nn.Conv2d(cin, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            )

    def forward(self, x):
        y = self.ghost1(x)
        if self.s > 1:
            y = sum(b(y) for b in self.dw_rpr_conv) + self.dw_rpr_scale(y)
        if self.se is not None:
            y = self.se(y)
        return self.ghost2(y) + self.shortcut(x)


class ConvBnAct(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn1(self.conv(x)))


class GhostNetV3(nn.Module):
    """ghostnetv3(width=1.0) with the truncated config (9 rows, output stride 16)."""

    # (k, exp, out, se, s) per bottleneck, grouped into the blocks.<i> stages, as the authors' cfgs list.
    CFGS = [[[3, 16, 16, 0, 1]], [[3, 48, 24, 0, 2]], [[3, 72, 24, 0, 1]],
            [[5, 72, 40, 0.25, 2]], [[5, 120, 40, 0.25, 1]], [[3, 240, 80, 0, 2]],
            [[3, 184, 80, 0, 1], [3, 240, 160, 0.25, 1]], [[5, 720, 192, 0.25, 1]]]

    def __init__(self, num_classes):
        super().__init__()
        self.conv_stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, cin, layer_id = [], 16, 0
        for rows in self.CFGS:
            blocks = []
            for k, exp, c, se, s in rows:
                blocks.append(GhostBottleneckV3(cin, exp, c, k, s, se > 0, layer_id))
                cin, layer_id = c, layer_id + 1
            stages.append(nn.Sequential(*blocks))
        stages.append(nn.Sequential(ConvBnAct(cin, 720)))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = nn.Conv2d(720, 1280, 1, bias=True)
        self.classifier = nn.Linear(1280, num_classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv_stem(x))))
        x = F.relu(self.conv_head(F.adaptive_avg_pool2d(x, 1)))
        return self.classifier(x.flatten(1))


class MobileOneBlock(nn.Module):
    """ReLU(Σ BN(conv_k) + [BN(conv_1×1) if k > 1] + [BN(x) if in = out and s = 1])."""

    def __init__(self, cin, cout, k, s, p, groups, branches):
        super().__init__()
        self.rbr_skip = nn.BatchNorm2d(cin) if cin == cout and s == 1 else None
        self.rbr_conv = nn.ModuleList([conv_bn(cin, cout, k, s, p, groups) for _ in range(branches)])
        self.rbr_scale = conv_bn(cin, cout, 1, s, 0, groups) if k > 1 else None

    def forward(self, x):
        out = sum(b(x) for b in self.rbr_conv)
        if self.rbr_scale is not None:
            out = out + self.rbr_scale(x)
        if self.rbr_skip is not None:
            out = out + self.rbr_skip(x)
        return F.relu(out)


class MobileOne(nn.Module):
    """mobileone(variant='s0') as committed: widths (0.75, 1, 1, 2), 2 conv branches, no SE."""

    def __init__(self, num_classes, widths=(0.75, 1.0, 1.0, 2.0), branches=2):
        super().__init__()
        self.in_planes = min(64, int(64 * widths[0]))
        self.branches = branches
        self.stage0 = MobileOneBlock(3, self.in_planes, 3, 2, 1, 1, 1)
        self.stage1 = self._stage(int(64 * widths[0]), 2)
        self.stage2 = self._stage(int(128 * widths[1]), 8)
        self.stage3 = self._stage(int(256 * widths[2]), 10)
        self.stage4 = self._stage(int(512 * widths[3]), 1)
        self.linear = nn.Linear(int(512 * widths[3]), num_classes)

    def _stage(self, planes, n):
        blocks = []
        for s in [2] + [1] * (n - 1):
            blocks.append(MobileOneBlock(self.in_planes, self.in_planes, 3, s, 1, self.in_planes, self.branches))
            blocks.append(MobileOneBlock(self.in_planes, planes, 1, 1, 0, 1, self.branches))
            self.in_planes = planes
        return nn.Sequential(*blocks)

    def forward(self, x):
        for m in (self.stage0, self.stage1, self.stage2, self.stage3, self.stage4):
            x = m(x)
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def conv_bn_act(cin, cout, k, s=1, p=0):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


class MViTIR(nn.Module):
    """InvertedResidual(in, out, s, e=4)."""

    def __init__(self, cin, cout, s, e=4):
        super().__init__()
        h = cin * e
        self.residual = s == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, h, 1, bias=False), nn.BatchNorm2d(h), nn.SiLU(),
            nn.Conv2d(h, h, 3, s, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.SiLU(),
            nn.Conv2d(h, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class MViTBlock(nn.Module):
    """MViTBlock: out = x + y + z, every pixel a token, post-norm encoder, no position code."""

    def __init__(self, c, d, heads=4, layers=2):
        super().__init__()
        self.local_conv = conv_bn_act(c, c, 3, 1, 1)
        self.reduce_conv = conv_bn_act(c, d, 1)
        layer = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.1, activation="gelu", batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers)
        self.expand_conv = conv_bn_act(d, c, 1)

    def forward(self, x):
        y = self.local_conv(x)
        z = self.reduce_conv(y)
        b, d, h, w = z.shape
        z = self.transformer(z.flatten(2).transpose(1, 2))
        z = self.expand_conv(z.transpose(1, 2).reshape(b, d, h, w))
        return x + y + z


class MobileViTSmall(nn.Module):
    """MobileViT_Small (the repository's simplified variant)."""

    def __init__(self, num_classes):
        super().__init__()
        self.conv1 = conv_bn_act(3, 32, 3, 2, 1)
        self.layer1 = nn.Sequential(MViTIR(32, 64, 1))
        self.layer2 = nn.Sequential(MViTIR(64, 128, 2), MViTIR(128, 128, 1))
        self.layer3 = nn.Sequential(MViTIR(128, 128, 2), MViTBlock(128, 144))
        self.layer4 = nn.Sequential(MViTIR(128, 256, 2), MViTBlock(256, 192))
        self.layer5 = nn.Sequential(MViTIR(256, 256, 2), MViTBlock(256, 240))
        self.conv_exp = conv_bn_act(256, 512, 1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        for m in (self.conv1, self.layer1, self.layer2, self.layer3, self.layer4, self.layer5, self.conv_exp):
            x = m(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class ShuffleUnit(nn.Module):
    """down unit (stride 2, two branches) or basic unit (split, branch2 on one half); no shuffle."""

    def __init__(self, cin, cout, s):
        super().__init__()
        bf = cout // 2
        self.s = s
        if s == 2:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, 2, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(),
            )
        b2in = cin if s == 2 else bf
        self.branch2 = nn.Sequential(
            nn.Conv2d(b2in, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(),
            nn.Conv2d(bf, bf, 3, s, 1, groups=bf, bias=False), nn.BatchNorm2d(bf),
            nn.Conv2d(bf, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(),
        )

    def forward(self, x):
        if self.s == 2:
            return torch.cat([self.branch1(x), self.branch2(x)], 1)
        x1, x2 = x.chunk(2, dim=1)
        return torch.cat([x1, self.branch2(x2)], 1)


class ShuffleNet2M(nn.Module):
    """ShuffleNet_2M_Model: channels [64, 192, 360, 600, 1024], repeats (4, 8, 4)."""

    def __init__(self, num_classes, ch=(64, 192, 360, 600, 1024), reps=(4, 8, 4)):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, ch[0], 3, 2, 1, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU())
        cin = ch[0]
        for i, (n, c) in enumerate(zip(reps, ch[1:4])):
            units = [ShuffleUnit(cin, c, 2)] + [ShuffleUnit(c, c, 1) for _ in range(n - 1)]
            setattr(self, f"stage{i + 2}", nn.Sequential(*units))
            cin = c
        self.conv5 = nn.Sequential(nn.Conv2d(cin, ch[4], 1, bias=False), nn.BatchNorm2d(ch[4]), nn.ReLU())
        self.fc = nn.Linear(ch[4], num_classes)

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 3, 2, 1)
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class StarConvBN(nn.Sequential):
    def __init__(self, cin, cout, k=1, s=1, p=0, groups=1, with_bn=True):
        super().__init__()
        self.add_module("conv", nn.Conv2d(cin, cout, k, s, p, groups=groups))
        if with_bn:
            self.add_module("bn", nn.BatchNorm2d(cout))


class StarBlock(nn.Module):
    def __init__(self, d, r=4):
        super().__init__()
        self.dwconv = StarConvBN(d, d, 7, 1, 3, groups=d)
        self.f1 = StarConvBN(d, r * d, with_bn=False)
        self.f2 = StarConvBN(d, r * d, with_bn=False)
        self.g = StarConvBN(r * d, d)
        self.dwconv2 = StarConvBN(d, d, 7, 1, 3, groups=d, with_bn=False)

    def forward(self, x):
        h = self.dwconv(x)
        h = F.relu6(self.f1(h)) * self.f2(h)
        return x + self.dwconv2(self.g(h))


class StarNetS1(nn.Module):
    """starnet_s1: StarNet(base_dim=24, depths=[2, 2, 8, 3], mlp_ratio=4), stem 32."""

    def __init__(self, num_classes, base=24, depths=(2, 2, 8, 3)):
        super().__init__()
        self.stem = nn.Sequential(StarConvBN(3, 32, 3, 2, 1), nn.ReLU6())
        cin, stages = 32, []
        for i, n in enumerate(depths):
            d = base * 2**i
            stages.append(nn.Sequential(StarConvBN(cin, d, 3, 2, 1), *[StarBlock(d) for _ in range(n)]))
            cin = d
        self.stages = nn.ModuleList(stages)
        self.norm = nn.BatchNorm2d(cin)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for s in self.stages:
            x = s(x)
        return self.head(F.adaptive_avg_pool2d(self.norm(x), 1).flatten(1))


# ---------------------------------------------------------------------------------------------
# torchvision / timm builds.


def efficientnet_b0_2m(num_classes):
    from torchvision.models.efficientnet import EfficientNet, MBConvConfig

    table = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 192, 3), (6, 3, 1, 192, 256, 1)]
    return EfficientNet([MBConvConfig(*row) for row in table], dropout=0.2, stochastic_depth_prob=0.2,
                        num_classes=num_classes, last_channel=1024)


def tinynet(num_classes):
    from timm.models._efficientnet_builder import decode_arch_def
    from timm.models.efficientnet import EfficientNet

    arch_def = [["ds_r1_k3_s1_e1_c16_se0.25"], ["ir_r2_k3_s2_e6_c24_se0.25"], ["ir_r2_k5_s2_e6_c40_se0.25"],
                ["ir_r3_k3_s2_e6_c80_se0.25"], ["ir_r3_k5_s1_e6_c112_se0.25"], ["ir_r4_k5_s2_e6_c192_se0.25"],
                ["ir_r1_k3_s1_e6_c320_se0.25"]]
    return EfficientNet(decode_arch_def(arch_def, 0.5), num_classes=num_classes, num_features=1280, stem_size=32,
                        fix_stem=True, act_layer=nn.SiLU)


def build(model_id, num_classes):
    """(module, reference label) of `model_id`."""
    import timm
    import torchvision

    if model_id == "mobilenet":
        return torchvision.models.mobilenet_v2(num_classes=num_classes), "torchvision mobilenet_v2"
    if model_id == "efficientnet":
        return efficientnet_b0_2m(num_classes), "torchvision EfficientNet (B0_2M table)"
    if model_id == "fbnet":
        return timm.create_model("fbnetc_100", num_classes=num_classes, pretrained=False), "timm fbnetc_100"
    if model_id == "tinynet":
        return tinynet(num_classes), "timm EfficientNet (B0 arch_def, depth 0.5)"
    written = {
        "convmixer": (ConvMixer, "module (protocol §4.2)"),
        "convnext": (ConvNext, "module (protocol §4.2)"),
        "ghostnet": (GhostNetV3, "module (protocol §4.2)"),
        "mobileone": (MobileOne, "module (protocol §4.2)"),
        "mobilevit": (MobileViTSmall, "module (protocol §4.2) (nn.TransformerEncoder)"),
        "shufflenet": (ShuffleNet2M, "module (protocol §4.2)"),
        "starnet": (StarNetS1, "module (protocol §4.2)"),
    }
    cls, label = written[model_id]
    return cls(num_classes), label


# ---------------------------------------------------------------------------------------------
# Reading safetensors (the format: u64 LE header length, JSON header, raw LE bytes), written here
# from the format's definition so that the xscore encoder is checked by an independent reader.

DTYPES = {"F32": (torch.float32, 4), "I64": (torch.int64, 8), "I32": (torch.int32, 4)}


def read_safetensors(path):
    try:
        from safetensors.torch import load_file  # the official reader, where installed

        return load_file(path)
    except ImportError:
        pass
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        dtype, size = DTYPES[spec["dtype"]]
        begin, end = spec["data_offsets"]
        buf = bytearray(raw[8 + n + begin : 8 + n + end])
        t = torch.frombuffer(buf, dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(spec["shape"]).clone()
    return out


def no_randomness(model):
    """Dropout and stochastic depth off: their random draws cannot match across frameworks."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
        if isinstance(m, nn.MultiheadAttention):
            m.dropout = 0.0
        if type(m).__name__ in ("StochasticDepth", "DropPath"):
            if hasattr(m, "p"):
                m.p = 0.0
            if hasattr(m, "drop_prob"):
                m.drop_prob = 0.0


def rel(a, b):
    """max |a - b| / max |b| (b the float64 reference)."""
    return float((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-30))


# A gradient passes when it is within GRAD_RATIO x max(GRAD_FLOOR, PyTorch float32's own distance
# from float64) of the float64 gradient (the test asserts grads_ratio <= GRAD_RATIO).
GRAD_FLOOR = 1e-4
GRAD_RATIO = 10


def train_step(model, x, labels):
    """Train-mode logits and parameter gradients of the mean cross-entropy, dropout off."""
    no_randomness(model)
    model.train()
    out = model(x)
    F.cross_entropy(out, labels).backward()
    return out.detach(), {n: p.grad.detach() for n, p in model.named_parameters()}


def run_case(case, root):
    model, label = build(case["id"], case["numClasses"])
    sd = read_safetensors(f"{root}/{case['id']}.safetensors")
    io = read_safetensors(f"{root}/{case['id']}.io.safetensors")
    result = {"reference": label}
    missing, unexpected = model.load_state_dict(sd, strict=True), None  # raises on any mismatch
    del missing, unexpected
    result["params"] = sum(p.numel() for p in model.parameters())
    model = model.double()
    x = io["__input__"].double().permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    model.eval()
    with torch.no_grad():
        logits = model(x)
    result["logits_rel"] = rel(io["__logits__"], logits)
    # The two images must give different logits, or eval would not be checking the features.
    result["logits_spread"] = float((logits[0] - logits[1]).abs().max() / logits.abs().max())
    k = float(io["__big__"][0])
    with torch.no_grad():
        big = model(x * k)
        # PyTorch float32's own distance on these large inputs (StarNet's star products square them).
        model32, _ = build(case["id"], case["numClasses"])
        model32.load_state_dict(sd, strict=True)
        big32 = model32.eval()(x.float() * k)
    result["logits_big_rel"] = rel(io["__logits_big__"], big)
    result["logits_big_f32"] = rel(big32, big)
    # One training step: batch statistics, cross-entropy on fixed labels, no dropout. PyTorch runs
    # it in float64 (the truth) and, where xscore is further than 1e-3 from it, in float32 (the
    # yardstick of float32 rounding: with a batch of 2 at these sizes, some BatchNorms see few
    # samples and amplify rounding errors).
    labels = io["__labels__"].long()
    out, grads = train_step(model, x, labels)
    base = float(out.abs().max())
    result["train_logits_rel"] = rel(io["__train_logits__"], out)
    scale = max(float(g.abs().max()) for g in grads.values())
    # Per tensor, relative to the tensor's own size but never below 1e-3 of the largest gradient:
    # a bias followed by BatchNorm has a gradient that is 0 up to rounding.
    denom = {n: max(float(g.abs().max()), 1e-3 * scale) for n, g in grads.items()}
    dist = {}
    for n, g in grads.items():
        mine = io.get(f"grad.{n}")
        if mine is None:
            raise KeyError(f"xscore wrote no gradient for {n}")
        dist[n] = float((mine.double() - g).abs().max()) / denom[n]
    worst_name = max(dist, key=dist.get)
    worst = dist[worst_name]
    # The float32 yardstick, run only where needed: how far PyTorch's own float32 step is.
    result["train_logits_f32"], worst_ratio, ratio_name = None, worst / GRAD_FLOOR, worst_name
    result["grads_global_f32"] = None
    if worst > GRAD_RATIO * GRAD_FLOOR or result["train_logits_rel"] > 1e-4:
        model32, _ = build(case["id"], case["numClasses"])
        model32.load_state_dict(sd, strict=True)
        out32, grads32 = train_step(model32, x.float(), labels)
        result["train_logits_f32"] = float((out32.double() - out).abs().max()) / base
        worst_ratio = 0.0
        num32 = sum(float(((grads32[n].double() - g) ** 2).sum()) for n, g in grads.items())
        result["grads_global_f32"] = math.sqrt(num32 / sum(float((g**2).sum()) for g in grads.values()))
        for n, g in grads.items():
            d32 = float((grads32[n].double() - g).abs().max()) / denom[n]
            ratio = dist[n] / max(d32, GRAD_FLOOR)
            if VERBOSE:
                print(f"{case['id']} {n}: rel {dist[n]:.2e} f32 {d32:.2e} max|ref| {float(g.abs().max()):.2e}", file=sys.stderr)
            if ratio > worst_ratio:
                worst_ratio, ratio_name = ratio, n
    checked = len(dist)
    # All gradients as one vector: a wrong op's gradient moves many tensors; one BatchNorm over
    # few values amplifies rounding in a few small ones.
    num = sum(float(((io[f"grad.{n}"].double() - g) ** 2).sum()) for n, g in grads.items())
    den = sum(float((g**2).sum()) for g in grads.values())
    result["grads_global"] = math.sqrt(num / den)
    result["grads_rel"], result["grads_worst"], result["grads_checked"] = worst, worst_name, checked
    result["grads_ratio"], result["grads_ratio_worst"] = worst_ratio, ratio_name
    buffers = dict(model.named_buffers())
    bworst = 0.0
    for n, b in buffers.items():
        if n.endswith("running_mean") or n.endswith("running_var"):
            bworst = max(bworst, rel(io[f"after.{n}"], b))
    result["running_stats_rel"] = bworst
    return result


def main():
    root = sys.argv[1]
    cases = json.load(open(f"{root}/cases.json"))
    torch.manual_seed(0)
    results = {}
    for case in cases:
        start = time.time()
        try:
            results[case["id"]] = run_case(case, root)
            results[case["id"]]["seconds"] = round(time.time() - start, 1)
        except Exception as err:  # noqa: BLE001 - reported per model, asserted by the test
            results[case["id"]] = {"error": f"{type(err).__name__}: {err}"[:2000]}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
