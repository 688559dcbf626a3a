"""Lesson 13's TrainingPhase API: the decay formulas, the ready-made schedules, the plan
drawn by ``schedule_curves`` and ``PhaseDriver`` applying that plan to real torch optimizers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import UserError
from core.schedules import (MAX_ITERATIONS, OPTIMIZERS, DecayType, PhaseDriver, TrainingPhase, decayed,
                            phase_boundaries, phases_1cycle, phases_sgdr, read_momentum, schedule_curves, span)

START, END = 1e-2, 1e-4
N = 100


# ----- the formulas, written out independently of core.schedules ---------------------------------
def reference(kind: str, start: float, end: float, i: float, n: float, power: float = 1.0) -> float:
    t = i / n
    if kind == "no":
        return start
    if kind == "linear":
        return start + (end - start) * t
    if kind == "cosine":
        return end + (start - end) / 2 * (1 + math.cos(math.pi * t))
    if kind == "exponential":
        return start * (end / start) ** t
    if kind == "polynomial":
        return end + (start - end) * (1 - t) ** power
    raise AssertionError(kind)


DECAYS = [
    pytest.param(DecayType.NO, "no", 1.0, id="no"),
    pytest.param(DecayType.LINEAR, "linear", 1.0, id="linear"),
    pytest.param(DecayType.COSINE, "cosine", 1.0, id="cosine"),
    pytest.param(DecayType.EXPONENTIAL, "exponential", 1.0, id="exponential"),
    pytest.param((DecayType.POLYNOMIAL, 2), "polynomial", 2.0, id="poly2"),
    pytest.param((DecayType.POLYNOMIAL, 0.9), "polynomial", 0.9, id="poly0.9"),
]


@pytest.mark.parametrize("decay, kind, power", DECAYS)
@pytest.mark.parametrize("i", [0, N // 2, N])
def test_decay_formula_at_start_middle_and_end(decay, kind, power, i):
    got = decayed(START, END, decay, i, N)
    assert isinstance(got, float)
    assert got == pytest.approx(reference(kind, START, END, i, N, power), rel=1e-12)


@pytest.mark.parametrize("decay, kind, power", DECAYS)
def test_decay_reaches_start_and_end(decay, kind, power):
    assert decayed(START, END, decay, 0, N) == pytest.approx(START, rel=1e-12)
    expected_end = START if kind == "no" else END
    assert decayed(START, END, decay, N, N) == pytest.approx(expected_end, rel=1e-12)


@pytest.mark.parametrize("decay, expected_half", [
    (DecayType.NO, 1e-2),
    (DecayType.LINEAR, (1e-2 + 1e-4) / 2),
    (DecayType.COSINE, (1e-2 + 1e-4) / 2),   # cos(π/2) = 0: halfway between
    (DecayType.EXPONENTIAL, 1e-3),           # geometric mean of 1e-2 and 1e-4
    ((DecayType.POLYNOMIAL, 2), 1e-4 + 9.9e-3 * 0.25),
    ((DecayType.POLYNOMIAL, 0.9), 1e-4 + 9.9e-3 * 0.5**0.9),
])
def test_decay_halfway_values_by_hand(decay, expected_half):
    assert decayed(1e-2, 1e-4, decay, 50, 100) == pytest.approx(expected_half, rel=1e-12)


@pytest.mark.parametrize("decay, kind, power", DECAYS)
def test_decay_over_an_array_matches_each_scalar(decay, kind, power):
    i = np.arange(N + 1)
    values = decayed(START, END, decay, i, N)
    assert isinstance(values, np.ndarray) and values.shape == (N + 1,)
    np.testing.assert_allclose(values, [reference(kind, START, END, k, N, power) for k in i], rtol=1e-12)


@pytest.mark.parametrize("decay", [DecayType.LINEAR, DecayType.COSINE,
                                   (DecayType.POLYNOMIAL, 2), (DecayType.POLYNOMIAL, 0.9)],
                         ids=["linear", "cosine", "poly2", "poly0.9"])
def test_scalar_lr_with_a_decay_decays_to_zero(decay):
    assert span(1e-2, decay, "lr") == (1e-2, 0.0)
    phase = TrainingPhase(epochs=1, lr=1e-2, lr_decay=decay)
    assert phase.lr_span() == (1e-2, 0.0)
    assert decayed(*phase.lr_span(), decay, 0, N) == pytest.approx(1e-2, rel=1e-12)
    assert decayed(*phase.lr_span(), decay, N, N) == pytest.approx(0.0, abs=1e-15)
    lr = schedule_curves([phase], N)["lr"].to_numpy()
    assert lr[0] == pytest.approx(1e-2, rel=1e-12)
    assert np.all(np.diff(lr) < 0)
    assert lr[-1] < 1e-3


def test_scalar_lr_with_no_decay_stays():
    assert span(1e-2, DecayType.NO, "lr") == (1e-2, 1e-2)
    phase = TrainingPhase(epochs=1, lr=1e-2)
    assert decayed(*phase.lr_span(), DecayType.NO, N, N) == 1e-2
    assert (schedule_curves([phase], N)["lr"] == 1e-2).all()


# ----- ready-made schedules ----------------------------------------------------------------------
def test_1cycle_phases():
    phases = phases_1cycle(3, 1e-2, 10, 10, .95, .85)
    assert [p.epochs for p in phases] == pytest.approx([1.35, 1.35, 0.3])
    assert [p.opt_fn for p in phases] == ["sgd_momentum"] * 3
    expected_lr = [(1e-3, 1e-2), (1e-2, 1e-3), (1e-3, 1e-5)]
    expected_mom = [(.95, .85), (.85, .95), (.95, .95)]
    for phase, lr, mom in zip(phases, expected_lr, expected_mom):
        assert phase.lr_span() == pytest.approx(lr, rel=1e-12)
        assert phase.lr_decay is DecayType.LINEAR
        assert phase.momentum_span() == pytest.approx(mom, rel=1e-12)


def test_1cycle_curves():
    curves = schedule_curves(phases_1cycle(3, 1e-2, 10, 10, .95, .85), iters_per_epoch=100)
    assert len(curves) == 300
    assert curves["lr"].iloc[0] == pytest.approx(1e-3, rel=1e-12)
    assert curves["lr"].idxmax() == 135
    assert curves["lr"].max() == pytest.approx(1e-2, rel=1e-12)
    assert curves["momentum"].iloc[0] == pytest.approx(.95)
    assert curves["momentum"].iloc[135] == pytest.approx(.85)
    assert curves["momentum"].iloc[270:].to_numpy() == pytest.approx([.95] * 30)
    assert curves["lr"].iloc[270] == pytest.approx(1e-3, rel=1e-12)
    assert curves["lr"].iloc[-1] < curves["lr"].iloc[270]
    assert curves["lr"].iloc[-1] > 1e-5
    phase = curves["phase"].to_numpy()
    assert (phase[:135] == 1).all() and (phase[135:270] == 2).all() and (phase[270:] == 3).all()
    assert phase_boundaries(phases_1cycle(3, 1e-2, 10, 10, .95, .85), 100) == [0, 135, 270, 300]


@pytest.mark.parametrize("num_cycle, cycle_len, cycle_mult, epochs", [
    (3, 1, 2, [0.05, 0.95, 2, 4]),
    (2, 2, 2, [0.1, 1.9, 4]),
    (3, 1, 1, [0.05, 0.95, 1, 1]),
    (1, 4, 2, [0.2, 3.8]),
])
def test_sgdr_phase_lengths(num_cycle, cycle_len, cycle_mult, epochs):
    phases = phases_sgdr(1e-2, "sgd_momentum", num_cycle, cycle_len, cycle_mult)
    assert [p.epochs for p in phases] == pytest.approx(epochs)
    assert phases[0].lr_span() == pytest.approx((1e-4, 1e-4))
    assert phases[0].lr_decay is DecayType.NO
    for phase in phases[1:]:
        assert phase.lr_span() == (1e-2, 0.0)
        assert phase.lr_decay is DecayType.COSINE


def test_sgdr_cycles_restart_at_lr():
    phases = phases_sgdr(1e-2, "adam", 3, 1, 2)
    boundaries = phase_boundaries(phases, 100)
    assert boundaries == [0, 5, 100, 300, 700]
    curves = schedule_curves(phases, 100)
    lr = curves["lr"].to_numpy()
    assert lr[:5].tolist() == pytest.approx([1e-4] * 5, rel=1e-12)
    for start, stop in zip(boundaries[1:], boundaries[2:]):
        assert lr[start] == pytest.approx(1e-2, rel=1e-12)  # restart
        assert np.all(np.diff(lr[start:stop]) < 0)            # then cosine down
        assert lr[stop - 1] < 1e-2 * 0.01                     # almost to 0 before the next restart
    assert (curves["optimizer"] == "Adam").all()


# ----- the plan -----------------------------------------------------------------------------------
MIXED = [
    TrainingPhase(epochs=1, opt_fn="adam", lr=(1e-3, 1e-4), lr_decay=DecayType.COSINE,
                  momentum=(0.95, 0.85), momentum_decay=DecayType.LINEAR),
    TrainingPhase(epochs=1.5, opt_fn="sgd_momentum", lr=(1e-2, 1e-3), lr_decay=DecayType.LINEAR,
                  momentum=(0.8, 0.95), momentum_decay=(DecayType.POLYNOMIAL, 2)),
    TrainingPhase(epochs=0.5, opt_fn="rmsprop", lr=(1e-3, 1e-5), lr_decay=DecayType.EXPONENTIAL),
    TrainingPhase(epochs=0.5, opt_fn="sgd", lr=1e-3, lr_decay=(DecayType.POLYNOMIAL, 0.9)),
]


def test_schedule_curves_columns_and_rows():
    ipe = 8
    curves = schedule_curves(MIXED, ipe)
    assert list(curves.columns) == ["iteration", "epoch", "phase", "optimizer", "lr", "momentum"]
    assert phase_boundaries(MIXED, ipe) == [0, 8, 20, 24, 28]
    assert len(curves) == 28
    np.testing.assert_array_equal(curves["iteration"].to_numpy(), np.arange(28))
    np.testing.assert_allclose(curves["epoch"].to_numpy(), np.arange(28) / ipe, rtol=1e-15)
    expected_phase = [1] * 8 + [2] * 12 + [3] * 4 + [4] * 4
    assert curves["phase"].tolist() == expected_phase
    assert curves["optimizer"].tolist() == (["Adam"] * 8 + ["SGD+momentum"] * 12 + ["RMSprop"] * 4 + ["SGD"] * 4)
    # phase 3 (RMSprop) and 4 (plain SGD) have no momentum given: torch's default, 0
    assert (curves["momentum"].iloc[20:] == 0.0).all()
    # each phase starts at its own start value
    assert curves["lr"].iloc[[0, 8, 20, 24]].tolist() == pytest.approx([1e-3, 1e-2, 1e-3, 1e-3], rel=1e-12)
    assert curves["momentum"].iloc[[0, 8]].tolist() == pytest.approx([0.95, 0.8], rel=1e-12)


def test_default_momentum_per_optimizer():
    curves = schedule_curves([TrainingPhase(1, opt) for opt in ("sgd", "sgd_momentum", "adam", "rmsprop")], 2)
    assert curves["momentum"].tolist() == [0.0, 0.0, 0.9, 0.9, 0.9, 0.9, 0.0, 0.0]


# ----- applying the plan to torch -----------------------------------------------------------------
def drive(phases, ipe, model=None, param_groups=None, lr_factors=None, seed=0):
    """Train a tiny model with PhaseDriver; record what each optimizer held at each step."""
    torch.manual_seed(seed)
    model = model if model is not None else nn.Linear(4, 2)
    groups = param_groups if param_groups is not None else model.parameters()
    driver = PhaseDriver(groups, phases, ipe, lr_factors=lr_factors)
    x, y = torch.randn(32, 4), torch.randn(32, 2)
    record = {"lr": [], "momentum": [], "optimizer": [], "class": []}
    for iteration in range(driver.total_iterations):
        optimizer = driver.optimizer_for(iteration)
        record["lr"].append([g["lr"] for g in optimizer.param_groups])
        record["momentum"].append([read_momentum(g) for g in optimizer.param_groups])
        record["optimizer"].append(optimizer)
        record["class"].append(type(optimizer))
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    return driver, model, record


def test_driver_reproduces_an_sgd_momentum_schedule():
    phases = phases_1cycle(3, 1e-2, 10, 10, .95, .85)
    driver, _, record = drive(phases, 20)
    curves = schedule_curves(phases, 20)
    assert driver.total_iterations == len(curves) == 60
    np.testing.assert_allclose(np.array(record["lr"])[:, 0], curves["lr"].to_numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(np.array(record["momentum"])[:, 0], curves["momentum"].to_numpy(), rtol=1e-12, atol=0)
    assert set(record["class"]) == {torch.optim.SGD}


def test_driver_reproduces_an_adam_schedule():
    phases = [
        TrainingPhase(epochs=2, opt_fn="adam", lr=(1e-3, 1e-5), lr_decay=DecayType.COSINE,
                      momentum=(0.95, 0.85), momentum_decay=DecayType.LINEAR),
        TrainingPhase(epochs=1, opt_fn="adam", lr=(1e-3, 1e-5), lr_decay=DecayType.EXPONENTIAL,
                      momentum=(0.85, 0.95), momentum_decay=(DecayType.POLYNOMIAL, 0.9)),
        TrainingPhase(epochs=1, opt_fn="adam", lr=1e-4),
    ]
    _, _, record = drive(phases, 10)
    curves = schedule_curves(phases, 10)
    np.testing.assert_allclose(np.array(record["lr"])[:, 0], curves["lr"].to_numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(np.array(record["momentum"])[:, 0], curves["momentum"].to_numpy(), rtol=1e-12, atol=0)
    assert set(record["class"]) == {torch.optim.Adam}
    # Adam's momentum is beta1; beta2 stays fastai's 0.99
    assert {g["betas"][1] for opt in record["optimizer"] for g in opt.param_groups} == {0.99}


def test_driver_changes_optimizer_at_each_boundary_and_keeps_training_the_same_parameters():
    ipe = 8
    model = nn.Linear(4, 2)
    torch.manual_seed(1)
    before = [p.detach().clone() for p in model.parameters()]
    driver, model, record = drive(MIXED, ipe, model=model)
    curves = schedule_curves(MIXED, ipe)

    np.testing.assert_allclose(np.array(record["lr"])[:, 0], curves["lr"].to_numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(np.array(record["momentum"])[:, 0], curves["momentum"].to_numpy(), rtol=1e-12, atol=0)

    expected = {"Adam": torch.optim.Adam, "SGD+momentum": torch.optim.SGD,
                "RMSprop": torch.optim.RMSprop, "SGD": torch.optim.SGD}
    assert record["class"] == [expected[label] for label in curves["optimizer"]]
    # a new optimizer object exactly at each boundary, the same one within a phase
    boundaries = driver.boundaries
    assert boundaries == [0, 8, 20, 24, 28]
    for it in range(1, 28):
        same = record["optimizer"][it] is record["optimizer"][it - 1]
        assert same == (it not in boundaries), it
    assert record["optimizer"][8].defaults["momentum"] == pytest.approx(0.8)
    assert record["optimizer"][24].defaults["momentum"] == 0

    params = list(model.parameters())
    for optimizer in {id(o): o for o in record["optimizer"]}.values():
        assert len(optimizer.param_groups) == 1
        held = optimizer.param_groups[0]["params"]
        assert len(held) == len(params) and all(a is b for a, b in zip(held, params))

    after = list(model.parameters())
    for old, new in zip(before, after):
        assert torch.isfinite(new).all()
        assert not torch.equal(old, new)


def test_driver_trains_the_model_towards_lower_loss():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    phases = [TrainingPhase(epochs=1, opt_fn="adam", lr=(1e-2, 1e-3), lr_decay=DecayType.COSINE),
              TrainingPhase(epochs=1, opt_fn="sgd_momentum", lr=(1e-2, 1e-3), lr_decay=DecayType.LINEAR)]
    driver = PhaseDriver(model.parameters(), phases, 50)
    first = nn.functional.mse_loss(model(x), y).item()
    for it in range(driver.total_iterations):
        opt = driver.optimizer_for(it)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    last = nn.functional.mse_loss(model(x), y).item()
    assert math.isfinite(last) and last < first / 2


def three_groups():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    groups = [list(model[0].parameters()), list(model[2].parameters()), list(model[4].parameters())]
    return model, groups


def test_discriminative_learning_rates():
    factors = (0.01, 0.1, 1)
    model, groups = three_groups()
    before = [p.detach().clone() for p in model.parameters()]
    _, _, record = drive(MIXED, 8, model=model, param_groups=groups, lr_factors=factors)
    curves = schedule_curves(MIXED, 8)
    lrs = np.array(record["lr"])
    assert lrs.shape == (28, 3)
    for column, factor in enumerate(factors):
        np.testing.assert_allclose(lrs[:, column], curves["lr"].to_numpy() * factor, rtol=1e-12, atol=0)
    moms = np.array(record["momentum"])
    for column in range(3):
        np.testing.assert_allclose(moms[:, column], curves["momentum"].to_numpy(), rtol=1e-12, atol=0)
    for optimizer in record["optimizer"]:
        assert [g["params"] for g in optimizer.param_groups] == groups
    for old, new in zip(before, model.parameters()):
        assert torch.isfinite(new).all() and not torch.equal(old, new)


@pytest.mark.parametrize("factors", [(0.1, 1), (0.01, 0.1, 1, 1), ()])
def test_wrong_number_of_lr_factors(factors):
    _, groups = three_groups()
    with pytest.raises(UserError) as error:
        PhaseDriver(groups, MIXED, 8, lr_factors=factors)
    assert error.value.key == "schedule.factors"
    assert error.value.params == {"groups": 3, "factors": len(factors)}
    assert "3" in str(error.value) and "factor" in str(error.value)


@pytest.mark.parametrize("factors", [(-1, 0.1, 1), (float("nan"), 0.1, 1), (0, 0.1, 1)])
def test_lr_factors_must_be_positive(factors):
    _, groups = three_groups()
    with pytest.raises(UserError) as error:
        PhaseDriver(groups, MIXED, 8, lr_factors=factors)
    assert error.value.key == "schedule.factor_positive"


def test_image_size_for_follows_the_phases():
    phases = [TrainingPhase(1, image_size=16), TrainingPhase(0.5), TrainingPhase(1.5, image_size=28),
              TrainingPhase(1, image_size=32)]
    driver = PhaseDriver(nn.Linear(2, 2).parameters(), phases, 10)
    assert driver.boundaries == [0, 10, 15, 30, 40]
    sizes = [driver.image_size_for(it) for it in range(40)]
    assert sizes == [16] * 10 + [None] * 5 + [28] * 15 + [32] * 10


def test_optimizers_table():
    assert set(OPTIMIZERS) == {"sgd", "sgd_momentum", "adam", "rmsprop"}
    assert read_momentum({"betas": (0.8, 0.99), "momentum": 0.3}) == 0.8
    assert read_momentum({"momentum": 0.3}) == 0.3
    assert read_momentum({"lr": 1.0}) == 0.0


# ----- bad input ----------------------------------------------------------------------------------
def _params():
    return nn.Linear(2, 2).parameters()


BAD = [
    pytest.param(lambda: TrainingPhase(epochs=-1), "phase.epochs_positive", "above 0", id="negative-epochs"),
    pytest.param(lambda: TrainingPhase(epochs=0), "phase.epochs_positive", "above 0", id="zero-epochs"),
    pytest.param(lambda: TrainingPhase(epochs=float("nan")), "phase.not_number", "number", id="nan-epochs"),
    pytest.param(lambda: TrainingPhase(1, lr=(1e-3, 1e-2, 1e-3), lr_decay=DecayType.LINEAR), "phase.pair",
                 "(start, end)", id="lr-3-tuple"),
    pytest.param(lambda: TrainingPhase(1, lr=1e-2, lr_decay="cosine"), "phase.bad_decay", "linear, cosine",
                 id="decay-string"),
    pytest.param(lambda: TrainingPhase(1, lr=1e-2, lr_decay=2), "phase.bad_decay", "polynomial", id="decay-number"),
    pytest.param(lambda: TrainingPhase(1, momentum=0.9, momentum_decay="linear"), "phase.bad_decay", "linear",
                 id="momentum-decay-string"),
    pytest.param(lambda: TrainingPhase(1, lr_decay=DecayType.POLYNOMIAL), "phase.poly_needs_power",
                 "(POLYNOMIAL, 2)", id="bare-polynomial"),
    pytest.param(lambda: TrainingPhase(1, lr_decay=(DecayType.POLYNOMIAL, 0)), "phase.poly_power", "above 0",
                 id="poly-power-0"),
    pytest.param(lambda: TrainingPhase(1, lr_decay=(DecayType.POLYNOMIAL, -2)), "phase.poly_power", "above 0",
                 id="poly-power-negative"),
    pytest.param(lambda: TrainingPhase(1, lr=1e-2, lr_decay=DecayType.EXPONENTIAL), "phase.exp_zero",
                 "end value above 0", id="exp-scalar-lr"),
    pytest.param(lambda: TrainingPhase(1, lr=(1e-2, 0), lr_decay=DecayType.EXPONENTIAL), "phase.exp_zero",
                 "end value above 0", id="exp-lr-to-0"),
    pytest.param(lambda: TrainingPhase(1, momentum=0.9, momentum_decay=DecayType.EXPONENTIAL), "phase.exp_zero",
                 "cosine or linear", id="exp-scalar-momentum"),
    pytest.param(lambda: phase_boundaries([], 10), "schedule.no_phases", "add a row", id="empty-boundaries"),
    pytest.param(lambda: schedule_curves([], 10), "schedule.no_phases", "add a row", id="empty-curves"),
    pytest.param(lambda: PhaseDriver(_params(), [], 10), "schedule.no_phases", "add a row", id="empty-driver"),
    pytest.param(lambda: schedule_curves([TrainingPhase(1)], 0), "schedule.iters_per_epoch", "at least one",
                 id="zero-iters-per-epoch"),
    pytest.param(lambda: schedule_curves([TrainingPhase(MAX_ITERATIONS // 100 + 1)], 100), "schedule.too_long",
                 "fewer epochs", id="too-many-iterations"),
    pytest.param(lambda: schedule_curves([TrainingPhase(1), TrainingPhase(0.001)], 100),
                 "schedule.phase_too_short", "make it longer", id="phase-under-one-iteration"),
    pytest.param(lambda: TrainingPhase(1, opt_fn="sgd", momentum=0.9), "phase.sgd_no_momentum",
                 "SGD with momentum", id="plain-sgd-with-momentum"),
    pytest.param(lambda: TrainingPhase(1, momentum=1.0), "phase.momentum_range", "below 1", id="momentum-1"),
    pytest.param(lambda: TrainingPhase(1, opt_fn="adam", momentum=(0.9, 1.2), momentum_decay=DecayType.LINEAR),
                 "phase.momentum_range", "below 1", id="momentum-end-above-1"),
    pytest.param(lambda: TrainingPhase(1, momentum=-0.1), "phase.momentum_range", "at least 0", id="momentum-negative"),
    pytest.param(lambda: TrainingPhase(1, lr=float("nan")), "phase.not_number", "lr must be a number", id="nan-lr"),
    pytest.param(lambda: TrainingPhase(1, lr=(1e-3, float("inf")), lr_decay=DecayType.LINEAR), "phase.not_number",
                 "lr must be a number", id="inf-lr-end"),
    pytest.param(lambda: TrainingPhase(1, momentum=float("nan")), "phase.not_number", "momentum must be a number",
                 id="nan-momentum"),
    pytest.param(lambda: TrainingPhase(1, lr=0), "phase.lr_positive", "above 0", id="zero-lr"),
    pytest.param(lambda: TrainingPhase(1, lr=(1e-2, -1e-3), lr_decay=DecayType.LINEAR), "phase.lr_positive",
                 "above 0", id="negative-lr-end"),
    pytest.param(lambda: TrainingPhase(1, opt_fn="adamw"), "phase.bad_optimizer", "sgd_momentum", id="unknown-optimizer"),
    pytest.param(lambda: TrainingPhase(1, image_size=100), "phase.image_size", "8 to 32", id="image-size-too-big"),
    pytest.param(lambda: TrainingPhase(1, image_size=40), "phase.image_size", "8 to 32", id="image-size-past-1x1"),
    pytest.param(lambda: phases_1cycle(3, 1e-2, 0, 10, .95, .85), "preset.bad_argument", "div", id="1cycle-div-0"),
    pytest.param(lambda: phases_1cycle(3, 1e-2, 10, 100, .95, .85), "preset.bad_argument", "pct", id="1cycle-pct-100"),
    pytest.param(lambda: phases_sgdr(0.1, "sgd_momentum", 3, 1, 1e300), "preset.bad_argument", "cycle_mult", id="sgdr-overflow"),
    pytest.param(lambda: phases_sgdr(0.1, "sgd_momentum", 10**6, 1, 1), "preset.bad_argument", "num_cycle", id="sgdr-millions"),
    pytest.param(lambda: phases_sgdr(0.1, "sgd_momentum", 2.5, 1, 2), "preset.bad_argument", "num_cycle", id="sgdr-half-cycle"),
]


@pytest.mark.parametrize("make, key, hint", BAD)
def test_bad_input_gets_a_helpful_user_error(make, key, hint):
    with pytest.raises(UserError) as error:
        make()
    assert isinstance(error.value, ValueError)
    assert error.value.key == key
    assert hint in str(error.value)


def test_user_error_names_the_bad_value():
    with pytest.raises(UserError) as error:
        TrainingPhase(epochs=-2)
    assert error.value.params == {"value": -2}
    assert "-2" in str(error.value)
    with pytest.raises(UserError) as error:
        schedule_curves([TrainingPhase(1), TrainingPhase(0.001)], 100)
    assert error.value.params == {"phase": 2, "epochs": 0.001}
    assert "Phase 2" in str(error.value)
    with pytest.raises(UserError) as error:
        TrainingPhase(1, opt_fn="adamw")
    assert "adamw" in str(error.value)


# ----- momentum decays that cannot apply are refused, not crashed on -----------------------------
@pytest.mark.parametrize("opt_fn", ["sgd", "sgd_momentum", "adam", "rmsprop"])
def test_a_momentum_decay_without_a_momentum_is_refused(opt_fn):
    with pytest.raises(UserError) as error:
        TrainingPhase(epochs=1, opt_fn=opt_fn, momentum_decay=DecayType.EXPONENTIAL)
    assert error.value.key == "phase.decay_without_momentum"
    assert "momentum start" in str(error.value)


def test_rmsprop_momentum_rising_from_zero_is_refused_with_a_way_out():
    """torch's RMSprop keeps no momentum buffer if momentum is 0 at its first step, so a ramp
    from 0 would crash at the second step; the message says to start above 0, and that trains."""
    with pytest.raises(UserError) as error:
        TrainingPhase(epochs=1, opt_fn="rmsprop", lr=1e-3, momentum=(0.0, 0.5), momentum_decay=DecayType.LINEAR)
    assert "0.01" in str(error.value)
    phases = [TrainingPhase(epochs=1, opt_fn="rmsprop", lr=1e-3, momentum=(0.01, 0.5), momentum_decay=DecayType.LINEAR)]
    _, model, record = drive(phases, 10)
    np.testing.assert_allclose(np.array(record["momentum"])[:, 0],
                               schedule_curves(phases, 10)["momentum"].to_numpy(), rtol=1e-12, atol=0)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_phases_of_the_same_optimizer_class_carry_on_with_one_optimizer_and_its_state():
    """One-cycle's three SGD phases share one optimizer and its momentum buffers (fastai 0.7's
    set_opt_fn rebuilt only when the optimizer's type changed); RMSprop always starts afresh."""
    model = torch.nn.Linear(4, 2)
    driver = PhaseDriver(model.parameters(), phases_1cycle(1, 0.1, 10, 10, 0.95, 0.85), 30)
    seen = []
    for iteration in range(driver.total_iterations):
        optimizer = driver.optimizer_for(iteration)
        seen.append(optimizer)
        model(torch.randn(3, 4)).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    assert len({id(optimizer) for optimizer in seen}) == 1
    assert all("momentum_buffer" in state for state in seen[-1].state.values())  # kept from phase 1

    plain_after_momentum = [TrainingPhase(1, "sgd_momentum", 0.1), TrainingPhase(1, "sgd", 0.1)]
    driver = PhaseDriver(torch.nn.Linear(4, 2).parameters(), plain_after_momentum, 5)
    first, second = driver.optimizer_for(0), driver.optimizer_for(5)
    assert first is second and second.param_groups[0]["momentum"] == 0.0  # plain SGD: no momentum any more

    rmsprop_twice = [TrainingPhase(1, "rmsprop", 1e-3), TrainingPhase(1, "rmsprop", 1e-3, momentum=0.5)]
    driver = PhaseDriver(torch.nn.Linear(4, 2).parameters(), rmsprop_twice, 5)
    assert driver.optimizer_for(0) is not driver.optimizer_for(5)
