"""The judge of generated digits: the foundation's MNIST classifier (Lesson 7's ResNet-ish CNN), trained once
on the real digits and shipped as ``sample_data/mnist_judge.pt`` (``scripts/train_mnist_judge.py`` remakes it).

It answers the two questions a GAN's loss curves cannot: do the samples look like digits (how sure it is of
its top class), and are all ten digits there (a generator that collapses onto a few modes makes few classes).
"""
from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.data.mnist import MEAN, STD, SHIPPED
from core.mnist_lab import cached_digits
from core.models import build
from core.train import Learner, OneCycle, TensorBatches

ARCH = "resnet_cnn"
JUDGE_FILE = SHIPPED.parent / "mnist_judge.pt"
CLASSES = 10
MNIST_SIZE = 28


def train_judge(epochs: float = 2, max_lr: float = 0.05, seed: int = 0) -> nn.Module:
    """The lesson's fit_one_cycle on all 60,000 training digits (99.0% on the 10,000 validation ones)."""
    torch.manual_seed(seed)
    digits = cached_digits(True)
    model = build(ARCH)
    optimizer = torch.optim.SGD(model.parameters(), lr=max_lr, momentum=0.9)
    batches = TensorBatches(digits.images, digits.labels, 128, shuffle=True, seed=seed)
    Learner(model, batches, optimizer, callbacks=[OneCycle(max_lr)]).fit(epochs)
    return model.eval()


def save_judge(model: nn.Module, path: Path = JUDGE_FILE) -> None:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    path.write_bytes(buffer.getvalue())


@functools.lru_cache(maxsize=1)
def judge() -> nn.Module:
    """The shipped classifier in eval mode on the CPU (``weights_only``: nothing but tensors is read); made
    here, once per process, if the file is missing."""
    if not JUDGE_FILE.exists():
        return train_judge()
    model = build(ARCH)
    model.load_state_dict(torch.load(JUDGE_FILE, map_location="cpu", weights_only=True))
    return model.eval()


def as_mnist(samples: torch.Tensor) -> torch.Tensor:
    """Generated (B, 1, S, S) pictures in [-1, 1] as the classifier's input: [0, 1], centred 28×28 (the
    padding MNIST got to reach 32 px is cut off again), normalised with MNIST's statistics."""
    pixels = (samples.float().cpu() + 1) / 2
    if pixels.shape[-1] != MNIST_SIZE:
        border = (pixels.shape[-1] - MNIST_SIZE) // 2
        if border > 0:
            pixels = pixels[..., border:border + MNIST_SIZE, border:border + MNIST_SIZE]
        else:
            pixels = F.interpolate(pixels, size=MNIST_SIZE, mode="bilinear", align_corners=False)
    return (pixels - MEAN) / STD


@dataclass(frozen=True)
class Verdict:
    confidence: float  # the mean probability of each sample's top class
    classes_present: int  # how many of the ten digits are some sample's top class
    class_counts: tuple[int, ...]  # samples per top class, 0 to 9
    spread: float  # entropy of the top classes over log(10): 1 = all ten equally often, 0 = one class

    def to_dict(self) -> dict:
        return {"confidence": self.confidence, "classes_present": self.classes_present,
                "class_counts": list(self.class_counts), "spread": self.spread}


@torch.no_grad()
def verdict(samples: torch.Tensor) -> Verdict:
    """What the classifier makes of a batch of generated digits."""
    probabilities = judge()(as_mnist(samples)).softmax(dim=1)
    confidence, top = probabilities.max(dim=1)
    counts = torch.bincount(top, minlength=CLASSES)
    shares = counts[counts > 0].double() / len(top)
    spread = float(-(shares * shares.log()).sum() / math.log(CLASSES))
    return Verdict(float(confidence.mean()), int((counts > 0).sum()), tuple(counts.tolist()), spread)
