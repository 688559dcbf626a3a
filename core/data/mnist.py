"""Real MNIST, shipped gzipped in sample_data/ and read with torchvision.

torchvision 0.29 reads only the *uncompressed* IDX files under ``<root>/MNIST/raw`` and
refuses a folder holding only the .gz copies, so the first use unpacks them there.
On an online host with no shipped copy, ``download=True`` is torchvision's real path.
"""
from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.datasets import MNIST

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "sample_data" / "mnist"
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# The usual MNIST normalisation statistics (of the 60,000 training digits).
MEAN, STD = 0.1307, 0.3081


def data_root() -> Path:
    """Where unpacked data sets live: $PLAYGROUND_DATA or ./data in the repository."""
    return Path(os.environ.get("PLAYGROUND_DATA", REPO_ROOT / "data"))


def ensure_unpacked(root: Path | None = None) -> Path:
    """Unpack the shipped .gz files into torchvision's MNIST/raw layout (once)."""
    root = Path(root or data_root())
    raw = root / "MNIST" / "raw"
    missing = [name for name in RAW_FILES if not (raw / name).exists()]
    if missing and (SHIPPED / f"{missing[0]}.gz").exists():
        raw.mkdir(parents=True, exist_ok=True)
        for name in missing:
            partial = raw / f"{name}.partial"
            with gzip.open(SHIPPED / f"{name}.gz", "rb") as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
            partial.replace(raw / name)  # atomic: a half-written file never looks complete
    return root


def load_mnist(train: bool, root: Path | None = None) -> MNIST:
    """The MNIST training (60,000) or validation (10,000) set as a torchvision dataset."""
    root = ensure_unpacked(root)
    have_local = all((root / "MNIST" / "raw" / name).exists() for name in RAW_FILES)
    return MNIST(str(root), train=train, download=not have_local)


@dataclass
class DigitTensors:
    """Digits held in memory as one normalised tensor (N, 1, 28, 28) and labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None, seed: int = 0) -> "DigitTensors":
        """A class-mixed random subset of n digits (all of them when n is None)."""
        if n is None or n >= len(self):
            return self
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return DigitTensors(self.images[order], self.labels[order])

    def thinned(self, digit: int, keep: float, seed: int = 0) -> "DigitTensors":
        """The same digits but for ``digit``, of which only a random ``keep`` share stays (at least one)."""
        of_digit = (self.labels == digit).nonzero().squeeze(1)
        order = torch.randperm(len(of_digit), generator=torch.Generator().manual_seed(seed))
        dropped = of_digit[order[max(1, round(keep * len(of_digit))):]]
        kept = torch.ones(len(self), dtype=torch.bool)
        kept[dropped] = False
        return DigitTensors(self.images[kept], self.labels[kept])


def mnist_tensors(train: bool, root: Path | None = None) -> DigitTensors:
    """The whole split as tensors, skipping torchvision's per-item PIL conversion (it is 10x slower)."""
    dataset = load_mnist(train, root)
    images = dataset.data.unsqueeze(1).float().div_(255).sub_(MEAN).div_(STD)
    return DigitTensors(images, dataset.targets.clone())


def denormalise(images: torch.Tensor) -> torch.Tensor:
    """Back to [0, 1] pixel values for display."""
    return (images * STD + MEAN).clamp(0, 1)


def padded_tanh(images: torch.Tensor, size: int = 32) -> torch.Tensor:
    """Normalised 28×28 digits as ``size``×``size`` pictures in [-1, 1], black (-1) all round: the range of a
    tanh output, and a size that stride-2 layers can halve again and again (32 = 2⁵)."""
    border = (size - images.shape[-1]) // 2
    return F.pad(denormalise(images) * 2 - 1, [border] * 4, value=-1.0)
