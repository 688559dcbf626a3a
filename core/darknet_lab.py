"""The architecture lab of Lessons 12-13: Darknet on CIFAR-10 with the DAWNBench recipe.

The recipe is the lesson's: SGD with weight decay 1e-4, one-cycle with momentum 0.95 -> 0.85
(``use_clr_beta=(20, 20, .95, .85)``: lr/20 -> lr -> lr/20 over 80% of the run, then 20% down
to lr/2000), random crop with 4 px padding and flips done on the device where the data lies.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from core import classroom
from core.data.cifar import CLASSES, cifar_tensors, random_crop_flip
from core.errors import UserError
from core.models.darknet import LECTURE_BLOCKS, LECTURE_BN_MOMENTUM, darknet
from core.schedules import PhaseDriver, phases_1cycle
from core.specs import spec_from_values
from core.summary import layer_table
from core.train import (Callback, CancelCheck, DeviceConfig, Learner, NaNGuard, Periodically, PhaseSchedule,
                        Reporter, TensorBatches, Validation, fastest_step_seconds)
from core.viz import digit_grid_png

KIND = "darknet"
PRESETS = ("quick", "demo", "lecture")
SHORT_NAMES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")  # fit under a 32 px picture
WEIGHT_DECAY = 1e-4
DIV, PCT = 20, 20  # the lesson's use_clr_beta=(20, 20, ...)
TARGET_ACCURACY = 0.94  # DAWNBench's CIFAR-10 bar
SAMPLE_EVERY_SECONDS = 4.0
SAMPLES = 18
MAX_EPOCHS, MAX_WIDTH, MAX_GROUPS, MAX_BLOCKS = 60, 64, 6, 8
MAX_PARAMETERS = 100_000_000  # 3x the lesson's Darknet; weights, gradients and momentum of more crowd a class server
MIN_LR, MAX_LR = 1e-4, 10.0
WIDTHS = (4, 8, 16, 32, 64)
# torch.compile with CUDA graphs, measured on an H100 (bench/results/h100-2026-11-25): about 45 s
# of compiling, then 46,000 pictures/s of the lecture model in the app against 18,000-26,000 eager.
COMPILE_SECONDS, COMPILED_SPEED_UP = 45.0, 2.0

# Cited, not measured here: what the DAWNBench panel puts beside this run's time to 94%.
RECORDS = (
    {"who": "fast.ai, DAWNBench (2018)", "model": "Darknet-style ResNet, this lab's recipe", "seconds": 191,
     "hardware": "8 × NVIDIA V100", "source": "Lesson 12-13 (fast.ai 2018); DAWNBench leaderboard"},
    {"who": "Keller Jordan, airbench94 (2024)", "model": "airbench94_compiled", "seconds": 3.29,
     "hardware": "1 × NVIDIA A100", "source": "arXiv:2404.00498"},
    {"who": "Keller Jordan, airbench94_muon (2024)", "model": "airbench94_muon", "seconds": 2.59,
     "hardware": "1 × NVIDIA A100", "source": "github.com/KellerJordan/cifar10-airbench"},
)


@dataclass(frozen=True)
class DarknetSpec:
    """Everything that defines a Darknet run; ``asdict`` of it is what the job manager stores."""

    preset: str = "demo"
    blocks: tuple = (1, 1, 1, 1)  # residual layers per group
    nf: int = 8  # the stem's width; each group doubles it
    epochs: int = 4
    max_lr: float = 0.4
    batch_size: int = 128
    n_train: int = 50_000  # at most what the data set has (10,000 for the synthetic one)
    mixed_precision: bool = True  # on CUDA only: bfloat16 autocast, or float16 with loss scaling where bf16 is missing
    channels_last: bool = True  # on CUDA only
    compile_model: bool = False  # torch.compile, on CUDA only (its first steps pay for compiling)
    seed: int = 0
    # The lesson's BatchNorm momentum 0.01 suits its ~3,000 steps; in a 300-step demo the running
    # statistics would still lag the weights and validation would swing wildly, so demo sizes use 0.1.
    bn_momentum: float = 0.1

    def to_dict(self) -> dict:
        values = asdict(self)
        values["blocks"] = list(self.blocks)
        return values


def preset_spec(preset: str) -> DarknetSpec:
    """quick: seconds on a laptop; demo: about a minute on 2 CPU cores; lecture: the lesson's
    Darknet([1, 2, 4, 6, 3], nf=32), 30 epochs at lr 1.3 and batch 512 (meant for a GPU)."""
    if preset == "quick":
        return DarknetSpec("quick", epochs=1, n_train=5_000)
    if preset == "demo":
        return DarknetSpec("demo")
    if preset == "lecture":
        return DarknetSpec("lecture", blocks=LECTURE_BLOCKS, nf=32, epochs=30, max_lr=1.3, batch_size=512,
                           bn_momentum=LECTURE_BN_MOMENTUM)
    raise UserError("darknet.bad_preset", "Unknown preset {name}.", name=preset)


def size_of(spec: DarknetSpec) -> str:
    """The size preset this run's work (epochs x pictures x multiply-adds per picture) amounts to."""
    def work(run: DarknetSpec) -> float:
        return run.epochs * run.n_train * model_facts(tuple(run.blocks), run.nf)["macs"]

    return classroom.size_of(work(spec), {size: work(preset_spec(size)) for size in PRESETS}, spec.preset)


def size_of_values(values: dict) -> str:
    return size_of(spec_from_dict(values))


def blocks_from_text(text: str) -> tuple[int, ...]:
    """'1, 2, 4, 6, 3' as a tuple of whole numbers; a UserError saying how to write it otherwise."""
    try:
        blocks = tuple(int(part) for part in str(text).replace(" ", "").split(",") if part != "")
    except ValueError:
        blocks = ()
    if not blocks or any(not 0 <= b <= MAX_BLOCKS for b in blocks) or len(blocks) > MAX_GROUPS:
        raise UserError("darknet.blocks", "Give 1 to {groups} groups, each with 0 to {most} residual layers, such as 1, 2, 4, 6, 3.",
                        groups=MAX_GROUPS, most=MAX_BLOCKS)
    return blocks


def validate(spec: DarknetSpec) -> DarknetSpec:
    preset_spec(spec.preset)
    blocks = spec.blocks
    if not (isinstance(blocks, tuple) and 1 <= len(blocks) <= MAX_GROUPS
            and all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= MAX_BLOCKS for b in blocks)):
        raise UserError("darknet.blocks", "Give 1 to {groups} groups, each with 0 to {most} residual layers, such as 1, 2, 4, 6, 3.",
                        groups=MAX_GROUPS, most=MAX_BLOCKS)
    for name, value, low, high in (("nf", spec.nf, 4, MAX_WIDTH), ("epochs", spec.epochs, 1, MAX_EPOCHS),
                                   ("batch_size", spec.batch_size, 2, 2048), ("n_train", spec.n_train, 500, 50_000),
                                   ("seed", spec.seed, 0, 2**31 - 1)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise UserError("darknet.range", "{name} must be a whole number from {low} to {high} (got {value}).",
                            name=name, low=low, high=high, value=value)
    if spec.bn_momentum not in (0.1, LECTURE_BN_MOMENTUM):
        raise UserError("darknet.bn_momentum", "BatchNorm momentum is 0.1 (demo sizes) or 0.01 (the lesson's).")
    if not (isinstance(spec.max_lr, (int, float)) and not isinstance(spec.max_lr, bool) and math.isfinite(spec.max_lr)
            and MIN_LR <= spec.max_lr <= MAX_LR):
        raise UserError("darknet.lr", "The peak learning rate must be from {low:g} to {high:g} (got {lr}); the lesson's is 1.3.",
                        lr=spec.max_lr, low=MIN_LR, high=MAX_LR)
    if not all(isinstance(flag, bool) for flag in (spec.mixed_precision, spec.channels_last, spec.compile_model)):
        raise UserError("spec.bad", "These settings cannot be used: {error}", error="switches must be true or false")
    parameters = model_facts(spec.blocks, spec.nf)["parameters"]
    if parameters > MAX_PARAMETERS:
        raise UserError("darknet.too_big", "This Darknet has {parameters:,} parameters; the most here is {most:,}. "
                        "Use fewer residual layers or a narrower stem.", parameters=parameters, most=MAX_PARAMETERS)
    return spec


def spec_from_dict(values: dict) -> DarknetSpec:
    def blocks_as_tuple(known: dict) -> dict:
        return {**known, "blocks": tuple(known.get("blocks", DarknetSpec.blocks))}

    return spec_from_values(DarknetSpec, values, validate, prepare=blocks_as_tuple)


# ----- the model's size --------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def model_facts(blocks: tuple, nf: int) -> dict:
    """Layer table, parameters and multiply-adds of one 32x32 picture (torch's FLOP counter / 2),
    on torch's "meta" device: shapes without memory, so even a huge model answers at once."""
    with torch.device("meta"):
        model = darknet(blocks, 10, nf).eval()
        table = layer_table(model, input_shape=(1, 3, 32, 32))
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, 3, 32, 32))
    return {"table": table, "parameters": sum(p.numel() for p in model.parameters()),
            "macs": counter.get_total_flops() // 2}


# ----- training ------------------------------------------------------------------------------------
class AugmentedBatches(TensorBatches):
    """TensorBatches whose training pictures are cropped and flipped where they lie (on the GPU
    there): no Python data loader in the loop for CIFAR-sized data."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0,
                 drop_last: bool = False):
        super().__init__(images, labels, batch_size, shuffle, seed, drop_last)
        self.augment_generator = torch.Generator(device=images.device).manual_seed(seed)

    def __iter__(self):
        for images, labels in super().__iter__():
            yield random_crop_flip(images, generator=self.augment_generator), labels


class Throughput(Callback):
    """Training pictures per second and, on CUDA, the most memory used.

    A step is timed from one step's start to the next one's, so fetching and augmenting the
    batch count; steps that also validated or drew a sample grid are left out of the rate.
    """

    order = 95  # after Validation and the sample grid: it can tell whether they ran this step

    def __init__(self, batch_size: int, window: int = 20, skip_first: int = 0):
        self.batch_size, self.window = batch_size, window
        self.skip_first = skip_first  # after torch.compile, the first steps pay for compiling

    def before_fit(self, learner: Learner) -> None:
        self.recent: list[float] = []
        self.seconds, self.steps = 0.0, 0
        self.last_start: float | None = None
        self.last_was_training_only = False
        if learner.device.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(learner.device.device)  # this run's peak, not the warm-up's

    def before_batch(self, learner: Learner) -> None:
        now = time.perf_counter()
        if self.last_start is not None and self.last_was_training_only:
            self.count(now - self.last_start)
        self.last_start = now

    def after_batch(self, learner: Learner) -> None:
        self.last_was_training_only = ("valid_loss" not in learner.metrics and "samples" not in learner.metrics
                                       and learner.step > self.skip_first)
        if self.recent:
            learner.metrics["images_per_second"] = self.batch_size * len(self.recent) / sum(self.recent)
        if learner.device.device.type == "cuda":
            learner.metrics["gpu_memory_mb"] = torch.cuda.max_memory_allocated(learner.device.device) / 2**20

    def after_fit(self, learner: Learner) -> None:
        if self.last_start is not None and self.last_was_training_only:
            self.count(time.perf_counter() - self.last_start)

    def count(self, seconds: float) -> None:
        self.seconds += seconds
        self.steps += 1
        self.recent = (self.recent + [seconds])[-self.window:]

    @property
    def images_per_second(self) -> float:
        return self.batch_size * self.steps / self.seconds if self.seconds else 0.0


class TimeToTarget(Callback):
    """The training seconds until a validation on all ``full_size`` pictures first reaches the
    DAWNBench bar (a subset's accuracy does not count)."""

    order = 60  # after Validation

    def __init__(self, full_size: int):
        self.full_size = full_size

    def before_fit(self, learner: Learner) -> None:
        self.start, self.seconds = time.perf_counter(), None

    def after_batch(self, learner: Learner) -> None:
        full = learner.metrics.get("valid_on") == self.full_size
        if self.seconds is None and full and learner.metrics.get("accuracy", 0) >= TARGET_ACCURACY:
            self.seconds = time.perf_counter() - self.start


def device_for(spec: DarknetSpec) -> DeviceConfig:
    """The automatic device, with the instructor's toggles for mixed precision and channels_last
    (they change nothing on a CPU)."""
    auto = DeviceConfig.auto()
    if auto.device.type != "cuda":
        return auto
    amp = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if spec.mixed_precision else None
    return DeviceConfig(auto.device, amp_dtype=amp, channels_last=spec.channels_last)


def compiled(model: torch.nn.Module) -> torch.nn.Module:
    """torch.compile with CUDA graphs: the lecture model's eager step is launch-bound (measured on
    an H100: the CPU needs 19-23 ms to queue a 19-24 ms step), and replaying a recorded graph takes
    the CPU out of it (72,000 against 26,000 pictures/s in a plain loop; compiling takes ~45 s).
    One batch shape (the short last batch is dropped), so one graph."""
    return torch.compile(model, mode="reduce-overhead", dynamic=False)


def compiles(spec: DarknetSpec, device: DeviceConfig) -> bool:
    """torch.compile only where it pays: on a GPU (on a CPU it needs a C++ compiler and minutes)."""
    return spec.compile_model and device.device.type == "cuda"


def run_darknet(spec_values: dict, context) -> None:
    """The job runner: Darknet with the lesson's recipe; metrics include pictures per second."""
    spec = spec_from_dict(spec_values)
    device = device_for(spec)
    torch.manual_seed(spec.seed)
    full_train, valid = cifar_tensors(True), cifar_tensors(False)
    train = full_train.subset(min(spec.n_train, len(full_train.labels)), seed=spec.seed)
    if device.device.type == "cuda":  # the data lives on the GPU; augmentation happens there too
        train = train.to(device.device)
    batches = AugmentedBatches(train.images, train.labels, spec.batch_size, shuffle=True, seed=spec.seed,
                               drop_last=compiles(spec, device))
    model = darknet(spec.blocks, len(CLASSES), spec.nf, spec.bn_momentum)
    phases = phases_1cycle(spec.epochs, spec.max_lr, DIV, PCT, 0.95, 0.85)
    driver = PhaseDriver(model.parameters(), phases, len(batches), weight_decay=WEIGHT_DECAY)
    validation = Validation(valid.images, valid.labels, every=max(1, len(batches) // 4), subset=1000)
    timer = TimeToTarget(len(valid.labels))
    throughput = Throughput(spec.batch_size, skip_first=3 if compiles(spec, device) else 0)
    sample_images, sample_labels = valid.images[:SAMPLES], valid.labels[:SAMPLES].tolist()

    def emit_samples(learner: Learner) -> None:
        predicted = learner.predict(sample_images).argmax(dim=1).tolist()
        png = digit_grid_png(valid.shown(sample_images), [SHORT_NAMES[i] for i in sample_labels],
                             [SHORT_NAMES[i] for i in predicted], per_row=6, scale=3, show_truth=False)
        context.emit("samples", {"png": png, "step": learner.step})
        learner.metrics["samples"] = True  # this step's time is not a training step's

    learner = Learner(model, batches, driver.optimizer_for(0),
                      [CancelCheck(context.cancelled), PhaseSchedule(driver), NaNGuard(), validation,
                       timer, throughput,
                       Periodically(SAMPLE_EVERY_SECONDS, emit_samples), Reporter(lambda row: context.emit("metrics", row))],
                      device=device)
    if compiles(spec, device):
        learner.compiled_for_training = compiled(learner.model)
    emit_samples(learner)
    started = time.perf_counter()
    learner.fit(driver.total_iterations / len(batches))
    emit_samples(learner)
    context.emit("result", {
        "accuracy": (validation.last_predicted == valid.labels).float().mean().item(),
        "seconds": time.perf_counter() - started, "seconds_to_target": timer.seconds,
        "images_per_second": throughput.images_per_second,  # training steps only
        "synthetic": train.synthetic, "device": device.describe(),
        "mixed_precision": device.amp_dtype is not None, "channels_last": device.channels_last,
        "compiled": compiles(spec, device),
        "parameters": sum(p.numel() for p in model.parameters()),
    })


# ----- time estimates ------------------------------------------------------------------------------
def seconds_per_image(blocks: tuple, nf: int, batch_size: int = 128) -> float:
    """Measured: the fastest of a few training steps of this model on this device, per picture."""
    device = device_for(DarknetSpec(blocks=blocks, nf=nf, batch_size=batch_size))
    return fastest_step_seconds(darknet(blocks, 10, nf), (batch_size, 3, 32, 32), device, repeats=3) / batch_size


def warm_up() -> dict:
    """Run once by each worker: read (or make) the data and time the demo model; on a GPU the
    lecture model too (on a CPU one lecture step takes seconds: its time is scaled by MACs)."""
    cifar_tensors(True)
    cifar_tensors(False)
    demo = preset_spec("demo")
    timings = {"demo": seconds_per_image(demo.blocks, demo.nf)}
    if torch.cuda.is_available():
        lecture = preset_spec("lecture")
        timings["lecture"] = seconds_per_image(lecture.blocks, lecture.nf, lecture.batch_size)
    return {"darknet_seconds_per_image": timings, "cifar_synthetic": cifar_tensors(True).synthetic,
            "cifar_sizes": [len(cifar_tensors(True).labels), len(cifar_tensors(False).labels)],
            "device": DeviceConfig.auto().describe()}


def estimate_seconds(spec: DarknetSpec, timings: dict[str, float], train_size: int, valid_size: int) -> float | None:
    """Expected training time: the measured time per picture of the nearest timed model, scaled
    by multiply-adds, times the pictures the run sees, plus its validations (a full pass and
    about three 1,000-picture passes per epoch; a forward pass costs about a third of a step).
    A compiled run on a GPU adds the compiling and trains at the CUDA graphs' measured speed-up."""
    if not timings:
        return None
    on_gpu = "lecture" in timings  # a worker times the lecture model only on a GPU
    reference = "lecture" if on_gpu and spec.nf >= 16 else "demo"
    reference_spec = preset_spec(reference)
    per_picture = timings[reference] * model_facts(spec.blocks, spec.nf)["macs"] / model_facts(
        reference_spec.blocks, reference_spec.nf)["macs"]
    training = per_picture * spec.epochs * min(spec.n_train, train_size)
    validation = per_picture * spec.epochs * (valid_size + 3 * min(1000, valid_size)) / 3
    if spec.compile_model and on_gpu:
        training = COMPILE_SECONDS + training / COMPILED_SPEED_UP
    return training + validation

