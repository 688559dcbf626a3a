"""Lesson 7's U-Net (fastai's DynamicUnet, written out): an ImageNet encoder whose activations at 1/2 … 1/32 of
the input are kept, and a decoder that upsamples back, concatenating at each size the encoder's activations of
that size (the skip connections), then the input itself, before a 1×1 conv to the three colours."""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models import ResNet34_Weights

from core.models.upsampling_generator import upsampler_layer
from core.vision import backbone as backbones

ENCODERS = ("resnet34", "mobilenet_v2", "random")  # random: MobileNetV2 untrained, an experiment
# The lesson's four ways up, as core.models.upsampling_generator names them (shared with the checkerboard lab).
UPSAMPLERS = {"pixel_shuffle": "shuffle_icnr", "transposed": "deconv4", "nearest": "nearest", "bilinear": "bilinear"}
DOWNSAMPLING = 32  # five halvings: other sizes are padded up to a multiple of this and the output cut back


def conv_layer(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class UnetBlock(nn.Module):
    """Upsample the deeper map ×2, concatenate the encoder's (batch-normed) map of that size, two convs."""

    def __init__(self, up_channels: int, skip_channels: int, upsample: str):
        super().__init__()
        self.up = upsampler_layer(UPSAMPLERS[upsample], up_channels, up_channels // 2)
        self.skip_norm = nn.BatchNorm2d(skip_channels)
        self.out_channels = up_channels // 2 + skip_channels
        self.convs = nn.Sequential(conv_layer(self.out_channels, self.out_channels),
                                   conv_layer(self.out_channels, self.out_channels))

    def forward(self, deeper: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([F.relu(self.up(deeper)), self.skip_norm(skip)], dim=1))


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.convs = nn.Sequential(conv_layer(channels, channels), conv_layer(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.convs(x)


class Unet(nn.Module):
    """Pictures in [0, 1] in, pictures in [0, 1] of the same size out (a sigmoid keeps the range, as fastai's
    ``y_range``). ``encoder`` is five stages, each halving the size.

    One change from the lesson: the head's output is added to the input's logit, and the head's last conv
    starts at zero, so that the untrained U-Net returns its input unchanged. From a random start, a CPU spends
    hundreds of steps only learning to copy its input; this way stage 1 starts where bicubic upsampling is."""

    def __init__(self, encoder: nn.ModuleList, encoder_channels: list[int], upsample: str = "pixel_shuffle"):
        super().__init__()
        self.encoder, self.encoder_frozen = encoder, False
        deepest = encoder_channels[-1]
        self.middle = nn.Sequential(conv_layer(deepest, deepest * 2), conv_layer(deepest * 2, deepest))
        self.blocks, channels = nn.ModuleList(), deepest
        for skip_channels in reversed(encoder_channels[:-1]):
            self.blocks.append(UnetBlock(channels, skip_channels, upsample))
            channels = self.blocks[-1].out_channels
        self.last_up = upsampler_layer(UPSAMPLERS[upsample], channels, channels // 2)
        self.head = nn.Sequential(ResBlock(channels // 2 + 3), nn.Conv2d(channels // 2 + 3, 3, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def freeze_encoder(self, frozen: bool = True) -> "Unet":
        """A frozen encoder keeps its ImageNet weights and BatchNorm statistics (the lesson's first stage)."""
        self.encoder_frozen = frozen
        self.encoder.requires_grad_(not frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> "Unet":
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
        return self

    def forward(self, pictures: torch.Tensor) -> torch.Tensor:
        height, width = pictures.shape[-2:]
        padded = F.pad(pictures, (0, -width % DOWNSAMPLING, 0, -height % DOWNSAMPLING), mode="replicate")
        x, skips = backbones.normalise(padded), []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = self.middle(skips.pop())
        for block, skip in zip(self.blocks, reversed(skips)):
            x = block(x, skip)
        x = torch.cat([F.relu(self.last_up(x)), padded], dim=1)
        return torch.sigmoid(torch.logit(padded, eps=1e-3) + self.head(x))[..., :height, :width]


def available_encoders() -> tuple[str, ...]:
    """Best first: the lesson's ResNet-34 when its ImageNet weights are cached, MobileNetV2 when its weights are
    on this machine (core.vision.backbone), the untrained MobileNetV2 always."""
    names = ["resnet34"] if backbones.is_cached("resnet34") else []
    return (*names, *(["mobilenet_v2"] if "mobilenet_v2" in backbones.available() else []), "random")


def encoder_stages(name: str, pretrained: bool = True) -> tuple[nn.ModuleList, list[int]]:
    """The encoder cut into its five stages (outputs at 1/2, 1/4, 1/8, 1/16, 1/32) and their channels; without
    ``pretrained``, randomly initialised (for a stored U-Net, whose weights replace them)."""
    if name == "resnet34":
        net = torchvision.models.resnet34(weights=ResNet34_Weights.IMAGENET1K_V1 if pretrained else None)
        stages = [nn.Sequential(net.conv1, net.bn1, net.relu), nn.Sequential(net.maxpool, net.layer1),
                  net.layer2, net.layer3, net.layer4]
        return nn.ModuleList(stages), [64, 64, 128, 256, 512]
    if name == "random" or not pretrained:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            features = torchvision.models.mobilenet_v2().features
    else:
        features = backbones.imagenet_mobilenet_v2().features
    ends = backbones.BLOCK_ENDS["mobilenet_v2"]
    starts = (0, *(end + 1 for end in ends[:-1]))
    stages = [features[start:end + 1] for start, end in zip(starts, ends)]
    return nn.ModuleList(stages), [stage[-1].out_channels for stage in stages]


def unet(encoder: str = "resnet34", upsample: str = "pixel_shuffle", frozen: bool = True,
         pretrained: bool = True) -> Unet:
    """Lesson 7's ``unet_learner(data, models.resnet34)``: pretrained encoder, frozen at first, pixel shuffle + ICNR."""
    if encoder not in ENCODERS or upsample not in UPSAMPLERS:
        raise ValueError(f"Unknown encoder {encoder!r} or upsampling {upsample!r}")
    stages, channels = encoder_stages(encoder, pretrained)
    return Unet(stages, channels, upsample).freeze_encoder(frozen)
