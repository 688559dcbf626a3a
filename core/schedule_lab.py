"""The learning-rate & momentum lab of Lesson 13: the phase table, its presets and link form,
and the two job runners (train with a schedule; the LR finder), on the MNIST lab's models.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from core import mnist_lab, specs
from core.data.mnist import DigitTensors
from core.errors import UserError
from core.lr_finder import find_lr, sweep_lrs
from core.models import REGISTRY, build
from core.specs import spec_from_values
from core.schedules import (OPTIMIZERS, DecayType, PhaseDriver, TrainingPhase, phase_boundaries,
                            phases_1cycle, phases_sgdr, schedule_curves)
from core.train import (CancelCheck, DeviceConfig, Learner, NaNGuard, PhaseSchedule, Reporter, TensorBatches,
                        Validation, WeightAveraging)

KIND, FINDER_KIND = "schedule", "lr_finder"
ARCHITECTURES = tuple(REGISTRY)
DATA_SIZES = (6_000, 60_000)  # digits to train on: a quick taste, or all of MNIST
MAX_PHASES = 20
MAX_TRAIN_EPOCHS = 30
DISCRIMINATIVE_FACTORS = (0.01, 0.1, 1.0)  # the body's first third learns 100x slower than the head
DECAYS = tuple(decay.value for decay in DecayType)
COLUMNS = ("epochs", "optimizer", "lr_start", "lr_end", "lr_decay", "power",
           "mom_start", "mom_end", "mom_decay", "image_size")
NUMERIC = ("epochs", "lr_start", "lr_end", "power", "mom_start", "mom_end", "image_size")


# ----- table rows <-> phases -------------------------------------------------------------------
def phase_from_row(row: dict) -> TrainingPhase:
    """The phase a table row describes (blank lr_end: a scalar lr; blank momentum: the optimizer's own)."""
    def pair(start, end):
        return start if end is None else (start, end)

    def decay(name, power):
        try:
            kind = DecayType(name)
        except ValueError:
            raise UserError("phase.bad_decay", "Unknown decay {decay}: use no, linear, cosine, exponential or polynomial.",
                            decay=str(name)[:40]) from None
        if kind is DecayType.POLYNOMIAL:
            if power is None:
                raise UserError("phase.poly_needs_power", "Polynomial decay needs a power: type one in the power column, such as 2 or 0.9.")
            return kind, power
        return kind

    if row.get("lr_start") is None:
        raise UserError("phase.lr_missing", "Every phase needs a learning rate: fill in lr start.")
    momentum = None if row.get("mom_start") is None else pair(row["mom_start"], row.get("mom_end"))
    image_size = row.get("image_size")
    if isinstance(image_size, float) and image_size.is_integer():
        image_size = int(image_size)
    return TrainingPhase(
        epochs=row.get("epochs") if row.get("epochs") is not None else 0,
        opt_fn=row.get("optimizer") or "sgd_momentum",
        lr=pair(row["lr_start"], row.get("lr_end")),
        lr_decay=decay(row.get("lr_decay") or "no", row.get("power")),
        momentum=momentum,
        momentum_decay=decay(row.get("mom_decay") or "no", row.get("power")),
        image_size=image_size,
    )


def phases_from_rows(rows: list[dict]) -> list[TrainingPhase]:
    """The phases of a table; a UserError whose ``phase`` attribute names the bad row."""
    if len(rows) > MAX_PHASES:
        raise UserError("schedule.too_many_phases", "Use at most {most} phases (the table has {count}).",
                        most=MAX_PHASES, count=len(rows))
    phases = []
    for number, row in enumerate(rows, start=1):
        try:
            phases.append(phase_from_row(row))
        except UserError as error:
            error.phase = number
            raise
    if not phases:
        raise UserError("schedule.no_phases", "The schedule has no phases: add a row to the table, or pick a preset.")
    return phases


def row_from_phase(phase: TrainingPhase) -> dict:
    lr_kind, power = _decay_parts(phase.lr_decay)
    mom_kind, mom_power = _decay_parts(phase.momentum_decay)
    lr_pair = phase.lr if isinstance(phase.lr, tuple) else (phase.lr, None)
    mom_pair = phase.momentum if isinstance(phase.momentum, tuple) else (phase.momentum, None)
    return {
        "epochs": round(float(phase.epochs), 10), "optimizer": phase.opt_fn,
        "lr_start": float(lr_pair[0]), "lr_end": _float_or_none(lr_pair[1]), "lr_decay": lr_kind,
        "power": power if lr_kind == "polynomial" else (mom_power if mom_kind == "polynomial" else None),
        "mom_start": _float_or_none(mom_pair[0]), "mom_end": _float_or_none(mom_pair[1]), "mom_decay": mom_kind,
        "image_size": phase.image_size,
    }


def _decay_parts(decay) -> tuple[str, float | None]:
    if isinstance(decay, tuple):
        return decay[0].value, float(decay[1])
    return decay.value, None


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)


def rows_from_frame(frame: pd.DataFrame) -> list[dict]:
    """What ``st.data_editor`` returns, as plain rows: blanks as None, wholly empty rows dropped."""
    rows = []
    for record in frame.reindex(columns=list(COLUMNS)).to_dict("records"):
        row = {key: (None if _blank(value) else value) for key, value in record.items()}
        for key in NUMERIC:
            if row[key] is not None:
                row[key] = float(row[key])
        if any(value is not None for value in row.values()):
            rows.append(row)
    return rows


def _blank(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def frame_from_rows(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for key in NUMERIC:
        frame[key] = pd.to_numeric(frame[key], errors="coerce").astype(float)
    return frame


# ----- the link form of a table ----------------------------------------------------------------------
ROW_SEPARATOR, CELL_SEPARATOR = "~", ","


def rows_to_text(rows: list[dict]) -> str:
    """A compact, readable form of the table for the URL: cells split by ',' and rows by '~'."""
    def cell(value):
        if value is None:
            return ""
        return repr(float(value)).removesuffix(".0") if isinstance(value, (int, float)) else str(value)

    return ROW_SEPARATOR.join(CELL_SEPARATOR.join(cell(row.get(key)) for key in COLUMNS) for row in rows)


def is_table_text(text: str) -> bool:
    try:
        return bool(rows_from_text(text))
    except ValueError:
        return False


def rows_from_text(text: str) -> list[dict]:
    """The table a link holds; ValueError when the text is not one."""
    if not text or len(text) > 4000:
        raise ValueError("empty or too long")
    parts = text.split(ROW_SEPARATOR)
    if len(parts) > MAX_PHASES:
        raise ValueError(f"{len(parts)} phases")
    rows = []
    for part in parts:
        cells = part.split(CELL_SEPARATOR)
        if len(cells) != len(COLUMNS):
            raise ValueError(f"{len(cells)} cells")
        row = {}
        for key, value in zip(COLUMNS, cells):
            value = value.strip()
            if key in NUMERIC:
                row[key] = float(value) if value else None
                if row[key] is not None and not math.isfinite(row[key]):
                    raise ValueError(value)
            else:
                row[key] = value or None
        if row["optimizer"] not in (None, *OPTIMIZERS) or any(row[k] not in (None, *DECAYS) for k in ("lr_decay", "mom_decay")):
            raise ValueError("unknown name")
        rows.append(row)
    return rows


# ----- presets -----------------------------------------------------------------------------------------
# The lesson's examples use its CIFAR numbers (1e-2, 1e-3); they train the MNIST nets well too.
# "constant" and "one_cycle" share a peak of 0.1 over 3 epochs, so that the two compare fairly.
ONE_CYCLE_DEFAULTS = {"cycle_len": 3.0, "lr": 0.1, "div": 10.0, "pct": 10.0, "max_mom": 0.95, "min_mom": 0.85}
SGDR_DEFAULTS = {"lr": 0.05, "num_cycle": 3, "cycle_len": 1.0, "cycle_mult": 2.0}
PRESET_PARAMETERS = {"one_cycle": ONE_CYCLE_DEFAULTS, "sgdr": SGDR_DEFAULTS}


def preset_phases(name: str, **parameters) -> list[TrainingPhase]:
    """The phases of a named preset; one_cycle and sgdr take the lesson functions' arguments."""
    P, LIN, COS = TrainingPhase, DecayType.LINEAR, DecayType.COSINE
    fixed = {
        "constant": lambda: [P(3, "sgd_momentum", 0.1)],
        "step": lambda: [P(1, "sgd_momentum", 1e-2), P(2, "sgd_momentum", 1e-3)],
        "lesson_linear": lambda: [P(1, "sgd_momentum", 1e-2), P(1, "sgd_momentum", (1e-2, 1e-3), LIN), P(1, "sgd_momentum", 1e-3)],
        "lesson_cosine": lambda: [P(1, "sgd_momentum", 1e-2), P(1, "sgd_momentum", (1e-2, 1e-3), COS), P(1, "sgd_momentum", 1e-3)],
        "cosine_to_zero": lambda: [P(1, "sgd_momentum", 1e-2), P(1, "sgd_momentum", 1e-2, COS), P(1, "sgd_momentum", 1e-3)],
        "adam_then_sgd": lambda: [P(1, "adam", 1e-3, COS), P(2, "sgd_momentum", (1e-2, 1e-4), DecayType.EXPONENTIAL)],
        "progressive_resizing": lambda: [P(1, "sgd_momentum", (0.1, 0.05), COS, image_size=20),
                                         P(2, "sgd_momentum", (0.05, 1e-4), COS, image_size=28)],
    }
    if name == "one_cycle":
        return phases_1cycle(**{**ONE_CYCLE_DEFAULTS, **parameters})
    if name == "sgdr":
        values = {**SGDR_DEFAULTS, **parameters}
        return phases_sgdr(values["lr"], "sgd_momentum", int(values["num_cycle"]), values["cycle_len"], values["cycle_mult"])
    if name not in fixed:
        raise UserError("schedule.bad_preset", "Unknown preset {name}.", name=name)
    return fixed[name]()


PRESETS = ("one_cycle", "constant", "step", "lesson_linear", "lesson_cosine", "cosine_to_zero", "sgdr",
           "adam_then_sgd", "progressive_resizing")
DEFAULT_PRESET = "one_cycle"


def preset_rows(name: str, **parameters) -> list[dict]:
    return [row_from_phase(phase) for phase in preset_phases(name, **parameters)]


def scale_lrs(rows: list[dict], peak: float) -> list[dict]:
    """The table with every learning rate scaled so that its highest is ``peak`` (the LR
    finder's "use it"): the shape of the schedule stays, its height changes."""
    highest = max((value for row in rows for value in (row.get("lr_start"), row.get("lr_end")) if value), default=0)
    if not (highest > 0 and peak > 0):
        return rows
    factor = peak / highest
    return [{**row, **{key: row[key] * factor for key in ("lr_start", "lr_end") if row.get(key) is not None}} for row in rows]


# ----- torch's own schedulers, for comparison ---------------------------------------------------------
OVERLAYS = ("OneCycleLR", "CosineAnnealingWarmRestarts")
OVERLAY_MAX_ITERATIONS = 100_000  # stepping a torch scheduler takes ~13 µs: about 1.3 s for these


def torch_overlay(name: str, total_iterations: int, iters_per_epoch: int, max_lr: float) -> pd.DataFrame:
    """lr and momentum of torch's own scheduler over the same iterations, read back step by step
    (OneCycleLR with its defaults; CosineAnnealingWarmRestarts restarting after 1, 2, 4… epochs)."""
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=max_lr, momentum=0.9)
    if name == "OneCycleLR":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_iterations)
    elif name == "CosineAnnealingWarmRestarts":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=iters_per_epoch, T_mult=2)
    else:
        raise UserError("schedule.bad_overlay", "Unknown torch scheduler {name}.", name=name)
    lrs, momenta = np.empty(total_iterations), np.empty(total_iterations)
    group = optimizer.param_groups[0]
    for i in range(total_iterations):
        lrs[i], momenta[i] = group["lr"], group["momentum"]
        optimizer.step()
        if i < total_iterations - 1:
            scheduler.step()
    return pd.DataFrame({"iteration": np.arange(total_iterations), "lr": lrs, "momentum": momenta})


# ----- the run spec -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleSpec:
    """A training run with a phase schedule; ``asdict`` of it is what the job manager stores."""

    phases: tuple = field(default_factory=tuple)  # table rows (plain dicts)
    arch: str = "basic_cnn"
    batch_size: int = 128
    n_train: int = 6_000
    discriminative: bool = False  # per-layer-group learning rates DISCRIMINATIVE_FACTORS
    swa_start: float = 0.0  # epoch at which weight averaging starts; 0: no SWA
    seed: int = 0
    preset: str = ""  # the preset the table came from ("" for a table from a link), for labels
    edited: bool = False  # whether the table was changed after the preset filled it

    def to_dict(self) -> dict:
        values = asdict(self)
        values["phases"] = [dict(row) for row in self.phases]
        return values


def iterations_per_epoch(n_train: int, batch_size: int) -> int:
    """As many as TensorBatches cuts (a leftover batch of one is skipped when shuffling)."""
    _check_batch_size(batch_size)
    return len(TensorBatches(torch.empty(n_train, 0), torch.empty(n_train), batch_size, shuffle=True))


def _check_batch_size(batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 2 <= batch_size <= mnist_lab.MAX_BATCH:
        raise UserError("mnist.batch_range", "The batch size must be between 2 and {max} (got {batch}).",
                        batch=batch_size, max=mnist_lab.MAX_BATCH)


def size_of(spec: ScheduleSpec) -> str:
    """The MNIST size preset that this schedule's epochs over its digits amount to."""
    epochs = sum(phase.epochs for phase in phases_from_rows(list(spec.phases)))
    return mnist_lab.size_of(spec.arch, epochs, spec.n_train)


def size_of_values(values: dict) -> str:
    return size_of(spec_from_dict(values))


def validate(spec: ScheduleSpec) -> ScheduleSpec:
    if spec.arch not in REGISTRY:
        raise UserError("mnist.bad_arch", "Unknown architecture {arch}.", arch=spec.arch)
    if spec.n_train not in DATA_SIZES:
        raise UserError("schedule.bad_size", "Train on {sizes} digits.", sizes=" or ".join(f"{n:,}" for n in DATA_SIZES))
    _check_batch_size(spec.batch_size)
    if not isinstance(spec.preset, str) or len(spec.preset) > 40:
        raise UserError("schedule.bad_preset", "Unknown preset {name}.", name=str(spec.preset)[:40])
    if not isinstance(spec.seed, int) or not 0 <= spec.seed < 2**31:
        raise UserError("mnist.seed_range", "The seed must be between 0 and 2147483647 (got {seed}).", seed=spec.seed)
    phases = phases_from_rows(list(spec.phases))
    total_epochs = sum(phase.epochs for phase in phases)
    if total_epochs > MAX_TRAIN_EPOCHS:
        raise UserError("schedule.train_too_long", "Training is limited to {most} epochs here (the table has {epochs:g}).",
                        most=MAX_TRAIN_EPOCHS, epochs=total_epochs)
    phase_boundaries(phases, iterations_per_epoch(spec.n_train, spec.batch_size))
    if not (isinstance(spec.swa_start, (int, float)) and 0 <= spec.swa_start < total_epochs):
        raise UserError("schedule.swa_start", "SWA must start before training ends: pick an epoch from 0 (no SWA) to below {epochs:g}.",
                        epochs=total_epochs)
    return spec


def spec_from_dict(values: dict) -> ScheduleSpec:
    def rows_as_tuple(known: dict) -> dict:
        return {**known, "phases": tuple(dict(row) for row in known.get("phases", ()))}

    return spec_from_values(ScheduleSpec, values, validate, prepare=rows_as_tuple)


def readable_runs(runs: list[dict]) -> list[dict]:
    return specs.readable_runs(runs, spec_from_dict)


def layer_groups(model: nn.Module, count: int = 3) -> list[list[nn.Parameter]]:
    """The model's top-level layers cut into ``count`` consecutive groups of parameters, for
    discriminative learning rates (fastai's layer groups: early layers, middle, head)."""
    layers = [list(child.parameters()) for child in model.children()]
    layers = [params for params in layers if params]
    chunks = np.array_split(np.arange(len(layers)), count)
    return [[p for i in chunk for p in layers[i]] for chunk in chunks if len(chunk)]


# ----- the runners ---------------------------------------------------------------------------------------
def _training_data(spec_seed: int, n_train: int, device: DeviceConfig) -> tuple[DigitTensors, DigitTensors]:
    train = mnist_lab.cached_digits(True).subset(n_train, seed=spec_seed)
    if device.device.type == "cuda":
        train = DigitTensors(train.images.to(device.device), train.labels.to(device.device))
    return train, mnist_lab.cached_digits(False)


def run_schedule(spec_values: dict, context) -> None:
    """Train the MNIST model with the table's phases; every step reports the lr and momentum read
    back from the optimizer, so the page can draw them over the plan."""
    spec = spec_from_dict(spec_values)
    phases = phases_from_rows(list(spec.phases))
    device = DeviceConfig.auto()
    torch.manual_seed(spec.seed)
    train, valid = _training_data(spec.seed, spec.n_train, device)
    batches = TensorBatches(train.images, train.labels, spec.batch_size, shuffle=True, seed=spec.seed)
    model = device.prepare_model(build(spec.arch))
    groups = layer_groups(model) if spec.discriminative else [list(model.parameters())]
    factors = DISCRIMINATIVE_FACTORS[-len(groups):] if spec.discriminative else None
    driver = PhaseDriver(groups, phases, len(batches), lr_factors=factors)
    validation = Validation(valid.images, valid.labels, every=max(1, len(batches) // mnist_lab.VALIDATIONS_PER_EPOCH))
    callbacks = [CancelCheck(context.cancelled), PhaseSchedule(driver), NaNGuard(), validation,
                 Reporter(lambda row: context.emit("metrics", row))]
    averaging = None
    if spec.swa_start > 0:
        averaging = WeightAveraging(start_step=round(spec.swa_start * len(batches)), every=len(batches))
        callbacks.append(averaging)
    learner = Learner(model, batches, driver.optimizer_for(0), callbacks, device=device)
    started = time.perf_counter()
    learner.fit(driver.total_iterations / len(batches))
    result = {"accuracy": (validation.last_predicted == valid.labels).float().mean().item(),
              "seconds": time.perf_counter() - started, "device": device.describe(),
              "iterations": driver.total_iterations}
    if averaging is not None:
        averaged = averaging.finish(learner)
        if averaged is not None:
            _, result["swa_accuracy"], _ = learner.validate(valid.images, valid.labels, model=averaged)
            result["swa_models"] = averaging.models_averaged
    context.emit("result", result)


@dataclass(frozen=True)
class FinderSpec:
    arch: str = "basic_cnn"
    optimizer: str = "sgd_momentum"
    batch_size: int = 128
    n_train: int = 6_000
    start_lr: float = 1e-5
    end_lr: float = 10.0
    iterations: int = 100
    linear: bool = False
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def validate_finder(spec: FinderSpec) -> FinderSpec:
    if spec.arch not in REGISTRY or spec.optimizer not in OPTIMIZERS or spec.n_train not in DATA_SIZES:
        raise UserError("spec.bad", "These settings cannot be used: {error}", error="unknown model, optimizer or size")
    sweep_lrs(spec.start_lr, spec.end_lr, spec.iterations, spec.linear)  # the range check, with its message
    return spec


def finder_spec_from_dict(values: dict) -> FinderSpec:
    return spec_from_values(FinderSpec, values, validate_finder)


def run_lr_finder(spec_values: dict, context) -> None:
    """The LR finder on a fresh model of the chosen kind; each iteration's loss arrives live."""
    spec = finder_spec_from_dict(spec_values)
    device = DeviceConfig.auto()
    torch.manual_seed(spec.seed)
    train, _ = _training_data(spec.seed, spec.n_train, device)
    batches = TensorBatches(train.images, train.labels, spec.batch_size, shuffle=True, seed=spec.seed)
    kind = OPTIMIZERS[spec.optimizer]
    started = time.perf_counter()

    def on_step(row: dict) -> None:
        elapsed = time.perf_counter() - started
        step = row["iteration"] + 1
        context.emit("metrics", {**row, "step": step, "total_steps": row["total"], "elapsed": elapsed,
                                 "eta": elapsed / step * (row["total"] - step)})

    result = find_lr(build(spec.arch), batches, lambda params, lr: kind.build(params, lr, kind.default_momentum),
                     start_lr=spec.start_lr, end_lr=spec.end_lr, iterations=spec.iterations, linear=spec.linear,
                     device=device, on_step=on_step, is_cancelled=context.cancelled)
    context.emit("result", {"suggestion": result.suggestion, "steepest": result.steepest,
                            "stopped_early": result.stopped_early, "seconds": time.perf_counter() - started,
                            "device": device.describe()})


# ----- time estimates -------------------------------------------------------------------------------------
def estimate_seconds(spec: ScheduleSpec, seconds_per_step: dict[str, float]) -> float | None:
    """Expected time on this device, from the MNIST lab's measured step time (scaled by pixels
    for smaller images in progressive resizing); None until the worker has measured it."""
    measured = seconds_per_step.get(spec.arch)
    if measured is None:
        return None
    phases = phases_from_rows(list(spec.phases))
    per_epoch = iterations_per_epoch(spec.n_train, spec.batch_size) * spec.batch_size / 128
    work = sum(phase.epochs * (per_epoch * ((phase.image_size or 28) / 28) ** 2 + mnist_lab.VALIDATION_STEPS_PER_EPOCH)
               for phase in phases)
    return measured * work


@dataclass(frozen=True)
class Plan:
    """What the page draws for a table at a data size and batch."""

    phases: list[TrainingPhase]
    curves: pd.DataFrame  # one row per iteration (schedule_curves)
    boundaries: list[int]
    iters_per_epoch: int

    @property
    def phase_names(self) -> list[str]:
        """'2·Adam·20px': number, optimizer and image size, for the chart's phase labels."""
        return [f"{i}·{p.optimizer_label}" + (f"·{p.image_size}px" if p.image_size else "")
                for i, p in enumerate(self.phases, start=1)]


def plan(rows: list[dict], n_train: int, batch_size: int) -> Plan:
    """The table's plan, made once per table and size: the page draws it on every rerun and, while its run
    trains, every second. Shared between sessions, so read-only."""
    return _plan(tuple(tuple(row.items()) for row in rows), n_train, batch_size)


@functools.lru_cache(maxsize=256)
def _plan(rows: tuple[tuple[tuple[str, object], ...], ...], n_train: int, batch_size: int) -> Plan:
    phases = phases_from_rows([dict(row) for row in rows])
    iters = iterations_per_epoch(n_train, batch_size)
    return Plan(phases, schedule_curves(phases, iters), phase_boundaries(phases, iters), iters)


def finder_optimizer(rows: list[dict]) -> str:
    """The LR finder sweeps with the first phase's optimizer (SGD with momentum when unknown)."""
    name = (rows[0].get("optimizer") if rows else None) or "sgd_momentum"
    return name if name in OPTIMIZERS else "sgd_momentum"

