"""The restoration lab (Lesson 7) against plain PyTorch: stage 1's seconds per step, and what stage 1 reaches in a
few minutes on the CPU.

1. Stage-1 throughput. The app: the real job runner, ``run_restore(spec, context)``, in this process with a
   context that records and timestamps every event, the demo preset with ``feature_steps = critic_steps =
   gan_steps = 0`` (pixel MSE, the U-Net with its frozen MobileNetV2 encoder, Adam (0.9, 0.99) with one-cycle,
   pct_start 0.8, batch 8 of 64-px crops), its quality checks (PSNR/SSIM of the held-out crops, 5 per stage
   and one at its end) and its triptych frames (every ~3 s and at the end) included: they are part of what a
   student's run costs. The reference: the same model (``unet(...)``, same seed, so the same initial
   weights), the same crops (``load_data`` of the same spec), the same batch size and shuffling, the same Adam
   and ``torch.optim.lr_scheduler.OneCycleLR``, the same number of steps, written out here as a plain loop
   (zero_grad, backward, step, the loss read back each step as any loop that shows it). The model and the
   tensors of both sides are built outside the timed part.

   Timing: run_restore cuts its own crops before training, so its clock starts at its *first training row*
   (step 1) and stops at its *last*, both stamped by the recording context when the row arrives, i.e. after
   the row's quality check and frame, so the final check and frame are inside. That is steps 2 … N. The plain
   loop is timed the same way: from the end of its step 1 to the end of step N. Seconds per step = that span /
   (N − 1), so the first (warm-up) step of each is left out of both. The rows' own ``elapsed`` (read before
   the row's check and frame) is printed beside it. The two sides take turns for ``--rounds`` rounds, the
   order alternating, and the medians are compared: goal app / plain <= 1.05 (printed, not asserted).

2. PSNR after ``--minutes`` minutes. The demo preset's stage 1 alone through ``run_restore``, ``mse_steps``
   chosen from part 1's app seconds per step (or a short calibration) so that training takes about that long:
   the bicubic upsampling's PSNR/SSIM on the held-out crops (the baseline every restorer must beat), the
   PSNR/SSIM after stage 1, the gain in dB, the steps and the seconds.

On a GPU the same script runs: the app gets float16 autocast, channels_last and GradScaler from
``DeviceConfig.auto()``, and the plain loop is given the same autocast, channels_last and GradScaler.

    PYTHONPATH=. .venv/bin/python bench/restore_speed.py             # full: 3 rounds x 150 steps, then 2 minutes
    PYTHONPATH=. .venv/bin/python bench/restore_speed.py --quick     # smoke run, under a minute
    PYTHONPATH=. .venv/bin/python bench/restore_speed.py --only psnr --minutes 5

Numbers and how to read them: bench/README.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `core` and `bench`

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.overhead import ForeignLoad, wait_for_quiet  # noqa: E402
from core.models.unet import unet  # noqa: E402
from core.train import DeviceConfig  # noqa: E402
from core.vision import restore  # noqa: E402

GOAL_RATIO = 1.05


class Recorder:
    """The worker's context, in this process: keeps every event with the moment it arrived; never cancels."""

    def __init__(self):
        self.events: list[tuple[str, dict, float]] = []

    def emit(self, kind: str, data: dict) -> None:
        self.events.append((kind, data, time.perf_counter()))

    def cancelled(self) -> bool:
        return False

    def rows(self) -> list[tuple[dict, float]]:
        return [(data, at) for kind, data, at in self.events if kind == "metrics"]

    def count(self, kind: str) -> int:
        return sum(1 for k, _, _ in self.events if k == kind)

    def result(self) -> dict:
        return next(data for kind, data, _ in self.events if kind == "result")


def stage_one(spec: restore.RestoreSpec, steps: int) -> restore.RestoreSpec:
    """The spec with stage 1 only: ``steps`` pixel-MSE steps, no feature loss, no critic, no GAN."""
    return restore.RestoreSpec(**{**spec.to_dict(), "mse_steps": steps, "feature_steps": 0, "critic_steps": 0,
                                  "gan_steps": 0})


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# ----- the app: the job runner with a recording context ------------------------------------------------------
def app_round(spec: restore.RestoreSpec) -> dict:
    context = Recorder()
    started = time.perf_counter()
    restore.run_restore(spec.to_dict(), context)
    wall = time.perf_counter() - started
    rows = [(row, at) for row, at in context.rows() if row["step"] >= 1]
    (first, first_at), (last, last_at) = rows[0], rows[-1]
    span = max(1, last["step"] - first["step"])
    return {"per_step": (last_at - first_at) / span, "per_step_elapsed": (last["elapsed"] - first["elapsed"]) / span,
            "steps": last["step"], "wall": wall, "loss": last["loss"], "checks": sum("psnr" in r for r, _ in rows),
            "frames": context.count("samples"), "context": context}


# ----- the plain loop: written out, no project code in it ----------------------------------------------------
def plain_model(spec: restore.RestoreSpec, device: DeviceConfig) -> torch.nn.Module:
    """The same U-Net with the same initial weights as run_restore's (it seeds torch before building it)."""
    torch.manual_seed(spec.seed)
    model = unet(spec.encoder, spec.upsample, frozen=not spec.train_encoder)
    memory_format = torch.channels_last if device.channels_last else torch.contiguous_format
    return model.to(device.device, memory_format=memory_format)


def plain_tensors(spec: restore.RestoreSpec, device: DeviceConfig) -> tuple[torch.Tensor, torch.Tensor]:
    train, _ = restore.load_data(spec)  # the very crops run_restore cuts for this spec
    memory_format = torch.channels_last if device.channels_last else torch.contiguous_format
    return (train.crappy.to(device.device).contiguous(memory_format=memory_format),
            train.original.to(device.device).contiguous(memory_format=memory_format))


def plain_round(spec: restore.RestoreSpec, model: torch.nn.Module, crappy: torch.Tensor, original: torch.Tensor,
                device: DeviceConfig) -> dict:
    """``spec.mse_steps`` steps of pixel MSE: Adam (0.9, 0.99) with torch's OneCycleLR (pct_start 0.8), batches of
    ``spec.batch_size`` drawn from a seeded permutation of the crops each pass, the short last batch dropped."""
    steps, batch, on = spec.mse_steps, spec.batch_size, device.device
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=spec.lr, betas=(0.9, 0.99))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=spec.lr, total_steps=steps,
                                                    pct_start=restore.LESSON_PCT_START)
    scaler = torch.amp.GradScaler(on.type, enabled=device.amp_dtype == torch.float16)
    order_draw = torch.Generator().manual_seed(spec.seed)
    model.train()  # the frozen encoder stays in eval mode (its BatchNorm statistics are ImageNet's)
    step, first_at, loss_value = 0, 0.0, float("nan")
    while step < steps:
        order = torch.randperm(len(crappy), generator=order_draw).to(on)
        for start in range(0, len(order) - batch + 1, batch):
            index = order[start:start + batch]
            with torch.autocast(on.type, dtype=device.amp_dtype, enabled=device.amp_dtype is not None):
                loss = F.mse_loss(model(crappy[index]), original[index])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_value = loss.item()
            step += 1
            if step < steps:
                scheduler.step()
            if step == 1:
                first_at = time.perf_counter()
            if step == steps:
                break
    sync(on)
    return {"per_step": (time.perf_counter() - first_at) / max(1, steps - 1), "steps": steps, "loss": loss_value}


# ----- 1. throughput -------------------------------------------------------------------------------------------
def throughput(spec: restore.RestoreSpec, rounds: int, device: DeviceConfig, wait: bool) -> dict:
    print(f"\n== 1. stage 1, {spec.mse_steps} steps per round, {rounds} rounds: run_restore vs a plain loop ==")
    print(f"   {spec.preset} preset: {spec.size}-px crops, batch {spec.batch_size}, {spec.train_crops} training / "
          f"{spec.valid_crops} held-out crops, encoder {spec.encoder} (frozen), {spec.upsample}, Adam one-cycle "
          f"max lr {spec.lr:g}")
    print("   app clock: from its step-1 row to its last row as they reach the context (cutting the crops is "
          "before it; its checks and frames are inside); plain: from the end of step 1 to the end of the last")
    crappy, original = plain_tensors(spec, device)
    warm = stage_one(spec, 3)  # imports, the encoder's weights, torchmetrics, the allocator: before any clock
    restore.run_restore(warm.to_dict(), Recorder())
    plain_round(warm, plain_model(warm, device), crappy, original, device)
    times: dict[str, list[float]] = {"app": [], "plain": []}
    foreign = []
    for round_ in range(rounds):
        for side in (("app", "plain") if round_ % 2 == 0 else ("plain", "app")):
            model = plain_model(spec, device) if side == "plain" else None  # built outside the clock
            if wait:
                wait_for_quiet()
            meter = ForeignLoad().start()
            found = app_round(spec) if side == "app" else plain_round(spec, model, crappy, original, device)
            others = meter.stop()
            times[side].append(found["per_step"])
            foreign.append(others)
            extra = (f"  (rows' elapsed {1000 * found['per_step_elapsed']:.1f} ms/step; {found['checks']} quality "
                     f"checks, {found['frames']} frames; whole run {found['wall']:.1f} s with cutting the crops)"
                     if side == "app" else "")
            print(f"   round {round_ + 1} {side:5s} {1000 * found['per_step']:7.1f} ms/step  last loss "
                  f"{found['loss']:.5f}  other processes {others:.0%}{extra}", flush=True)
    app, plain = statistics.median(times["app"]), statistics.median(times["plain"])
    paired = [a / p for a, p in zip(times["app"], times["plain"])]
    print(f"   median: app {1000 * app:.1f} ms/step ({1 / app:.2f} steps/s), plain {1000 * plain:.1f} ms/step "
          f"({1 / plain:.2f} steps/s); app / plain = {app / plain:.3f} (rounds {', '.join(f'{r:.3f}' for r in paired)})"
          f"; goal <= {GOAL_RATIO}: {'met' if app / plain <= GOAL_RATIO else 'NOT met'}")
    return {"app": app, "plain": plain, "ratio": app / plain, "paired": paired, "times": times,
            "foreign": max(foreign)}


def calibrate(spec: restore.RestoreSpec, device: DeviceConfig) -> float:
    """Seconds per step of the plain loop over a few steps, times the goal ratio: a stand-in for the app's."""
    crappy, original = plain_tensors(spec, device)
    short = stage_one(spec, 12)
    plain_round(short, plain_model(short, device), crappy, original, device)
    return plain_round(short, plain_model(short, device), crappy, original, device)["per_step"] * GOAL_RATIO


# ----- 2. PSNR after a few minutes ----------------------------------------------------------------------------
def psnr_run(spec: restore.RestoreSpec, minutes: float, per_step: float, source: str) -> dict:
    steps = max(10, round(60 * minutes / per_step))
    spec = stage_one(spec, steps)
    print(f"\n== 2. stage 1 for about {minutes:g} min: {steps} steps at {1000 * per_step:.1f} ms/step ({source}) ==")
    context = Recorder()
    meter = ForeignLoad().start()
    started = time.perf_counter()
    restore.run_restore(spec.to_dict(), context)
    wall = time.perf_counter() - started
    others = meter.stop()
    rows = context.rows()
    (_, start_at), (_, last_at) = rows[0], rows[-1]
    result = context.result()
    bicubic, after = result["bicubic"], result["stages"]["mse"]
    for row, at in rows:
        if "psnr" in row:
            print(f"   {row['stage']:7s} step {row['step']:5d}  {at - start_at:7.1f} s  PSNR {row['psnr']:6.2f} dB  "
                  f"SSIM {row['ssim']:.4f}" + (f"  loss {row['loss']:.5f}" if "loss" in row else ""))
    training = last_at - start_at
    print(f"   {steps} steps: {training:.1f} s of training (bicubic row to last row), {wall:.1f} s in all with "
          f"cutting the crops; other processes {others:.0%}; {result['valid_photos']} held-out photos, "
          f"{spec.valid_crops} crops")
    return {"steps": steps, "training": training, "wall": wall, "bicubic": bicubic, "after": after,
            "gain": after["psnr"] - bicubic["psnr"], "minutes": minutes, "foreign": others}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150, help="stage-1 steps per round of part 1")
    parser.add_argument("--minutes", type=float, default=2.0, help="part 2's training time, about")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the quick preset, few steps): a smoke run")
    parser.add_argument("--only", choices=("all", "throughput", "psnr"), default="all")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine before each round")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps, args.minutes = min(args.rounds, 2), min(args.steps, 20), min(args.minutes, 0.2)
    device = DeviceConfig.auto()
    spec = restore.preset_spec("quick" if args.quick else "demo")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device.describe()} "
          f"(autocast {device.amp_dtype}, channels_last {device.channels_last}), preset {spec.preset}, "
          f"encoder {spec.encoder}")
    started = time.perf_counter()
    speed = psnr = None
    if args.only in ("all", "throughput"):
        speed = throughput(stage_one(spec, args.steps), args.rounds, device, wait=not (args.quick or args.no_wait))
    if args.only in ("all", "psnr"):
        per_step, source = ((speed["app"], "part 1's app median") if speed else
                            (calibrate(spec, device), f"plain loop over 12 steps x {GOAL_RATIO}"))
        psnr = psnr_run(spec, args.minutes, per_step, source)
    print(f"\n== summary ({device.describe()}, {torch.get_num_threads()} torch threads, {spec.preset} preset, "
          f"{spec.size} px, batch {spec.batch_size}) ==")
    if speed:
        print(f"   stage-1 throughput ({args.steps} steps x {args.rounds} rounds): app {1000 * speed['app']:.1f} "
              f"ms/step, plain {1000 * speed['plain']:.1f} ms/step, app / plain = {speed['ratio']:.3f} "
              f"(goal <= {GOAL_RATIO}: {'met' if speed['ratio'] <= GOAL_RATIO else 'NOT met'}); other processes "
              f"up to {speed['foreign']:.0%} of the CPU in a round")
    if psnr:
        bicubic, after = psnr["bicubic"], psnr["after"]
        print(f"   bicubic (crappy input): PSNR {bicubic['psnr']:.2f} dB, SSIM {bicubic['ssim']:.4f}")
        print(f"   after stage 1:          PSNR {after['psnr']:.2f} dB, SSIM {after['ssim']:.4f}  "
              f"({psnr['steps']} steps, {psnr['training']:.1f} s training, {psnr['wall']:.1f} s in all; other "
              f"processes {psnr['foreign']:.0%} of the CPU)")
        print(f"   gain {psnr['gain']:+.2f} dB, SSIM {after['ssim'] - bicubic['ssim']:+.4f}: the restorer "
              f"{'beats' if psnr['gain'] > 0 else 'does NOT beat'} bicubic upsampling")
    loads = [part["foreign"] for part in (speed, psnr) if part]
    if loads and max(loads) > 0.05:
        print(f"   NOTE: other processes took up to {max(loads):.0%} of the CPU: these times are not a measurement "
              "(on 2 cores a busy neighbour slows a step far more than its share); rerun on a quiet machine")
    print(f"   total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
