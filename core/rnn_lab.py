"""The RNN lab of Lesson 7: human numbers, Model0 to Model5, their presets, validation and runner."""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core import classroom, specs
from core.data.human_numbers import load_ids, position_of
from core.errors import UserError
from core.models import LANGUAGE_MODELS
from core.rnn_figures import guesses_png
from core.specs import spec_from_values
from core.text.language_model import LanguageModelBatches
from core.text.unrolling import Evaluating, next_word_guesses
from core.train import (CancelCheck, Callback, DeviceConfig, Learner, NaNGuard, OneCycle, Periodically, Reporter,
                        fastest_training_step, weights_bytes, with_weights)

KIND = "rnn"
MODELS = tuple(LANGUAGE_MODELS)
PRESETS = ("quick", "demo", "lecture")
LESSON_ACCURACY = {"model0": 0.462, "model1": 0.461, "model2": 0.408, "model3": 0.542, "model4": 0.577, "model5": 0.755}
# The lesson's fit_one_cycle calls: (epochs, max_lr, pct_start). Model0 and Model1 read bptt 3 words
# (max_len=0, p_bptt=1: no randomising), the others bptt 20 with the loader's randomised lengths.
LECTURE = {"model0": (6, 1e-4, 0.3), "model1": (6, 1e-4, 0.3), "model2": (10, 1e-4, 0.1),
           "model3": (20, 3e-3, 0.3), "model4": (20, 3e-3, 0.3), "model5": (10, 1e-2, 0.3)}
# Shorter schedules that keep each model near the lesson's accuracy and their order (bench/rnn_models.py):
# at the lesson's 1e-4, Model2 needs all 10 epochs; at 3e-4, 5 do. "quick" is a third of these.
DEMO = {"model0": (3, 1e-4), "model1": (3, 1e-4), "model2": (5, 3e-4),
        "model3": (10, 1e-2), "model4": (10, 3e-3), "model5": (5, 1e-2)}
LESSON_BS, LESSON_NH = 64, 64
WEIGHT_DECAY = 0.01  # fastai v1's default, decoupled (true_wd): AdamW
MAX_EPOCHS, MAX_LR, MAX_BS, MAX_BPTT, MAX_NH = 100, 1.0, 512, 200, 512
VALIDATIONS_PER_EPOCH = 4
SAMPLE_EVERY_SECONDS = 2.0
SAMPLE_FROM, SAMPLE_TOKENS = 8095, 36  # the strip of guesses: from "eight thousand ninety five" on


@dataclass(frozen=True)
class RnnSpec:
    """Everything that defines a run; ``asdict`` of it is what the job manager stores."""

    model: str = "model5"
    preset: str = "demo"
    epochs: int = 5
    max_lr: float = 1e-2
    pct_start: float = 0.3  # the share of the one-cycle spent warming up
    bs: int = LESSON_BS
    bptt: int = 20
    randomise: bool = True  # the loader's randomised sequence lengths
    nh: int = LESSON_NH
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def lesson_bptt(model: str) -> int:
    return 3 if model in ("model0", "model1") else 20


def preset_spec(model: str = "model5", preset: str = "demo") -> RnnSpec:
    if model not in MODELS:
        raise UserError("rnn.bad_model", "Unknown model {model}: choose one of model0 to model5.", model=model)
    if preset not in PRESETS:
        raise UserError("mnist.bad_preset", "Unknown preset {preset}.", preset=preset)
    epochs, lr, pct_start = LECTURE[model]
    if preset != "lecture":
        epochs, lr = DEMO[model]
        if preset == "quick":
            epochs = max(1, epochs // 3)
    bptt = lesson_bptt(model)
    return RnnSpec(model, preset, epochs, lr, pct_start, bptt=bptt, randomise=bptt > 3)


LINK_TO_SPEC = {"epochs": "epochs", "lr": "max_lr", "pct": "pct_start", "bs": "bs", "bptt": "bptt",
                "rand": "randomise", "nh": "nh"}  # the page's link names of the training settings


def link_settings_with_preset(values: dict, given: set[str]) -> dict:
    """A link's settings with the training ones it does not give taken from its model's preset, so
    that ?model=model5 means Model5 as the lesson trains it, not Model5 with the defaults of Model0."""
    preset = preset_spec(values["model"], values["preset"])
    return {**values, **{name: getattr(preset, field) for name, field in LINK_TO_SPEC.items() if name not in given}}


def validate(spec: RnnSpec) -> RnnSpec:
    """The spec itself, or a UserError that says what to change."""
    preset_spec(spec.model, spec.preset)
    specs.check_whole_numbers(spec, ("epochs", "bs", "bptt", "nh", "seed"))
    for name in ("max_lr", "pct_start"):
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserError("rnn.not_a_number", "{name} must be a number (got {value}).", name=name, value=value)
    if not 0 < spec.max_lr <= MAX_LR:
        raise UserError("rnn.lr_range", "The learning rate must be above 0 and at most {max:g}, such as 1e-2 "
                        "(got {lr:g}).", lr=spec.max_lr, max=MAX_LR)
    if not 0 < spec.pct_start < 1:
        raise UserError("rnn.pct_range", "The warm-up share of the cycle must be between 0 and 1, such as 0.3 "
                        "(got {pct:g}).", pct=spec.pct_start)
    specs.check_ranges((("epochs", spec.epochs, 1, MAX_EPOCHS), ("bs", spec.bs, 2, MAX_BS),
                        ("bptt", spec.bptt, 1, MAX_BPTT), ("nh", spec.nh, 2, MAX_NH), ("seed", spec.seed, 0, 2**31 - 1)))
    if spec.model == "model0" and (spec.bptt != 3 or spec.randomise):
        raise UserError("rnn.model0_reads_three", "Model0 reads exactly three words: set bptt to 3 and switch off "
                        "the randomised lengths (Model1, the loop, reads any number).")
    if spec.randomise and spec.bptt < 5:
        raise UserError("rnn.randomise_short", "The loader's randomised lengths are at least 5 words: with a bptt of "
                        "{bptt}, switch them off.", bptt=spec.bptt)
    return spec


def spec_from_dict(values: dict) -> RnnSpec:
    return spec_from_values(RnnSpec, values, validate)


def readable_runs(runs: list[dict]) -> list[dict]:
    return specs.readable_runs(runs, spec_from_dict)


def size_of_values(values: dict) -> str:
    """Which size preset a run amounts to, for the instructor's size limit."""
    spec = spec_from_dict(values)
    presets = {size: preset_spec(spec.model, size) for size in PRESETS}
    return classroom.size_of(work_rows(spec), {size: work_rows(p) for size, p in presets.items()}, spec.preset)


# ----- training ----------------------------------------------------------------------------------------
def scores_and_targets(model: nn.Module, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, the words they should pick): every word of the target, or only the last one for the
    models that predict once per sequence (the lesson's loss4 and acc4)."""
    if model.predicts_every_word:
        return output.flatten(0, 1), target.flatten()
    return output, target[-1]


def loss_for(model: nn.Module):
    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(*scores_and_targets(model, output, target))
    return loss


class ResetState(Callback):
    """A new epoch starts reading the stream from its top: forget the state (fastai's RNN reset)."""

    def before_epoch(self, learner: Learner) -> None:
        if learner.model.keeps_state:
            learner.model.reset()


@torch.no_grad()
def evaluate(model: nn.Module, batches: LanguageModelBatches) -> tuple[float, float, int]:
    """(loss, accuracy, words predicted) over the whole stream in order, from a fresh state."""
    total_loss, correct, count = 0.0, 0, 0
    with Evaluating(model):
        for x, y in batches:
            scores, target = scores_and_targets(model, model(x), y)
            total_loss += F.cross_entropy(scores, target, reduction="sum").item()
            correct += (scores.argmax(-1) == target).sum().item()
            count += len(target)
    return total_loss / count, correct / count, count


class LanguageModelValidation(Callback):
    """Validation loss and accuracy on the whole validation stream, a few times an epoch and at its end."""

    def __init__(self, batches: LanguageModelBatches, every: int):
        self.batches, self.every = batches, every
        self.accuracy: float | None = None

    def after_batch(self, learner: Learner) -> None:
        if learner.epoch_ended or learner.step % self.every == 0:
            loss, self.accuracy, count = evaluate(learner.model, self.batches)
            learner.metrics.update(valid_loss=loss, accuracy=self.accuracy, valid_on=count)


@contextlib.contextmanager
def one_cpu_thread():
    """Train on one CPU thread. These matrices are 64 wide: a second thread gains nothing, and on a
    busy machine (a browser drawing the live chart on the same 2 cores) it makes every step wait for
    it: with the other core busy, Model5's demo took 26 s on two threads and 5.6 s on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def device_config() -> DeviceConfig:
    """CUDA when there is one, in float32: these matrices are 64 wide, too small for AMP to pay."""
    return DeviceConfig(torch.device("cuda")) if torch.cuda.is_available() else DeviceConfig(torch.device("cpu"))


def build(spec: RnnSpec) -> nn.Module:
    return LANGUAGE_MODELS[spec.model](nh=spec.nh)


def trained_model(spec_values: dict, weights: bytes) -> nn.Module | None:
    """A stored run's model, in eval mode on the CPU; None when the weights do not fit this version's model
    (an older run, say) or the spec is not one this version reads."""
    try:
        model = with_weights(build(spec_from_dict(spec_values)), weights)
    except UserError:
        return None
    return None if model is None else model.eval()


def untrained_model(model: str, nh: int = LESSON_NH, seed: int = 0) -> nn.Module:
    """Random weights, the same every time (drawn aside: the process's own random numbers stay as they were)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LANGUAGE_MODELS[model](nh=nh).eval()


def sample_ids(window: int) -> torch.Tensor:
    """The validation words the live strip of guesses shows, and the ``window`` words before them that a
    model guessing from the last ``window`` words reads first."""
    _, valid, _ = load_ids()
    start = position_of(SAMPLE_FROM)
    return valid[start - window:start + SAMPLE_TOKENS]


def run_rnn(spec_values: dict, context) -> None:
    """The job runner: trains the spec's model on human numbers, emitting metrics, the strip of
    guesses every few seconds, the weights and a result."""
    with one_cpu_thread():
        train_rnn(spec_from_dict(spec_values), context)


def train_rnn(spec: RnnSpec, context) -> None:
    device = device_config()
    torch.manual_seed(spec.seed)
    train_ids, valid_ids, vocab = load_ids()
    train = LanguageModelBatches(train_ids, spec.bs, spec.bptt, spec.randomise, spec.seed).to(device.device)
    valid = LanguageModelBatches(valid_ids, spec.bs, spec.bptt).to(device.device)
    model = build(spec)
    validation = LanguageModelValidation(valid, every=max(1, len(train) // VALIDATIONS_PER_EPOCH))
    window = 0 if model.predicts_every_word else spec.bptt
    strip = sample_ids(window)
    shown = [vocab.itos[i] for i in strip[window:].tolist()]

    def emit_samples(learner: Learner) -> None:
        guesses, probabilities = next_word_guesses(learner.model, strip.to(device.device), spec.bptt)
        png = guesses_png(shown, [vocab.itos[i] for i in guesses], probabilities,
                          first_guessed=len(shown) - len(guesses))
        context.emit("samples", {"png": png, "step": learner.step})

    learner = Learner(
        model, train,
        torch.optim.AdamW(model.parameters(), lr=spec.max_lr, betas=(0.9, 0.99), weight_decay=WEIGHT_DECAY),
        callbacks=[CancelCheck(context.cancelled), OneCycle(spec.max_lr, spec.pct_start), NaNGuard(), ResetState(),
                   validation, Periodically(SAMPLE_EVERY_SECONDS, emit_samples),
                   Reporter(lambda row: context.emit("metrics", row))],
        device=device, loss_fn=loss_for(model),
    )
    emit_samples(learner)
    started = time.perf_counter()
    learner.fit(spec.epochs)
    seconds = time.perf_counter() - started
    emit_samples(learner)
    context.emit("weights", {"state": weights_bytes(learner.model)})
    context.emit("result", {
        "model": spec.model, "accuracy": validation.accuracy, "lesson_accuracy": LESSON_ACCURACY[spec.model],
        "seconds": seconds, "device": device.describe(),
        "parameters": sum(p.numel() for p in model.parameters()),
    })


# ----- estimates ---------------------------------------------------------------------------------------
def seconds_per_step(model_name: str) -> float:
    """The fastest of a few real training steps of the lesson's configuration (bs 64, its bptt)."""
    spec = preset_spec(model_name, "lecture")
    device = device_config()
    model = device.prepare_model(build(spec))
    x, y = next(iter(LanguageModelBatches(load_ids()[0], spec.bs, spec.bptt).to(device.device)))
    return fastest_training_step(model, x, y, device, loss_for(model))


def warm_up() -> dict:
    """Run once by each worker process: time one training step of each model."""
    load_ids()
    with one_cpu_thread():
        return {"rnn_seconds_per_step": {name: seconds_per_step(name) for name in MODELS}}


def work_rows(spec: RnnSpec) -> float:
    """A run's work in rows of the lesson's batch: each epoch reads the training stream and each
    validation the validation stream (a forward pass costing about a third of a training step), a row
    of bs words at a time. A row costs a fixed part (Python's loop, the kernel launches) and a part
    that grows with bs: (1 + bs / 64) / 2 of the lesson's, which matches the per-row times measured on
    this CPU within 25% from bs 2 to 256; and the hidden layer's size squared, from nh 64 up."""
    train_ids, valid_ids, _ = load_ids()
    validations = spec.epochs * (VALIDATIONS_PER_EPOCH + 1)
    rows = (spec.epochs * len(train_ids) + validations * len(valid_ids) / 3) / spec.bs
    return rows * (1 + spec.bs / LESSON_BS) / 2 * max(1.0, (spec.nh / LESSON_NH) ** 2)


def seconds_per_row(warm_up: dict[str, float], runs: list[dict], device: str) -> dict[str, float]:
    """Seconds per row of the lesson's batch, per model: from the newest finished run of it on this
    device when there is one (it includes everything), else the worker's timed step of the lesson's batch."""
    timed = {name: step / lesson_bptt(name) for name, step in warm_up.items()}
    return {**timed, **specs.measured_rates(runs, device, spec_from_dict, lambda spec: spec.model, work_rows)}


def estimate_seconds(spec: RnnSpec, per_row: dict[str, float]) -> float | None:
    """Expected time of the spec on this device; None until the worker has measured it."""
    measured = per_row.get(spec.model)
    return None if measured is None else measured * work_rows(spec)
