"""The MNIST lab of Lesson 7: a run spec, its presets and validation, and the job runner."""
from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict, dataclass

import pandas as pd
import torch

from core.data.mnist import DigitTensors, denormalise, mnist_tensors
from core import classroom, specs
from core.errors import UserError
from core.models import REGISTRY, build
from core.specs import spec_from_values
from core.summary import layer_table
from core.train import (CancelCheck, DeviceConfig, Learner, NaNGuard, OneCycle, Periodically,
                        Reporter, TensorBatches, Validation, fastest_step_seconds)
from core.viz import digit_grid_png

KIND = "mnist"
ARCHITECTURES = tuple(REGISTRY)
OPTIMIZERS = ("sgd", "adam")
SAMPLE_DIGITS = 24
SAMPLE_EVERY_SECONDS = 3.0
VALIDATIONS_PER_EPOCH = 5  # on 1,000 digits, for the live validation curve (all 10,000 at each epoch's end)
MAX_LR, MAX_EPOCHS, MAX_BATCH = 100.0, 50, 4096

# The lesson's numbers: fit_one_cycle(3, max_lr=0.1) for the basic CNN, (10, 0.1) for the
# conv_layer one and (12, 0.05) for the ResNet. "quick" is a one-epoch taste on 6,000 digits
# (seconds on a laptop, for a live demo in class); "demo" finishes in under a minute on 2 cores.
LECTURE = {"basic_cnn": (3, 0.1), "conv_layer_cnn": (10, 0.1), "resnet_cnn": (12, 0.05), "densenet_cnn": (12, 0.05)}
PRESETS = ("quick", "demo", "lecture")


@dataclass(frozen=True)
class MnistSpec:
    """Everything that defines an MNIST run; ``asdict`` of it is what the job manager stores."""

    arch: str = "basic_cnn"
    preset: str = "demo"
    epochs: int = 3
    max_lr: float = 0.1
    batch_size: int = 128
    optimizer: str = "sgd"  # SGD with momentum, or Adam (fastai's default, betas .9/.99)
    n_train: int = 60_000  # digits of the 60,000 training ones to use
    seed: int = 0
    scarce_digit: int = -1  # the bias lab's experiment: this digit (-1: none) is under-represented ...
    scarce_keep: float = 1.0  # ... only this share of its training images is kept

    def to_dict(self) -> dict:
        return asdict(self)


def preset_spec(arch: str = "basic_cnn", preset: str = "demo") -> MnistSpec:
    """The spec a preset stands for, for one architecture."""
    if arch not in REGISTRY:
        raise UserError("mnist.bad_arch", "Unknown architecture {arch}.", arch=arch)
    if preset not in PRESETS:
        raise UserError("mnist.bad_preset", "Unknown preset {preset}.", preset=preset)
    epochs, lr = LECTURE[arch]
    if preset == "quick":
        return MnistSpec(arch, preset, epochs=1, max_lr=lr, n_train=6_000)
    if preset == "demo":
        return MnistSpec(arch, preset, epochs=min(epochs, 3), max_lr=lr)
    return MnistSpec(arch, preset, epochs=epochs, max_lr=lr)


def size_of(arch: str, epochs: float, n_train: int, preset: str | None = None) -> str:
    """The size preset that training ``arch`` for ``epochs`` over ``n_train`` digits amounts to."""
    presets = {size: preset_spec(arch, size) for size in PRESETS}
    return classroom.size_of(epochs * n_train, {size: p.epochs * p.n_train for size, p in presets.items()}, preset)


def size_of_values(values: dict) -> str:
    return size_of(values["arch"], values["epochs"], values["n_train"], values.get("preset"))


def validate(spec: MnistSpec) -> MnistSpec:
    """The spec itself, or a UserError that says what to change."""
    preset_spec(spec.arch, spec.preset)
    specs.check_whole_numbers(spec, ("epochs", "batch_size", "n_train", "seed", "scarce_digit"))
    lr_is_number = isinstance(spec.max_lr, (int, float)) and not isinstance(spec.max_lr, bool)
    if not (lr_is_number and math.isfinite(spec.max_lr) and spec.max_lr > 0):
        raise UserError("mnist.lr_positive", "The learning rate must be a number above 0, such as 0.1 (got {lr}).", lr=spec.max_lr)
    if spec.max_lr > MAX_LR:
        raise UserError("mnist.lr_too_big", "A learning rate of {lr:g} is far too big: every run diverges. Use at most {max:g}; 0.1 is the lesson's.", lr=spec.max_lr, max=MAX_LR)
    if not 1 <= spec.epochs <= MAX_EPOCHS:
        raise UserError("mnist.epochs_range", "Epochs must be between 1 and {max} (got {epochs}).", epochs=spec.epochs, max=MAX_EPOCHS)
    if not 2 <= spec.batch_size <= MAX_BATCH:  # BatchNorm needs two items to train on
        raise UserError("mnist.batch_range", "The batch size must be between 2 and {max} (got {batch}).", batch=spec.batch_size, max=MAX_BATCH)
    if not 100 <= spec.n_train <= 60_000:
        raise UserError("mnist.n_train_range", "Use between 100 and 60,000 training digits (got {n}).", n=spec.n_train)
    if not 0 <= spec.seed < 2**31:
        raise UserError("mnist.seed_range", "The seed must be between 0 and 2147483647 (got {seed}).", seed=spec.seed)
    if spec.optimizer not in OPTIMIZERS:
        raise UserError("mnist.bad_optimizer", "Unknown optimizer {name}.", name=spec.optimizer)
    if not -1 <= spec.scarce_digit <= 9:
        raise UserError("mnist.scarce_digit", "The under-represented digit must be 0 to 9, or -1 for none "
                        "(got {digit}).", digit=spec.scarce_digit)
    if not (specs.is_number(spec.scarce_keep) and 0 < spec.scarce_keep <= 1):
        raise UserError("mnist.scarce_keep", "The share of that digit's images to keep must be above 0 and at most 1 "
                        "(got {keep}).", keep=spec.scarce_keep)
    return spec


def spec_from_dict(values: dict) -> MnistSpec:
    """A validated spec from a plain dict (a stored run, or a page's widgets)."""
    return spec_from_values(MnistSpec, values, validate)


def readable_runs(runs: list[dict]) -> list[dict]:
    return specs.readable_runs(runs, spec_from_dict)


def advice(spec: MnistSpec) -> list[tuple[str, str, dict]]:
    """Things worth a warning that are still allowed: (i18n key, English, params)."""
    notes = []
    if spec.max_lr > 1:
        notes.append(("mnist.lr_risky", "A learning rate above 1 will probably make the loss explode; "
                      "try it to see the NaN guard stop the run.", {}))
    return notes


def steps_per_epoch(spec: MnistSpec) -> int:
    return math.ceil(spec.n_train / spec.batch_size)


@functools.lru_cache(maxsize=None)
def layers_of(arch: str) -> pd.DataFrame:
    """The architecture's layer table, built once per process: the page draws it on every rerun.
    Shared, so read-only."""
    return layer_table(build(arch))


@functools.lru_cache(maxsize=2)
def cached_digits(train: bool) -> DigitTensors:
    """Both splits stay in memory once read (47 MB + 8 MB of float32), shared by all runs."""
    return mnist_tensors(train)


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.99))
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def run_mnist(spec_values: dict, context) -> None:
    """The job runner: trains the spec's model and emits metrics, sample grids and a result."""
    spec = spec_from_dict(spec_values)
    device = DeviceConfig.auto()
    torch.manual_seed(spec.seed)
    train = cached_digits(True).subset(spec.n_train, seed=spec.seed)
    if spec.scarce_digit >= 0:
        train = train.thinned(spec.scarce_digit, spec.scarce_keep, seed=spec.seed)
    valid = cached_digits(False)
    if device.device.type == "cuda":  # GPU-resident data: no host-to-device copy per batch
        train = DigitTensors(train.images.to(device.device), train.labels.to(device.device))
    model = build(spec.arch)
    validation = Validation(valid.images, valid.labels, every=max(1, steps_per_epoch(spec) // VALIDATIONS_PER_EPOCH))
    sample_images, sample_labels = valid.images[:SAMPLE_DIGITS], valid.labels[:SAMPLE_DIGITS].tolist()

    def emit_samples(learner: Learner) -> None:
        predicted = learner.predict(sample_images).argmax(dim=1).tolist()
        png = digit_grid_png(denormalise(sample_images), sample_labels, predicted)
        context.emit("samples", {"png": png, "step": learner.step})

    learner = Learner(
        model,
        TensorBatches(train.images, train.labels, spec.batch_size, shuffle=True, seed=spec.seed),
        make_optimizer(spec.optimizer, model.parameters(), spec.max_lr),
        callbacks=[
            CancelCheck(context.cancelled), OneCycle(spec.max_lr), NaNGuard(), validation,
            Periodically(SAMPLE_EVERY_SECONDS, emit_samples),
            Reporter(lambda row: context.emit("metrics", row)),
        ],
        device=device,
    )
    emit_samples(learner)
    started = time.perf_counter()
    learner.fit(spec.epochs)
    emit_samples(learner)
    predicted = validation.last_predicted
    confusion = torch.bincount(valid.labels * 10 + predicted, minlength=100).view(10, 10)
    context.emit("result", {
        "accuracy": (predicted == valid.labels).float().mean().item(),
        "confusion": confusion.tolist(),
        "seconds": time.perf_counter() - started,
        "device": device.describe(),
        "parameters": sum(p.numel() for p in model.parameters()),
    })


def seconds_per_step(arch: str, batch_size: int = 128) -> float:
    return fastest_step_seconds(build(arch), (batch_size, 1, 28, 28), DeviceConfig.auto())


def warm_up() -> dict:
    """Run once by each worker process: read MNIST into memory and time each architecture."""
    cached_digits(True)
    cached_digits(False)
    return {"mnist_seconds_per_step": {arch: seconds_per_step(arch) for arch in ARCHITECTURES},
            "device": DeviceConfig.auto().describe()}


# Validation costs about as much per epoch as 39 training steps of 128 digits: a full pass over
# the 10,000 validation digits and five passes over 1,000 of them, a forward pass being ~1/3 of a step.
VALIDATION_STEPS_PER_EPOCH = 39


def _work_in_steps(spec: MnistSpec) -> float:
    """A spec's training plus validation work, in training steps of batch 128."""
    return spec.epochs * (steps_per_epoch(spec) * spec.batch_size / 128 + VALIDATION_STEPS_PER_EPOCH)


def step_seconds(warm_up: dict[str, float], runs: list[dict], device: str) -> dict[str, float]:
    """Seconds per training step of 128 digits, per architecture: from the newest finished run of
    it on this device when there is one (real runs include everything), else the worker's start-up timing."""
    return {**warm_up, **specs.measured_rates(runs, device, spec_from_dict, lambda spec: spec.arch, _work_in_steps)}


def estimate_seconds(spec: MnistSpec, seconds_per_step: dict[str, float]) -> float | None:
    """Expected time of the spec on this device; None until the worker has measured it."""
    measured = seconds_per_step.get(spec.arch)
    return None if measured is None else measured * _work_in_steps(spec)
