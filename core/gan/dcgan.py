"""DCGAN and WGAN on real MNIST digits (Lesson 12), trained as a job: one step is one generator update, with
the discriminator's (or critic's) own steps inside it. Every few seconds the generator draws the same fixed
noise batch, so a student watches the same digits form, and the foundation's classifier judges them."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from core import classroom, specs
from core.data.mnist import padded_tanh
from core.errors import RunCancelled, TrainingDiverged, UserError
from core.gan import judge
from core.mnist_lab import cached_digits
from core.models.dcgan import DCGAN_D, DCGAN_G
from core.specs import spec_from_values
from core.train import DeviceConfig, fastest_seconds, with_weights, weights_bytes
from core.viz import tanh_grid_png

KIND = "gan"
LOSSES = ("dcgan", "wgan")
PRESETS = ("quick", "demo", "lecture")
ISIZE, NZ, NC = 32, 100, 1  # MNIST padded 28 → 32: the lesson's networks need a multiple of 16
FIXED_SAMPLES, GRID_SAMPLES, GRID_ZOOM = 256, 64, 3  # the classifier judges 256; the grid shows 8×8 of them
SAMPLE_EVERY_SECONDS = 3.0
SAMPLING_SHARE_LIMIT = 20  # the time between grids is at least 20 times what drawing and judging one took
MAX_STEPS, MAX_LR, MIN_WIDTH, MAX_WIDTH, MIN_BATCH, MAX_BATCH = 20_000, 0.1, 4, 256, 2, 512

# The WGAN recipe of the lesson (Arjovsky et al.): weights clipped to ±0.01, RMSprop 1e-4, 5 critic steps per
# generator step, 100 while the generator has made fewer than 25 steps and at every 500th, so that the critic
# is near its optimum whenever the generator asks it which way to go.
CLIP, CRITIC_STEPS, WARM_CRITIC_STEPS, WARM_GENERATOR_STEPS, BOOST_EVERY = 0.01, 5, 100, 25, 500
DEFAULT_LR = {"dcgan": 2e-4, "wgan": 1e-4}

# Generator steps per preset and loss. A DCGAN step at width 32, batch 64 takes about 0.12 s on this
# repository's 2-core CI machine: "demo" is the ~2 minutes in which the digits become recognisable (see
# bench/gan_steps.py). A WGAN step costs 6 discriminator passes, and its first 25 cost 101: it gets fewer.
PRESET_STEPS = {"quick": {"dcgan": 150, "wgan": 30}, "demo": {"dcgan": 900, "wgan": 120},
                "lecture": {"dcgan": 5000, "wgan": 2000}}
PRESET_WIDTH = {"quick": {"dcgan": 32, "wgan": 16}, "demo": {"dcgan": 32, "wgan": 32},
                "lecture": {"dcgan": 64, "wgan": 64}}


@dataclass(frozen=True)
class GanSpec:
    """Everything that defines a run; ``asdict`` of it is what the job manager stores."""

    preset: str = "demo"
    loss: str = "dcgan"
    steps: int = 900  # generator updates
    width: int = 32  # ngf = ndf: the generator's last hidden layer and the discriminator's first
    batch_size: int = 64
    lr: float = 2e-4
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def preset_spec(preset: str = "demo", loss: str = "dcgan") -> GanSpec:
    if preset not in PRESETS:
        raise UserError("mnist.bad_preset", "Unknown preset {preset}.", preset=preset)
    if loss not in LOSSES:
        raise UserError("gan.bad_loss", "Unknown loss {loss}: choose dcgan or wgan.", loss=loss)
    return GanSpec(preset, loss, PRESET_STEPS[preset][loss], PRESET_WIDTH[preset][loss], 64, DEFAULT_LR[loss])


def validate(spec: GanSpec) -> GanSpec:
    """The spec itself, or a UserError that says what to change."""
    preset_spec(spec.preset, spec.loss)
    specs.check_whole_numbers(spec, ("steps", "width", "batch_size", "seed"))
    specs.check_lr_is_number(spec.lr)
    if not 0 < spec.lr <= MAX_LR:
        raise UserError("gan.lr_range", "The learning rate must be above 0 and at most {max:g}; the lesson's is "
                        "{lesson:g} for this loss (got {lr:g}).", lr=spec.lr, max=MAX_LR, lesson=DEFAULT_LR[spec.loss])
    specs.check_ranges((("steps", spec.steps, 1, MAX_STEPS), ("width", spec.width, MIN_WIDTH, MAX_WIDTH),
                        ("batch_size", spec.batch_size, MIN_BATCH, MAX_BATCH), ("seed", spec.seed, 0, 2**31 - 1)))
    return spec


def spec_from_dict(values: dict) -> GanSpec:
    return spec_from_values(GanSpec, values, validate)


def readable_runs(runs: list[dict]) -> list[dict]:
    return specs.readable_runs(runs, spec_from_dict)


# ----- the lesson's rule and the amount of work it makes ----------------------------------------------------
def critic_steps(generator_steps_done: int) -> int:
    """The WGAN critic's steps before the next generator step: 100 while the generator has made fewer than
    25 steps and at every 500th, else 5."""
    if generator_steps_done < WARM_GENERATOR_STEPS or generator_steps_done % BOOST_EVERY == 0:
        return WARM_CRITIC_STEPS
    return CRITIC_STEPS


def total_critic_steps(generator_steps: int) -> int:
    """``critic_steps`` summed over the first ``generator_steps`` generator steps."""
    warm = min(generator_steps, WARM_GENERATOR_STEPS)
    boosts = (generator_steps - 1) // BOOST_EVERY if generator_steps > WARM_GENERATOR_STEPS else 0
    return (warm + boosts) * WARM_CRITIC_STEPS + (generator_steps - warm - boosts) * CRITIC_STEPS


def work_done(spec: GanSpec, generator_steps: int) -> float:
    """Work of the first ``generator_steps`` steps, in DCGAN steps of the demo's size: a step is one
    discriminator pass per critic step plus the generator's own (about the cost of two discriminator steps),
    and its cost grows with width² and the batch."""
    demo = preset_spec("demo")
    critic = total_critic_steps(generator_steps) if spec.loss == "wgan" else generator_steps
    passes = (critic + 2 * generator_steps) / 3
    return passes * (spec.width / demo.width) ** 2 * spec.batch_size / demo.batch_size


def size_of_values(values: dict) -> str:
    """Which size preset a run amounts to, for the instructor's size limit."""
    spec = spec_from_dict(values)
    return classroom.size_of(work_done(spec, spec.steps),
                             {size: work_done(preset_spec(size), preset_spec(size).steps) for size in PRESETS},
                             spec.preset)


# ----- networks, noise and pictures ------------------------------------------------------------------------
@torch.no_grad()
def dcgan_init_(module: nn.Module) -> None:
    """Radford et al.'s initialisation, which the DCGAN recipe relies on: conv weights N(0, 0.02), BatchNorm
    scales N(1, 0.02) and shifts 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


def networks(width: int, seed: int) -> tuple[DCGAN_G, DCGAN_D]:
    """A fresh generator and discriminator drawn from ``seed``, aside from the process's own random numbers."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator, discriminator = DCGAN_G(ISIZE, NZ, NC, width), DCGAN_D(ISIZE, NC, width)
        dcgan_init_(generator)
        dcgan_init_(discriminator)
    return generator, discriminator


def fixed_noise(seed: int, count: int = FIXED_SAMPLES) -> torch.Tensor:
    """The run's fixed noise batch (count, NZ): the same vectors at every sample grid and afterwards."""
    return torch.randn(count, NZ, generator=torch.Generator().manual_seed(seed + 1))


@torch.no_grad()
def generate(generator: nn.Module, noise: torch.Tensor) -> torch.Tensor:
    """Pictures for ``noise`` on the CPU, with BatchNorm on the batch's statistics as during training (the
    running averages lag a generator that changes this fast, and make washed-out digits)."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.train()
    pictures = generator(noise.to(device)).float().cpu()
    generator.train(was_training)
    return pictures


def grid_png(pictures: torch.Tensor, columns: int = 8, zoom: int = GRID_ZOOM) -> bytes:
    """Generated digits, white on black, as one PNG enlarged to be seen."""
    return tanh_grid_png(pictures, columns, zoom)


def interpolation(generator: nn.Module, seed: int, first: int, last: int, count: int = 9) -> torch.Tensor:
    """``count`` pictures walking in a straight line through noise space from fixed sample ``first`` to
    ``last``. They are drawn together with the whole fixed batch, so BatchNorm sees the statistics it saw
    in training, not those of nine near-identical vectors."""
    noise = fixed_noise(seed)
    weights = torch.linspace(0, 1, count).unsqueeze(1)
    path = torch.lerp(noise[first].expand(count, -1), noise[last].expand(count, -1), weights)
    return generate(generator, torch.cat([noise, path]))[len(noise):]


def architecture_table(width: int) -> pd.DataFrame:
    """Each block of the generator, then of the discriminator, with the shape it outputs for one picture and its
    parameters: the generator's shapes grow 1 → 4 → … → 32 as the discriminator's shrink back."""
    generator, discriminator = networks(width, 0)
    rows = []
    for network, blocks, start in (("G", list(generator.features), torch.zeros(2, NZ, 1, 1)),
                                   ("D", [discriminator.initial, *discriminator.extra, *discriminator.pyramid,
                                          discriminator.final], torch.zeros(2, NC, ISIZE, ISIZE))):
        shape = start
        for block in blocks:
            with torch.no_grad():
                shape = block(shape)
            layer = block[0] if isinstance(block, nn.Sequential) else block
            rows.append({"network": network, "layer": type(layer).__name__,
                         "kernel": f"{layer.kernel_size[0]} s{layer.stride[0]} p{layer.padding[0]}",
                         "output": " × ".join(map(str, shape.shape[1:])),
                         "parameters": sum(p.numel() for p in block.parameters())})
    return pd.DataFrame(rows)


def trained_generator(spec_values: dict, weights: bytes) -> DCGAN_G | None:
    """A stored run's generator on the CPU; None when the weights do not fit the spec (an older run, say)."""
    try:
        generator, _ = networks(spec_from_dict(spec_values).width, 0)
    except UserError:
        return None
    return with_weights(generator, weights)


# ----- one step --------------------------------------------------------------------------------------------
@dataclass
class Gan:
    """The two networks with their optimizers and loss scalers (float16 on a GPU)."""

    generator: DCGAN_G
    discriminator: DCGAN_D
    generator_optimizer: torch.optim.Optimizer
    discriminator_optimizer: torch.optim.Optimizer
    generator_scaler: torch.amp.GradScaler
    discriminator_scaler: torch.amp.GradScaler


def build_gan(spec: GanSpec, device: DeviceConfig) -> Gan:
    """The lesson's optimizers: Adam 2e-4 with β1 0.5 for DCGAN, RMSprop 1e-4 for WGAN (momentum-based
    optimizers destabilise a critic whose weights are clipped)."""
    generator, discriminator = (device.prepare_model(net) for net in networks(spec.width, spec.seed))
    if spec.loss == "wgan":
        make = lambda net: torch.optim.RMSprop(net.parameters(), lr=spec.lr)  # noqa: E731
    else:
        make = lambda net: torch.optim.Adam(net.parameters(), lr=spec.lr, betas=(0.5, 0.999))  # noqa: E731
    return Gan(generator, discriminator, make(generator), make(discriminator), device.grad_scaler(),
               device.grad_scaler())


def gradient_norm(net: nn.Module) -> float:
    return float(torch.nn.utils.get_total_norm([p.grad for p in net.parameters() if p.grad is not None]))


def update(loss: torch.Tensor, net: nn.Module, optimizer: torch.optim.Optimizer,
           scaler: torch.amp.GradScaler) -> float:
    """Backward and step; returns the gradient's norm (unscaled, as the optimizer sees it)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norm = gradient_norm(net)
    scaler.step(optimizer)
    scaler.update()
    return norm


def noise_like(real: torch.Tensor) -> torch.Tensor:
    return torch.randn(len(real), NZ, device=real.device)


def dcgan_step(gan: Gan, real: torch.Tensor, device: DeviceConfig) -> dict[str, float]:
    """One DCGAN step: the discriminator learns real → 1 and fake → 0 (binary cross-entropy on logits); then
    the generator learns to make the discriminator say 1 of the same fakes (the non-saturating loss)."""
    with device.autocast():
        fake = gan.generator(noise_like(real))
        real_logits, fake_logits = gan.discriminator(real).float(), gan.discriminator(fake.detach()).float()
        loss_d = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    grad_norm_d = update(loss_d, gan.discriminator, gan.discriminator_optimizer, gan.discriminator_scaler)
    gan.discriminator.requires_grad_(False)  # the generator's step needs gradients through it, not for it
    with device.autocast():
        judged = gan.discriminator(fake).float()
        loss_g = F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
    grad_norm_g = update(loss_g, gan.generator, gan.generator_optimizer, gan.generator_scaler)
    gan.discriminator.requires_grad_(True)
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "d_real": torch.sigmoid(real_logits).mean().item(),
            "d_fake": torch.sigmoid(fake_logits).mean().item(), "grad_norm_d": grad_norm_d,
            "grad_norm_g": grad_norm_g}


@torch.no_grad()
def clip_(net: nn.Module, limit: float = CLIP) -> None:
    """WGAN's weight clipping, the crude way it keeps the critic Lipschitz: every weight into [-limit, limit]."""
    for parameter in net.parameters():
        parameter.clamp_(-limit, limit)


def critic_step(gan: Gan, real: torch.Tensor, device: DeviceConfig) -> tuple[float, float]:
    """One WGAN critic step: raise its score of real pictures, lower it for fakes, then clip its weights.
    Returns the Wasserstein estimate, mean score(real) − mean score(fake), and the gradient's norm."""
    with torch.no_grad(), device.autocast():
        fake = gan.generator(noise_like(real))
    with device.autocast():
        estimate = gan.discriminator(real).float().mean() - gan.discriminator(fake).float().mean()
    norm = update(-estimate, gan.discriminator, gan.discriminator_optimizer, gan.discriminator_scaler)
    clip_(gan.discriminator)
    return estimate.item(), norm


def wgan_generator_step(gan: Gan, batch_size: int, device: DeviceConfig) -> tuple[float, float]:
    """The generator raises the critic's score of its fakes. Returns its loss and gradient norm."""
    gan.discriminator.requires_grad_(False)
    with device.autocast():
        loss_g = -gan.discriminator(gan.generator(torch.randn(batch_size, NZ, device=device.device))).float().mean()
    norm = update(loss_g, gan.generator, gan.generator_optimizer, gan.generator_scaler)
    gan.discriminator.requires_grad_(True)
    return loss_g.item(), norm


# ----- health ----------------------------------------------------------------------------------------------
RECENT_STEPS = 20
WINS_AFTER, WINS_REAL, WINS_FAKE = 50, 0.95, 0.05
COLLAPSE_AFTER, COLLAPSE_CLASSES, COLLAPSE_SPREAD = 300, 6, 0.7


def health(rows: list[dict], loss: str) -> list[tuple[str, str, str, dict]]:
    """Trouble a student should know about, as (level, i18n key, English, params); level is "warning", "info"
    or "success". Judged on the last few steps and the classifier's latest verdict of the fixed samples."""
    if not rows:
        return []
    notes = []
    steps = rows[-1]["step"]
    recent = rows[-RECENT_STEPS:]
    if loss == "dcgan" and steps >= WINS_AFTER:
        real = float(np.mean([row["d_real"] for row in recent]))
        fake = float(np.mean([row["d_fake"] for row in recent]))
        if real > WINS_REAL and fake < WINS_FAKE:
            notes.append(("warning", "gan.health_wins", "The discriminator wins outright: D(x) ≈ {real:.2f} and "
                          "D(G(z)) ≈ {fake:.2f}. Its loss is flat near 0, so it tells the generator little about "
                          "which way to go. Try WGAN, or a narrower discriminator.", {"real": real, "fake": fake}))
    judged = [row for row in rows if "classes_present" in row]
    if judged and steps >= COLLAPSE_AFTER:
        latest = judged[-1]
        if latest["classes_present"] < COLLAPSE_CLASSES or latest["spread"] < COLLAPSE_SPREAD:
            notes.append(("warning", "gan.health_collapse", "Mode collapse: the classifier finds only {present} of "
                          "the 10 digits among the {count} fixed samples (spread {spread:.2f}; 1 is all ten "
                          "equally). The generator has found a few pictures that fool the discriminator and "
                          "makes little else.", {"present": latest["classes_present"], "count": FIXED_SAMPLES,
                                                 "spread": latest["spread"]}))
    if not notes and judged and steps < COLLAPSE_AFTER:
        notes.append(("info", "gan.health_early", "Too early to judge: after {steps} steps the classifier finds "
                      "{present} of the 10 digits. Mode collapse is looked for from step {after} on.",
                      {"steps": steps, "present": judged[-1]["classes_present"], "after": COLLAPSE_AFTER}))
    elif not notes and judged:
        latest = judged[-1]
        notes.append(("success", "gan.health_fine", "No trouble seen. The classifier finds {present} of the 10 "
                      "digits among the {count} fixed samples and is {confidence:.0%} sure of them on average.",
                      {"present": latest["classes_present"], "count": FIXED_SAMPLES,
                       "confidence": latest["confidence"]}))
    return notes


# ----- the job -----------------------------------------------------------------------------------------------
RECOGNISABLE_CONFIDENCE, RECOGNISABLE_CLASSES = 0.67, 10  # the benchmark's bar for "recognisable digits"


def check_finite(values: dict[str, float], step: int, lr: float) -> None:
    if not all(math.isfinite(values[name]) for name in ("loss_d", "loss_g")):
        raise TrainingDiverged("gan.diverged", "The losses became NaN or infinite at step {step} (learning rate "
                               "{lr:.3g}). Try a learning rate about 10 times smaller, such as {suggestion:.3g}.",
                               step=step, lr=lr, suggestion=lr / 10)


class Batches:
    """Random batches of real digits at 32 px in [-1, 1], drawn from the seed (on the GPU when training there)."""

    def __init__(self, batch_size: int, seed: int, device: DeviceConfig):
        self.digits = cached_digits(True).images
        self.batch_size, self.device = batch_size, device
        self.order = torch.Generator().manual_seed(seed)

    def next(self) -> torch.Tensor:
        picked = self.digits[torch.randint(len(self.digits), (self.batch_size,), generator=self.order)]
        return self.device.prepare_images(padded_tanh(picked, ISIZE))


def run_gan(spec_values: dict, context) -> None:
    """The job runner: trains the spec's GAN, emitting each step's losses, the fixed noise's pictures with the
    classifier's verdict every few seconds, the generator's weights and a result."""
    spec = spec_from_dict(spec_values)
    device = DeviceConfig.auto()
    gan = build_gan(spec, device)
    batches = Batches(spec.batch_size, spec.seed, device)
    noise = fixed_noise(spec.seed)
    torch.manual_seed(spec.seed)
    total_work = work_done(spec, spec.steps)
    recognisable_after: float | None = None

    def emit_samples(step: int) -> judge.Verdict:
        pictures = generate(gan.generator, noise)
        found = judge.verdict(pictures)
        context.emit("samples", {"png": grid_png(pictures[:GRID_SAMPLES]), "step": step, **found.to_dict()})
        return found

    latest = emit_samples(0)
    started = last_sample = time.perf_counter()
    sample_every = SAMPLE_EVERY_SECONDS
    for step in range(1, spec.steps + 1):
        if context.cancelled():
            raise RunCancelled()
        values = train_step(gan, spec, batches, step - 1, device, context)
        check_finite(values, step, spec.lr)
        elapsed = time.perf_counter() - started
        done = work_done(spec, step)
        row = {"step": step, "total_steps": spec.steps, "elapsed": elapsed,
               "eta": elapsed / done * (total_work - done), **values}
        if time.perf_counter() - last_sample >= sample_every or step == spec.steps:
            sampling_started = time.perf_counter()
            latest = emit_samples(step)  # the last step's too: the result's verdict
            row.update(confidence=latest.confidence, classes_present=latest.classes_present, spread=latest.spread)
            last_sample = time.perf_counter()
            # On a busy machine a grid and its verdict take far longer: keep them to at most 1/20 of the run.
            sample_every = max(SAMPLE_EVERY_SECONDS, SAMPLING_SHARE_LIMIT * (last_sample - sampling_started))
            if recognisable_after is None and recognisable(row):
                recognisable_after = elapsed
        context.emit("metrics", row)
    context.emit("weights", {"state": weights_bytes(gan.generator)})
    context.emit("result", {"seconds": time.perf_counter() - started, "device": device.describe(),
                            "steps": spec.steps, "loss": spec.loss, "verdict": latest.to_dict(),
                            "recognisable_after": recognisable_after})


def recognisable(row: dict) -> bool:
    return row["confidence"] >= RECOGNISABLE_CONFIDENCE and row["classes_present"] >= RECOGNISABLE_CLASSES


def train_step(gan: Gan, spec: GanSpec, batches: Batches, done: int, device: DeviceConfig, context) -> dict:
    """One generator step with the discriminator's steps before it; Cancel is checked between critic steps,
    so that it works within one step even during the WGAN's 100-step warm-ups."""
    if spec.loss == "dcgan":
        return dcgan_step(gan, batches.next(), device)
    norms = []
    for _ in range(critic_steps(done)):
        if context.cancelled():
            raise RunCancelled()
        estimate, norm = critic_step(gan, batches.next(), device)
        norms.append(norm)
    loss_g, grad_norm_g = wgan_generator_step(gan, spec.batch_size, device)
    return {"loss_d": -estimate, "loss_g": loss_g, "wasserstein": estimate, "grad_norm_d": float(np.mean(norms)),
            "grad_norm_g": grad_norm_g, "critic_steps": len(norms)}


# ----- estimates ---------------------------------------------------------------------------------------------
def seconds_per_step(spec: GanSpec, repeats: int = 3) -> float:
    """The fastest of a few real DCGAN steps of ``spec``'s size (random pictures: content does not change the
    time), after one that pays for the allocations."""
    device = DeviceConfig.auto()
    gan = build_gan(spec, device)
    real = device.prepare_images(torch.rand(spec.batch_size, NC, ISIZE, ISIZE) * 2 - 1)

    return fastest_seconds(lambda: dcgan_step(gan, real, device), repeats)  # .item() waits for the GPU


def warm_up() -> dict:
    """Run once by each worker process: time one DCGAN step of the demo's size, and load the judge."""
    judge.judge()
    return {"gan_seconds_per_step": seconds_per_step(preset_spec("demo"))}


def estimate_seconds(spec: GanSpec, info: dict, runs: list[dict], device: str) -> float | None:
    """Expected time of the spec on this device: from the newest finished run here, else from the worker's
    timed step; None until one of them exists."""
    return specs.estimate_from_rate(spec, runs, device, spec_from_dict, KIND, lambda s: work_done(s, s.steps),
                                    info.get("gan_seconds_per_step"))
