"""The CNNs built from scratch for MNIST in Part 1 Lesson 7 (2019).

Each is five stride-2 3x3 convolutions, 28 -> 14 -> 7 -> 4 -> 2 -> 1, whose last one has
10 channels, one per digit, then a flatten: there is no linear layer at all.
"""
from __future__ import annotations

import torch
from torch import nn

LESSON_CHANNELS = (1, 8, 16, 32, 16, 10)


def conv(ni: int, nf: int, stride: int = 2) -> nn.Conv2d:
    """The lesson's ``conv``: 3x3, padding 1, with a bias."""
    return nn.Conv2d(ni, nf, kernel_size=3, stride=stride, padding=1)


def conv_layer(ni: int, nf: int, stride: int = 2) -> nn.Sequential:
    """fastai's ``conv_layer``: conv (no bias, BN follows) + ReLU + BatchNorm."""
    return nn.Sequential(
        nn.Conv2d(ni, nf, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(nf),
    )


class ResBlock(nn.Module):
    """x + f(x), f being two stride-1 conv_layers: the block is free to learn 'do nothing'."""

    def __init__(self, nf: int):
        super().__init__()
        self.body = nn.Sequential(conv_layer(nf, nf, stride=1), conv_layer(nf, nf, stride=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)  # out of place: an in-place add would break autograd


class DenseBlock(nn.Module):
    """cat([x, f(x)]): DenseNet keeps the input beside the output, doubling the channels."""

    def __init__(self, nf: int):
        super().__init__()
        self.body = nn.Sequential(conv_layer(nf, nf, stride=1), conv_layer(nf, nf, stride=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


def basic_cnn(channels: tuple[int, ...] = LESSON_CHANNELS) -> nn.Sequential:
    """Lesson 7's basic CNN: conv + BatchNorm (+ ReLU, except after the last), 12,126 parameters."""
    layers: list[nn.Module] = []
    pairs = list(zip(channels[:-1], channels[1:]))
    for i, (ni, nf) in enumerate(pairs):
        layers += [conv(ni, nf), nn.BatchNorm2d(nf)]
        if i < len(pairs) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers, nn.Flatten())


def conv_layer_cnn(channels: tuple[int, ...] = LESSON_CHANNELS) -> nn.Sequential:
    """Lesson 7's refactor: the same net written with ``conv_layer`` (99.1% after 10 epochs)."""
    pairs = zip(channels[:-1], channels[1:])
    return nn.Sequential(*(conv_layer(ni, nf) for ni, nf in pairs), nn.Flatten())


def resnet_cnn(channels: tuple[int, ...] = LESSON_CHANNELS) -> nn.Sequential:
    """Lesson 7's ResNet-ish MNIST net: a ResBlock after each stride-2 conv_layer (99.54%)."""
    pairs = list(zip(channels[:-1], channels[1:]))
    layers: list[nn.Module] = []
    for ni, nf in pairs[:-1]:
        layers += [conv_layer(ni, nf), ResBlock(nf)]
    ni, nf = pairs[-1]
    return nn.Sequential(*layers, conv_layer(ni, nf), nn.Flatten())


def densenet_cnn(channels: tuple[int, ...] = LESSON_CHANNELS) -> nn.Sequential:
    """Lesson 7's DenseNet variant: like the ResNet one, but each block concatenates."""
    widths = list(channels)
    layers: list[nn.Module] = []
    ni = widths[0]
    for nf in widths[1:-1]:
        layers += [conv_layer(ni, nf), DenseBlock(nf)]
        ni = 2 * nf  # the dense block hands on its input and its output side by side
    return nn.Sequential(*layers, conv_layer(ni, widths[-1]), nn.Flatten())
