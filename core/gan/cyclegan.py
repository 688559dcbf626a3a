"""The CycleGAN of Lesson 12 as a job: two generators (A → B and B → A) and two PatchGAN discriminators, trained
with the paper's recipe: LSGAN losses, cycle consistency, identity loss and a pool of old fakes."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core import classroom, specs
from core.data.domains import SOURCES, Domains, load_domains
from core.errors import RunCancelled, TrainingDiverged, UserError
from core.gan.pool import ImagePool
from core.models.cyclegan import patch_discriminator, resnet_generator
from core.rnn_lab import one_cpu_thread
from core.specs import spec_from_values
from core.train import DeviceConfig, cpu_state, fastest_seconds, weights_bytes
from core.viz import tanh_grid_png

KIND = "cyclegan"
PRESETS = ("quick", "demo", "lecture")
BETAS = (0.5, 0.999)  # the paper's Adam: a short memory of momentum suits the moving target of a GAN
PROBES, SAMPLE_EVERY_SECONDS, SAMPLE_PIXELS = 4, 2.0, 128  # a probe picture is shown about 128 px wide
EXPLODE_FACTOR = 20.0  # as core.train.NaNGuard
LOSS_FLOOR = 1.0  # GAN losses wobble: "exploded" is 20 times the first loss or 20, whichever is larger
DOMAIN_BYTES = 2**29  # at most 512 MB of float32 pictures per domain (682 at 256 px)
MAX_IMAGES = 2000
MIN_SIZE, MAX_SIZE, SIZE_MULTIPLE = 16, 256, 4
MAX_STEPS, MAX_LR, MAX_BLOCKS, MIN_WIDTH, MAX_WIDTH, MAX_BATCH, MAX_POOL = 100_000, 0.1, 12, 4, 128, 64, 200
LOSSES = ("loss_gan", "loss_cycle", "loss_identity", "loss_d")

# Seconds per step measured on a 2-core CPU, one thread: quick 0.15-0.19 (40 steps: about 7 s), demo 0.19-0.23
# (800 steps: about 3 min; the digits come out striped on the savanna after about 250 steps, and sharper by 800),
# lecture about 30 (256 px, 9 blocks, width 64, as the lesson: a GPU's job).
PRESET_SETTINGS = {"quick": {"size": 32, "blocks": 2, "width": 16, "steps": 40, "batch_size": 4},
                   "demo": {"size": 32, "blocks": 3, "width": 16, "steps": 800, "batch_size": 4},
                   "lecture": {"size": 256, "blocks": 9, "width": 64, "steps": 5000, "batch_size": 1}}


@dataclass(frozen=True)
class CycleGanSpec:
    """Everything that defines a run; ``asdict`` of it is what the job manager stores."""

    preset: str = "demo"
    source: str = "synthetic"
    size: int = 32
    blocks: int = 3  # residual blocks of each generator (the lesson: 9)
    width: int = 16  # channels of each generator's and discriminator's first layer (the lesson: 64)
    steps: int = 800
    lr: float = 2e-4
    batch_size: int = 4  # the lesson: 1
    cycle_weight: float = 10.0
    identity_weight: float = 0.5  # a share of cycle_weight, as in the paper's code
    pool_size: int = 50
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def preset_spec(preset: str = "demo") -> CycleGanSpec:
    if preset not in PRESETS:
        raise UserError("mnist.bad_preset", "Unknown preset {preset}.", preset=preset)
    return CycleGanSpec(preset, **PRESET_SETTINGS[preset])


def validate(spec: CycleGanSpec) -> CycleGanSpec:
    """The spec itself, or a UserError that says what to change."""
    preset_spec(spec.preset)
    if spec.source not in SOURCES:
        raise UserError("cyclegan.bad_source", "Unknown picture source {source}: choose one of {sources}.",
                        source=spec.source, sources=", ".join(SOURCES))
    specs.check_whole_numbers(spec, ("size", "blocks", "width", "steps", "batch_size", "pool_size", "seed"))
    specs.check_lr_is_number(spec.lr)
    if not 0 < spec.lr <= MAX_LR:
        raise UserError("cyclegan.lr_range", "The learning rate must be above 0 and at most {max:g}, such as the "
                        "lesson's 2e-4 (got {lr:g}).", lr=spec.lr, max=MAX_LR)
    for name in ("cycle_weight", "identity_weight"):
        value = getattr(spec, name)
        if not specs.is_number(value) or value < 0:
            raise UserError("cyclegan.bad_weight", "{name} must be a number of at least 0, such as the lesson's "
                            "{lesson:g} (got {value}).", name=name, value=value, lesson=getattr(CycleGanSpec, name))
    if spec.size % SIZE_MULTIPLE or not MIN_SIZE <= spec.size <= MAX_SIZE:
        raise UserError("cyclegan.bad_size", "The picture size must be a multiple of {multiple} between {low} and "
                        "{high}, such as 32 or 256 (got {size}).", multiple=SIZE_MULTIPLE, low=MIN_SIZE,
                        high=MAX_SIZE, size=spec.size)
    specs.check_ranges((("steps", spec.steps, 1, MAX_STEPS), ("blocks", spec.blocks, 1, MAX_BLOCKS),
                        ("width", spec.width, MIN_WIDTH, MAX_WIDTH), ("batch_size", spec.batch_size, 1, MAX_BATCH),
                        ("pool_size", spec.pool_size, 0, MAX_POOL), ("seed", spec.seed, 0, 2**31 - 1)))
    return spec


def spec_from_dict(values: dict) -> CycleGanSpec:
    return spec_from_values(CycleGanSpec, values, validate)


def readable_runs(runs: list[dict]) -> list[dict]:
    return specs.readable_runs(runs, spec_from_dict)


def step_cost(spec: CycleGanSpec) -> float:
    """A step's work, roughly: the convs' cost grows with the pixels, width² and the depth (the residual blocks,
    plus about two blocks' worth for the rest of a generator and the discriminator), times the batch."""
    return spec.batch_size * spec.size**2 * spec.width**2 * (spec.blocks + 2)


def demo_steps(spec: CycleGanSpec) -> float:
    """A run's work in training steps of the demo's size."""
    return spec.steps * step_cost(spec) / step_cost(preset_spec("demo"))


def size_of_values(values: dict) -> str:
    """Which size preset a run amounts to, for the instructor's size limit."""
    spec = spec_from_dict(values)
    return classroom.size_of(demo_steps(spec), {size: demo_steps(preset_spec(size)) for size in PRESETS}, spec.preset)


# ----- the lesson's losses -------------------------------------------------------------------------------
def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """LSGAN (Mao et al.), as CycleGAN: the squared distance of every patch's score from 1 (real) or 0 (fake)."""
    scores = scores.float()
    return F.mse_loss(scores, torch.full_like(scores, float(real)))


def cycle_loss(real_a: torch.Tensor, real_b: torch.Tensor, g_ab: nn.Module, g_ba: nn.Module,
               fake_a: torch.Tensor | None = None, fake_b: torch.Tensor | None = None) -> torch.Tensor:
    """Unweighted cycle consistency: translated there and back, each picture should come back as it was (L1).
    ``fake_a``/``fake_b`` are the translations when they are already at hand."""
    fake_b = g_ab(real_a) if fake_b is None else fake_b
    fake_a = g_ba(real_b) if fake_a is None else fake_a
    return F.l1_loss(g_ba(fake_b).float(), real_a.float()) + F.l1_loss(g_ab(fake_a).float(), real_b.float())


def identity_loss(real_a: torch.Tensor, real_b: torch.Tensor, g_ab: nn.Module, g_ba: nn.Module) -> torch.Tensor:
    """Unweighted identity loss: a picture already of the target domain should pass unchanged (L1); it keeps the
    generators from repainting colours they need not touch."""
    return F.l1_loss(g_ab(real_b).float(), real_b.float()) + F.l1_loss(g_ba(real_a).float(), real_a.float())


@dataclass
class CycleGan:
    """The four networks, the two optimizers (one for both generators, one for both discriminators, as in the
    paper's code), their loss scalers (float16 on a GPU) and the two pools of old fakes."""

    g_ab: nn.Module
    g_ba: nn.Module
    d_a: nn.Module  # tells real A from G_BA's fakes
    d_b: nn.Module  # tells real B from G_AB's fakes
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    pool_a: ImagePool
    pool_b: ImagePool


def discriminator_layers(size: int, lesson: int = 3) -> int:
    """The lesson's 3 stride-2 layers, fewer for pictures under 24 px: the PatchGAN's last two convs need a grid
    of at least 3×3 cells to work on (at 16 px three halvings leave 2×2, and InstanceNorm cannot normalise 1×1)."""
    layers = lesson
    while layers > 1 and size // 2**layers < 3:
        layers -= 1
    return layers


def build_cyclegan(spec: CycleGanSpec, device: DeviceConfig) -> CycleGan:
    """Fresh networks drawn from ``spec.seed``, drawn aside: the process's own random numbers stay as they were."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        g_ab, g_ba = (device.prepare_model(resnet_generator(3, spec.width, spec.blocks)) for _ in range(2))
        d_a, d_b = (device.prepare_model(patch_discriminator(3, spec.width, discriminator_layers(spec.size)))
                    for _ in range(2))
    pools = torch.Generator().manual_seed(spec.seed)
    return CycleGan(g_ab, g_ba, d_a, d_b,
                    torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], lr=spec.lr, betas=BETAS),
                    torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], lr=spec.lr, betas=BETAS),
                    device.grad_scaler(), device.grad_scaler(), ImagePool(spec.pool_size, pools),
                    ImagePool(spec.pool_size, pools))


def generator_losses(real_a: torch.Tensor, real_b: torch.Tensor, gan: CycleGan, spec: CycleGanSpec
                     ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The generators' three weighted losses (adversarial, cycle, identity) and the two translations."""
    fake_b, fake_a = gan.g_ab(real_a), gan.g_ba(real_b)
    losses = {"loss_gan": lsgan_loss(gan.d_b(fake_b), True) + lsgan_loss(gan.d_a(fake_a), True),
              "loss_cycle": spec.cycle_weight * cycle_loss(real_a, real_b, gan.g_ab, gan.g_ba, fake_a, fake_b)}
    identity_weight = spec.cycle_weight * spec.identity_weight
    losses["loss_identity"] = (identity_weight * identity_loss(real_a, real_b, gan.g_ab, gan.g_ba) if identity_weight
                               else torch.zeros((), device=real_a.device))
    return losses, fake_a, fake_b


def discriminator_loss(d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Halved, as in the paper, so that the discriminator learns at half the generator's pace."""
    return (lsgan_loss(d(real), True) + lsgan_loss(d(fake), False)) / 2


def optimize(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def train_step(gan: CycleGan, real_a: torch.Tensor, real_b: torch.Tensor, spec: CycleGanSpec,
               device: DeviceConfig) -> dict[str, float]:
    """One step of the paper's recipe: the generators against frozen discriminators, then the discriminators on
    real pictures and on fakes drawn from the pools. The four losses as floats."""
    discriminators = [*gan.d_a.parameters(), *gan.d_b.parameters()]
    for parameter in discriminators:  # the generators' step needs no gradients of the discriminators
        parameter.requires_grad_(False)
    with device.autocast():
        losses, fake_a, fake_b = generator_losses(real_a, real_b, gan, spec)
    optimize(sum(losses.values()), gan.opt_g, gan.scaler_g)
    for parameter in discriminators:
        parameter.requires_grad_(True)
    with device.autocast():
        losses["loss_d"] = (discriminator_loss(gan.d_a, real_a, gan.pool_a.query(fake_a))
                            + discriminator_loss(gan.d_b, real_b, gan.pool_b.query(fake_b)))
    optimize(losses["loss_d"], gan.opt_d, gan.scaler_d)
    return {name: losses[name].item() for name in LOSSES}


def check_finite(losses: dict[str, float], first: dict[str, float], step: int, lr: float) -> None:
    """NaNGuard's rule and message for each loss: NaN, infinite or 20 times its first (at least 20) is diverged."""
    for name, loss in losses.items():
        if math.isnan(loss):
            key, english = "train.diverged_nan", "The loss became NaN at step {step} (learning rate {lr:.3g})."
        elif not math.isfinite(loss) or loss > EXPLODE_FACTOR * max(first[name], LOSS_FLOOR):
            key, english = "train.diverged_exploded", "The loss exploded at step {step} (learning rate {lr:.3g})."
        else:
            continue
        raise TrainingDiverged(key, english + " The steps are too big: try a learning rate about 10 times smaller, "
                               "such as {suggestion:.3g}.", step=step, lr=lr, suggestion=lr / 10)


# ----- what the page shows -------------------------------------------------------------------------------
@torch.no_grad()
def translations(gan: CycleGan, probe_a: torch.Tensor, probe_b: torch.Tensor) -> torch.Tensor:
    """Six rows of pictures: A, G_AB(A), G_BA(G_AB(A)), then B, G_BA(B), G_AB(G_BA(B)), on the CPU in [-1, 1]."""
    generators = (gan.g_ab, gan.g_ba)
    for generator in generators:
        generator.eval()
    try:
        fake_b, fake_a = gan.g_ab(probe_a), gan.g_ba(probe_b)
        rows = [probe_a, fake_b, gan.g_ba(fake_b), probe_b, fake_a, gan.g_ab(fake_a)]
    finally:
        for generator in generators:
            generator.train()
    return torch.cat([row.float().cpu() for row in rows])


def samples_png(pictures: torch.Tensor, per_row: int = PROBES) -> bytes:
    """The pictures in rows of ``per_row``, enlarged (nearest neighbour, so pixels stay sharp) to be seen."""
    return tanh_grid_png(pictures, per_row, max(1, SAMPLE_PIXELS // pictures.shape[-1]))


# ----- the job -------------------------------------------------------------------------------------------
def images_needed(spec: CycleGanSpec) -> int:
    """Pictures to load per domain: no more than the run can look at, nor than fit in DOMAIN_BYTES."""
    return max(PROBES, min(MAX_IMAGES, spec.steps * spec.batch_size, DOMAIN_BYTES // (3 * spec.size**2 * 4)))


def run_cyclegan(spec_values: dict, context) -> None:
    """The job runner: trains the CycleGAN, emitting its four losses every step, the probe pictures' translations
    every few seconds, then the generators' weights and a result."""
    with one_cpu_thread():
        train_cyclegan(spec_from_dict(spec_values), context)


def train_cyclegan(spec: CycleGanSpec, context) -> None:
    device = DeviceConfig.auto()
    domains: Domains = load_domains(spec.source, spec.size, images_needed(spec), spec.seed)
    gan = build_cyclegan(spec, device)
    probe_a, probe_b = device.prepare_images(domains.a[:PROBES]), device.prepare_images(domains.b[:PROBES])
    order = torch.Generator().manual_seed(spec.seed)

    def emit_samples(step: int) -> None:
        context.emit("samples", {"png": samples_png(translations(gan, probe_a, probe_b)), "step": step})

    emit_samples(0)
    started = last_sample = time.perf_counter()
    first: dict[str, float] = {}
    for step in range(1, spec.steps + 1):
        if context.cancelled():
            raise RunCancelled()
        real_a = device.prepare_images(domains.a[torch.randint(len(domains.a), (spec.batch_size,), generator=order)])
        real_b = device.prepare_images(domains.b[torch.randint(len(domains.b), (spec.batch_size,), generator=order)])
        losses = train_step(gan, real_a, real_b, spec, device)
        first = first or losses
        check_finite(losses, first, step, spec.lr)
        elapsed = time.perf_counter() - started
        context.emit("metrics", {"step": step, "total_steps": spec.steps, "elapsed": elapsed,
                                 "eta": elapsed / step * (spec.steps - step), **losses})
        if time.perf_counter() - last_sample >= SAMPLE_EVERY_SECONDS:
            emit_samples(step)
            last_sample = time.perf_counter()
    seconds = time.perf_counter() - started
    emit_samples(spec.steps)
    context.emit("weights", {"state": weights_bytes({"g_ab": cpu_state(gan.g_ab), "g_ba": cpu_state(gan.g_ba)})})
    context.emit("result", {"seconds": seconds, "device": device.describe(), "steps": spec.steps,
                            "final_losses": losses, "synthetic": domains.synthetic, "domains": list(domains.names)})


# ----- estimates ---------------------------------------------------------------------------------------
def seconds_per_step(spec: CycleGanSpec, repeats: int = 2) -> float:
    """The fastest of a few real training steps (random pictures: the content does not change the time), after
    one that pays for the allocations."""
    device = DeviceConfig.auto()
    gan = build_cyclegan(spec, device)
    real_a, real_b = (device.prepare_images(torch.rand(spec.batch_size, 3, spec.size, spec.size) * 2 - 1)
                      for _ in range(2))

    return fastest_seconds(lambda: train_step(gan, real_a, real_b, spec, device), repeats)  # .item() waits


def warm_up() -> dict:
    """Run once by each worker process: time one training step of the demo's CycleGAN."""
    with one_cpu_thread():
        return {"cyclegan_seconds_per_step": seconds_per_step(preset_spec("demo"))}


def estimate_seconds(spec: CycleGanSpec, info: dict, runs: list[dict], device: str) -> float | None:
    """Expected time of the spec on this device: from the newest finished run here (it includes everything),
    else from the worker's timed step; None until one of them exists."""
    return specs.estimate_from_rate(spec, runs, device, spec_from_dict, KIND, demo_steps,
                                    info.get("cyclegan_seconds_per_step"))
