"""The style lab (Lesson 13) against plain PyTorch: seconds for a whole style transfer.

The app: the real job runner, ``run_style(spec, context)``, in this process with a recording context (its hooks,
its loss with per-layer terms read back every evaluation, a PNG frame every ~2 s, Cancel polled every
evaluation). The reference: the same optimisation written plainly here with torchvision's MobileNetV2 (the
same ImageNet weights), forward hooks at the same five block ends, the Gram matrix, MSE losses with the same
weights and Adam on the pixels; no frames, no per-layer read-back. The two take turns for ``--rounds`` rounds
(the order alternates), so a slow patch of the machine hits both; the median of each is reported.

Goal (issue 6): 256 px, 150 Adam steps with the offline backbone on 2 CPU cores in <= 25 s, app / plain <= 1.05.
On a GPU: 512 px, 1,000 iterations, goal <= 15 s (``--size 512 --steps 1000``).

    PYTHONPATH=. .venv/bin/python bench/style_speed.py                 # about 3 minutes on the 2-core CPU box
    PYTHONPATH=. .venv/bin/python bench/style_speed.py --size 512 --steps 1000 --rounds 2   # on a GPU
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
from core.train import DeviceConfig  # noqa: E402
from core.vision import backbone as backbones  # noqa: E402
from core.vision import style  # noqa: E402
from core.vision.images import square_tensor  # noqa: E402


class Quiet:
    def emit(self, kind, data):
        pass

    def cancelled(self):
        return False


def app_seconds(spec: style.StyleSpec) -> float:
    started = time.perf_counter()
    style.run_style(spec.to_dict(), Quiet())
    return time.perf_counter() - started


def plain_seconds(spec: style.StyleSpec) -> float:
    """The lesson's loop written out: hooks, Gram matrices, MSE, Adam on the pixels."""
    started = time.perf_counter()
    device = DeviceConfig.auto().device
    net = backbones.load(spec.backbone).features.to(device)
    ends = backbones.BLOCK_ENDS[spec.backbone]
    mean = torch.tensor(backbones.IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(backbones.IMAGENET_STD, device=device).view(1, 3, 1, 1)
    saved = {}
    hooks = [net[i].register_forward_hook(lambda m, inp, out, i=i: saved.__setitem__(i, out)) for i in ends]

    def features(x):
        net((x - mean) / std)
        return [saved[i] for i in ends]

    def gram(x):
        b, c, h, w = x.shape
        f = x.reshape(b, c, h * w)
        return f @ f.transpose(1, 2) / (c * h * w)

    try:
        content = square_tensor(spec.content, spec.size).to(device)
        painting = square_tensor(spec.style, spec.size).to(device)
        with torch.no_grad():
            content_target = features(content)[style.CONTENT_LAYER]
            style_targets = [gram(f) for f in features(painting)]
        picture = style.median_noise(spec.size, spec.seed).to(device).requires_grad_(True)
        optimizer = torch.optim.Adam([picture], lr=spec.lr)
        for _ in range(spec.steps):
            optimizer.zero_grad()
            found = features(picture)
            loss = spec.content_weight * F.mse_loss(found[style.CONTENT_LAYER], content_target)
            loss = loss + sum(spec.style_weight * w * F.mse_loss(gram(f), g)
                              for f, g, w in zip(found, style_targets, spec.layer_weights))
            loss.backward()
            optimizer.step()
        loss.item()
    finally:
        for hook in hooks:
            hook.remove()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    spec = style.preset_spec("demo", backbones.best_available(), size=args.size, steps=args.steps,
                             optimizer="adam", lr=style.DEFAULT_LR["adam"])
    device = DeviceConfig.auto()
    print(f"device {device.describe()}, torch threads {torch.get_num_threads()}, backbone {spec.backbone}, "
          f"{spec.size} px, {spec.steps} Adam steps", flush=True)
    plain_seconds(style.preset_spec("quick", spec.backbone, size=64, steps=3, optimizer="adam", lr=0.03))  # warm
    times = {"app": [], "plain": []}
    for round_ in range(args.rounds):
        order = ("app", "plain") if round_ % 2 == 0 else ("plain", "app")
        for side in order:
            wait_for_quiet()
            meter = ForeignLoad().start()
            seconds = app_seconds(spec) if side == "app" else plain_seconds(spec)
            others = meter.stop()
            times[side].append(seconds)
            print(f"round {round_ + 1} {side:5s} {seconds:7.2f} s  (other processes {others:.0%})", flush=True)
    app, plain = statistics.median(times["app"]), statistics.median(times["plain"])
    goal = 25.0 if device.device.type == "cpu" else 15.0
    print(f"median: app {app:.2f} s, plain {plain:.2f} s, app / plain = {app / plain:.3f} (goal <= 1.05); "
          f"app {'within' if app <= goal else 'OVER'} the {goal:.0f} s goal")


if __name__ == "__main__":
    main()
