"""The DCGAN of Lesson 12 (Radford et al. 2015, as in the lesson's wgan notebook): a generator of stride-2
transposed convs from a noise vector, and a discriminator (the WGAN's critic) of stride-2 convs.

Both keep the lesson's sizes (``isize`` must be a multiple of 16, so MNIST's 28 px digits are padded to 32) and
its layers, in the order of Radford et al. and of the WGAN code the lesson's notebook came from: conv →
BatchNorm → activation. The notebook's own blocks put BatchNorm after the activation; on MNIST that leaves the
discriminator winning outright for hundreds of steps (measured here: noise at step 300 of the demo, where this
order already draws digit shapes).
"""
from __future__ import annotations

import torch
from torch import nn

KERNEL, STRIDE, PADDING = 4, 2, 1  # every size-changing layer: k4 s2 p1 doubles (or halves) the picture
SMALLEST = 4  # the generator starts from 4×4; the discriminator stops at 4×4


def check_isize(isize: int) -> None:
    if isize < 16 or isize % 16:
        raise ValueError(f"isize must be a multiple of 16, such as 32 or 64 (got {isize}).")


def conv_block(ni: int, no: int, kernel: int, stride: int, padding: int, bn: bool = True) -> nn.Sequential:
    """The lesson's ``ConvBlock``: conv without bias (BatchNorm has one), BatchNorm, LeakyReLU 0.2."""
    layers = [nn.Conv2d(ni, no, kernel, stride, padding, bias=False)] + ([nn.BatchNorm2d(no)] if bn else [])
    return nn.Sequential(*layers, nn.LeakyReLU(0.2, inplace=True))


def deconv_block(ni: int, no: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    """The lesson's ``DeconvBlock``: transposed conv without bias, BatchNorm, ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(ni, no, kernel, stride, padding, bias=False), nn.BatchNorm2d(no),
                         nn.ReLU(inplace=True))


class DCGAN_D(nn.Module):
    """Lesson 12's DCGAN discriminator / WGAN critic: isize → isize/2 → … → 4 → one score per picture."""

    def __init__(self, isize: int = 64, nc: int = 3, ndf: int = 64, n_extra_layers: int = 0):
        super().__init__()
        check_isize(isize)
        self.initial = conv_block(nc, ndf, KERNEL, STRIDE, PADDING, bn=False)
        size, channels = isize // 2, ndf
        self.extra = nn.Sequential(*[conv_block(channels, channels, 3, 1, 1) for _ in range(n_extra_layers)])
        pyramid = []
        while size > SMALLEST:
            pyramid.append(conv_block(channels, channels * 2, KERNEL, STRIDE, PADDING))
            channels, size = channels * 2, size // 2
        self.pyramid = nn.Sequential(*pyramid)
        self.final = nn.Conv2d(channels, 1, SMALLEST, padding=0, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """One raw score per picture, (B,). The lesson's critic returned the batch's mean; keeping each
        picture's score lets the same network be DCGAN's discriminator (a logit) and WGAN's critic."""
        return self.final(self.pyramid(self.extra(self.initial(images)))).flatten()


class DCGAN_G(nn.Module):
    """Lesson 12's DCGAN generator: nz noise → 4×4 → … → isize, channels halving at each doubling, tanh out."""

    def __init__(self, isize: int = 64, nz: int = 100, nc: int = 3, ngf: int = 64, n_extra_layers: int = 0):
        super().__init__()
        check_isize(isize)
        channels, size = ngf // 2, SMALLEST
        while size != isize:  # as many doublings as the discriminator has halvings
            channels, size = channels * 2, size * 2
        layers = [deconv_block(nz, channels, SMALLEST, 1, 0)]  # 1×1 → 4×4
        size = SMALLEST
        while size < isize // 2:
            layers.append(deconv_block(channels, channels // 2, KERNEL, STRIDE, PADDING))
            channels, size = channels // 2, size * 2
        layers += [deconv_block(channels, channels, 3, 1, 1) for _ in range(n_extra_layers)]
        layers.append(nn.ConvTranspose2d(channels, nc, KERNEL, STRIDE, PADDING, bias=False))
        self.features = nn.Sequential(*layers)
        self.nz = nz

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        """(B, nz) or (B, nz, 1, 1) noise → (B, nc, isize, isize) pictures in [-1, 1]."""
        return torch.tanh(self.features(noise.view(len(noise), -1, 1, 1)))
