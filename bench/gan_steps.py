"""The GAN lab (Lesson 12) against plain PyTorch: generator steps per second, and time to recognisable digits.

1. Steps per second. The app's ``dcgan_step`` on ``build_gan(preset_spec("demo"))`` with real MNIST batches
   from ``Batches``, against the same step written plainly here: the lesson's DCGAN_G / DCGAN_D with the
   same initialisation, BCE on logits, Adam 2e-4 with beta1 0.5, batch 64, zero_grad / backward / step, no
   gradient norm and no GradScaler. Blocks of steps of each side take turns (the order rotates each round),
   so a slow patch of the machine hits both. Variants of the app's step with one piece removed each (the
   gradient norm, the GradScaler, the requires_grad_ toggle) say what costs what. The WGAN step (5 critic
   steps and 1 generator step, after the warm-up) is timed the same way. Goal: app / plain <= 1.05.
2. Minutes to recognisable digits. The real job runner, ``run_gan(preset_spec("demo").to_dict(), context)``
   in this process with a recording context, and the clock of its own metrics rows: the first sample
   verdict (every ~3 s) with mean confidence >= 0.67 and all 10 classes present, and the final verdict.
   Then a plain PyTorch DCGAN (32 px, ngf 32, BCE, Adam 2e-4 beta1 0.5, batch 64, the same digits) for a
   wall-clock budget, judged with the same ``judge.verdict`` on 256 samples of a fixed noise every ~3 s,
   the judging time left out of its clock. Goal: the demo preset recognisable within 120 s of Train.

    PYTHONPATH=. .venv/bin/python bench/gan_steps.py            # about 6-7 min on the 2-core CPU box
    PYTHONPATH=. .venv/bin/python bench/gan_steps.py --quick    # a smoke run, about 1 min
    PYTHONPATH=. .venv/bin/python bench/gan_steps.py --only reference --ref-lr 4e-4 --ref-seconds 120

The same script runs on a GPU (``DeviceConfig.auto``): there the app uses float16 autocast, channels_last
and GradScaler while the plain loop stays float32, so the ratio there includes AMP's effect.
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
from core.data.mnist import padded_tanh  # noqa: E402
from core.gan import dcgan as app  # noqa: E402
from core.gan import judge  # noqa: E402
from core.mnist_lab import cached_digits  # noqa: E402
from core.train import DeviceConfig  # noqa: E402

BATCH, LR, BETAS, NZ = 64, 2e-4, (0.5, 0.999), app.NZ
WGAN_LR, CLIP = 1e-4, app.CLIP
CONFIDENCE, CLASSES = 0.67, 10  # "recognisable": the bar, the same as core's RECOGNISABLE_*
GOAL_SECONDS = 120.0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# ----- the plain side: written out, no app code in the loop ------------------------------------------------
class PlainBatches:
    """Random batches of 64 real digits at 32 px in [-1, 1], drawn by a seeded generator."""

    def __init__(self, batch_size: int, seed: int, device: torch.device):
        self.digits, self.batch_size, self.device = cached_digits(True).images, batch_size, device
        self.order = torch.Generator().manual_seed(seed)

    def next(self) -> torch.Tensor:
        picked = self.digits[torch.randint(len(self.digits), (self.batch_size,), generator=self.order)]
        return padded_tanh(picked, app.ISIZE).to(self.device)


class PlainDCGAN:
    def __init__(self, width: int, seed: int, device: torch.device, lr: float = LR):
        self.G, self.D = (net.to(device) for net in app.networks(width, seed))  # DCGAN_G/D, Radford's init
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=BETAS)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr, betas=BETAS)

    def step(self, real: torch.Tensor) -> tuple[float, float]:
        fake = self.G(torch.randn(len(real), NZ, device=real.device))
        real_logits, fake_logits = self.D(real), self.D(fake.detach())
        loss_d = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        judged = self.D(fake)
        loss_g = F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        return loss_d.item(), loss_g.item()


class PlainWGAN:
    def __init__(self, width: int, seed: int, device: torch.device):
        self.G, self.D = (net.to(device) for net in app.networks(width, seed))
        self.opt_g = torch.optim.RMSprop(self.G.parameters(), lr=WGAN_LR)
        self.opt_d = torch.optim.RMSprop(self.D.parameters(), lr=WGAN_LR)

    def step(self, batches, critic_steps: int = app.CRITIC_STEPS) -> float:
        for _ in range(critic_steps):
            real = batches.next()
            with torch.no_grad():
                fake = self.G(torch.randn(len(real), NZ, device=real.device))
            loss_d = self.D(fake).mean() - self.D(real).mean()
            self.opt_d.zero_grad()
            loss_d.backward()
            self.opt_d.step()
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-CLIP, CLIP)
        loss_g = -self.D(self.G(torch.randn(BATCH, NZ, device=real.device))).mean()
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        return loss_g.item()


# ----- the app's step with one piece taken out, to see what each costs -------------------------------------
def app_variant_step(gan: app.Gan, real: torch.Tensor, device: DeviceConfig, *, norm: bool = True,
                     scaler: bool = True, toggle: bool = True) -> dict[str, float]:
    """``core.gan.dcgan.dcgan_step`` as written there, with the gradient norm, the GradScaler calls or the
    requires_grad_ toggle of the discriminator optionally left out."""
    def update(loss, net, optimizer, grad_scaler) -> float:
        optimizer.zero_grad(set_to_none=True)
        if scaler:
            grad_scaler.scale(loss).backward()
            grad_scaler.unscale_(optimizer)
        else:
            loss.backward()
        value = app.gradient_norm(net) if norm else 0.0
        if scaler:
            grad_scaler.step(optimizer)
            grad_scaler.update()
        else:
            optimizer.step()
        return value

    with device.autocast():
        fake = gan.generator(app.noise_like(real))
        real_logits, fake_logits = gan.discriminator(real).float(), gan.discriminator(fake.detach()).float()
        loss_d = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    norm_d = update(loss_d, gan.discriminator, gan.discriminator_optimizer, gan.discriminator_scaler)
    if toggle:
        gan.discriminator.requires_grad_(False)
    with device.autocast():
        judged = gan.discriminator(fake).float()
        loss_g = F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
    norm_g = update(loss_g, gan.generator, gan.generator_optimizer, gan.generator_scaler)
    if toggle:
        gan.discriminator.requires_grad_(True)
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "d_real": torch.sigmoid(real_logits).mean().item(),
            "d_fake": torch.sigmoid(fake_logits).mean().item(), "grad_norm_d": norm_d, "grad_norm_g": norm_g}


# ----- 1. steps per second -----------------------------------------------------------------------------------
def interleaved(kinds: dict, steps: int, rounds: int, device: torch.device, warm: int = 3) -> dict[str, list]:
    """Seconds per step of each kind, one list entry per round: ``steps`` steps of each kind in turn, the
    starting kind rotating from round to round. ``kinds`` maps a name to a callable doing one step."""
    for run in kinds.values():
        for _ in range(warm):
            run()
    sync(device)
    names, times, foreign = list(kinds), {name: [] for name in kinds}, []
    wait_for_quiet()
    for r in range(rounds):
        meter = ForeignLoad().start()
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            for _ in range(steps):
                kinds[name]()
            sync(device)
            times[name].append((time.perf_counter() - start) / steps)
        foreign.append(meter.stop())
    times["_foreign"] = foreign
    return times


def report_rates(times: dict[str, list], reference: str, unit: str) -> None:
    ref = statistics.median(times[reference])
    for name, values in times.items():
        if name.startswith("_"):
            continue
        per = statistics.median(values)
        paired = [v / p for v, p in zip(values, times[reference])]
        print(f"  {name:<34} {1 / per:6.2f} {unit}/s  ({1000 * per:6.1f} ms/step, rounds {1000 * min(values):.1f}"
              f"-{1000 * max(values):.1f})  /{reference}: {per / ref:.3f} (paired median "
              f"{statistics.median(paired):.3f}, {min(paired):.3f}-{max(paired):.3f})")
    print(f"  other processes used {100 * max(times['_foreign']):.0f}% of the CPU at most in a round")


def steps_per_second(config: DeviceConfig, quick: bool) -> None:
    steps, rounds = (4, 2) if quick else (15, 6)
    spec = app.preset_spec("demo")
    print(f"\n== 1. DCGAN generator steps per second (demo preset: width {spec.width}, batch {spec.batch_size}; "
          f"{rounds} rounds of {steps} steps per kind, on {config.describe()}) ==", flush=True)
    kinds = {}
    plain, plain_batches = PlainDCGAN(spec.width, 0, config.device), PlainBatches(BATCH, 0, config.device)
    kinds["plain"] = lambda: plain.step(plain_batches.next())
    gan, batches = app.build_gan(spec, config), app.Batches(spec.batch_size, 0, config)
    kinds["app dcgan_step"] = lambda: app.dcgan_step(gan, batches.next(), config)
    variants = {"app without gradient norm": dict(norm=False), "app without GradScaler calls": dict(scaler=False),
                "app without requires_grad_ toggle": dict(toggle=False),
                "app without norm, scaler, toggle": dict(norm=False, scaler=False, toggle=False)}
    for name, off in variants.items():
        v_gan, v_batches = app.build_gan(spec, config), app.Batches(spec.batch_size, 0, config)
        kinds[name] = (lambda g, b, o: lambda: app_variant_step(g, b.next(), config, **o))(v_gan, v_batches, off)
    times = interleaved(kinds, steps, rounds, config.device)
    report_rates(times, "plain", "steps")
    ratio = statistics.median(times["app dcgan_step"]) / statistics.median(times["plain"])
    print(f"  => app / plain time per step: {ratio:.3f} (goal <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")

    # The pieces in isolation: a step's gradient norms and GradScaler calls, timed alone.
    net = gan.discriminator
    loss = net(batches.next()).float().mean()
    gan.discriminator_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    repeats = 50 if quick else 300
    start = time.perf_counter()
    for _ in range(repeats):
        app.gradient_norm(gan.discriminator)
        app.gradient_norm(gan.generator)
    sync(config.device)
    print(f"  micro: gradient_norm of D and G: {1000 * (time.perf_counter() - start) / repeats:.2f}"
          f" ms per step")
    start = time.perf_counter()
    for _ in range(repeats):
        net.requires_grad_(False)
        net.requires_grad_(True)
    print(f"  micro: requires_grad_ off and on: {1e6 * (time.perf_counter() - start) / repeats:.0f} µs per step")

    steps_w, rounds_w = (1, 2) if quick else (3, 4)
    print(f"\n== 1b. WGAN generator steps per second (5 critic steps + 1 generator step, after the warm-up; "
          f"{rounds_w} rounds of {steps_w}) ==", flush=True)
    wspec = app.preset_spec("demo", "wgan")
    wplain, wplain_batches = PlainWGAN(wspec.width, 0, config.device), PlainBatches(BATCH, 0, config.device)
    wgan, wbatches = app.build_gan(wspec, config), app.Batches(wspec.batch_size, 0, config)

    def app_wgan_step() -> None:  # train_step at a generator step past the warm-up (done = 30: 5 critic steps)
        app.train_step(wgan, wspec, wbatches, 30, config, NullContext())

    times = interleaved({"plain": lambda: wplain.step(wplain_batches), "app train_step (wgan)": app_wgan_step},
                        steps_w, rounds_w, config.device, warm=1)
    report_rates(times, "plain", "steps")


# ----- 2. minutes to recognisable digits ------------------------------------------------------------------
class NullContext:
    def emit(self, kind: str, payload: dict) -> None:
        pass

    def cancelled(self) -> bool:
        return False


class RecordingContext:
    def __init__(self):
        self.started = time.perf_counter()
        self.events: list[tuple[float, str, dict]] = []

    def emit(self, kind: str, payload: dict) -> None:
        self.events.append((time.perf_counter() - self.started, kind, payload))

    def cancelled(self) -> bool:
        return False


def recognisable(confidence: float, classes: int) -> bool:
    return confidence >= CONFIDENCE and classes >= CLASSES


def demo_run(quick: bool) -> dict:
    spec = app.preset_spec("demo")
    values = spec.to_dict()
    if quick:
        values["steps"] = 60
    print(f"\n== 2a. run_gan, demo preset ({values['steps']} DCGAN steps, width {spec.width}, batch "
          f"{spec.batch_size}, lr {spec.lr:g}) on {DeviceConfig.auto().describe()} ==", flush=True)
    judged_seconds = []
    verdict = judge.verdict

    def timed_verdict(samples):  # run_gan calls judge.verdict through the module: time it, change nothing
        start = time.perf_counter()
        found = verdict(samples)
        judged_seconds.append(time.perf_counter() - start)
        return found

    judge.judge()  # the worker's warm-up loads it before any run; not part of the clock
    wait_for_quiet()
    meter = ForeignLoad().start()
    context = RecordingContext()
    judge.verdict = timed_verdict
    try:
        app.run_gan(values, context)
    finally:
        judge.verdict = verdict
    foreign = meter.stop()
    wall = time.perf_counter() - context.started
    rows = [payload for _, kind, payload in context.events if kind == "metrics"]
    judged = [row for row in rows if "confidence" in row]
    result = next(payload for _, kind, payload in context.events if kind == "result")
    first = next((row for row in judged if recognisable(row["confidence"], row["classes_present"])), None)
    for row in judged:
        print(f"  {row['elapsed']:6.1f} s  step {row['step']:4d}  confidence {row['confidence']:.3f}  classes "
              f"{row['classes_present']:2d}  spread {row['spread']:.2f}")
    final = result["verdict"]
    steps_per_s = rows[-1]["step"] / rows[-1]["elapsed"]
    print(f"  training {result['seconds']:.1f} s ({steps_per_s:.2f} steps/s, of which judging "
          f"{sum(judged_seconds[1:]):.1f} s over {len(judged_seconds) - 1} verdicts), run_gan call {wall:.1f} s; "
          f"other processes {100 * foreign:.0f}% CPU")
    print(f"  final verdict: confidence {final['confidence']:.3f}, classes {final['classes_present']}, spread "
          f"{final['spread']:.2f}")
    if first is None:
        print(f"  => NOT recognisable (confidence >= {CONFIDENCE}, {CLASSES} classes) within the run")
    else:
        print(f"  => recognisable at {first['elapsed']:.1f} s (step {first['step']}); core's own "
              f"recognisable_after: {result['recognisable_after']}; goal <= {GOAL_SECONDS:.0f} s: "
              f"{'met' if first['elapsed'] <= GOAL_SECONDS else 'NOT met'}")
    return {"first": first, "final": final, "steps_per_s": steps_per_s}


def reference_run(seconds: float, lr: float, width: int, batch: int, seed: int = 0, label: str = "",
                  max_steps: int | None = None) -> dict:
    """A plain DCGAN for ``seconds`` of training (judging excluded) or ``max_steps`` steps, whichever ends
    first, judged every ~3 s of its clock."""
    device = DeviceConfig.auto().device
    print(f"\n== 2b. plain PyTorch DCGAN reference{label}: {seconds:.0f} s, lr {lr:g}, width {width}, batch {batch}, "
          f"seed {seed} ==", flush=True)
    torch.manual_seed(seed)
    model, batches, noise = PlainDCGAN(width, seed, device, lr), PlainBatches(batch, seed, device), \
        app.fixed_noise(seed)
    wait_for_quiet()
    meter = ForeignLoad().start()
    clock, step, last_judged, first, history = 0.0, 0, 0.0, None, []
    while clock < seconds and (max_steps is None or step < max_steps):
        start = time.perf_counter()
        model.step(batches.next())
        sync(device)
        clock += time.perf_counter() - start
        step += 1
        if clock - last_judged >= app.SAMPLE_EVERY_SECONDS or clock >= seconds or step == max_steps:
            last_judged = clock
            found = judge.verdict(app.generate(model.G, noise))  # judging is off the clock
            history.append((clock, step, found))
            print(f"  {clock:6.1f} s  step {step:4d}  confidence {found.confidence:.3f}  classes "
                  f"{found.classes_present:2d}  spread {found.spread:.2f}")
            if first is None and recognisable(found.confidence, found.classes_present):
                first = (clock, step)
    foreign = meter.stop()
    final = history[-1][2]
    print(f"  {step} steps in {clock:.1f} s: {step / clock:.2f} steps/s; other processes {100 * foreign:.0f}% CPU")
    print(f"  final verdict: confidence {final.confidence:.3f}, classes {final.classes_present}, spread "
          f"{final.spread:.2f}")
    if first is None:
        print("  => NOT recognisable within the budget")
    else:
        print(f"  => recognisable at {first[0]:.1f} s (step {first[1]})")
    return {"first": first, "final": final, "steps_per_s": step / clock}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps: a smoke run of about a minute")
    parser.add_argument("--only", choices=("all", "steps", "demo", "reference"), default="all")
    parser.add_argument("--ref-seconds", type=float, default=150.0, help="the reference's training seconds")
    parser.add_argument("--ref-lr", type=float, default=LR)
    parser.add_argument("--ref-width", type=int, default=32)
    parser.add_argument("--ref-batch", type=int, default=BATCH)
    parser.add_argument("--ref-seed", type=int, default=0)
    parser.add_argument("--ref-steps", type=int, default=None, help="stop the reference after this many steps")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {DeviceConfig.auto().describe()}")
    started = time.perf_counter()
    if args.only in ("all", "steps"):
        steps_per_second(DeviceConfig.auto(), args.quick)
    if args.only in ("all", "demo"):
        demo_run(args.quick)
    if args.only in ("all", "reference"):
        reference_run(10.0 if args.quick else args.ref_seconds, args.ref_lr, args.ref_width, args.ref_batch,
                      args.ref_seed, max_steps=args.ref_steps)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
