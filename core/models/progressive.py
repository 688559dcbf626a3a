"""Progressive growing's fade-in (Karras et al. 2017, mentioned in Lesson 12): a small generator caught in the
middle of growing from 16×16 to 32×32, where a new layer is blended in while the old output is phased out."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LOW, HIGH = 16, 32


class ProgressiveGenerator(nn.Module):
    """A small progressive GAN generator (Lesson 12's aside): noise → 4×4 → 8 → 16, with an output ("to RGB")
    at 16 px, and the 32 px block being faded in with its own output."""

    def __init__(self, nz: int = 64, width: int = 32, channels: int = 1):
        super().__init__()
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, width, 4), nn.LeakyReLU(0.2)]
        for _ in range(2):  # 4 → 8 → 16
            layers += [nn.Upsample(scale_factor=2), nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2)]
        self.trunk = nn.Sequential(*layers)
        self.to_picture_low = nn.Conv2d(width, channels, 1)
        self.new_block = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(width, width, 3, padding=1),
                                       nn.LeakyReLU(0.2))
        self.to_picture_high = nn.Conv2d(width, channels, 1)

    def paths(self, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two 32 px pictures the fade blends: the old 16 px output upsampled (nearest: each pixel a 2×2
        block), and the new block's output."""
        features = self.trunk(noise.view(len(noise), -1, 1, 1))
        old = F.interpolate(torch.tanh(self.to_picture_low(features)), scale_factor=2, mode="nearest")
        return old, torch.tanh(self.to_picture_high(self.new_block(features)))

    def forward(self, noise: torch.Tensor, alpha: float) -> torch.Tensor:
        return fade_in(*self.paths(noise), alpha)


def fade_in(old: torch.Tensor, new: torch.Tensor, alpha: float) -> torch.Tensor:
    """The fade itself: (1 − α) · upsampled old output + α · new output, α growing from 0 to 1 during training,
    so that the new layer starts with no say and the picture the network already makes is not wrecked."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be between 0 and 1 (got {alpha}).")
    return (1 - alpha) * old + alpha * new
