"""Lesson 12's Darknet for CIFAR-10 (the fast.ai DAWNBench model).

Layer order as in the lesson's notebook: a 3x3 stem, then for each group a conv that doubles
the channels (stride 2, except the second group's stride 1) followed by ``num_blocks``
residual layers (1x1 down to half the channels, 3x3 back); adaptive pooling and a linear head.

One change from the lesson: each residual branch's last BatchNorm starts at zero, so every
residual layer starts as the identity (torchvision's ``zero_init_residual``; Goyal et al. 2017,
fastai v1's BatchZero). The lesson's PyTorch 0.3 drew BatchNorm weights from U(0, 1); today's
start them at 1, and then the 16 residual branches of the lecture model add up so that the
lesson's recipe diverges within its first steps (measured on an H100: loss 2.75 -> 10.6 -> 27
at lr 0.065, in float32 and bfloat16 alike, two seeds). ``zero_init_residual=False`` shows it.
"""
from __future__ import annotations

import torch
from torch import nn

LECTURE_BLOCKS = (1, 2, 4, 6, 3)


LECTURE_BN_MOMENTUM = 0.01


def conv_layer(ni: int, nf: int, ks: int = 3, stride: int = 1, bn_momentum: float = LECTURE_BN_MOMENTUM) -> nn.Sequential:
    """Conv without bias (BatchNorm follows) + BatchNorm (momentum 0.01 in the lesson) + LeakyReLU 0.1."""
    return nn.Sequential(
        nn.Conv2d(ni, nf, kernel_size=ks, stride=stride, padding=ks // 2, bias=False),
        nn.BatchNorm2d(nf, momentum=bn_momentum),
        nn.LeakyReLU(negative_slope=0.1, inplace=True),
    )


class ResLayer(nn.Module):
    """x + conv3x3(conv1x1(x)), the 1x1 halving the channels."""

    def __init__(self, ni: int, bn_momentum: float = LECTURE_BN_MOMENTUM, zero_init: bool = True):
        super().__init__()
        self.conv1 = conv_layer(ni, ni // 2, ks=1, bn_momentum=bn_momentum)
        self.conv2 = conv_layer(ni // 2, ni, ks=3, bn_momentum=bn_momentum)
        if zero_init:
            nn.init.zeros_(self.conv2[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))  # the lesson's x.add_() breaks autograd in modern torch


def group_layer(ni: int, num_blocks: int, stride: int, bn_momentum: float, zero_init: bool) -> list[nn.Module]:
    return [conv_layer(ni, ni * 2, stride=stride, bn_momentum=bn_momentum)] + [
        ResLayer(ni * 2, bn_momentum, zero_init) for _ in range(num_blocks)]


class Darknet(nn.Module):
    """Lesson 12's Darknet; the lecture configuration is ``Darknet([1, 2, 4, 6, 3], num_classes=10, nf=32)``."""

    def __init__(self, num_blocks=LECTURE_BLOCKS, num_classes: int = 10, nf: int = 32,
                 bn_momentum: float = LECTURE_BN_MOMENTUM, zero_init_residual: bool = True):
        super().__init__()
        layers: list[nn.Module] = [conv_layer(3, nf, ks=3, stride=1, bn_momentum=bn_momentum)]
        for i, blocks in enumerate(num_blocks):
            layers += group_layer(nf, blocks, stride=2 - (i == 1), bn_momentum=bn_momentum, zero_init=zero_init_residual)
            nf *= 2
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(nf, num_classes)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def darknet(num_blocks=LECTURE_BLOCKS, num_classes: int = 10, nf: int = 32,
            bn_momentum: float = LECTURE_BN_MOMENTUM, zero_init_residual: bool = True) -> Darknet:
    """Lesson 12's Darknet, built from its knobs (the lecture's by default)."""
    return Darknet(list(num_blocks), num_classes, nf, bn_momentum, zero_init_residual)
