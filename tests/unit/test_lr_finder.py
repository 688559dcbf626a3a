"""The LR finder: an exponential (or linear) sweep, a smoothed loss, a stop on divergence, weights restored."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from core.errors import RunCancelled, UserError
from core.lr_finder import DIVERGED_FACTOR, FinderResult, find_lr, sweep_lrs
from core.models import build
from core.train import DeviceConfig, TensorBatches

CPU = DeviceConfig(torch.device("cpu"))


def sgd(params, lr):
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def digit_batches(mnist_train, n=512, batch=64):
    return TensorBatches(mnist_train.images[:n], mnist_train.labels[:n], batch, shuffle=True)


def test_sweep_is_exponential_or_linear():
    lrs = sweep_lrs(1e-5, 10, 61)
    assert lrs[0] == pytest.approx(1e-5) and lrs[-1] == pytest.approx(10)
    assert np.allclose(lrs[1:] / lrs[:-1], lrs[1] / lrs[0])  # the same factor every step
    linear = sweep_lrs(1e-3, 1.0, 11, linear=True)
    assert np.allclose(np.diff(linear), np.diff(linear)[0])


@pytest.mark.parametrize("start, end, iterations", [(0, 1, 100), (1, 1e-3, 100), (-1, 1, 100), (1e-5, math.inf, 100),
                                                    (1e-5, 10, 5), (1e-5, 10, 5000)])
def test_a_sweep_that_makes_no_sense_is_refused(start, end, iterations):
    with pytest.raises(UserError):
        sweep_lrs(start, end, iterations)


def test_the_finder_leaves_the_weights_and_batchnorm_statistics_as_they_were(mnist_train):
    torch.manual_seed(0)
    model = build("basic_cnn")
    before = {name: value.clone() for name, value in model.state_dict().items()}
    result = find_lr(model, digit_batches(mnist_train), sgd, iterations=30, device=CPU)
    assert len(result.frame) > 10
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_the_finder_stops_when_the_loss_diverges_and_still_restores_the_weights(mnist_train):
    """Plain SGD without BatchNorm blows up long before lr 1e4: the sweep must stop early."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    before = [p.detach().clone() for p in model.parameters()]
    result = find_lr(model, digit_batches(mnist_train), lambda ps, lr: torch.optim.SGD(ps, lr=lr),
                     start_lr=1e-3, end_lr=1e4, iterations=200, device=CPU)
    assert result.stopped_early
    assert len(result.frame) < 200
    last, best = result.frame["smoothed"].iloc[-1], result.frame["smoothed"].min()
    assert last > DIVERGED_FACTOR * best  # the row that tripped the rule is the last one kept
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_the_suggestion_is_a_tenth_of_the_lr_at_the_lowest_smoothed_loss(mnist_train):
    torch.manual_seed(0)
    result = find_lr(build("basic_cnn"), digit_batches(mnist_train), sgd, iterations=60, device=CPU)
    frame = result.frame
    assert result.suggestion == pytest.approx(frame.loc[frame["smoothed"].idxmin(), "lr"] / 10)
    assert frame["lr"].min() <= result.steepest <= frame["lr"].max()
    assert list(frame.columns) == ["iteration", "lr", "loss", "smoothed"]


def test_the_smoothed_loss_is_a_bias_corrected_moving_average():
    losses = itertools.chain([2.0, 1.0, 3.0], itertools.repeat(2.0))

    class Fixed(nn.Module):  # a model whose loss we dictate, step by step
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            target = next(losses)
            # cross-entropy of logits (a, 0) at label 1 with one of two classes: log(1 + e^a)
            a = math.log(math.exp(target) - 1)
            return torch.stack([torch.full((len(x),), a) + 0 * self.weight, torch.zeros(len(x))], dim=1)

    batches = [(torch.zeros(4, 1, 1, 1), torch.ones(4, dtype=torch.long))]
    result = find_lr(Fixed(), batches, lambda ps, lr: torch.optim.SGD(ps, lr=lr), start_lr=1e-3, end_lr=1e-1,
                     iterations=10, smoothing=0.5, device=CPU)
    smoothed = result.frame["smoothed"].iloc[:3].to_numpy()
    average, expected = 0.0, []
    for i, loss in enumerate([2.0, 1.0, 3.0]):
        average = 0.5 * average + 0.5 * loss
        expected.append(average / (1 - 0.5 ** (i + 1)))
    np.testing.assert_allclose(smoothed, expected, rtol=1e-5)


def test_a_sweep_with_no_finite_loss_has_no_suggestion():
    result = FinderResult(pd.DataFrame(columns=["iteration", "lr", "loss", "smoothed"]), stopped_early=True)
    assert result.suggestion is None and result.steepest is None


def test_the_finder_scales_the_loss_under_float16(mnist_train):
    """The CUDA path (float16 autocast with a GradScaler), run on the CPU."""
    config = DeviceConfig(torch.device("cpu"), amp_dtype=torch.float16, channels_last=True)
    assert config.grad_scaler().is_enabled()
    model = build("basic_cnn")
    before = {name: value.clone() for name, value in model.state_dict().items()}
    result = find_lr(model, digit_batches(mnist_train), sgd, iterations=15, device=config)
    assert len(result.frame) == 15 and result.frame["loss"].notna().all()
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())


def test_cancel_stops_the_sweep_and_restores_the_weights(mnist_train):
    model = build("basic_cnn")
    before = {name: value.clone() for name, value in model.state_dict().items()}
    calls = iter(range(100))
    with pytest.raises(RunCancelled):
        find_lr(model, digit_batches(mnist_train), sgd, iterations=50, device=CPU, is_cancelled=lambda: next(calls) >= 5)
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
