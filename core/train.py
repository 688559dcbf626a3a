"""The training loop: a short ``Learner.fit`` that calls named hooks on its callbacks.

The fastai idea, kept small: metrics, the schedule, the NaN guard, cancellation and event
emission are each a callback, so the loop itself stays readable. Device handling (AMP and
channels_last on CUDA) lives in ``DeviceConfig`` and nowhere else.
"""
from __future__ import annotations

import contextlib
import io
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import RunCancelled, TrainingDiverged
from core.schedules import PhaseDriver, read_momentum

HOOKS = ("before_fit", "before_epoch", "before_batch", "after_batch", "after_epoch", "after_fit")


# ----- devices ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceConfig:
    """Where and how to compute: the one place that knows about AMP and channels_last."""

    device: torch.device
    amp_dtype: torch.dtype | None = None  # None: full float32
    channels_last: bool = False

    @classmethod
    def auto(cls) -> "DeviceConfig":
        """CUDA with float16 autocast and channels_last when a GPU is present; else the CPU."""
        if torch.cuda.is_available():
            return cls(torch.device("cuda"), amp_dtype=torch.float16, channels_last=True)
        return cls(torch.device("cpu"))

    def describe(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return "CPU"

    def prepare_model(self, model: nn.Module) -> nn.Module:
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        return model.to(self.device, memory_format=memory_format)

    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling, because float16 gradients underflow (Lesson 13); a no-op otherwise."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)


# ----- data ------------------------------------------------------------------------------
class TensorBatches:
    """Mini-batches cut from tensors already in memory (on the GPU when training there).

    A DataLoader over a TensorDataset indexes and collates item by item; for MNIST held as
    one tensor, slicing a shuffled index is an order of magnitude faster.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool, seed: int = 0, drop_last: bool = False):
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle = batch_size, shuffle
        self.drop_last = drop_last  # a compiled model would recompile for the short last batch
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.labels) // self.batch_size
        batches = math.ceil(len(self.labels) / self.batch_size)
        leftover_of_one = self.shuffle and len(self.labels) % self.batch_size == 1
        return batches - 1 if leftover_of_one else batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.images.device)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            if self.drop_last and len(index) < self.batch_size:
                return
            if self.shuffle and len(index) == 1:
                return  # BatchNorm cannot train on one item (it has no variance); skip that leftover
            yield self.images[index], self.labels[index]


# ----- the loop --------------------------------------------------------------------------
class Callback:
    """Override any of the hook names in ``HOOKS``; each receives the learner."""

    order = 0


class Learner:
    """Model + training data + optimizer + callbacks. ``fit`` is the whole training loop
    (validation is a callback's job: see ``Validation``)."""

    def __init__(self, model: nn.Module, train: TensorBatches,
                 optimizer: torch.optim.Optimizer, callbacks: Sequence[Callback] = (),
                 device: DeviceConfig | None = None,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy):
        self.device = device or DeviceConfig.auto()
        self.model = self.device.prepare_model(model)
        self.train_data = train
        self.optimizer, self.loss_fn = optimizer, loss_fn
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)
        self.scaler = self.device.grad_scaler()
        self.epoch = self.step = self.total_steps = 0
        self.image_size: int | None = None  # progressive resizing: a callback may set it per phase
        # A compiled twin of ``model`` for the training steps alone (same parameters); predictions
        # use the eager model, so evaluation's other batch sizes compile no graphs of their own.
        self.compiled_for_training: nn.Module | None = None
        self.loss = float("nan")
        self.metrics: dict[str, float] = {}  # what callbacks computed for the current step

    def __call__(self, hook: str) -> None:
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self)

    def fit(self, epochs: float) -> None:
        """Train for ``epochs`` passes over the data; a fraction (1.35) stops part-way through a pass."""
        self.total_steps = round(epochs * len(self.train_data))
        self("before_fit")
        try:
            for self.epoch in range(math.ceil(self.total_steps / len(self.train_data))):
                self.model.train()
                self("before_epoch")
                for images, labels in self.train_data:
                    self.one_batch(images, labels)
                    if self.step >= self.total_steps:
                        break
                self("after_epoch")
        finally:
            self("after_fit")

    @property
    def epoch_ended(self) -> bool:
        """Whether the step just taken was the last of an epoch, or of the whole fit."""
        return self.step % len(self.train_data) == 0 or self.step == self.total_steps

    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        """On the device, in its memory format, at the current image size."""
        images = self.device.prepare_images(images)
        if self.image_size is not None and images.shape[-1] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear", antialias=True)
        return images

    def one_batch(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.metrics = {}
        self("before_batch")
        images, labels = self.prepare_images(images), labels.to(self.device.device)
        model = self.model if self.compiled_for_training is None else self.compiled_for_training
        with self.device.autocast():
            loss = self.loss_fn(model(images), labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.loss = loss.item()
        self.step += 1
        self("after_batch")

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 1000, model: nn.Module | None = None) -> torch.Tensor:
        """Logits for ``images`` in eval mode (BatchNorm uses its running statistics), by the
        learner's model or another one on the same device (an averaged one, say)."""
        model = model or self.model
        was_training = model.training
        model.eval()
        try:
            chunks = []
            for start in range(0, len(images), batch_size):
                batch = self.prepare_images(images[start:start + batch_size])
                with self.device.autocast():
                    chunks.append(model(batch).float().cpu())
            return torch.cat(chunks)
        finally:
            model.train(was_training)

    def validate(self, images: torch.Tensor, labels: torch.Tensor,
                 model: nn.Module | None = None) -> tuple[float, float, torch.Tensor]:
        """(loss, accuracy, predicted labels) on the given digits."""
        logits = self.predict(images, model=model)
        labels = labels.cpu()
        loss = F.cross_entropy(logits, labels).item()
        predicted = logits.argmax(dim=1)
        return loss, (predicted == labels).float().mean().item(), predicted


# ----- callbacks -------------------------------------------------------------------------
class OneCycle(Callback):
    """torch's OneCycleLR (its defaults are fastai v1's fit_one_cycle: 30% warm-up, moms .95/.85).

    Records the learning rate and momentum the optimizer *actually* used for each step.
    """

    order = -10

    def __init__(self, max_lr: float, pct_start: float = 0.3):
        self.max_lr, self.pct_start = max_lr, pct_start

    def before_fit(self, learner: Learner) -> None:
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            learner.optimizer, max_lr=self.max_lr, total_steps=learner.total_steps, pct_start=self.pct_start
        )

    def before_batch(self, learner: Learner) -> None:
        record_optimizer_state(learner)

    def after_batch(self, learner: Learner) -> None:
        if learner.step < learner.total_steps:  # OneCycleLR refuses a step past its end
            self.scheduler.step()


def record_optimizer_state(learner: Learner) -> None:
    """The lr and momentum this step will use, read back from the optimizer itself (its last
    param group: the head, when learning rates are discriminative)."""
    group = learner.optimizer.param_groups[-1]
    learner.metrics.update(lr=group["lr"], momentum=read_momentum(group))


class PhaseSchedule(Callback):
    """Lesson 13's ``fit_opt_sched``: each step gets the optimizer, lr, momentum and image
    size its phase plans (see ``core.schedules.PhaseDriver``)."""

    order = -10

    def __init__(self, driver: PhaseDriver):
        self.driver = driver

    def before_fit(self, learner: Learner) -> None:
        if learner.total_steps != self.driver.total_iterations:
            raise ValueError(f"fit for {self.driver.total_iterations} steps, the schedule's length")

    def before_batch(self, learner: Learner) -> None:
        learner.optimizer = self.driver.optimizer_for(learner.step)
        learner.image_size = self.driver.image_size_for(learner.step)
        record_optimizer_state(learner)
        learner.metrics.update(phase=self.driver.phase_index + 1)


class WeightAveraging(Callback):
    """Stochastic weight averaging (Lesson 13) with torch.optim.swa_utils: from ``start_step``
    on, every ``every`` steps the weights join a running average ``AveragedModel`` keeps;
    ``finish`` then recomputes its BatchNorm statistics with one pass over the training data."""

    order = 50

    def __init__(self, start_step: int, every: int):
        self.start_step, self.every = start_step, every

    def before_fit(self, learner: Learner) -> None:
        self.averaged = torch.optim.swa_utils.AveragedModel(learner.model)

    @property
    def models_averaged(self) -> int:
        return int(self.averaged.n_averaged)

    def after_batch(self, learner: Learner) -> None:
        if learner.step >= self.start_step and (learner.step - self.start_step) % self.every == 0:
            self.averaged.update_parameters(learner.model)
            learner.metrics.update(swa_models=self.models_averaged)

    def finish(self, learner: Learner) -> nn.Module | None:
        """The averaged model, ready to evaluate; None if training ended before SWA began."""
        if self.models_averaged == 0:
            return None
        batches = (learner.prepare_images(images) for images, _ in learner.train_data)
        torch.optim.swa_utils.update_bn(batches, self.averaged)
        return self.averaged


class CancelCheck(Callback):
    """Stops the run at the start of the next step once ``is_cancelled()`` says so."""

    order = -20

    def __init__(self, is_cancelled: Callable[[], bool]):
        self.is_cancelled = is_cancelled

    def before_batch(self, learner: Learner) -> None:
        if self.is_cancelled():
            raise RunCancelled()


class NaNGuard(Callback):
    """Stops a run whose loss is NaN/infinite or has grown far past where it started."""

    order = -5

    def __init__(self, explode_factor: float = 20.0):
        self.explode_factor = explode_factor

    def before_fit(self, learner: Learner) -> None:
        self.first_loss = None

    def after_batch(self, learner: Learner) -> None:
        loss = learner.loss
        if self.first_loss is None and math.isfinite(loss):
            self.first_loss = max(loss, 1e-3)
        exploded = self.first_loss is not None and loss > self.explode_factor * self.first_loss
        if math.isfinite(loss) and not exploded:
            return
        lr = learner.metrics.get("lr", learner.optimizer.param_groups[0]["lr"])
        if math.isnan(loss):
            key, english = "train.diverged_nan", "The loss became NaN at step {step} (learning rate {lr:.3g})."
        else:
            key, english = "train.diverged_exploded", "The loss exploded at step {step} (learning rate {lr:.3g})."
        raise TrainingDiverged(
            key, english + " The steps are too big: try a learning rate about 10 times smaller, such as {suggestion:.3g}.",
            step=learner.step, lr=lr, suggestion=lr / 10,
        )


class Validation(Callback):
    """Validation loss and accuracy: on all digits at each epoch's end, on a subset every ``every`` steps."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, every: int, subset: int = 1000):
        self.images, self.labels = images, labels
        self.every, self.subset = every, subset
        self.last_predicted: torch.Tensor | None = None

    def after_batch(self, learner: Learner) -> None:
        if learner.epoch_ended:
            loss, accuracy, self.last_predicted = learner.validate(self.images, self.labels)
            learner.metrics.update(valid_loss=loss, accuracy=accuracy, valid_on=len(self.labels))
        elif learner.step % self.every == 0:
            n = min(self.subset, len(self.labels))
            loss, accuracy, _ = learner.validate(self.images[:n], self.labels[:n])
            learner.metrics.update(valid_loss=loss, accuracy=accuracy, valid_on=n)


class Reporter(Callback):
    """Hands each step's numbers, with progress and an ETA, to ``report`` (after the others ran)."""

    order = 100

    def __init__(self, report: Callable[[dict], None]):
        self.report = report

    def before_fit(self, learner: Learner) -> None:
        self.start = time.perf_counter()

    def after_batch(self, learner: Learner) -> None:
        elapsed = time.perf_counter() - self.start
        remaining = learner.total_steps - learner.step
        self.report({
            "step": learner.step,
            "epoch": learner.step / len(learner.train_data),
            "train_loss": learner.loss,
            "elapsed": elapsed,
            "eta": elapsed / learner.step * remaining,
            "total_steps": learner.total_steps,
            **learner.metrics,
        })


class Periodically(Callback):
    """Calls ``action(learner)`` after a step when ``seconds`` have passed since the last call."""

    order = 90

    def __init__(self, seconds: float, action: Callable[[Learner], None]):
        self.seconds, self.action = seconds, action

    def before_fit(self, learner: Learner) -> None:
        self.last = time.perf_counter()

    def after_batch(self, learner: Learner) -> None:
        if time.perf_counter() - self.last >= self.seconds:
            self.action(learner)
            self.last = time.perf_counter()


def fastest_step_seconds(model: nn.Module, input_shape: tuple[int, ...], device: DeviceConfig, repeats: int = 5) -> float:
    """``fastest_training_step`` of ``model`` on random pictures of ``input_shape`` and ten classes."""
    model = device.prepare_model(model)
    images = device.prepare_images(torch.randn(*input_shape))
    labels = torch.randint(0, 10, (input_shape[0],), device=device.device)
    return fastest_training_step(model, images, labels, device, F.cross_entropy, repeats)


def fastest_training_step(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, device: DeviceConfig,
                          loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], repeats: int = 5) -> float:
    """Measured, not guessed: the fastest of a few SGD training steps of ``model`` (already on the
    device) on one batch (the fastest, because a server starting up is busy with other things at the
    same time). The first step, which pays for allocations, is not counted."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = device.grad_scaler()

    def step() -> None:
        with device.autocast():
            loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if device.device.type == "cuda":
            torch.cuda.synchronize()

    return fastest_seconds(step, repeats)


def fastest_seconds(step: Callable[[], object], repeats: int = 5) -> float:
    """The fastest of ``repeats`` timed calls of ``step``, after one that pays for the allocations. ``step``
    waits for the GPU itself (a ``.item()`` or a synchronize)."""
    def timed() -> float:
        start = time.perf_counter()
        step()
        return time.perf_counter() - start

    timed()
    return min(timed() for _ in range(repeats))


# ----- trained weights, as the run store keeps them ---------------------------------------------------------
def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.cpu() for name, tensor in model.state_dict().items()}


def weights_bytes(state: nn.Module | dict) -> bytes:
    """``torch.save`` bytes of a model's state on the CPU (or of a dict of such states), for a "weights" event."""
    buffer = io.BytesIO()
    torch.save(cpu_state(state) if isinstance(state, nn.Module) else state, buffer)
    return buffer.getvalue()


def with_weights(model: nn.Module, weights: bytes) -> nn.Module | None:
    """``model`` holding stored weights (``weights_only``: nothing but tensors is read), or None when they do not
    fit it (an older run's, say) or cannot be read."""
    try:
        model.load_state_dict(torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True))
    except Exception:  # torch.load of damaged bytes raises many kinds; any of them means no model to show
        return None
    return model

