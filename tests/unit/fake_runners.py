"""Tiny job runners for the JobManager tests.

The worker is a separate process (``python -m core.worker``, run from the repository root),
so it imports these by name: ``tests.unit.fake_runners:count``. They use no torch, so they
start and finish in milliseconds.
"""
from __future__ import annotations

import os
import time

from core.errors import RunCancelled, UserError


def warm_up() -> dict:
    """Called once by each worker process at start-up; what it returns lands in manager.info."""
    return {"fake_worker_pid": os.getpid()}


def count(spec: dict, context) -> None:
    """Emits spec['steps'] metrics events, checking for Cancel before each, then a sample and a result.

    With spec['sample_first'] it also emits a sample grid before the first step, as run_mnist does;
    with spec['weights'] (a string), those bytes as the trained weights, as run_rnn does.
    """
    steps, pause = spec.get("steps", 5), spec.get("sleep", 0.01)
    if spec.get("sample_first"):
        context.emit("samples", {"png": b"\x89PNG fake 0", "caption": "before training"})
    for i in range(steps):
        if context.cancelled():
            raise RunCancelled()
        context.emit("metrics", {"step": i + 1, "i": i, "pid": os.getpid()})
        time.sleep(pause)
    context.emit("samples", {"png": b"\x89PNG fake " + str(steps).encode(), "caption": f"after {steps}"})
    if spec.get("weights"):
        context.emit("weights", {"state": spec["weights"].encode()})
    context.emit("result", {"steps": steps, "pid": os.getpid()})


def bad_input(spec: dict, context) -> None:
    """A run refused with a message the student can act on."""
    context.emit("metrics", {"step": 1})
    raise UserError("fake.too_big", "The value {value} is too big.", value=spec.get("value", 7))


def broken(spec: dict, context) -> None:
    """A bug in a runner."""
    raise RuntimeError("boom\nsecond line of the traceback text")


def crash(spec: dict, context) -> None:
    """The worker process dies under the run, as when the kernel kills it for memory."""
    context.emit("metrics", {"step": 1, "pid": os.getpid()})
    time.sleep(0.2)
    os._exit(1)


def resident_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def memory_hog(spec: dict, context) -> None:
    """Fills spec['mb'] megabytes, then asks for more than any machine has (as a too-big model
    would); with spec['gpu'] it fails as CUDA does instead."""
    held = bytearray(spec["mb"] * 2**20)
    held[::4096] = b"x" * len(held[::4096])  # touch every page, so that the memory is really resident
    context.emit("metrics", {"step": 1, "resident_mb": resident_mb(), "pid": os.getpid()})
    if spec.get("gpu"):
        import torch

        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
    bytearray(2**50)


def memory_now(spec: dict, context) -> None:
    context.emit("result", {"resident_mb": resident_mb(), "pid": os.getpid()})


def size_of_values(values: dict) -> str | None:
    """The size preset a fake run stands for: whatever its spec says."""
    return values.get("size")


SIZERS = {"count": "tests.unit.fake_runners:size_of_values"}

RUNNERS = {
    "hog": "tests.unit.fake_runners:memory_hog",
    "memory": "tests.unit.fake_runners:memory_now",
    "count": "tests.unit.fake_runners:count",
    "bad": "tests.unit.fake_runners:bad_input",
    "broken": "tests.unit.fake_runners:broken",
    "crash": "tests.unit.fake_runners:crash",
}
