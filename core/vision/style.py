"""Style transfer (Gatys et al., Lesson 13): a frozen ImageNet network's activations, taken with forward hooks
at the end of each resolution block, describe *what* is in a picture (content) and, through their Gram
matrices, *how* it is painted (style). Optimising a picture's pixels to match one picture's content and
another's style paints the first in the manner of the second. The hooks, the Gram matrix and the loop are
the lesson itself, so they are written out here."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core import classroom, specs
from core.errors import RunCancelled, TrainingDiverged, UserError
from core.specs import spec_from_values
from core.train import DeviceConfig, fastest_seconds
from core.vision import backbone as backbones
from core.vision.backbone import Backbone
from core.vision.images import check_known, square_tensor, tensor_png

KIND = "style"
MODES = ("transfer", "content", "style")  # paint; rebuild from one layer's content; rebuild from style alone
OPTIMIZERS = ("lbfgs", "adam")
STARTS = ("noise", "content")
PRESETS = ("quick", "demo", "lecture", "large")
PRESET_SIZE = {"quick": 128, "demo": 256, "lecture": 288, "large": 512}
PRESET_STEPS = {"quick": 60, "demo": 150, "lecture": 1000, "large": 1000}
LAYERS = 5
MIN_SIZE, MAX_SIZE, MAX_STEPS = 32, 1024, 5000
DEFAULT_LR = {"lbfgs": 0.5, "adam": 0.03}  # LBFGS's is the lesson's; Adam's moves a pixel 3% of its range a step
MAX_LR = {"lbfgs": 2.0, "adam": 1.0}
LBFGS_EVALUATIONS_PER_STEP = 20  # torch's default max_iter: one optimizer.step(closure) evaluates up to 20 times
FRAME_EVERY_SECONDS = 2.0
FRAME_SHARE_LIMIT = 20  # frames take at most 1/20 of a run on a busy machine
# The lesson's weights for VGG16-BN: content MSE × 1e6 at block 4, style Σ MSE(1e6·G, 1e6·G') = 1e12 · Σ MSE(G,
# G'), and content alone × 1000 when rebuilding from it. MobileNetV2's activations are on another scale, so
# its weights were chosen here the same way the lesson's were: so that the two losses start comparable.
CONTENT_WEIGHT = {"vgg16_bn": 1e6, "mobilenet_v2": 1e6, "random": 1e6}
STYLE_WEIGHT = {"vgg16_bn": 1e12, "mobilenet_v2": 1e10, "random": 1e10}
CONTENT_ONLY_WEIGHT = 1000.0
CONTENT_LAYER = 3  # the lesson's block_ends[3]


# ----- the lesson's pieces -----------------------------------------------------------------------------------
def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) activations → (B, C, C) Gram matrices F·Fᵀ / (C·H·W), F being each picture's C × (H·W)
    activations: entry (i, j) is how much channels i and j fire together, wherever that happens."""
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return flat @ flat.transpose(1, 2) / (channels * height * width)


class SaveFeatures:
    """The lesson's ``SaveFeatures`` for several modules: forward hooks keep each module's latest output. A
    context manager, so that the hooks are removed on leaving it, even when an exception leaves it."""

    def __init__(self, modules: list[nn.Module]):
        self.modules = modules
        self.features: list[torch.Tensor | None] = [None] * len(modules)
        self.handles = []

    def __enter__(self) -> "SaveFeatures":
        for index, module in enumerate(self.modules):
            self.handles.append(module.register_forward_hook(self._keeper(index)))
        return self

    def _keeper(self, index: int):
        def keep(module, inputs, output):
            self.features[index] = output
        return keep

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def activations(backbone: Backbone, pictures: torch.Tensor, layers: tuple[int, ...] = tuple(range(LAYERS))
                ) -> list[torch.Tensor]:
    """The backbone's activations at the chosen block ends (0 = first) for pictures in [0, 1]; the network
    runs only as deep as the deepest one asked for."""
    modules = [backbone.features[backbone.block_ends[layer]] for layer in layers]
    with SaveFeatures(modules) as saved:
        backbone.features[: backbone.block_ends[max(layers)] + 1](backbones.normalise(pictures))
        return list(saved.features)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(features, target)


def style_losses(grams: list[torch.Tensor], target_grams: list[torch.Tensor], weights: tuple[float, ...]
                 ) -> list[torch.Tensor]:
    """Each layer's weight · MSE(G, G'): the style loss is their sum."""
    return [weight * F.mse_loss(gram, target) for gram, target, weight in zip(grams, target_grams, weights)]


def median_noise(size: int, seed: int) -> torch.Tensor:
    """The lesson's start: uniform noise, median-filtered over 8 × 8 pixels (blotches rather than grain, which
    the network would otherwise read as texture), halved. (1, 3, size, size) in [0, 0.5]."""
    noise = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    padded = F.pad(noise, (3, 4, 3, 4), mode="reflect")
    windows = padded.unfold(2, 8, 1).unfold(3, 8, 1)  # (1, 3, size, size, 8, 8)
    return windows.reshape(1, 3, size, size, 64).median(dim=-1).values / 2


def shuffle_patches(picture: torch.Tensor, per_side: int, seed: int = 0) -> torch.Tensor:
    """The picture cut into per_side × per_side square patches laid back in a random order (the size is cut
    down to a multiple of per_side): what was where is lost, the textures are not."""
    _, channels, height, width = picture.shape
    side = min(height, width) // per_side
    cropped = picture[:, :, : side * per_side, : side * per_side]
    patches = cropped.unfold(2, side, side).unfold(3, side, side).reshape(1, channels, per_side * per_side, side, side)
    order = torch.randperm(per_side * per_side, generator=torch.Generator().manual_seed(seed))
    shuffled = patches[:, :, order].reshape(1, channels, per_side, per_side, side, side)
    return shuffled.permute(0, 1, 2, 4, 3, 5).reshape(1, channels, side * per_side, side * per_side)


@torch.no_grad()
def gram_distances(backbone: Backbone, first: torch.Tensor, second: torch.Tensor) -> list[float]:
    """Per block end, the mean squared difference of the two pictures' Gram matrices, relative to the first's
    mean square (0: same style statistics; 1: as different as the matrix is large)."""
    return [relative_change(gram_matrix(a), gram_matrix(b))
            for a, b in zip(activations(backbone, first), activations(backbone, second))]


def relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    return float(F.mse_loss(after, before) / before.pow(2).mean().clamp_min(1e-12))


@torch.no_grad()
def shuffle_effect(backbone: Backbone, picture: torch.Tensor, per_side: int, seed: int = 0
                   ) -> tuple[torch.Tensor, list[float], list[float]]:
    """The shuffled picture, and per block end how much its Gram matrix and its activations changed
    (relative mean squared change; the picture is first cut like the shuffled one so that sizes match)."""
    shuffled = shuffle_patches(picture, per_side, seed)
    original = picture[:, :, : shuffled.shape[2], : shuffled.shape[3]]
    before, after = activations(backbone, original), activations(backbone, shuffled)
    grams = [relative_change(gram_matrix(a), gram_matrix(b)) for a, b in zip(before, after)]
    contents = [relative_change(a, b) for a, b in zip(before, after)]
    return shuffled, grams, contents


# ----- what defines a run -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StyleSpec:
    """Everything that defines a run; ``asdict`` of it is what the job manager stores."""

    mode: str = "transfer"
    content: str = "chelsea"  # a shipped picture's name or an upload's key (core.vision.images)
    style: str = "starry_night"
    backbone: str = "mobilenet_v2"
    preset: str = "demo"
    size: int = 256  # pixels on each side of the square picture
    optimizer: str = "lbfgs"
    steps: int = 150  # loss evaluations (LBFGS makes up to 20 in one optimizer step)
    lr: float = 0.5
    content_weight: float = 1e6
    style_weight: float = 1e10
    layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)  # each block end's share of the style loss
    content_layer: int = CONTENT_LAYER  # the block end whose content is matched (0 = first)
    style_layers: int = LAYERS  # style mode: the first this many block ends
    start: str = "noise"
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def preset_spec(preset: str = "demo", backbone: str | None = None, **changes) -> StyleSpec:
    """The preset's size and length with the lesson's optimizer and the backbone's weights."""
    if preset not in PRESETS:
        raise UserError("mnist.bad_preset", "Unknown preset {preset}.", preset=preset)
    backbone = backbone or backbones.best_available()
    values = {"backbone": backbone, "preset": preset, "size": PRESET_SIZE[preset], "steps": PRESET_STEPS[preset],
              "content_weight": CONTENT_WEIGHT[backbone], "style_weight": STYLE_WEIGHT[backbone]}
    return StyleSpec(**{**values, **changes})


def validate(spec: StyleSpec) -> StyleSpec:
    """The spec itself, or a UserError that says what to change."""
    for name, value, choices in (("mode", spec.mode, MODES), ("optimizer", spec.optimizer, OPTIMIZERS),
                                 ("start", spec.start, STARTS), ("preset", spec.preset, PRESETS),
                                 ("backbone", spec.backbone, backbones.BACKBONES)):
        if value not in choices:
            raise UserError("style.bad_choice", "{name} must be one of {choices} (got {value}).", name=name,
                            choices=", ".join(choices), value=value)
    specs.check_whole_numbers(spec, ("size", "steps", "content_layer", "style_layers", "seed"))
    specs.check_lr_is_number(spec.lr)
    if not 0 < spec.lr <= MAX_LR[spec.optimizer]:
        raise UserError("style.lr_range", "The step size must be above 0 and at most {max:g} for {optimizer} "
                        "(the default is {default:g}; got {lr:g}).", max=MAX_LR[spec.optimizer],
                        optimizer=spec.optimizer, default=DEFAULT_LR[spec.optimizer], lr=spec.lr)
    specs.check_ranges((("size", spec.size, MIN_SIZE, MAX_SIZE), ("steps", spec.steps, 1, MAX_STEPS),
                        ("content_layer", spec.content_layer, 0, LAYERS - 1),
                        ("style_layers", spec.style_layers, 1, LAYERS), ("seed", spec.seed, 0, 2**31 - 1)))
    weights = (spec.content_weight, spec.style_weight, *spec.layer_weights)
    if len(spec.layer_weights) != LAYERS or not all(specs.is_number(w) and w >= 0 for w in weights):
        raise UserError("style.weights", "The loss weights must be {layers} layer weights and two overall "
                        "weights, none of them negative.", layers=LAYERS)
    if spec.mode != "content" and not any(spec.layer_weights[: style_layer_count(spec)]):
        raise UserError("style.no_style_layer", "Every style layer has weight 0: give at least one a weight.")
    for name in (spec.content, spec.style):
        check_known(name)
    return spec


def style_layer_count(spec: StyleSpec) -> int:
    return spec.style_layers if spec.mode == "style" else LAYERS


def spec_from_dict(values: dict) -> StyleSpec:
    return spec_from_values(StyleSpec, values, validate, prepare=lambda v: {
        **v, **({"layer_weights": tuple(v["layer_weights"])} if isinstance(v.get("layer_weights"), list) else {})})


def readable_runs(runs: list[dict]) -> list[dict]:
    return specs.readable_runs(runs, spec_from_dict)


# ----- work and estimates ------------------------------------------------------------------------------------
BACKBONE_COST = {"vgg16_bn": 25.0, "mobilenet_v2": 1.0, "random": 1.0}  # per pixel, against MobileNetV2's


def work_done(spec: StyleSpec, evaluations: int) -> float:
    """Work of ``evaluations`` loss evaluations, in evaluations of MobileNetV2 at 128 px."""
    return evaluations * (spec.size / 128) ** 2 * BACKBONE_COST[spec.backbone]


def size_of_values(values: dict) -> str:
    """Which size preset a run amounts to, for the instructor's size limit (512 px counts as lecture)."""
    spec = spec_from_dict(values)
    presets = {size: preset_spec(size, spec.backbone) for size in classroom.SIZES}
    sizes = {size: work_done(preset, preset.steps) for size, preset in presets.items()}
    return classroom.size_of(work_done(spec, spec.steps), sizes, "lecture" if spec.preset == "large" else spec.preset)


def estimate_seconds(spec: StyleSpec, info: dict, runs: list[dict], device: str) -> float | None:
    """From the newest finished run of this backbone here, else from the worker's timed evaluation."""
    return specs.estimate_from_rate(spec, runs, device, spec_from_dict, KIND, lambda s: work_done(s, s.steps),
                                    info.get("style_seconds_per_evaluation"), model=lambda s: s.backbone)


# ----- the optimisation ---------------------------------------------------------------------------------------
@dataclass
class Targets:
    content: torch.Tensor | None  # the content picture's activations at the content layer
    grams: list[torch.Tensor]  # the style picture's Gram matrices at the style layers


def style_layer_indices(spec: StyleSpec) -> tuple[int, ...]:
    return tuple(range(style_layer_count(spec))) if spec.mode != "content" else ()


@torch.no_grad()
def targets(spec: StyleSpec, backbone: Backbone, content: torch.Tensor, style: torch.Tensor) -> Targets:
    wanted = style_layer_indices(spec)
    grams = [gram_matrix(f) for f in activations(backbone, style, wanted)] if wanted else []
    target = activations(backbone, content, (spec.content_layer,))[0] if spec.mode != "style" else None
    return Targets(target, grams)


def losses(spec: StyleSpec, backbone: Backbone, picture: torch.Tensor, goal: Targets) -> dict[str, torch.Tensor]:
    """The total loss to lower and its parts: ``content`` (weighted), ``style_1`` … (each weighted)."""
    style_layers = style_layer_indices(spec)
    layers = tuple(sorted(set(style_layers) | ({spec.content_layer} if goal.content is not None else set())))
    found = dict(zip(layers, activations(backbone, picture, layers)))
    parts: dict[str, torch.Tensor] = {}
    if goal.content is not None:
        weight = CONTENT_ONLY_WEIGHT if spec.mode == "content" else spec.content_weight
        parts["content"] = weight * content_loss(found[spec.content_layer].float(), goal.content)
    if style_layers:
        weights = tuple(spec.style_weight * w for w in spec.layer_weights)
        terms = style_losses([gram_matrix(found[i].float()) for i in style_layers], goal.grams, weights)
        parts.update({f"style_{i + 1}": term for i, term in zip(style_layers, terms)})
    parts["total"] = torch.stack(list(parts.values())).sum()
    return parts


def starting_picture(spec: StyleSpec, content: torch.Tensor) -> torch.Tensor:
    return content.clone() if spec.start == "content" and spec.mode != "style" else median_noise(spec.size, spec.seed)


def make_optimizer(spec: StyleSpec, picture: torch.Tensor) -> torch.optim.Optimizer:
    if spec.optimizer == "lbfgs":
        return torch.optim.LBFGS([picture], lr=spec.lr, max_iter=LBFGS_EVALUATIONS_PER_STEP)
    return torch.optim.Adam([picture], lr=spec.lr)


def check_finite(total: float, evaluation: int, spec: StyleSpec) -> None:
    if not math.isfinite(total):
        raise TrainingDiverged("style.diverged", "The loss became NaN or infinite at evaluation {step} (step size "
                               "{lr:g}). Try a step size about 10 times smaller, such as {suggestion:.3g}.",
                               step=evaluation, lr=spec.lr, suggestion=spec.lr / 10)


class Painting:
    """One run's optimisation: a picture's pixels, its optimizer and the targets, evaluated through a closure
    as LBFGS wants it (Adam calls the same closure once per step). ``on_evaluation`` sees every evaluation's
    number, its loss parts and the picture; it may raise RunCancelled, which LBFGS lets through."""

    def __init__(self, spec: StyleSpec, device: DeviceConfig, on_evaluation=None):
        self.spec, self.device = spec, device
        self.backbone = backbones.load_on(spec.backbone, device)
        content = square_tensor(spec.content, spec.size)
        style = square_tensor(spec.style, spec.size)
        self.goal = targets(spec, self.backbone, device.prepare_images(content), device.prepare_images(style))
        self.picture = device.prepare_images(starting_picture(spec, content)).requires_grad_(True)
        self.optimizer = make_optimizer(spec, self.picture)
        self.evaluations = 0
        self.on_evaluation = on_evaluation or (lambda evaluation, parts, picture: None)

    def closure(self) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with self.device.autocast():
            parts = losses(self.spec, self.backbone, self.picture, self.goal)
        parts["total"].backward()
        self.evaluations += 1
        values = {name: value.item() for name, value in parts.items()}
        check_finite(values["total"], self.evaluations, self.spec)
        self.on_evaluation(self.evaluations, values, self.picture)
        return parts["total"]

    def run(self) -> None:
        """Optimise until the spec's number of evaluations (LBFGS may stop early once it stops improving)."""
        while self.evaluations < self.spec.steps:
            before = self.evaluations
            if isinstance(self.optimizer, torch.optim.LBFGS):
                self.optimizer.param_groups[0]["max_iter"] = min(LBFGS_EVALUATIONS_PER_STEP,
                                                                 self.spec.steps - self.evaluations)
                self.optimizer.param_groups[0]["max_eval"] = self.optimizer.param_groups[0]["max_iter"]
            self.optimizer.step(self.closure)
            if self.evaluations == before:
                break


def run_style(spec_values: dict, context) -> None:
    """The job runner: optimises the picture, emitting every evaluation's losses, a frame of the picture every
    few seconds (and the last), and a result."""
    spec = spec_from_dict(spec_values)
    device = DeviceConfig.auto()
    total_work = work_done(spec, spec.steps)
    clock = {"started": time.perf_counter(), "last_frame": 0.0, "every": FRAME_EVERY_SECONDS}

    def on_evaluation(evaluation: int, values: dict, picture: torch.Tensor) -> None:
        if context.cancelled():
            raise RunCancelled()
        elapsed = time.perf_counter() - clock["started"]
        done = work_done(spec, evaluation)
        context.emit("metrics", {"step": evaluation, "total_steps": spec.steps, "elapsed": elapsed,
                                 "eta": elapsed / done * (total_work - done), **values})
        if time.perf_counter() - clock["last_frame"] >= clock["every"] or evaluation == spec.steps:
            emit_frame(evaluation, picture)

    def emit_frame(evaluation: int, picture: torch.Tensor) -> None:
        drawing = time.perf_counter()
        context.emit("samples", {"png": tensor_png(picture), "step": evaluation})
        clock["last_frame"] = time.perf_counter()
        clock["every"] = max(FRAME_EVERY_SECONDS, FRAME_SHARE_LIMIT * (clock["last_frame"] - drawing))

    painting = Painting(spec, device, on_evaluation)
    emit_frame(0, painting.picture)
    painting.run()
    if painting.evaluations < spec.steps:  # LBFGS converged early: the last frame is the result
        emit_frame(painting.evaluations, painting.picture)
    context.emit("result", {"seconds": time.perf_counter() - clock["started"], "device": device.describe(),
                            "steps": painting.evaluations, "backbone": spec.backbone})


def seconds_per_evaluation(backbone: str, size: int = 128, repeats: int = 2) -> float:
    """The fastest of a few real evaluations (forward and backward to the pixels) at ``size``, in seconds per
    unit of ``work_done``."""
    spec = preset_spec("quick", backbone, size=size, optimizer="adam", lr=DEFAULT_LR["adam"])
    painting = Painting(spec, DeviceConfig.auto())
    return fastest_seconds(painting.closure, repeats) / work_done(spec, 1)


def warm_up() -> dict:
    """Run once by each worker process: time an evaluation of the offline backbone (it also loads it)."""
    return {"style_seconds_per_evaluation": seconds_per_evaluation(backbones.best_available())}
