"""The image pool of Lesson 12's CycleGAN (Shrivastava et al. 2017): the discriminators learn from a history of
the generators' fakes, not only the latest ones, so that the two do not chase each other round in circles."""
from __future__ import annotations

import torch


class ImagePool:
    """The last ``size`` fakes (CycleGAN keeps 50). ``generator`` draws the coin flips and slots, so that a seeded
    run picks the same old fakes every time; ``size=0`` is no pool at all."""

    def __init__(self, size: int = 50, generator: torch.Generator | None = None):
        self.size = size
        self.generator = generator
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch as big as ``images``: each picture itself while the pool fills; once it is full, with
        probability 0.5 a random stored fake (the new one takes its place), else the new one."""
        if self.size == 0:
            return images
        chosen = []
        for image in images.detach():  # the pool outlives the step: it must not hold on to its graph
            if len(self.images) < self.size:
                self.images.append(image)
                chosen.append(image)
            elif torch.rand(1, generator=self.generator).item() < 0.5:
                slot = int(torch.randint(self.size, (1,), generator=self.generator))
                chosen.append(self.images[slot])
                self.images[slot] = image
            else:
                chosen.append(image)
        return torch.stack(chosen)
