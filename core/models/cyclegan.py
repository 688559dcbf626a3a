"""The CycleGAN of Lesson 12 (Zhu et al. 2017, as in the lesson's cyclegan notebook): a ResNet generator that
translates a picture of one domain into the other, and the 70×70 PatchGAN discriminator that scores each patch.

Both use InstanceNorm (a picture's own statistics, not the batch's: the lesson trains with batches of one) and
reflection padding, which keeps the borders free of the dark frame zero padding leaves in generated pictures.
"""
from __future__ import annotations

import torch
from torch import nn

DOWNSAMPLINGS = 2  # the generator halves the picture twice, so its sides must be multiples of 2**2
SMALLEST_SIDE = 8  # at 4 px the residual blocks' 1-pixel reflection pad would need a 1×1 picture to reflect
MAX_MULTIPLIER = 8  # the PatchGAN stops doubling its width at 8×


def init_weights_(model: nn.Module, std: float = 0.02) -> nn.Module:
    """The CycleGAN code's initialisation (inherited from DCGAN): every conv weight drawn from N(0, 0.02)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def conv_norm_relu(ni: int, no: int, kernel: int, stride: int = 1, padding: int = 0) -> list[nn.Module]:
    return [nn.Conv2d(ni, no, kernel, stride, padding), nn.InstanceNorm2d(no), nn.ReLU(inplace=True)]


class ResidualBlock(nn.Module):
    """Lesson 12's ``ResnetBlock``: two reflection-padded 3×3 convs with InstanceNorm, added to the input."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), *conv_norm_relu(width, width, 3),
                                  nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Out of place on purpose: the lesson's ``x.add_(self.body(x))`` overwrites the input that autograd saved
        # for the backward pass, which modern torch refuses ("modified by an inplace operation").
        return x + self.body(x)


class ResnetGenerator(nn.Sequential):
    """The layers in order, plus a check that the picture survives two halvings and two doublings intact."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = 2 ** DOWNSAMPLINGS
        if height % multiple or width % multiple or min(height, width) < SMALLEST_SIDE:
            raise ValueError(f"The CycleGAN generator needs pictures whose sides are multiples of {multiple} and at "
                             f"least {SMALLEST_SIDE} px, such as 32, 64 or 256 (got {height}×{width}).")
        return super().forward(x)


def resnet_generator(channels: int = 3, width: int = 64, n_blocks: int = 9) -> ResnetGenerator:
    """Lesson 12's CycleGAN generator: 7×7 stem, two stride-2 downsamplings, ``n_blocks`` residual blocks, two
    stride-2 transposed convs back up, 7×7 conv to ``channels`` and tanh; output size = input size."""
    layers = [nn.ReflectionPad2d(3), *conv_norm_relu(channels, width, 7)]
    for i in range(DOWNSAMPLINGS):
        layers += conv_norm_relu(width * 2**i, width * 2**(i + 1), 3, stride=2, padding=1)
    layers += [ResidualBlock(width * 2**DOWNSAMPLINGS) for _ in range(n_blocks)]
    for i in reversed(range(DOWNSAMPLINGS)):
        layers += [nn.ConvTranspose2d(width * 2**(i + 1), width * 2**i, 3, stride=2, padding=1, output_padding=1),
                   nn.InstanceNorm2d(width * 2**i), nn.ReLU(inplace=True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7), nn.Tanh()]
    return init_weights_(ResnetGenerator(*layers))


def patch_discriminator(channels: int = 3, width: int = 64, n_layers: int = 3) -> nn.Sequential:
    """Lesson 12's 70×70 PatchGAN: k4 convs down to a grid of realness scores, one per overlapping patch, with no
    sigmoid (the LSGAN loss compares raw scores with 1 and 0). "70×70" because with ``n_layers=3`` each output cell
    sees a 70×70 px patch of the input (see ``receptive_field``)."""
    layers = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
    multiplier = 1
    for n in range(1, n_layers + 1):
        previous, multiplier = multiplier, min(2**n, MAX_MULTIPLIER)
        stride = 2 if n < n_layers else 1  # the last of these keeps the size: more depth, not coarser patches
        layers += [nn.Conv2d(width * previous, width * multiplier, 4, stride, 1), nn.InstanceNorm2d(width * multiplier),
                   nn.LeakyReLU(0.2, inplace=True)]
    layers += [nn.Conv2d(width * multiplier, 1, 4, 1, 1)]
    return init_weights_(nn.Sequential(*layers))


def receptive_field(n_layers: int = 3) -> int:
    """How many input pixels wide the patch is that one PatchGAN output cell sees: 70 for ``n_layers=3``."""
    strides = [2] * n_layers + [1, 1]  # every conv is k4: n_layers of stride 2, then two of stride 1
    field = 1
    for stride in reversed(strides):
        field = (field - 1) * stride + 4
    return field
