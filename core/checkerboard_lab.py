"""The checkerboard lab of Lesson 12 (and Lesson 7's pixel shuffle + ICNR): five ways to upsample, trained side by
side on the same super-resolution task, with the artefact each leaves measured in the frequency spectrum."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core import classroom, specs
from core.data.mnist import padded_tanh
from core.errors import RunCancelled, TrainingDiverged, UserError
from core.mnist_lab import cached_digits
from core.models.upsampling_generator import UPSAMPLERS, upsampling_generator
from core.rnn_lab import one_cpu_thread
from core.specs import spec_from_values
from core.train import DeviceConfig, fastest_seconds
from core.viz import tanh_grid_png

KIND = "checkerboard"
PRESETS = ("quick", "demo", "lecture")
STAGES = 2  # 8 → 16 → 32
INPUT_SIZE, OUTPUT_SIZE = 8, 32
PROBE_DIGITS, SAMPLE_DIGITS, SAMPLE_ZOOM = 16, 8, 4
SAMPLE_EVERY_SECONDS = 2.0
EXPLODE_FACTOR = 20.0  # as core.train.NaNGuard: a loss 20 times its first one has diverged
MAX_STEPS, MAX_LR, MIN_WIDTH, MAX_WIDTH, MIN_BATCH, MAX_BATCH = 5000, 1.0, 4, 256, 2, 512

# One step trains all five generators: about 0.1 s at width 32, batch 32 on one thread of a 2-core CPU, so
# "quick" takes about 4 s there and "demo" about 16 s; "lecture" is wider and longer, meant for a GPU.
PRESET_SETTINGS = {"quick": {"steps": 40, "lr": 3e-3, "width": 32, "batch_size": 32},
                   "demo": {"steps": 160, "lr": 3e-3, "width": 32, "batch_size": 32},
                   "lecture": {"steps": 1000, "lr": 1e-3, "width": 64, "batch_size": 64}}


@dataclass(frozen=True)
class CheckerboardSpec:
    """Everything that defines a run; ``asdict`` of it is what the job manager stores."""

    preset: str = "demo"
    steps: int = 160
    lr: float = 3e-3
    width: int = 32  # channels of every hidden layer
    batch_size: int = 32
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def preset_spec(preset: str = "demo") -> CheckerboardSpec:
    if preset not in PRESETS:
        raise UserError("mnist.bad_preset", "Unknown preset {preset}.", preset=preset)
    return CheckerboardSpec(preset, **PRESET_SETTINGS[preset])


def validate(spec: CheckerboardSpec) -> CheckerboardSpec:
    """The spec itself, or a UserError that says what to change."""
    preset_spec(spec.preset)
    specs.check_whole_numbers(spec, ("steps", "width", "batch_size", "seed"))
    specs.check_lr_is_number(spec.lr)
    if not 0 < spec.lr <= MAX_LR:
        raise UserError("check.lr_range", "The learning rate must be above 0 and at most {max:g}, such as 3e-3 "
                        "(got {lr:g}).", lr=spec.lr, max=MAX_LR)
    specs.check_ranges((("steps", spec.steps, 1, MAX_STEPS), ("width", spec.width, MIN_WIDTH, MAX_WIDTH),
                        ("batch_size", spec.batch_size, MIN_BATCH, MAX_BATCH), ("seed", spec.seed, 0, 2**31 - 1)))
    return spec


def spec_from_dict(values: dict) -> CheckerboardSpec:
    return spec_from_values(CheckerboardSpec, values, validate)


def readable_runs(runs: list[dict]) -> list[dict]:
    return specs.readable_runs(runs, spec_from_dict)


def demo_steps(spec: CheckerboardSpec) -> float:
    """A run's work in training steps of the demo's size: a step's cost grows with width² (the hidden
    convs) and with the batch."""
    demo = preset_spec("demo")
    return spec.steps * (spec.width / demo.width) ** 2 * spec.batch_size / demo.batch_size


def size_of_values(values: dict) -> str:
    """Which size preset a run amounts to, for the instructor's size limit."""
    spec = spec_from_dict(values)
    return classroom.size_of(demo_steps(spec), {size: demo_steps(preset_spec(size)) for size in PRESETS}, spec.preset)


# ----- the task: super-resolution of MNIST digits ------------------------------------------------------
def targets_of(digits: torch.Tensor) -> torch.Tensor:
    """MNIST's normalised 28×28 digits as 32×32 targets in [-1, 1] (32 = 8·2·2: two exact doublings)."""
    return padded_tanh(digits, OUTPUT_SIZE)


def inputs_of(targets: torch.Tensor) -> torch.Tensor:
    """The 8×8 pictures the generators enlarge: each pixel the mean of a 4×4 block of the target."""
    return F.avg_pool2d(targets, OUTPUT_SIZE // INPUT_SIZE)


def probe_input(batch: int = PROBE_DIGITS) -> torch.Tensor:
    """The first ``batch`` validation digits at 8×8 (B, 1, 8, 8): the same pictures every time."""
    return inputs_of(targets_of(cached_digits(False).images[:batch]))


def fresh_generators(width: int, seed: int) -> dict[str, nn.Module]:
    """One untrained generator per upsampler, each drawn from ``seed`` (so their stems start equal), drawn
    aside: the process's own random numbers stay as they were."""
    generators = {}
    with torch.random.fork_rng(devices=[]):
        for upsampler in UPSAMPLERS:
            torch.manual_seed(seed)
            generators[upsampler] = upsampling_generator(upsampler, width, STAGES)
    return generators


@torch.no_grad()
def outputs_of(generators: dict[str, nn.Module], inputs: torch.Tensor) -> dict[str, np.ndarray]:
    """Each generator's (B, H, W) output, in float32 on the CPU."""
    outputs = {}
    for upsampler, generator in generators.items():
        device = next(generator.parameters()).device
        outputs[upsampler] = generator(inputs.to(device)).float()[:, 0].cpu().numpy()
    return outputs


def untrained_outputs(width: int = 32, seed: int = 0, batch: int = PROBE_DIGITS) -> dict[str, np.ndarray]:
    """What each freshly initialised generator makes of the probe digits: (B, 32, 32) per upsampler."""
    with one_cpu_thread():
        return outputs_of(fresh_generators(width, seed), probe_input(batch))


def constant_input_outputs(width: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """Distill's demonstration: an untrained generator enlarging a flat white picture. Whatever structure the
    (32, 32) output has (beyond the zero padding's effect at the border) is the upsampler's own pattern."""
    flat = torch.ones(1, 1, INPUT_SIZE, INPUT_SIZE)
    with one_cpu_thread():
        return {name: output[0] for name, output in outputs_of(fresh_generators(width, seed), flat).items()}


# ----- measuring the artefact --------------------------------------------------------------------------
def power_spectrum(images: np.ndarray) -> np.ndarray:
    """|FFT2|² of each image minus its mean (B, H, W), unshifted. A single (H, W) image is a batch of one."""
    images = np.asarray(images, dtype=np.float64)
    images = images.reshape(-1, *images.shape[-2:])
    centred = images - images.mean(axis=(-2, -1), keepdims=True)  # the mean alone would dwarf every other peak
    return np.abs(np.fft.fft2(centred)) ** 2


def spectrum(images: np.ndarray) -> np.ndarray:
    """The batch's mean log10 power spectrum, shifted so that frequency 0 is in the middle: (H, W)."""
    return np.fft.fftshift(np.log10(1e-12 + power_spectrum(images)).mean(axis=0))


def checkerboard_score(images: np.ndarray, stages: int = STAGES) -> float:
    """How far the stride's frequencies stand out of the spectrum, in powers of ten (0: not at all).

    A ×2 stage that treats even and odd output cells differently repeats a pattern every 2 cells: power at
    frequency N/2 (Nyquist) along each axis; the stage before it, at half the size, repeats every 4 cells of
    the output: N/4 and 3N/4. So the artefact's peaks sit on the lattice of frequencies (u, v), each a
    multiple of N / 2**stages, (0, 0) aside. For each such peak: log10 of its power (the batch's mean power
    spectrum) over the median power of its neighbouring frequencies, counted only when above 0 (a peak, not
    a dip); the score is the mean over the peaks.

    Comparing with the neighbours, not the whole spectrum, keeps a picture's own content (most of it at low
    frequencies) from counting as artefact. A peak on an axis (u or v = 0) is compared only with its
    neighbours on that axis: the axes hold the power of every horizontal and vertical edge, the picture's
    border included, far more than the frequencies just off them."""
    log_power = np.log10(1e-12 + power_spectrum(images).mean(axis=0))
    height, width = log_power.shape
    excesses = []
    for u in range(0, height, height // 2**stages):
        for v in range(0, width, width // 2**stages):
            if u == v == 0:
                continue
            around = [log_power[(u + du) % height, (v + dv) % width]
                      for du in ((0,) if u == 0 else (-1, 0, 1)) for dv in ((0,) if v == 0 else (-1, 0, 1))
                      if du or dv]
            excesses.append(max(0.0, log_power[u, v] - float(np.median(around))))
    return float(np.mean(excesses))


def subpixel_spread(output: np.ndarray | torch.Tensor) -> float:
    """For the output of one ×2 stage (..., H, W): the largest difference between the 4 sub-pixels of any 2×2
    block. 0 means every block is flat, as nearest-neighbour upsampling (and ICNR at initialisation) makes it."""
    output = torch.as_tensor(output, dtype=torch.float32)
    blocks = output.unfold(-2, 2, 2).unfold(-2, 2, 2).flatten(-2)  # (..., H/2, W/2, 4)
    return float((blocks.amax(-1) - blocks.amin(-1)).max())


# ----- training ----------------------------------------------------------------------------------------
@dataclass
class Contestant:
    """One generator with its own optimizer (and loss scaler, for float16 on a GPU)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler


def contestants(spec: CheckerboardSpec, device: DeviceConfig) -> dict[str, Contestant]:
    entries = {}
    for upsampler, generator in fresh_generators(spec.width, spec.seed).items():
        model = device.prepare_model(generator)
        entries[upsampler] = Contestant(model, torch.optim.Adam(model.parameters(), lr=spec.lr, betas=(0.9, 0.99)),
                                        device.grad_scaler())
    return entries


def train_step(contestant: Contestant, inputs: torch.Tensor, targets: torch.Tensor, device: DeviceConfig) -> float:
    with device.autocast():
        loss = F.mse_loss(contestant.model(inputs).float(), targets)
    contestant.optimizer.zero_grad(set_to_none=True)
    contestant.scaler.scale(loss).backward()
    contestant.scaler.step(contestant.optimizer)
    contestant.scaler.update()
    return loss.item()


def check_finite(losses: dict[str, float], first: dict[str, float], step: int, lr: float) -> None:
    """NaNGuard's rule and message for each generator: NaN, infinite or 20 times its first loss is diverged."""
    for upsampler, loss in losses.items():
        if math.isnan(loss):
            key, english = "train.diverged_nan", "The loss became NaN at step {step} (learning rate {lr:.3g})."
        elif not math.isfinite(loss) or loss > EXPLODE_FACTOR * max(first[upsampler], 1e-3):
            key, english = "train.diverged_exploded", "The loss exploded at step {step} (learning rate {lr:.3g})."
        else:
            continue
        raise TrainingDiverged(key, english + " The steps are too big: try a learning rate about 10 times smaller, "
                               "such as {suggestion:.3g}.", step=step, lr=lr, suggestion=lr / 10)


def samples_png(outputs: dict[str, np.ndarray]) -> bytes:
    """One row per upsampler of its first ``SAMPLE_DIGITS`` outputs, white on black, enlarged to be seen."""
    rows = torch.cat([torch.from_numpy(output[:SAMPLE_DIGITS]) for output in outputs.values()])
    return tanh_grid_png(rows.unsqueeze(1), SAMPLE_DIGITS, SAMPLE_ZOOM)


def run_checkerboard(spec_values: dict, context) -> None:
    """The job runner: trains the five generators side by side, emitting their losses every step, their
    outputs every few seconds and, at the end, a result with their outputs and checkerboard scores."""
    with one_cpu_thread():
        train_checkerboard(spec_from_dict(spec_values), context)


def train_checkerboard(spec: CheckerboardSpec, context) -> None:
    device = DeviceConfig.auto()
    entries = contestants(spec, device)
    generators = {upsampler: entry.model for upsampler, entry in entries.items()}
    digits = cached_digits(True).images
    order = torch.Generator().manual_seed(spec.seed)  # one draw of batches, the same for all five
    probe = probe_input()

    def emit_samples(step: int) -> None:
        context.emit("samples", {"png": samples_png(outputs_of(generators, probe)), "step": step})

    emit_samples(0)
    started = last_sample = time.perf_counter()
    first: dict[str, float] = {}
    for step in range(1, spec.steps + 1):
        if context.cancelled():
            raise RunCancelled()
        targets = targets_of(digits[torch.randint(len(digits), (spec.batch_size,), generator=order)])
        inputs, targets = device.prepare_images(inputs_of(targets)), device.prepare_images(targets)
        losses = {upsampler: train_step(entry, inputs, targets, device) for upsampler, entry in entries.items()}
        first = first or losses
        check_finite(losses, first, step, spec.lr)
        elapsed = time.perf_counter() - started
        context.emit("metrics", {"step": step, "total_steps": spec.steps, "elapsed": elapsed,
                                 "eta": elapsed / step * (spec.steps - step),
                                 **{f"loss_{upsampler}": loss for upsampler, loss in losses.items()}})
        if time.perf_counter() - last_sample >= SAMPLE_EVERY_SECONDS:
            emit_samples(step)
            last_sample = time.perf_counter()
    seconds = time.perf_counter() - started
    emit_samples(spec.steps)
    outputs = outputs_of(generators, probe)
    context.emit("result", {
        "seconds": seconds, "device": device.describe(), "steps": spec.steps, "final_loss": losses,
        "outputs": {upsampler: np.round(output[0], 4).tolist() for upsampler, output in outputs.items()},
        "spectra": {upsampler: np.round(spectrum(output), 3).tolist() for upsampler, output in outputs.items()},
        "spectra_score": {upsampler: checkerboard_score(output) for upsampler, output in outputs.items()},
    })


# ----- estimates ---------------------------------------------------------------------------------------
def seconds_per_step(spec: CheckerboardSpec, repeats: int = 2) -> float:
    """The fastest of a few real training steps of all five generators (random pictures: the content does
    not change the time), after one that pays for the allocations."""
    device = DeviceConfig.auto()
    entries = contestants(spec, device)
    targets = device.prepare_images(torch.rand(spec.batch_size, 1, OUTPUT_SIZE, OUTPUT_SIZE) * 2 - 1)
    inputs = device.prepare_images(inputs_of(targets))

    def step() -> None:
        for entry in entries.values():
            train_step(entry, inputs, targets, device)  # .item() waits for the GPU

    return fastest_seconds(step, repeats)


def warm_up() -> dict:
    """Run once by each worker process: time one training step of the demo's five generators."""
    with one_cpu_thread():
        return {"checkerboard_seconds_per_step": seconds_per_step(preset_spec("demo"))}


def estimate_seconds(spec: CheckerboardSpec, info: dict, runs: list[dict], device: str) -> float | None:
    """Expected time of the spec on this device: from the newest finished run here (it includes everything),
    else from the worker's timed step; None until one of them exists."""
    return specs.estimate_from_rate(spec, runs, device, spec_from_dict, KIND, demo_steps,
                                    info.get("checkerboard_seconds_per_step"))
