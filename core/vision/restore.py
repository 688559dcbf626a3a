"""Lesson 7's image restoration ("decrappification"): a U-Net learns to turn crappified crops back into the
originals, in the lesson's three stages, one job:

1. pixel MSE (the U-Net's decoder, encoder frozen, Adam with one-cycle);
2. the feature loss (core.vision.feature_loss), from where stage 1 ended;
3. a GAN: the critic (core.models.restore_critic) is first trained alone to tell restored crops from originals,
   then the two take turns as fastai's ``AdaptiveGANSwitcher`` decides, Adam with betas (0, 0.99), the generator's
   loss weighted (1, 50) = (critic's verdict, pixel MSE).

PSNR and SSIM on held-out crops (torchmetrics) are measured during each stage and at its end, beside those of
the bicubic upsampling that every restorer must beat. A stage with 0 steps is skipped."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.utils import make_grid

from core import classroom, specs
from core.errors import RunCancelled, TrainingDiverged, UserError
from core.models.restore_critic import blocks_for, gan_critic
from core.models.unet import ENCODERS, UPSAMPLERS, Unet, available_encoders, unet
from core.specs import spec_from_values
from core.train import (CancelCheck, Callback, DeviceConfig, Learner, NaNGuard, OneCycle, TensorBatches,
                        fastest_seconds, weights_bytes, with_weights)
from core.viz import enlarged, png_bytes
from core.vision import backbone as backbones
from core.vision import restore_data
from core.vision.crappify import Recipe
from core.vision.feature_loss import FeatureLoss

KIND = "restore"
STAGES = ("mse", "feature", "gan")
PRESETS = ("quick", "demo", "lecture")
PRESET_VALUES = {
    "quick": {"size": 32, "train_crops": 64, "valid_crops": 12, "batch_size": 8, "mse_steps": 12,
              "feature_steps": 6, "critic_steps": 4, "gan_steps": 8, "critic_width": 16, "critic_dropout": 0.0},
    "demo": {"size": 64, "train_crops": 480, "valid_crops": 24, "batch_size": 8, "mse_steps": 300,
             "feature_steps": 150, "critic_steps": 150, "gan_steps": 150, "critic_width": 32, "critic_dropout": 0.0},
    # The lesson's first size (128 px, batch 32) and critic (width 128, dropout 0.15): a GPU's work. The smaller
    # presets' critic has no dropout: in the few hundred steps a CPU affords, it kept the critic at chance (its
    # loss at ln 2 for 300 steps, where without it the loss fell under 0.65 in about 150).
    "lecture": {"size": 128, "train_crops": 1600, "valid_crops": 48, "batch_size": 32, "mse_steps": 2000,
                "feature_steps": 1000, "critic_steps": 300, "gan_steps": 1000, "critic_width": 128,
                "critic_dropout": 0.15},
}
LESSON_LR, LESSON_GAN_LR = 3e-3, 1e-4  # fastai v1's default max_lr for fit_one_cycle; the GAN stage's lr
CRITIC_PRETRAIN_LR_FACTOR = 10  # the lesson pretrains the critic at 1e-3, ten times the GAN stage's lr
LESSON_PCT_START = 0.8  # superres-gan: learn_gen.fit_one_cycle(2, pct_start=0.8)
LESSON_SHRINK = 0.75  # the lesson trains at 128 px on pictures crappified to 96 px
GAN_BETAS = (0.0, 0.99)
GENERATOR_WEIGHTS = (1.0, 50.0)  # (critic's verdict, pixel MSE)
CRITIC_THRESHOLD = 0.65
FRAME_EVERY_SECONDS = 3.0
FRAME_SHARE_LIMIT = 20  # frames and quality checks take at most 1/20 of a run on a busy machine
CHECKS_PER_STAGE = 5  # quality checks during a stage (and one at its end)
TRIPTYCH_ROWS = 4
MAX_STEPS, MAX_CROPS = 20_000, 5_000


@dataclass(frozen=True)
class RestoreSpec:
    """Everything that defines a run; ``asdict`` of it is what the job manager stores."""

    preset: str = "demo"
    encoder: str = "mobilenet_v2"
    upsample: str = "pixel_shuffle"
    train_encoder: bool = False
    feature_backbone: str = "mobilenet_v2"  # the frozen network of the feature loss (vgg16_bn: the lesson's)
    size: int = 64  # crop side in pixels
    train_crops: int = 480
    valid_crops: int = 24
    batch_size: int = 8
    mse_steps: int = 300
    feature_steps: int = 150
    critic_steps: int = 150  # the critic trained alone before the GAN stage
    gan_steps: int = 150
    critic_width: int = 32
    critic_dropout: float = 0.0
    lr: float = LESSON_LR  # stages 1 and 2: one-cycle's peak
    gan_lr: float = LESSON_GAN_LR
    shrink: float = LESSON_SHRINK  # the crappy crop's side, as a share of the crop's
    quality_low: int = 10
    quality_high: int = 70
    number: bool = True
    photos: str = restore_data.SHIPPED
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def recipe(self) -> Recipe:
        return Recipe(quality_low=self.quality_low, quality_high=self.quality_high, number=self.number)

    def stage_steps(self, stage: str) -> int:
        gan = self.critic_steps + self.gan_steps if self.gan_steps else 0  # no critic without a GAN to train it for
        return {"mse": self.mse_steps, "feature": self.feature_steps, "gan": gan}[stage]


def preset_spec(preset: str = "demo", **changes) -> RestoreSpec:
    """The preset's sizes with the lesson's settings and the best networks this machine has."""
    if preset not in PRESETS:
        raise UserError("mnist.bad_preset", "Unknown preset {preset}.", preset=preset)
    feature = backbones.best_available()
    values = {"preset": preset, "encoder": available_encoders()[0],
              "feature_backbone": feature if feature != "random" else "mobilenet_v2", **PRESET_VALUES[preset]}
    return RestoreSpec(**{**values, **changes})


def validate(spec: RestoreSpec) -> RestoreSpec:
    """The spec itself, or a UserError that says what to change."""
    for name, value, choices in (("preset", spec.preset, PRESETS), ("encoder", spec.encoder, ENCODERS),
                                 ("upsample", spec.upsample, tuple(UPSAMPLERS)),
                                 ("feature_backbone", spec.feature_backbone, ("vgg16_bn", "mobilenet_v2"))):
        if value not in choices:
            raise UserError("style.bad_choice", "{name} must be one of {choices} (got {value}).", name=name,
                            choices=", ".join(choices), value=value)
    whole = ("size", "train_crops", "valid_crops", "batch_size", "mse_steps", "feature_steps", "critic_steps",
             "gan_steps", "critic_width", "quality_low", "quality_high", "seed")
    specs.check_whole_numbers(spec, whole)
    specs.check_lr_is_number(spec.lr)
    specs.check_lr_is_number(spec.gan_lr)
    for name in ("shrink", "critic_dropout"):
        if not specs.is_number(getattr(spec, name)):
            raise UserError("spec.bad", "These settings cannot be used: {error}", error=f"{name} must be a number")
    specs.check_ranges((("size", spec.size, 32, 512), ("train_crops", spec.train_crops, 8, MAX_CROPS),
                        ("valid_crops", spec.valid_crops, 4, 500), ("batch_size", spec.batch_size, 2, 128),
                        ("mse_steps", spec.mse_steps, 0, MAX_STEPS),
                        ("feature_steps", spec.feature_steps, 0, MAX_STEPS),
                        ("critic_steps", spec.critic_steps, 0, MAX_STEPS), ("gan_steps", spec.gan_steps, 0, MAX_STEPS),
                        ("critic_width", spec.critic_width, 4, 256), ("shrink", spec.shrink, 0.1, 1.0),
                        ("critic_dropout", spec.critic_dropout, 0.0, 0.9),
                        ("seed", spec.seed, 0, 2**31 - 1)))
    if not 0 < spec.lr <= 0.1 or not 0 < spec.gan_lr <= 0.01:
        raise UserError("restore.lr_range", "The learning rates must be above 0, at most 0.1 for stages 1–2 and "
                        "0.01 for the GAN (the lesson's: {lr:g} and {gan_lr:g}).", lr=LESSON_LR, gan_lr=LESSON_GAN_LR)
    if spec.batch_size > spec.train_crops:
        raise UserError("restore.batch_too_big", "The batch ({batch}) is larger than the training crops ({crops}): "
                        "ask for more crops or a smaller batch.", batch=spec.batch_size, crops=spec.train_crops)
    if not spec.mse_steps + spec.feature_steps + spec.gan_steps:
        raise UserError("restore.no_stage", "Every stage has 0 steps: give at least one stage some steps.")
    if not isinstance(spec.number, bool) or not isinstance(spec.train_encoder, bool):
        raise UserError("spec.bad", "These settings cannot be used: {error}", error="number/train_encoder")
    spec.recipe.checked()
    restore_data.photo_files(spec.photos)
    return spec


def spec_from_dict(values: dict) -> RestoreSpec:
    return spec_from_values(RestoreSpec, values, validate)


def readable_runs(runs: list[dict]) -> list[dict]:
    return specs.readable_runs(runs, spec_from_dict)


# ----- work and estimates ------------------------------------------------------------------------------------
# Seconds of a step, against stage 1's with MobileNetV2 at 64 px and batch 8, measured on a 2-core CPU.
STEP_COST = {"mse": 1.0, "feature": 1.2, "critic": 0.6, "gan": 1.5}
ENCODER_COST = {"resnet34": 2.5, "mobilenet_v2": 1.0, "random": 1.0}


def step_work(spec: RestoreSpec, kind: str) -> float:
    return STEP_COST[kind] * spec.batch_size / 8 * (spec.size / 64) ** 2 * ENCODER_COST[spec.encoder]


def total_work(spec: RestoreSpec) -> float:
    critic_steps = spec.critic_steps if spec.gan_steps else 0
    return sum(step_work(spec, kind) * steps for kind, steps in (
        ("mse", spec.mse_steps), ("feature", spec.feature_steps), ("critic", critic_steps), ("gan", spec.gan_steps)))


def size_of_values(values: dict) -> str:
    """Which size preset a run amounts to, for the instructor's size limit."""
    spec = spec_from_dict(values)
    sizes = {size: total_work(preset_spec(size, encoder=spec.encoder)) for size in classroom.SIZES}
    return classroom.size_of(total_work(spec), sizes, spec.preset)


def estimate_seconds(spec: RestoreSpec, info: dict, runs: list[dict], device: str) -> float | None:
    """From the newest finished run here, else from the worker's timed step."""
    return specs.estimate_from_rate(spec, runs, device, spec_from_dict, KIND, total_work,
                                    info.get("restore_seconds_per_work"))


# ----- the lesson's pieces ---------------------------------------------------------------------------------
class AdaptiveSwitcher:
    """fastai's ``AdaptiveGANSwitcher``: after each step, the generator hands over to the critic when its loss is
    under ``generator_threshold`` (None: always), and the critic hands back once its loss is under
    ``critic_threshold`` (None: always)."""

    def __init__(self, critic_threshold: float | None = CRITIC_THRESHOLD, generator_threshold: float | None = None):
        self.critic_threshold, self.generator_threshold = critic_threshold, generator_threshold
        self.training = "generator"

    def after_step(self, loss: float) -> str:
        threshold = self.generator_threshold if self.training == "generator" else self.critic_threshold
        if threshold is None or loss < threshold:
            self.training = "critic" if self.training == "generator" else "generator"
        return self.training


def critic_loss(critic: nn.Module, original: torch.Tensor, restored: torch.Tensor) -> torch.Tensor:
    """BCE of the critic's patches: originals are 1, restored ones 0 (the mean of the two, as fastai's). The
    critic sees pictures normalised with ImageNet's statistics, as the lesson's data were."""
    real, fake = critic(backbones.normalise(original)), critic(backbones.normalise(restored.detach()))
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))) / 2


def generator_loss(critic: nn.Module, restored: torch.Tensor, original: torch.Tensor) -> tuple[torch.Tensor, float]:
    """1 × (the critic should call it real) + 50 × pixel MSE; also the critic's term alone."""
    verdict = critic(backbones.normalise(restored))
    fooling = F.binary_cross_entropy_with_logits(verdict, torch.ones_like(verdict))
    return GENERATOR_WEIGHTS[0] * fooling + GENERATOR_WEIGHTS[1] * F.mse_loss(restored, original), fooling.item()


@torch.no_grad()
def restore(model: nn.Module, crappy: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """The model's restoration of ``crappy`` (N, 3, H, W) in eval mode, on the CPU."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        return torch.cat([model(crappy[i:i + batch_size].to(device)).float().cpu()
                          for i in range(0, len(crappy), batch_size)])
    finally:
        model.train(was_training)


def quality(pictures: torch.Tensor, originals: torch.Tensor) -> dict[str, float]:
    """PSNR (dB, higher is closer) and SSIM (1 is identical) against the originals."""
    # imported here: torchmetrics takes 1.5 s to import, which every worker would pay at start-up for every lab
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    pictures, originals = pictures.clamp(0, 1).float(), originals.float()
    return {"psnr": peak_signal_noise_ratio(pictures, originals, data_range=1.0).item(),
            "ssim": structural_similarity_index_measure(pictures, originals, data_range=1.0).item()}


def triptych_rows(valid: restore_data.Pairs, rows: int = TRIPTYCH_ROWS) -> torch.Tensor:
    """Indices of valid crops spread over the held-out photos (they are stored photo by photo)."""
    return torch.linspace(0, len(valid.original) - 1, min(rows, len(valid.original))).round().long()


def triptych_png(crappy: torch.Tensor, restored: torch.Tensor, original: torch.Tensor) -> bytes:
    """One row per crop: crappy (bicubic-upsampled) | restored | original, enlarged to about 128 px."""
    cells = torch.stack([t for row in zip(crappy, restored.clamp(0, 1), original) for t in row])
    grid = make_grid(cells, nrow=3, padding=2, pad_value=1.0)
    picture = Image.fromarray(grid.mul(255).round().byte().permute(1, 2, 0).numpy())
    return png_bytes(enlarged(picture, max(1, 128 // crappy.shape[-1])))


def check_finite(values: dict[str, float], step: int, lr: float) -> None:
    if not all(math.isfinite(v) for v in values.values()):
        raise TrainingDiverged("train.diverged_nan", "The loss became NaN at step {step} (learning rate {lr:.3g}). "
                               "The steps are too big: try a learning rate about 10 times smaller, such as "
                               "{suggestion:.3g}.", step=step, lr=lr, suggestion=lr / 10)


@torch.no_grad()
def architecture_table(encoder: str, upsample: str, size: int) -> pd.DataFrame:
    """One row per part of the U-Net on a ``size`` × ``size`` picture, in the order the data flows: ``kind``
    (input, enc, mid, dec, up, head, output) and ``index``, its output's ``shape`` (C×H×W), ``height`` and ``channels``,
    its parameters (all and trainable with the encoder frozen), and ``skip_from``, the part whose output it
    concatenates."""
    model = unet(encoder, upsample).eval()
    parts = [("enc", i + 1, stage, "") for i, stage in enumerate(model.encoder)]
    parts += [("mid", 0, model.middle, "")]
    parts += [("dec", i + 1, block, f"enc{len(model.encoder) - 1 - i}") for i, block in enumerate(model.blocks)]
    parts += [("up", 0, model.last_up, ""), ("head", 0, model.head, "input")]
    shapes = {}
    handles = [module.register_forward_hook(lambda m, i, out, key=k + str(n): shapes.__setitem__(key, out.shape[1:]))
               for k, n, module, _ in parts]
    try:
        model(torch.zeros(1, 3, size, size))
    finally:
        for handle in handles:
            handle.remove()
    rows = [{"kind": "input", "index": 0, "shape": f"3×{size}×{size}", "height": size, "channels": 3, "params": 0,
             "trainable": 0, "skip_from": ""}]
    for kind, index, module, skip in parts:
        channels, height, width = shapes[kind + str(index)]
        rows.append({"kind": kind, "index": index, "shape": f"{channels}×{height}×{width}", "height": height,
                     "channels": channels, "params": sum(p.numel() for p in module.parameters()),
                     "trainable": sum(p.numel() for p in module.parameters() if p.requires_grad), "skip_from": skip})
    rows.append({**rows[0], "kind": "output"})  # the head's output cut back to the input's size (see Unet.forward)
    return pd.DataFrame(rows)


# ----- the run ----------------------------------------------------------------------------------------------
class Progress:
    """The run's clock across its stages: numbered rows with an ETA, triptych frames every few seconds, quality
    checks at CHECKS_PER_STAGE points of each stage and at its end, and Cancel."""

    def __init__(self, spec: RestoreSpec, context, model: Unet, valid: restore_data.Pairs):
        self.spec, self.context, self.model, self.valid = spec, context, model, valid
        self.total_work, self.done_work, self.step = total_work(spec), 0.0, 0
        self.total_steps = sum(spec.stage_steps(s) for s in STAGES)
        self.started = self.last_frame = time.perf_counter()
        self.frame_every = FRAME_EVERY_SECONDS
        self.shown = triptych_rows(valid)
        self.results: dict[str, dict[str, float]] = {}

    def check_cancel(self) -> None:
        if self.context.cancelled():
            raise RunCancelled()

    def row(self, stage: str, stage_step: int, kind: str, values: dict) -> None:
        """After a step of ``kind`` (mse, feature, critic or gan) of ``stage``: its row, with a quality check and
        a frame when due (the last step of a stage always has both)."""
        self.step += 1
        self.done_work += step_work(self.spec, kind)
        elapsed = time.perf_counter() - self.started
        row = {"step": self.step, "total_steps": self.total_steps, "stage": stage, "stage_step": stage_step,
               "elapsed": elapsed, "eta": elapsed / self.done_work * max(0.0, self.total_work - self.done_work),
               **values}
        stage_end = stage_step == self.spec.stage_steps(stage)
        check_every = max(1, self.spec.stage_steps(stage) // CHECKS_PER_STAGE)
        if stage_end or stage_step % check_every == 0:
            row.update(quality(restore(self.model, self.valid.crappy), self.valid.original))
            if stage_end:
                self.results[stage] = {"psnr": row["psnr"], "ssim": row["ssim"]}
        if stage_end or time.perf_counter() - self.last_frame >= self.frame_every:
            self.frame(stage)
        self.context.emit("metrics", row)

    def frame(self, stage: str) -> None:
        drawing = time.perf_counter()
        crappy, original = self.valid.crappy[self.shown], self.valid.original[self.shown]
        png = triptych_png(crappy, restore(self.model, crappy), original)
        self.context.emit("samples", {"png": png, "step": self.step, "caption": stage})
        self.last_frame = time.perf_counter()
        self.frame_every = max(FRAME_EVERY_SECONDS, FRAME_SHARE_LIMIT * (self.last_frame - drawing))


class StageRows(Callback):
    """Hands each Learner step of stages 1–2 to the run's Progress (with the feature loss's parts)."""

    order = 100

    def __init__(self, progress: Progress, stage: str, loss_fn: nn.Module | None):
        self.progress, self.stage, self.loss_fn = progress, stage, loss_fn

    def after_batch(self, learner: Learner) -> None:
        parts = getattr(self.loss_fn, "parts", {})
        self.progress.row(self.stage, learner.step, self.stage, {"loss": learner.loss, "lr": learner.metrics.get(
            "lr", learner.optimizer.param_groups[0]["lr"]), **parts})


def fit_stage(spec: RestoreSpec, stage: str, model: Unet, batches: TensorBatches, progress: Progress,
              device: DeviceConfig) -> None:
    """Stage 1 (MSE) or 2 (feature loss): a one-cycle fit of the U-Net's trainable parameters."""
    loss_fn = F.mse_loss if stage == "mse" else FeatureLoss(backbones.load_on(spec.feature_backbone, device))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=spec.lr, betas=(0.9, 0.99))
    callbacks = [CancelCheck(progress.context.cancelled), OneCycle(spec.lr, LESSON_PCT_START), NaNGuard(),
                 StageRows(progress, stage, loss_fn if stage == "feature" else None)]
    Learner(model, batches, optimizer, callbacks, device, loss_fn).fit(spec.stage_steps(stage) / len(batches))


def gan_stage(spec: RestoreSpec, model: Unet, batches: TensorBatches, progress: Progress,
              device: DeviceConfig) -> None:
    """Stage 3: the critic alone for ``critic_steps`` (Adam at ten times the GAN's lr, as the lesson's
    ``learn_critic.fit_one_cycle(6, 1e-3)``), then ``gan_steps`` turns as the switcher decides."""
    critic = device.prepare_model(gan_critic(spec.critic_width, blocks_for(spec.size), spec.critic_dropout))
    generator_optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=spec.gan_lr,
                                           betas=GAN_BETAS)
    pretrain_optimizer = torch.optim.Adam(critic.parameters(), lr=spec.gan_lr * CRITIC_PRETRAIN_LR_FACTOR,
                                          betas=(0.9, 0.99))
    critic_optimizer = torch.optim.Adam(critic.parameters(), lr=spec.gan_lr, betas=GAN_BETAS)
    scalers = {"generator": device.grad_scaler(), "critic": device.grad_scaler()}  # float16 on CUDA underflows
    switcher, stage_step = AdaptiveSwitcher(), 0
    model.train()
    for crappy, original in endless(batches):
        if stage_step == spec.critic_steps + spec.gan_steps:
            return
        progress.check_cancel()
        crappy, original = device.prepare_images(crappy), device.prepare_images(original)
        pretraining = stage_step < spec.critic_steps
        if pretraining or switcher.training == "critic":
            with device.autocast():
                with torch.no_grad():
                    restored = model(crappy)
                loss = critic_loss(critic, original, restored)
            step_optimizer(pretrain_optimizer if pretraining else critic_optimizer, loss, scalers["critic"])
            values = {"critic": loss.item()}
        else:
            with device.autocast():
                loss, fooling = generator_loss(critic, model(crappy), original)
            step_optimizer(generator_optimizer, loss, scalers["generator"])
            values = {"generator": loss.item(), "fooling": fooling}
        stage_step += 1
        check_finite(values, progress.step + 1, spec.gan_lr)
        if not pretraining:
            values["training"] = switcher.training
            switcher.after_step(loss.item())
        progress.row("gan", stage_step, "critic" if "critic" in values else "gan", values)


def step_optimizer(optimizer: torch.optim.Optimizer, loss: torch.Tensor, scaler: torch.amp.GradScaler) -> None:
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def endless(batches: TensorBatches):
    while True:
        yield from batches


def load_data(spec: RestoreSpec) -> tuple[restore_data.Pairs, restore_data.Pairs]:
    train_files, valid_files = restore_data.split(restore_data.photo_files(spec.photos))
    train = restore_data.make_pairs(train_files, spec.size, spec.train_crops, spec.recipe, spec.shrink, spec.seed)
    valid = restore_data.make_pairs(valid_files, spec.size, spec.valid_crops, spec.recipe, spec.shrink, spec.seed + 1)
    return train, valid


def run_restore(spec_values: dict, context) -> None:
    """The job runner: cuts and crappifies the crops, then runs the stages that have steps, emitting each step's
    losses, triptychs, quality checks, the U-Net's weights and a result."""
    spec = spec_from_dict(spec_values)
    device = DeviceConfig.auto()
    started = time.perf_counter()
    torch.manual_seed(spec.seed)
    train, valid = load_data(spec)
    model = device.prepare_model(unet(spec.encoder, spec.upsample, frozen=not spec.train_encoder))
    progress = Progress(spec, context, model, valid)
    baseline = quality(valid.crappy, valid.original)
    context.emit("metrics", {"step": 0, "total_steps": progress.total_steps, "stage": "bicubic", **baseline})
    progress.frame("start")
    batches = TensorBatches(device.prepare_images(train.crappy), device.prepare_images(train.original),
                            spec.batch_size, shuffle=True, seed=spec.seed, drop_last=True)
    for stage in STAGES:
        if not spec.stage_steps(stage):
            continue
        if stage == "gan":
            gan_stage(spec, model, batches, progress, device)
        else:
            fit_stage(spec, stage, model, batches, progress, device)
    context.emit("weights", {"state": weights_bytes(model)})
    context.emit("result", {"seconds": time.perf_counter() - started, "device": device.describe(),
                            "bicubic": baseline, "stages": progress.results, "train_photos": train.photos,
                            "valid_photos": valid.photos, "skipped_files": train.skipped + valid.skipped})


def trained_unet(spec_values: dict, weights: bytes) -> Unet | None:
    """A finished run's U-Net on the CPU, or None when its weights do not fit (another version's). Its encoder is
    built untrained: the stored weights hold the pretrained ones (so no download is needed to use it)."""
    spec = spec_from_dict(spec_values)
    return with_weights(unet(spec.encoder, spec.upsample, pretrained=False), weights)


def restore_photo(model: nn.Module, spec: RestoreSpec, picture: Image.Image, seed: int = 0) -> dict:
    """A photo at the scale the run trained at (restore_data.at_crop_scale of its crop size), crappified as its
    training photos were (shrink, JPEG, number), brought back up by bicubic upsampling and restored by ``model``:
    (3, H, W) tensors ``bicubic``, ``restored`` and ``original``, and the quality of the first two against the
    third."""
    photo = restore_data.at_crop_scale(picture.convert("RGB"), spec.size)
    original = restore_data.to_tensor(photo).unsqueeze(0)
    bicubic = restore_data.crappy_twin(photo, spec.recipe, spec.shrink, seed).unsqueeze(0)
    restored = restore(model, bicubic)
    return {"bicubic": bicubic[0], "restored": restored[0], "original": original[0],
            "quality": {"bicubic": quality(bicubic, original), "restored": quality(restored, original)}}


def seconds_per_work(repeats: int = 2) -> float:
    """The fastest of a few real stage-1 steps at the quick size, in seconds per unit of ``step_work``."""
    spec = preset_spec("quick", encoder="mobilenet_v2")
    device = DeviceConfig.auto()
    model = device.prepare_model(unet(spec.encoder, spec.upsample, pretrained=False))  # the same work, no loading
    pictures = device.prepare_images(torch.rand(spec.batch_size, 3, spec.size, spec.size))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    scaler = device.grad_scaler()

    def step() -> float:
        with device.autocast():
            loss = F.mse_loss(model(pictures), pictures)
        step_optimizer(optimizer, loss, scaler)
        return loss.item()

    return fastest_seconds(step, repeats) / step_work(spec, "mse")


def warm_up() -> dict:
    """Run once by each worker process: time a stage-1 step."""
    return {"restore_seconds_per_work": seconds_per_work()}
