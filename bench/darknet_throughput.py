"""Training pictures per second of the Darknet lab against a plain PyTorch loop of the same model.

Goal: app / plain >= 0.95 on the CPU (and the same ratio on a GPU, where the script also
prints AMP + channels_last against float32).

Both sides train the preset's Darknet (demo: groups 1, 1, 1, 1 from 8 channels, batch 128;
lecture: the lesson's [1, 2, 4, 6, 3] from 32, batch 512) for the same epochs on the same
pictures (CIFAR-10, or the synthetic stand-in offline), SGD with momentum
and weight decay 1e-4 under torch's OneCycleLR, random crop + flip on the tensors. The plain
side is written out here and runs in this process's main thread; the app side is the lab's
``darknet`` spec submitted to a JobManager, whose worker process trains it. Each side's
pictures per second come from its own training seconds (the worker's start-up is excluded).
Run on a quiet machine: with 2 cores any other process slows torch many times over.

    PYTHONPATH=. .venv/bin/python bench/darknet_throughput.py [--repeats 2] [--epochs 2] [--preset lecture]

On CUDA it then prints the lecture Darknet's pictures per second with AMP + channels_last
against float32, and with ``--lecture-run`` trains the whole lecture preset through the app
(without and with torch.compile) and prints its time, rate, memory and time to 94%.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from core import darknet_lab as lab
from core.data.cifar import cifar_tensors, random_crop_flip
from core.jobs import JobManager
from core.labs import RUNNERS
from core.models.darknet import LECTURE_BLOCKS, darknet
from core.runs import RunStore
from core.train import DeviceConfig


def plain_loop(spec: lab.DarknetSpec, device: DeviceConfig) -> float:
    """Seconds of a plain PyTorch training loop of the spec (no callbacks, no validation)."""
    torch.manual_seed(spec.seed)
    train = cifar_tensors(True).subset(min(spec.n_train, len(cifar_tensors(True).labels)), seed=spec.seed)
    images, labels = train.images.to(device.device), train.labels.to(device.device)
    model = device.prepare_model(darknet(spec.blocks, 10, spec.nf, spec.bn_momentum))
    optimizer = torch.optim.SGD(model.parameters(), lr=spec.max_lr, momentum=0.9, weight_decay=lab.WEIGHT_DECAY)
    steps_per_epoch = len(labels) // spec.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, spec.max_lr, total_steps=spec.epochs * steps_per_epoch)
    scaler = device.grad_scaler()
    generator = torch.Generator().manual_seed(spec.seed)
    augment_generator = torch.Generator(device=device.device).manual_seed(spec.seed)
    start = time.perf_counter()
    for _ in range(spec.epochs):
        order = torch.randperm(len(labels), generator=generator).to(device.device)
        for step in range(steps_per_epoch):
            index = order[step * spec.batch_size:(step + 1) * spec.batch_size]
            batch = device.prepare_images(random_crop_flip(images[index], generator=augment_generator))
            with device.autocast():
                loss = F.cross_entropy(model(batch), labels[index])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
    if device.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def app_run(manager: JobManager, spec: lab.DarknetSpec) -> dict:
    run_id = manager.submit(lab.KIND, spec.to_dict(), "bench")
    while manager.status(run_id)["state"] in ("queued", "running"):
        time.sleep(0.2)
    events, _ = manager.events(run_id, 0)
    results = [event.data for event in events if event.kind == "result"]
    if not results:
        status = manager.status(run_id)
        raise SystemExit(f"the app's {spec.preset} run ended {status['state']}: {status.get('message')}")
    return results[0]


def lecture_runs(manager: JobManager) -> None:
    """The lecture preset as a student would start it, without and with torch.compile."""
    lecture = lab.preset_spec("lecture")
    for spec in (lecture, dataclasses.replace(lecture, compile_model=True)):
        started = time.perf_counter()
        result = app_run(manager, spec)
        reached = result["seconds_to_target"]
        pictures = spec.epochs * min(spec.n_train, len(cifar_tensors(True).labels))
        print(f"lecture preset{' + torch.compile' if result['compiled'] else ''} through the app: "
              f"{spec.epochs} epochs of {pictures // spec.epochs:,} pictures in {result['seconds']:.1f} s "
              f"(submit to finish {time.perf_counter() - started:.1f} s), {result['images_per_second']:,.0f} pictures/s, "
              f"accuracy {result['accuracy']:.1%}{' on synthetic data' if result['synthetic'] else ''}, "
              f"94% {'after ' + format(reached, '.1f') + ' s' if reached else 'not reached'}; "
              f"30 epochs of 50,000 at this rate: {30 * 50_000 / result['images_per_second']:.0f} s of training steps")


def amp_against_float32() -> None:
    """The lesson's 2-3x needs the lecture model: the demo one is launch-bound."""
    amp = lab.DarknetSpec("lecture", blocks=LECTURE_BLOCKS, nf=32, epochs=3, batch_size=512)
    fp32 = dataclasses.replace(amp, mixed_precision=False, channels_last=False)
    pictures = amp.epochs * min(amp.n_train, len(cifar_tensors(True).labels))
    rates: dict[str, list[float]] = {}
    # torch lets cuDNN convolve float32 in TF32 by default; the lesson's float32 (a V100's) had no TF32
    variants = (("AMP + channels_last", amp, True), ("float32 (TF32 convs)", fp32, True), ("float32 (no TF32)", fp32, False))
    for _ in range(2):  # the variants take turns, so a GPU warming its clocks up favours none
        for name, variant, tf32 in variants:
            torch.backends.cudnn.allow_tf32 = tf32
            plain_loop(dataclasses.replace(variant, epochs=1, n_train=2_048), lab.device_for(variant))  # cuDNN picks its kernels
            rates.setdefault(name, []).append(pictures / plain_loop(variant, lab.device_for(variant)))
    torch.backends.cudnn.allow_tf32 = True
    fastest = max(rates["AMP + channels_last"])
    print("lecture Darknet, pictures/s (best of 2): " + ", ".join(
        f"{name} {max(rate):,.0f} [{', '.join(f'{r:,.0f}' for r in rate)}] ({fastest / max(rate):.2f}x slower than AMP)"
        for name, rate in rates.items()) + " (the lesson says 2-3x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, help="default: the preset's")
    parser.add_argument("--preset", choices=lab.PRESETS, default="demo")
    parser.add_argument("--lecture-run", action="store_true",
                        help="on CUDA: also AMP against float32, and the whole lecture preset through the app")
    args = parser.parse_args()
    spec = dataclasses.replace(lab.preset_spec(args.preset), epochs=args.epochs or lab.preset_spec(args.preset).epochs)
    device = lab.device_for(spec)
    if args.lecture_run and device.device.type == "cuda":
        amp_against_float32()
    pictures = spec.epochs * min(spec.n_train, len(cifar_tensors(True).labels))
    with tempfile.TemporaryDirectory() as folder:
        manager = JobManager(RunStore(Path(folder) / "runs.sqlite"), RUNNERS)
        while "darknet_seconds_per_image" not in manager.info:
            time.sleep(0.2)
        plain, app = [], []
        if device.device.type == "cuda":  # cuDNN picks its kernels on first use; the worker did so in its warm-up
            plain_loop(dataclasses.replace(spec, epochs=1, n_train=2_048), device)
        try:
            for repeat in range(args.repeats):
                plain.append(pictures / plain_loop(spec, device))
                result = app_run(manager, spec)
                app.append(result["images_per_second"])
                print(f"{spec.preset}, repeat {repeat}: plain {plain[-1]:,.0f} pictures/s, app {app[-1]:,.0f} pictures/s "
                      f"(app trains and validates {result['seconds']:.1f} s; accuracy {result['accuracy']:.1%}"
                      f"{', synthetic data' if result['synthetic'] else ''})")
            if args.lecture_run and device.device.type == "cuda":
                lecture_runs(manager)
        finally:
            manager.shutdown()
    ratio = statistics.median(app) / statistics.median(plain)
    print(f"{device.describe()}: median plain {statistics.median(plain):,.0f}, app {statistics.median(app):,.0f} "
          f"pictures/s; ratio app / plain {ratio:.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
