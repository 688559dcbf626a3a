"""Lesson 13's learning-rate finder (fastai's ``lr_find``), written by hand because it is the lesson.

Train for a few dozen mini-batches while the learning rate grows from tiny to huge, record
the smoothed loss at each, and stop once it has clearly blown up. The loss falls fastest a
little below where it is lowest: a good learning rate is about a tenth of that minimum's.
The model's weights are put back as they were, so the sweep costs nothing but time.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import RunCancelled, UserError
from core.train import DeviceConfig

MIN_ITERATIONS_BEFORE_STOP = 10
DIVERGED_FACTOR = 4.0  # stop when the smoothed loss is 4x the best so far
# fastai averages with 0.98, which lags ~50 steps: over a 100-step sweep of six decades that is
# three decades of learning rate, and the minimum lands far too late. 0.9 lags ~10 steps.
SMOOTHING = 0.9


@dataclass(frozen=True)
class FinderResult:
    frame: pd.DataFrame  # iteration, lr, loss, smoothed
    stopped_early: bool  # the loss diverged before the sweep ended

    @property
    def suggestion(self) -> float | None:
        """A tenth of the learning rate at the lowest smoothed loss (the lesson's rule of thumb)."""
        if self.frame.empty:
            return None
        return float(self.frame.loc[self.frame["smoothed"].idxmin(), "lr"]) / 10

    @property
    def steepest(self) -> float | None:
        """Where the smoothed loss falls fastest per step along the sweep (fastai v1's "min grad")."""
        if self.frame.empty:
            return None
        frame = self.frame.iloc[:int(self.frame["smoothed"].idxmin()) + 1]
        if len(frame) < 3:
            return None
        return float(frame["lr"].iloc[int(np.argmin(np.gradient(frame["smoothed"].to_numpy())))])


def sweep_lrs(start_lr: float, end_lr: float, iterations: int, linear: bool = False) -> np.ndarray:
    """The learning rates of the sweep: evenly spaced on a log scale (or a linear one)."""
    if not (0 < start_lr < end_lr and math.isfinite(end_lr)):
        raise UserError("finder.range", "The sweep must go from a learning rate above 0 up to a bigger one (got {start:g} to {end:g}).",
                        start=start_lr, end=end_lr)
    if not 10 <= iterations <= 1000:
        raise UserError("finder.iterations", "Use between 10 and 1000 iterations for the sweep (got {n}).", n=iterations)
    if linear:
        return np.linspace(start_lr, end_lr, iterations)
    return np.geomspace(start_lr, end_lr, iterations)


def find_lr(model: nn.Module, batches: Iterable, make_optimizer: Callable[[Iterable, float], torch.optim.Optimizer],
            start_lr: float = 1e-5, end_lr: float = 10.0, iterations: int = 100, linear: bool = False,
            smoothing: float = SMOOTHING, device: DeviceConfig | None = None,
            on_step: Callable[[dict], None] | None = None,
            is_cancelled: Callable[[], bool] = lambda: False) -> FinderResult:
    """Sweep the learning rate over ``iterations`` mini-batches (cycling through ``batches``);
    the model's weights and BatchNorm statistics are restored afterwards, whatever happens."""
    lrs = sweep_lrs(start_lr, end_lr, iterations, linear)
    device = device or DeviceConfig.auto()
    saved = copy.deepcopy(model.state_dict())
    model = device.prepare_model(model)
    optimizer = make_optimizer(model.parameters(), float(lrs[0]))
    scaler = device.grad_scaler()  # float16 gradients underflow without loss scaling
    rows, average, best, stopped_early = [], 0.0, math.inf, False
    data = _forever(batches)
    model.train()
    try:
        for i, lr in enumerate(lrs):
            if is_cancelled():
                raise RunCancelled()
            for group in optimizer.param_groups:
                group["lr"] = float(lr)
            images, labels = next(data)
            with device.autocast():
                loss = F.cross_entropy(model(device.prepare_images(images)), labels.to(device.device))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            value = loss.item()
            average = smoothing * average + (1 - smoothing) * value
            smoothed = average / (1 - smoothing ** (i + 1))  # bias-corrected: the first steps are not pulled to 0
            if not math.isfinite(smoothed):
                stopped_early = True
                break
            best = min(best, smoothed)
            row = {"iteration": i, "lr": float(lr), "loss": value, "smoothed": smoothed, "total": len(lrs)}
            rows.append(row)
            if on_step is not None:
                on_step(row)
            if i >= MIN_ITERATIONS_BEFORE_STOP and smoothed > DIVERGED_FACTOR * best:
                stopped_early = True
                break
    finally:
        model.load_state_dict(saved)
    frame = pd.DataFrame(rows, columns=["iteration", "lr", "loss", "smoothed"])
    return FinderResult(frame, stopped_early)


def _forever(batches: Iterable):
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise UserError("finder.no_data", "There are no training batches to sweep over.")
