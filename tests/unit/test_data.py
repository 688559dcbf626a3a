"""Real MNIST from the shipped .gz files: sizes, labels, unpacking, subsets."""
from __future__ import annotations

import torch

from core.data import mnist
from core.data.mnist import DigitTensors, denormalise, ensure_unpacked, load_mnist

RAW_SIZES = {  # IDX headers + 28x28 bytes per image / 1 byte per label
    "train-images-idx3-ubyte": 16 + 60_000 * 28 * 28,
    "train-labels-idx1-ubyte": 8 + 60_000,
    "t10k-images-idx3-ubyte": 16 + 10_000 * 28 * 28,
    "t10k-labels-idx1-ubyte": 8 + 10_000,
}


def test_training_set_has_60000_digits_starting_with_a_5():
    train = load_mnist(True)
    assert len(train) == 60_000
    assert int(train.targets[0]) == 5
    assert sorted(train.targets.unique().tolist()) == list(range(10))


def test_validation_set_has_10000_digits_starting_with_a_7():
    valid = load_mnist(False)
    assert len(valid) == 10_000
    assert int(valid.targets[0]) == 7


def test_ensure_unpacked_into_a_fresh_folder(tmp_path):
    root = ensure_unpacked(tmp_path / "fresh")
    raw = root / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(RAW_SIZES)  # no .partial left over
    assert {name: (raw / name).stat().st_size for name in RAW_SIZES} == RAW_SIZES
    stamps = {name: (raw / name).stat().st_mtime_ns for name in RAW_SIZES}
    ensure_unpacked(root)  # a second call has nothing to do
    assert {name: (raw / name).stat().st_mtime_ns for name in RAW_SIZES} == stamps


def test_data_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYGROUND_DATA", str(tmp_path))
    assert mnist.data_root() == tmp_path
    monkeypatch.delenv("PLAYGROUND_DATA")
    assert mnist.data_root() == mnist.REPO_ROOT / "data"


def test_tensors_are_normalised(mnist_train, mnist_valid):
    assert mnist_train.images.shape == (60_000, 1, 28, 28)
    assert mnist_valid.images.shape == (10_000, 1, 28, 28)
    assert mnist_train.images.dtype == torch.float32
    assert abs(mnist_train.images.mean().item()) < 0.01
    assert abs(mnist_train.images.std().item() - 1) < 0.01
    assert mnist_train.labels[:3].tolist() == [5, 0, 4]
    pixels = denormalise(mnist_valid.images[:10])
    assert pixels.min() >= 0 and pixels.max() <= 1 and pixels.max() > 0.99


def test_subset_is_deterministic_by_seed(mnist_train):
    a = mnist_train.subset(500, seed=1)
    b = mnist_train.subset(500, seed=1)
    c = mnist_train.subset(500, seed=2)
    assert len(a) == 500 and a.images.shape == (500, 1, 28, 28)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)
    assert len(a.labels.unique()) == 10  # class-mixed, not the first 500 in file order
    assert not torch.equal(a.labels, mnist_train.labels[:500])


def test_subset_of_everything_is_everything():
    digits = DigitTensors(torch.zeros(7, 1, 28, 28), torch.arange(7))
    assert digits.subset(None) is digits
    assert digits.subset(7) is digits
    assert digits.subset(100) is digits
    assert len(digits.subset(3)) == 3
