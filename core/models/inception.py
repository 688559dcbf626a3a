"""Lesson 13's Inception pieces (Inception-v4 / Inception-ResNet-v2, Szegedy et al. 2016), for
comparing with Darknet: 1x1 convs that cut channels, and a 7x7 factored into 1x7 then 7x1
(14 weights per channel pair instead of 49)."""
from __future__ import annotations

import torch
from torch import nn


def basic_conv(ni: int, nf: int, kernel_size, stride: int = 1, padding=0) -> nn.Sequential:
    """Conv without bias + BatchNorm + ReLU, the unit every Inception branch is made of."""
    return nn.Sequential(nn.Conv2d(ni, nf, kernel_size, stride=stride, padding=padding, bias=False),
                         nn.BatchNorm2d(nf), nn.ReLU(inplace=True))


class Concat(nn.Module):
    """Runs branches side by side and concatenates their channels."""

    def __init__(self, *branches: nn.Module):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def inception_stem() -> nn.Sequential:
    """Lesson 13's Inception stem: 3x299x299 in, 384x35x35 out, through three concatenations."""
    return nn.Sequential(
        basic_conv(3, 32, 3, stride=2), basic_conv(32, 32, 3), basic_conv(32, 64, 3, padding=1),
        Concat(nn.MaxPool2d(3, stride=2), basic_conv(64, 96, 3, stride=2)),
        Concat(nn.Sequential(basic_conv(160, 64, 1), basic_conv(64, 96, 3)),
               nn.Sequential(basic_conv(160, 64, 1), basic_conv(64, 64, (1, 7), padding=(0, 3)),
                             basic_conv(64, 64, (7, 1), padding=(3, 0)), basic_conv(64, 96, 3))),
        Concat(basic_conv(192, 192, 3, stride=2), nn.MaxPool2d(3, stride=2)),
    )


class InceptionResNetB(nn.Module):
    """Lesson 13's Inception-ResNet-B block: a 1x1 branch beside a 1x1 -> 1x7 -> 7x1 branch,
    joined by a 1x1 back to the input's width, scaled and added to the input."""

    def __init__(self, channels: int = 1088, scale: float = 0.1):
        super().__init__()
        self.branches = Concat(basic_conv(channels, 192, 1),
                               nn.Sequential(basic_conv(channels, 128, 1), basic_conv(128, 160, (1, 7), padding=(0, 3)),
                                             basic_conv(160, 192, (7, 1), padding=(3, 0))))
        self.project = nn.Conv2d(384, channels, 1)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.scale * self.project(self.branches(x)))  # scaled: keeps very deep stacks stable
