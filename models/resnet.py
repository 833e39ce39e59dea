"""ResNet-18 for 32x32 images (CIFAR-10): the resnet-cifar10 scenario.

He, Zhang, Ren & Sun (2016), "Deep residual learning for image recognition": a block computes
``relu(F(x) + shortcut(x))``, so the gradient reaching a block's input is the gradient at its output
plus what flows through ``F``; the identity path cannot vanish however deep the net. The layout is the
seed's (and torchvision's ``resnet.py`` with a CIFAR stem): a 3x3 stride-1 stem conv without max pool,
four stages of two BasicBlocks with 64-128-256-512 channels (scaled by ``config.width``), global
average pooling and a linear head.

The remedies are switches:

* ``batchnorm=False`` replaces every BatchNorm2d (Ioffe & Szegedy 2015) with ``nn.Identity`` and gives
  the convolutions a bias instead.
* ``skip=False`` removes the residual addition in every block, projection shortcut included: the net
  becomes the paper's "plain" 18-layer baseline.
* ``init``: default (PyTorch's), xavier, he (``kaiming_normal_``, fan_out, as torchvision) or poor
  (see ``POOR_STD``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vgp_tui.data.specs import Task

from .configs import ResNetConfig
from .init import INIT_SCHEMES, ProbeDefaults, check_choice, init_weight, parameters_of

STAGE_CHANNELS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = (2, 2, 2, 2)

POOR_STD = 0.01
"""The ``poor`` init draws every conv and linear weight from ``N(0, 0.01**2)``, biases 0.

This is the historical fixed-scale init (Krizhevsky et al. 2012), which Simonyan & Zisserman (2015)
could not train deep VGG nets from and which He et al. (2015, "Delving deep into rectifiers", Sec. 2.2)
replaced. A 3x3 conv with ``C`` input channels then scales its signal by about
``0.01 * sqrt(9 C / 2)``, 0.06 to 0.24 at quarter width, so without batch norm and skips the signal
and the gradient shrink by many orders of magnitude across the 17 convolutions. Batch norm rescales
the signal and skip connections bypass the shrinking convolutions, which is what the remedies show.
"""


def conv3x3(c_in: int, c_out: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution with padding 1 (spatial size kept, or halved by ``stride`` 2)."""
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=bias)


def conv1x1(c_in: int, c_out: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """1x1 convolution: the projection shortcut that matches channels and stride."""
    return nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=bias)


def norm2d(channels: int, batchnorm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()


class BasicBlock(nn.Module):
    """Two 3x3 convs; ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` when ``skip``."""

    def __init__(self, c_in: int, c_out: int, stride: int, batchnorm: bool, skip: bool) -> None:
        super().__init__()
        bias = not batchnorm  # batch norm's shift makes a conv bias redundant; without it, keep one
        self.conv1 = conv3x3(c_in, c_out, stride, bias)
        self.bn1 = norm2d(c_out, batchnorm)
        self.conv2 = conv3x3(c_out, c_out, 1, bias)
        self.bn2 = norm2d(c_out, batchnorm)
        self.skip = skip
        self.shortcut: nn.Sequential | None = None
        if skip and (stride != 1 or c_in != c_out):
            self.shortcut = nn.Sequential(conv1x1(c_in, c_out, stride, bias), norm2d(c_out, batchnorm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C_in, H, W)
        out = F.relu(self.bn1(self.conv1(x)))  # (B, C_out, H / stride, W / stride)
        out = self.bn2(self.conv2(out))
        if self.skip:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(out)

    def layer_groups(self, prefix: str) -> list[tuple[str, list[nn.Parameter]]]:
        """Each conv with its batch norm, then the projection shortcut (it spans the whole block)."""
        groups = [
            (f"{prefix}.conv1", parameters_of(self.conv1, self.bn1)),
            (f"{prefix}.conv2", parameters_of(self.conv2, self.bn2)),
        ]
        if self.shortcut is not None:
            groups.append((f"{prefix}.shortcut", parameters_of(self.shortcut)))
        return groups


class ResNet18(ProbeDefaults, nn.Module):
    """The seed's CIFAR ResNet-18 with batch norm, skip and init switches."""

    def __init__(
        self,
        config: ResNetConfig,
        task: Task,
        init: str = "default",
        batchnorm: bool = True,
        skip: bool = True,
    ) -> None:
        super().__init__()
        self.init = check_choice("init", init, INIT_SCHEMES)
        in_channels = task.input_shape[0]
        widths = [max(4, round(c * config.width)) for c in STAGE_CHANNELS]
        self.conv1 = conv3x3(in_channels, widths[0], 1, bias=not batchnorm)  # CIFAR stem: no max pool
        self.bn1 = norm2d(widths[0], batchnorm)
        stages = []
        c_in = widths[0]
        for i, (c_out, blocks) in enumerate(zip(widths, BLOCKS_PER_STAGE)):
            stride = 1 if i == 0 else 2
            stage = []
            for b in range(blocks):
                stage.append(BasicBlock(c_in, c_out, stride if b == 0 else 1, batchnorm, skip))
                c_in = c_out
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], task.classes)
        self._init_weights(init)

    def _init_weights(self, scheme: str) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # fan_out for convs as torchvision: keeps the back-propagated variance constant.
                init_weight(m.weight, m.bias, scheme, poor_std=POOR_STD, he_mode="fan_out")
            elif isinstance(m, nn.Linear) and scheme != "he":
                # Under "he" the head keeps PyTorch's default, as in torchvision.
                init_weight(m.weight, m.bias, scheme, poor_std=POOR_STD)
            # BatchNorm2d keeps weight 1, bias 0 under every scheme.

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, 32, 32)
        x = F.relu(self.bn1(self.conv1(x)))  # (B, c1, 32, 32)
        x = self.layer1(x)  # (B, c1, 32, 32)
        x = self.layer2(x)  # (B, c2, 16, 16)
        x = self.layer3(x)  # (B, c3, 8, 8)
        x = self.layer4(x)  # (B, c4, 4, 4)
        x = torch.flatten(self.avgpool(x), 1)  # (B, c4)
        return self.fc(x)  # (B, classes)

    def layer_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        groups = [("stem", parameters_of(self.conv1, self.bn1))]
        for name in ("layer1", "layer2", "layer3", "layer4"):
            for i, block in enumerate(getattr(self, name)):
                groups += block.layer_groups(f"{name}.{i}")
        return groups + [("fc", parameters_of(self.fc))]
