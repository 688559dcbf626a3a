"""Why does the lecture preset 'explode' at step 39 on the GPU? Loss per step for variants."""
import dataclasses, sys, time
import torch
from torch import nn
from core import darknet_lab as lab
from core.train import Callback

class Ctx:
    def __init__(self): self.rows, self.result = [], None
    def cancelled(self): return False
    def emit(self, kind, data):
        if kind == "metrics": self.rows.append(data)
        if kind == "result": self.result = data

original_darknet, original_guard = lab.darknet, lab.NaNGuard

def zero_init(*a, **k):
    model = original_darknet(*a, **k)
    for m in model.modules():
        if isinstance(m, lab_models.ResLayer):
            nn.init.zeros_(m.conv2[1].weight)
    return model

import core.models.darknet as lab_models
class NoGuard(Callback):
    pass

def run(name, spec, zero=False, guard=True):
    lab.darknet = zero_init if zero else original_darknet
    lab.NaNGuard = original_guard if guard else NoGuard
    ctx = Ctx(); start = time.perf_counter(); error = None
    try:
        lab.run_darknet(spec.to_dict(), ctx)
    except Exception as e:
        error = e
    losses = [r["train_loss"] for r in ctx.rows]
    acc = [(r["step"], round(r["accuracy"], 3)) for r in ctx.rows if "accuracy" in r and r.get("valid_on") == 2000]
    print(f"== {name}: {time.perf_counter()-start:.1f} s, steps {len(losses)}, error {error!r:.120}")
    print("  loss steps 1-60:", " ".join(f"{l:.2f}" for l in losses[:60]))
    print("  max loss", max(losses) if losses else None, "at", losses.index(max(losses)) + 1 if losses else None,
          "last 5", [round(l, 3) for l in losses[-5:]])
    print("  full-valid accuracy per epoch:", acc)
    if ctx.result: print("  result accuracy", ctx.result["accuracy"], "pictures/s", round(ctx.result["images_per_second"]))

def lesson_era(*a, **k):  # PyTorch 0.3 drew BatchNorm weights from U(0, 1)
    model = original_darknet(*a, zero_init_residual=False, **k)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight)
    return model

lecture = lab.preset_spec("lecture")
lab.darknet = lesson_era
ctx = Ctx(); err = None
try:
    lab.run_darknet(lecture.to_dict(), ctx)
except Exception as e:
    err = e
losses = [r["train_loss"] for r in ctx.rows]
print("== lesson-era BN init U(0,1):", len(losses), "steps, error", repr(err)[:100])
print("  loss steps 1-40:", " ".join(f"{l:.2f}" for l in losses[:40]))
if ctx.result: print("  result accuracy", ctx.result["accuracy"])
