"""Progressive growing's fade-in, shown on a small generator fitted in a few seconds to draw four digits at both
resolutions, so that the blend is between two pictures worth looking at: the old 16 px path's blocky digits and
the new 32 px layer's sharp ones (an untrained generator draws only grey textures)."""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from core.data.mnist import padded_tanh
from core.mnist_lab import cached_digits
from core.models.progressive import HIGH, LOW, ProgressiveGenerator

DIGITS, NZ, LR = 4, 64, 1e-3  # 3e-3 leaves some digits black: their tanh saturates at -1


@functools.lru_cache(maxsize=1)
def fitted_paths(steps: int = 300, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """The (old, new) 32 px outputs of a ProgressiveGenerator whose two outputs were fitted by MSE to four
    validation digits, at 16 px and at 32 px, from four fixed noise vectors: about 2 s on one CPU core."""
    targets = 0.9 * padded_tanh(cached_digits(False).images[:DIGITS], HIGH)  # ±1 would saturate the tanh
    small = F.avg_pool2d(targets, HIGH // LOW)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator, noise = ProgressiveGenerator(NZ), torch.randn(DIGITS, NZ)
    optimizer = torch.optim.Adam(generator.parameters(), lr=LR)
    for _ in range(steps):
        old, new = generator.paths(noise)
        loss = F.mse_loss(F.avg_pool2d(old, HIGH // LOW), small) + F.mse_loss(new, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return generator.paths(noise)
