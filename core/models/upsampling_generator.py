"""Lesson 12's checkerboard artefacts (and Lesson 7's pixel shuffle + ICNR): one small generator, five upsamplers."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

UPSAMPLERS = ("deconv3", "deconv4", "nearest", "shuffle", "shuffle_icnr")
SCALE = 2  # every stage doubles the height and the width


@torch.no_grad()
def icnr_(weight: torch.Tensor, scale: int = SCALE,
          init: Callable[[torch.Tensor], torch.Tensor] = nn.init.kaiming_normal_) -> torch.Tensor:
    """ICNR (Aitken et al. 2017), in place: the weight of the conv that feeds ``nn.PixelShuffle(scale)``.

    PixelShuffle sends conv channel ``c·r² + k`` to sub-pixel ``k`` of output channel ``c``. With a
    random kernel for each of the r² channels, neighbouring sub-pixels come from unrelated kernels:
    a checkerboard before any training. Drawing one kernel per output channel and copying it to its
    r² channels makes every sub-pixel equal, so at initialisation the layer is exactly a conv followed
    by nearest-neighbour upsampling, which has no checkerboard; training is free to move them apart.
    """
    out_channels, *rest = weight.shape
    subpixels = scale ** 2
    if out_channels % subpixels:
        raise ValueError(f"ICNR needs a multiple of {subpixels} output channels, not {out_channels}")
    kernel = init(torch.empty(out_channels // subpixels, *rest, dtype=weight.dtype, device=weight.device))
    return weight.copy_(kernel.repeat_interleave(subpixels, dim=0))


def pixel_shuffle_upsampler(in_channels: int, out_channels: int, icnr: bool) -> nn.Sequential:
    """Sub-pixel convolution: a conv to r² times the channels, rearranged by PixelShuffle into an r× larger map."""
    conv = nn.Conv2d(in_channels, out_channels * SCALE ** 2, 3, padding=1)
    if icnr:
        icnr_(conv.weight)
        nn.init.zeros_(conv.bias)  # torch's random bias differs per channel, so per sub-pixel: a checkerboard too
    return nn.Sequential(conv, nn.PixelShuffle(SCALE))


def upsampler_layer(upsampler: str, in_channels: int, out_channels: int) -> nn.Module:
    """One ×2 stage of the given kind."""
    if upsampler == "deconv3":  # kernel 3 over stride 2: output cells get 1, 2 or 4 contributions
        return nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
    if upsampler == "deconv4":  # DCGAN's layer: kernel 4 is divisible by stride 2, every cell gets 4
        return nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)
    if upsampler in ("nearest", "bilinear"):  # bilinear: the restoration lab's U-Net offers it too
        return nn.Sequential(nn.Upsample(scale_factor=SCALE, mode=upsampler),
                             nn.Conv2d(in_channels, out_channels, 3, padding=1))
    if upsampler in ("shuffle", "shuffle_icnr"):
        return pixel_shuffle_upsampler(in_channels, out_channels, icnr=upsampler == "shuffle_icnr")
    raise ValueError(f"Unknown upsampler {upsampler!r}; choose one of {', '.join(UPSAMPLERS)}.")


def upsampling_generator(upsampler: str = "deconv3", width: int = 32, stages: int = 2,
                         in_channels: int = 1, out_channels: int = 1) -> nn.Sequential:
    """A stem conv, then ``stages`` ×2 upsampling stages; the last one makes the output, with no smoothing
    conv or activation after it, so that whatever pattern the upsampler leaves is what one sees."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU()]
    for stage in range(stages):
        last = stage == stages - 1
        layers.append(upsampler_layer(upsampler, width, out_channels if last else width))
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
