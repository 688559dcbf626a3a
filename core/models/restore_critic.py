"""Lesson 7's critic (fastai's ``gan_critic``): stride-2 convolutions with spectral normalisation and LeakyReLU
0.2, a residual block, dropout, no BatchNorm, ending in one logit per patch of the picture (a patch is "real" or
"restored")."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

LESSON_WIDTH, LESSON_BLOCKS, LESSON_DROPOUT = 128, 3, 0.15
FINAL_KERNEL = 4


def spectral_conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1, activation: bool = True,
                  padding: int | None = None) -> nn.Sequential:
    conv = spectral_norm(nn.Conv2d(in_channels, out_channels, kernel, stride,
                                   kernel // 2 if padding is None else padding, bias=activation))
    return nn.Sequential(conv, nn.LeakyReLU(0.2, inplace=True)) if activation else nn.Sequential(conv)


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.convs = nn.Sequential(spectral_conv(channels, channels, 3), spectral_conv(channels, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.convs(x)


def blocks_for(size: int, most: int = LESSON_BLOCKS) -> int:
    """Stride-2 blocks that leave at least the final kernel's 4×4 (a 32-px crop has room for two)."""
    blocks = most
    while blocks > 1 and size // 2 ** (blocks + 1) < FINAL_KERNEL:
        blocks -= 1
    return blocks


def gan_critic(width: int = LESSON_WIDTH, blocks: int = LESSON_BLOCKS, dropout: float = LESSON_DROPOUT,
               channels: int = 3) -> nn.Sequential:
    """Lesson 7's ``gan_critic(nf=128, n_blocks=3, p=0.15)`` (fastai v1), without its self-attention layer."""
    layers: list[nn.Module] = [spectral_conv(channels, width, 4, 2, padding=1), nn.Dropout2d(dropout / 2),
                               ResBlock(width)]
    for _ in range(blocks):
        layers += [nn.Dropout2d(dropout), spectral_conv(width, width * 2, 4, 2, padding=1)]
        width *= 2
    layers += [spectral_conv(width, 1, FINAL_KERNEL, activation=False, padding=0), nn.Flatten()]
    return nn.Sequential(*layers)
