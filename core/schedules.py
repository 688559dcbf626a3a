"""Lesson 13's training-phase API (fastai 0.7's ``TrainingPhase`` / ``fit_opt_sched``).

Written by hand because it is the lesson: a run is a list of phases, each with its own
length, optimizer, learning-rate curve and momentum curve. ``schedule_curves`` draws the
plan (the lesson's ``plot_lr``); ``PhaseDriver`` applies it to real torch optimizers step
by step, creating each phase's optimizer at its boundary as ``fit_opt_sched`` did.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence, Union

import numpy as np
import pandas as pd
import torch

from core.errors import UserError

MAX_ITERATIONS = 1_000_000  # a plan longer than this is a typo, not a schedule
# The MNIST nets halve the picture five times with no pooling at the end: 32 px ends at 1x1 (one
# logit per digit); a larger picture would leave 2x2 and silently give 40 "classes".
MAX_IMAGE_SIZE = 32


class DecayType(enum.Enum):
    NO = "no"
    LINEAR = "linear"
    COSINE = "cosine"
    EXPONENTIAL = "exponential"
    POLYNOMIAL = "polynomial"


Number = Union[int, float]
Value = Union[Number, tuple]  # a scalar, or (start, end)
Decay = Union[DecayType, tuple]  # a DecayType, or (DecayType.POLYNOMIAL, power)


# ----- optimizers --------------------------------------------------------------------------
# What "momentum" means for each optimizer, as fastai 0.7's LayerOptimizer set it: SGD's
# momentum, Adam's beta1, RMSprop's momentum. Defaults when a phase gives none: torch's,
# except fastai's Adam betas (0.9, 0.99) and 0.9 for "SGD with momentum".
@dataclass(frozen=True)
class OptimizerKind:
    label: str
    build: Callable[..., torch.optim.Optimizer]
    default_momentum: float
    has_momentum: bool = True
    # Whether a phase of this kind carries on with the previous phase's optimizer when that is
    # of the same torch class, keeping its momentum buffers (fastai 0.7's set_opt_fn). RMSprop
    # starts afresh: torch would crash on a buffer it never made while its momentum was 0.
    continues: bool = True


OPTIMIZERS: dict[str, OptimizerKind] = {
    "sgd": OptimizerKind("SGD", lambda groups, lr, mom: torch.optim.SGD(groups, lr=lr), 0.0, has_momentum=False),
    "sgd_momentum": OptimizerKind("SGD+momentum", lambda groups, lr, mom: torch.optim.SGD(groups, lr=lr, momentum=mom), 0.9),
    "adam": OptimizerKind("Adam", lambda groups, lr, mom: torch.optim.Adam(groups, lr=lr, betas=(mom, 0.99)), 0.9),
    "rmsprop": OptimizerKind("RMSprop", lambda groups, lr, mom: torch.optim.RMSprop(groups, lr=lr, momentum=mom), 0.0,
                             continues=False),
}
TORCH_CLASS = {"sgd": torch.optim.SGD, "sgd_momentum": torch.optim.SGD, "adam": torch.optim.Adam,
               "rmsprop": torch.optim.RMSprop}


def read_momentum(group: dict) -> float:
    """The momentum a param group holds now, under whichever name its optimizer uses."""
    if "betas" in group:
        return float(group["betas"][0])
    return float(group.get("momentum", 0.0))


def write_momentum(group: dict, momentum: float) -> None:
    if "betas" in group:
        group["betas"] = (momentum, group["betas"][1])
    else:
        group["momentum"] = momentum


# ----- phases ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingPhase:
    """``epochs`` of training with one optimizer; lr and momentum a scalar or (start, end).

    A scalar with a decay other than NO decays from that value to 0, as in the lesson.
    ``image_size`` is progressive resizing (the lesson's ``data_list``): None keeps the data's size.
    """

    epochs: float
    opt_fn: str = "sgd_momentum"
    lr: Value = 1e-2
    lr_decay: Decay = DecayType.NO
    momentum: Value | None = None
    momentum_decay: Decay = DecayType.NO
    image_size: int | None = None

    def __post_init__(self) -> None:
        _check_number("epochs", self.epochs)
        if self.epochs <= 0:
            raise UserError("phase.epochs_positive", "Epochs must be above 0 (got {value}).", value=self.epochs)
        if self.opt_fn not in OPTIMIZERS:
            raise UserError("phase.bad_optimizer", "Unknown optimizer {name}: use one of {names}.",
                            name=self.opt_fn, names=", ".join(OPTIMIZERS))
        lr_start, lr_end = span(self.lr, self.lr_decay, "lr")
        if lr_start <= 0 or lr_end < 0:
            raise UserError("phase.lr_positive", "A learning rate must be above 0 (got {value}).",
                            value=min(lr_start, lr_end))
        _check_decay(self.lr_decay, lr_start, lr_end)
        if self.momentum is not None:
            if not OPTIMIZERS[self.opt_fn].has_momentum:
                raise UserError("phase.sgd_no_momentum", "Plain SGD has no momentum: choose SGD with momentum, or clear the momentum.")
            mom_start, mom_end = span(self.momentum, self.momentum_decay, "momentum")
            if not (0 <= mom_start < 1 and 0 <= mom_end < 1):
                raise UserError("phase.momentum_range", "Momentum must be at least 0 and below 1 (got {value}).",
                                value=mom_start if not 0 <= mom_start < 1 else mom_end)
            _check_decay(self.momentum_decay, mom_start, mom_end)
            if self.opt_fn == "rmsprop" and mom_start == 0 < mom_end:
                raise UserError("phase.rmsprop_from_zero", "RMSprop's momentum cannot start at 0 and then grow: torch keeps "
                                "a momentum buffer only when momentum is above 0 at the first step. Start it at 0.01 or more.")
        elif decay_kind(self.momentum_decay)[0] is not DecayType.NO:
            raise UserError("phase.decay_without_momentum", "A momentum decay needs a momentum to decay: "
                            "fill in momentum start (and end), or set the momentum decay to no.")
        if self.image_size is not None and not (isinstance(self.image_size, int) and 8 <= self.image_size <= MAX_IMAGE_SIZE):
            raise UserError("phase.image_size", "The image size must be a whole number of pixels from 8 to {most} (got {value}).",
                            value=self.image_size, most=MAX_IMAGE_SIZE)

    @property
    def optimizer_label(self) -> str:
        return OPTIMIZERS[self.opt_fn].label

    def lr_span(self) -> tuple[float, float]:
        return span(self.lr, self.lr_decay, "lr")

    def momentum_span(self) -> tuple[float, float]:
        if self.momentum is None:
            default = OPTIMIZERS[self.opt_fn].default_momentum
            return default, default
        return span(self.momentum, self.momentum_decay, "momentum")


def _check_number(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError("phase.not_number", "{name} must be a number (got {value}).", name=name, value=value)


def decay_kind(decay: Decay) -> tuple[DecayType, float]:
    """(type, polynomial power) from ``DecayType.X`` or ``(DecayType.POLYNOMIAL, p)``."""
    if isinstance(decay, DecayType):
        if decay is DecayType.POLYNOMIAL:
            raise UserError("phase.poly_needs_power", "Polynomial decay needs a power: give it as (POLYNOMIAL, 2).")
        return decay, 1.0
    if isinstance(decay, tuple) and len(decay) == 2 and decay[0] is DecayType.POLYNOMIAL:
        _check_number("power", decay[1])
        if decay[1] <= 0:
            raise UserError("phase.poly_power", "The polynomial power must be above 0, such as 2 or 0.9 (got {value}).",
                            value=decay[1])
        return DecayType.POLYNOMIAL, float(decay[1])
    raise UserError("phase.bad_decay", "Unknown decay {decay}: use no, linear, cosine, exponential or polynomial.",
                    decay=str(decay)[:40])


def span(value: Value, decay: Decay, name: str) -> tuple[float, float]:
    """(start, end) of a phase's lr or momentum; a scalar that decays ends at 0."""
    kind, _ = decay_kind(decay)
    if isinstance(value, tuple):
        if len(value) != 2:
            raise UserError("phase.pair", "{name} is a number or a (start, end) pair, not {count} numbers.",
                            name=name, count=len(value))
        _check_number(name, value[0])
        _check_number(name, value[1])
        return float(value[0]), float(value[1])
    _check_number(name, value)
    return float(value), (float(value) if kind is DecayType.NO else 0.0)


def _check_decay(decay: Decay, start: float, end: float) -> None:
    kind, _ = decay_kind(decay)
    if kind is DecayType.EXPONENTIAL and (start <= 0 or end <= 0):
        raise UserError("phase.exp_zero", "Exponential decay multiplies by the same factor each step, so it never reaches 0: "
                        "give an end value above 0, or choose cosine or linear.")


def decayed(start: float, end: float, decay: Decay, i, n: int):
    """The lesson's formulas: the value at iteration i (0 ≤ i ≤ n) of a phase of n iterations."""
    kind, power = decay_kind(decay)
    fraction = np.asarray(i, dtype=float) / n
    if kind is DecayType.NO:
        values = np.full_like(fraction, start)
    elif kind is DecayType.LINEAR:
        values = start + (end - start) * fraction
    elif kind is DecayType.COSINE:
        values = end + (start - end) / 2 * (1 + np.cos(np.pi * fraction))
    elif kind is DecayType.EXPONENTIAL:
        values = start * (end / start) ** fraction
    else:
        values = end + (start - end) * (1 - fraction) ** power
    return values if values.ndim else float(values)


# ----- the lesson's ready-made schedules ------------------------------------------------------
def _check_argument(name: str, value, low: float, high: float) -> None:
    """A preset function's argument, checked before it is used (a cycle_mult of 1e300 overflows)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and low <= value <= high):
        raise UserError("preset.bad_argument", "{name} must be a number from {low:g} to {high:g} (got {value}).",
                        name=name, low=low, high=high, value=value)


def phases_sgdr(lr: float, opt_fn: str, num_cycle: int, cycle_len: float, cycle_mult: float) -> list[TrainingPhase]:
    """SGDR: a short warm-up at lr/100, then cosine cycles, each cycle_mult times longer."""
    _check_argument("num_cycle", num_cycle, 1, 19)
    _check_argument("cycle_len", cycle_len, 1e-3, 1000)
    _check_argument("cycle_mult", cycle_mult, 0.1, 10)
    if int(num_cycle) != num_cycle:
        raise UserError("preset.bad_argument", "{name} must be a number from {low:g} to {high:g} (got {value}).",
                        name="num_cycle", low=1, high=19, value=num_cycle)
    num_cycle = int(num_cycle)
    phases = [TrainingPhase(epochs=cycle_len / 20, opt_fn=opt_fn, lr=lr / 100),
              TrainingPhase(epochs=cycle_len * 19 / 20, opt_fn=opt_fn, lr=lr, lr_decay=DecayType.COSINE)]
    for i in range(1, num_cycle):
        phases.append(TrainingPhase(epochs=cycle_len * cycle_mult**i, opt_fn=opt_fn, lr=lr, lr_decay=DecayType.COSINE))
    return phases


def phases_1cycle(cycle_len: float, lr: float, div: float, pct: float, max_mom: float, min_mom: float) -> list[TrainingPhase]:
    """One-cycle: lr up then down (momentum down then up), then a short anneal to lr/(100·div)."""
    _check_argument("cycle_len", cycle_len, 1e-3, 1000)
    _check_argument("div", div, 1, 1e6)
    _check_argument("pct", pct, 0, 99)
    tri = (1 - pct / 100) * cycle_len
    return [
        TrainingPhase(epochs=tri / 2, opt_fn="sgd_momentum", lr=(lr / div, lr), lr_decay=DecayType.LINEAR,
                      momentum=(max_mom, min_mom), momentum_decay=DecayType.LINEAR),
        TrainingPhase(epochs=tri / 2, opt_fn="sgd_momentum", lr=(lr, lr / div), lr_decay=DecayType.LINEAR,
                      momentum=(min_mom, max_mom), momentum_decay=DecayType.LINEAR),
        TrainingPhase(epochs=cycle_len - tri, opt_fn="sgd_momentum", lr=(lr / div, lr / (100 * div)),
                      lr_decay=DecayType.LINEAR, momentum=max_mom),
    ]


# ----- the plan ----------------------------------------------------------------------------------
def phase_boundaries(phases: Sequence[TrainingPhase], iters_per_epoch: int) -> list[int]:
    """The iteration at which each phase starts, and the total at the end.

    Rounded from the cumulative epochs, so that fractional phases (1.35 epochs) add up to the
    whole run without drifting.
    """
    if not phases:
        raise UserError("schedule.no_phases", "The schedule has no phases: add a row to the table, or pick a preset.")
    if isinstance(iters_per_epoch, bool) or not isinstance(iters_per_epoch, int) or iters_per_epoch < 1:
        raise UserError("schedule.iters_per_epoch", "An epoch must have at least one iteration.")
    total_epochs = sum(phase.epochs for phase in phases)
    if total_epochs * iters_per_epoch > MAX_ITERATIONS:
        raise UserError("schedule.too_long", "This schedule has {iterations:,.0f} iterations; the most is {most:,}. "
                        "Use fewer epochs or a bigger batch.", iterations=total_epochs * iters_per_epoch, most=MAX_ITERATIONS)
    boundaries = [0]
    elapsed = 0.0
    for number, phase in enumerate(phases, start=1):
        elapsed += phase.epochs
        boundaries.append(round(elapsed * iters_per_epoch))
        if boundaries[-1] <= boundaries[-2]:
            raise UserError("schedule.phase_too_short", "Phase {phase} ({epochs:g} epochs) is shorter than one iteration: "
                            "make it longer or delete it.", phase=number, epochs=phase.epochs)
    return boundaries


def schedule_curves(phases: Sequence[TrainingPhase], iters_per_epoch: int) -> pd.DataFrame:
    """One row per iteration: iteration, epoch, phase (1-based), optimizer, lr, momentum."""
    boundaries = phase_boundaries(phases, iters_per_epoch)
    parts = []
    for number, (phase, start, stop) in enumerate(zip(phases, boundaries, boundaries[1:]), start=1):
        n = stop - start
        i = np.arange(n)
        parts.append(pd.DataFrame({
            "iteration": start + i,
            "phase": number,
            "optimizer": phase.optimizer_label,
            "lr": decayed(*phase.lr_span(), phase.lr_decay, i, n),
            "momentum": decayed(*phase.momentum_span(), phase.momentum_decay, i, n),
        }))
    curves = pd.concat(parts, ignore_index=True)
    curves.insert(1, "epoch", curves["iteration"] / iters_per_epoch)
    return curves


# ----- applying the plan to torch ------------------------------------------------------------------
class PhaseDriver:
    """``fit_opt_sched`` for torch: call ``optimizer_for(iteration)`` before each step.

    At a phase boundary where the optimizer changes class (Adam to SGD, say: the lesson's
    optimizer change) it builds the new one over the same parameters; between phases of the
    same class it carries on with the same optimizer and its state, as fastai 0.7 did (one-cycle
    is three SGD phases with one set of momentum buffers). Then it sets every param group's
    lr and momentum for the step.
    ``lr_factors`` are discriminative learning rates: one factor per parameter group, e.g.
    (0.01, 0.1, 1) trains the first layers 100 times slower than the head.
    """

    def __init__(self, param_groups: Iterable, phases: Sequence[TrainingPhase], iters_per_epoch: int,
                 lr_factors: Sequence[float] | None = None, weight_decay: float = 0.0):
        groups = list(param_groups)
        if groups and not isinstance(groups[0], (list, tuple)):
            groups = [groups]  # a plain parameter list: one group
        self.param_groups = [list(group) for group in groups]
        self.lr_factors = list(lr_factors) if lr_factors is not None else [1.0] * len(self.param_groups)
        if len(self.lr_factors) != len(self.param_groups):
            raise UserError("schedule.factors", "Give one learning-rate factor per layer group ({groups}), not {factors}.",
                            groups=len(self.param_groups), factors=len(self.lr_factors))
        if not all(isinstance(f, (int, float)) and math.isfinite(f) and f > 0 for f in self.lr_factors):
            raise UserError("schedule.factor_positive", "Learning-rate factors must be numbers above 0, such as (0.01, 0.1, 1).")
        self.weight_decay = weight_decay
        self.phases = list(phases)
        self.boundaries = phase_boundaries(self.phases, iters_per_epoch)
        self.phase_index: int | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    @property
    def total_iterations(self) -> int:
        return self.boundaries[-1]

    def phase_at(self, iteration: int) -> int:
        return int(np.searchsorted(self.boundaries, iteration, side="right")) - 1

    def optimizer_for(self, iteration: int) -> torch.optim.Optimizer:
        index = min(self.phase_at(iteration), len(self.phases) - 1)
        phase, start = self.phases[index], self.boundaries[index]
        n = self.boundaries[index + 1] - start
        lr = decayed(*phase.lr_span(), phase.lr_decay, iteration - start, n)
        momentum = decayed(*phase.momentum_span(), phase.momentum_decay, iteration - start, n)
        if index != self.phase_index:
            kind = OPTIMIZERS[phase.opt_fn]
            carries_on = kind.continues and isinstance(self.optimizer, TORCH_CLASS[phase.opt_fn])
            if not carries_on:
                groups = [{"params": params, "lr": lr * factor, "weight_decay": self.weight_decay}
                          for params, factor in zip(self.param_groups, self.lr_factors)]
                self.optimizer = kind.build(groups, lr, momentum)
            self.phase_index = index
        for group, factor in zip(self.optimizer.param_groups, self.lr_factors):
            group["lr"] = lr * factor
            write_momentum(group, momentum)  # plain SGD's is 0, also after an SGD-with-momentum phase
        return self.optimizer

    def image_size_for(self, iteration: int) -> int | None:
        return self.phases[min(self.phase_at(iteration), len(self.phases) - 1)].image_size
