"""CIFAR-10 for the Darknet lab: real when it is on disk or can be downloaded, else a clearly
labelled synthetic stand-in in the same ``cifar-10-batches-py`` layout, read by torchvision.

Real data: $PLAYGROUND_CIFAR10 (a folder holding ``cifar-10-batches-py``), else the data
folder; an online host downloads it there with torchvision's own ``download=True``. No
accuracy claim is ever made on the synthetic set: everything built on it says "synthetic".
"""
from __future__ import annotations

import functools
import os
import pickle
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10

from core.data.mnist import data_root

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SYNTHETIC_TRAIN_PER_BATCH, SYNTHETIC_TEST = 2_000, 2_000  # 10,000 training images in 5 batches
DOWNLOAD_TIMEOUT_S = 10  # an offline host must fail fast, not hang the worker's start


class SyntheticCIFAR10(CIFAR10):
    """torchvision's CIFAR10 reading our generated files: the same layout and the same reader,
    only without the real files' checksums."""

    train_list = [[name, None] for name, _ in CIFAR10.train_list]
    test_list = [[name, None] for name, _ in CIFAR10.test_list]
    meta = {**CIFAR10.meta, "md5": None}


@dataclass(frozen=True)
class CifarTensors:
    images: torch.Tensor  # (N, 3, 32, 32) float32, normalised per channel
    labels: torch.Tensor  # (N,) int64
    synthetic: bool
    mean: torch.Tensor  # (3,) the normalisation, to show the pictures as they were
    std: torch.Tensor

    def subset(self, n: int, seed: int = 0) -> "CifarTensors":
        index = torch.randperm(len(self.labels), generator=torch.Generator().manual_seed(seed))[:n]
        return CifarTensors(self.images[index], self.labels[index], self.synthetic, self.mean, self.std)

    def to(self, device: torch.device) -> "CifarTensors":
        return CifarTensors(self.images.to(device), self.labels.to(device), self.synthetic, self.mean, self.std)

    def shown(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images back in [0, 1], for a picture grid."""
        return (images.cpu() * self.std[:, None, None] + self.mean[:, None, None]).clamp(0, 1)


def real_root() -> Path:
    return Path(os.environ.get("PLAYGROUND_CIFAR10", data_root()))


def synthetic_root() -> Path:
    return data_root() / "synthetic-cifar10"


def open_cifar(train: bool) -> CIFAR10:
    """The real set when present (or downloadable), else the synthetic one (written once)."""
    try:
        return CIFAR10(real_root(), train=train)
    except RuntimeError:
        pass
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return CIFAR10(real_root(), train=train, download=True)
    except (OSError, RuntimeError, ValueError):
        pass  # offline: the stand-in below
    finally:
        socket.setdefaulttimeout(previous)
    write_synthetic(synthetic_root())
    return SyntheticCIFAR10(synthetic_root(), train=train)


def write_synthetic(root: Path, seed: int = 0) -> None:
    """Ten learnable classes of 32x32 pictures: each class its own colour pair and stripe
    direction, a square at a random place, noise. Not CIFAR, and never called CIFAR results."""
    folder = root / CIFAR10.base_folder
    if (folder / "test_batch").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = [(name, SYNTHETIC_TRAIN_PER_BATCH) for name, _ in CIFAR10.train_list] + [("test_batch", SYNTHETIC_TEST)]
    for name, count in files:
        labels = rng.integers(0, 10, count)
        batch = {"data": _synthetic_images(labels, rng).reshape(count, -1), "labels": labels.tolist(),
                 "batch_label": f"synthetic {name}"}
        with open(folder / name, "wb") as file:
            pickle.dump(batch, file)
    with open(folder / CIFAR10.meta["filename"], "wb") as file:
        pickle.dump({"label_names": list(CLASSES)}, file)


def _synthetic_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 3, 32, 32) uint8 pictures for the given classes."""
    n = len(labels)
    hue = labels / 10.0 + rng.normal(0, 0.04, n)  # neighbouring classes' colours overlap a little
    background = np.stack([np.sin(2 * np.pi * (hue + k / 3)) * 0.35 + 0.5 for k in range(3)], axis=1)  # (N, 3)
    y, x = np.mgrid[0:32, 0:32]
    angle = labels * np.pi / 10
    stripes = np.sin((np.cos(angle)[:, None, None] * x + np.sin(angle)[:, None, None] * y) * 0.8)  # (N, 32, 32)
    images = background[:, :, None, None] + 0.08 * stripes[:, None]
    corner = rng.integers(0, 20, (n, 2))
    for i, (top, left) in enumerate(corner):
        images[i, :, top:top + 12, left:left + 12] = 1.0 - background[i, :, None, None]
    images += rng.normal(0, 0.2, images.shape)
    return (np.clip(images, 0, 1) * 255).astype(np.uint8)


@functools.lru_cache(maxsize=2)
def cifar_tensors(train: bool) -> CifarTensors:
    """A split as normalised tensors (per-channel statistics of its training split)."""
    dataset = open_cifar(train)
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).float().div_(255)
    reference = images if train else torch.from_numpy(open_cifar(True).data).permute(0, 3, 1, 2).float().div_(255)
    mean, std = reference.mean(dim=(0, 2, 3)), reference.std(dim=(0, 2, 3))
    images = (images - mean[:, None, None]) / std[:, None, None]
    return CifarTensors(images, torch.tensor(dataset.targets), isinstance(dataset, SyntheticCIFAR10), mean, std)


def random_crop_flip(images: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """The lesson's augmentation on a whole batch where it lies (the GPU, when training there):
    pad by reflection (fastai 0.7's default), crop back to size at a random offset per image,
    flip half of them left-right. The random numbers are drawn on the images' device (give a
    generator of that device): copying them from the CPU would make each step wait for the last."""
    n, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, [padding] * 4, mode="reflect")
    device = images.device
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    rows = (top[:, None] + torch.arange(height, device=device))[:, None, :, None]  # (N, 1, H, 1)
    cols = (left[:, None] + torch.arange(width, device=device))[:, None, None, :]  # (N, 1, 1, W)
    batch = torch.arange(n, device=device)[:, None, None, None]
    channel = torch.arange(images.shape[1], device=device)[None, :, None, None]
    cropped = padded[batch, channel, rows, cols]
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(-1), cropped)
