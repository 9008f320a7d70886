"""MobileNetV2 in plain torch, with torchvision's state-dict keys (torchvision is not needed).

Architecture of Sandler et al. 2018 exactly as ``torchvision.models.mobilenet_v2`` builds it
(width 1.0, round to 8), so the official ``mobilenet_v2-b0353104.pth`` checkpoint loads with
``strict=True``. Export-time only: imports torch.
"""

from __future__ import annotations

import torch
from torch import nn

# t (expansion), c (channels), n (repeats), s (stride)
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU(nn.Sequential):
    """Conv2d -> BatchNorm2d -> ReLU6 (torchvision's ``Conv2dNormActivation``)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion, 3x3 depthwise, 1x1 projection (+ residual)."""
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The module applied to ``x``."""
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (1000 ImageNet classes); ``features`` holds the 19 blocks."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        cin = _make_divisible(32)
        last = _make_divisible(1280)
        blocks: list[nn.Module] = [ConvBNReLU(3, cin, stride=2)]
        for t, c, n, s in SETTINGS:
            cout = _make_divisible(c)
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        blocks.append(ConvBNReLU(cin, last, kernel=1))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The module applied to ``x``."""
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


class MobileNetV2Layers(nn.Module):
    """Wrapper whose outputs are every feature block, global-average-pooled, then the logits."""

    def __init__(self, net: MobileNetV2) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every block's global-average-pooled output, then the logits."""
        outs = []
        for block in self.net.features:
            x = block(x)
            outs.append(x.mean(dim=(2, 3)))
        outs.append(self.net.classifier(outs[-1]))
        return tuple(outs)


def layer_names() -> list[str]:
    """Layer names: ``features.00`` .. ``features.18``, ``classifier``."""
    return [f"features.{i:02d}" for i in range(19)] + ["classifier"]
