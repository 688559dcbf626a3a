"""The RNN lab's six models at a preset, trained through the app, beside the lesson's accuracy; and
Model5's time from pressing Train to 80%, against a plain PyTorch GRU in this process.

Goal: Model5 >= 80% validation accuracy within 15 s of pressing Train on 2 CPU cores (demo preset).

"Pressing Train" is what the page does: submit the model's preset spec to a JobManager, whose worker
process trains it. The clock runs from submit to the first metrics event whose validation accuracy
(on the whole validation stream) reaches the target; its timestamp is when the worker emitted it.
The worker's start-up is excluded (the first submit waits until it has warmed up).

The reference is the one the issue names: a plain 2-layer GRU (nh 64, LayerNorm, AdamW one-cycle at
1e-2, bs 64, bptt 20, no randomised lengths), written out below and trained in this process's main
thread on one thread, timed the same way (validation after every epoch, excluded from nothing).

    PYTHONPATH=. .venv/bin/python bench/rnn_models.py [--preset demo] [--seeds 3]
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
from torch import nn

from core import rnn_lab as lab
from core.data.human_numbers import load_ids
from core.jobs import JobManager
from core.labs import RUNNERS
from core.runs import RunStore
from core.text.language_model import LanguageModelBatches

TARGET, GOAL_SECONDS = 0.80, 15.0


def app_run(manager: JobManager, spec: lab.RnnSpec, target: float = TARGET) -> dict:
    """Submit as the page does; follow the events; the seconds from submit to ``target`` and to the end."""
    submitted = time.time()
    run_id = manager.submit(lab.KIND, spec.to_dict(), "bench")
    cursor, reached, result, state = 0, None, None, None
    while state not in ("finished", "failed", "cancelled"):
        time.sleep(0.2)
        events, cursor = manager.events(run_id, cursor)
        for event in events:
            if event.kind == "metrics" and reached is None and event.data.get("accuracy", 0) >= target:
                reached = event.t - submitted
            elif event.kind == "result":
                result = event.data
            elif event.kind == "state":
                state = event.data["state"]
    if result is None:
        raise SystemExit(f"{spec.model} ended {state}: {manager.status(run_id).get('message')}")
    return {**result, "to_target": reached, "to_end": time.time() - submitted}


class PlainGRU(nn.Module):
    def __init__(self, nv: int = 38, nh: int = 64):
        super().__init__()
        self.i_h, self.rnn, self.norm, self.h_o = nn.Embedding(nv, nh), nn.GRU(nh, nh, 2), nn.LayerNorm(nh), nn.Linear(nh, nv)
        self.h = None

    def forward(self, x):
        out, h = self.rnn(self.i_h(x), self.h)
        self.h = h.detach()
        return self.h_o(self.norm(out))


def plain_reference(epochs: int, seed: int, target: float = TARGET) -> dict:
    torch.manual_seed(seed)
    train_ids, valid_ids, _ = load_ids()
    train, valid = LanguageModelBatches(train_ids, 64, 20), LanguageModelBatches(valid_ids, 64, 20)
    model = PlainGRU()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-2, total_steps=epochs * len(train))
    start, reached, accuracy = time.perf_counter(), None, 0.0
    for _ in range(epochs):
        model.train()
        model.h = None
        for x, y in train:
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        model.h, correct, count = None, 0, 0
        with torch.no_grad():
            for x, y in valid:
                correct += (model(x).argmax(-1) == y).sum().item()
                count += y.numel()
        accuracy = correct / count
        if reached is None and accuracy >= target:
            reached = time.perf_counter() - start
    return {"accuracy": accuracy, "seconds": time.perf_counter() - start, "to_target": reached}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", choices=lab.PRESETS, default="demo")
    parser.add_argument("--seeds", type=int, default=3, help="Model5's repeats, seeds 0..n-1")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        manager = JobManager(RunStore(Path(folder) / "runs.sqlite"), RUNNERS)
        while "rnn_seconds_per_step" not in manager.info:
            time.sleep(0.2)
        try:
            print(f"{args.preset} preset, through the app (2 CPU cores; the worker trains on one thread):")
            for name in lab.MODELS:
                spec = lab.preset_spec(name, args.preset)
                result = app_run(manager, spec)
                print(f"  {name}: {result['accuracy']:.1%} (the lesson: {lab.LESSON_ACCURACY[name]:.1%}) after "
                      f"{spec.epochs} epochs at {spec.max_lr:g}, {result['seconds']:.1f} s of training, "
                      f"{result['to_end']:.1f} s from Train to the end")
            reached, plain = [], []
            for seed in range(args.seeds):
                spec = dataclasses.replace(lab.preset_spec("model5", args.preset), seed=seed)
                result = app_run(manager, spec)
                reference = plain_reference(spec.epochs, seed)
                reached.append(result["to_target"])
                plain.append(reference["to_target"])
                print(f"  model5 seed {seed}: app {result['accuracy']:.1%}, 80% after "
                      f"{_seconds(result['to_target'])} from Train; plain GRU (LayerNorm) {reference['accuracy']:.1%}, "
                      f"80% after {_seconds(reference['to_target'])} of its {reference['seconds']:.1f} s")
        finally:
            manager.shutdown()
    met = [r for r in reached if r is not None]
    verdict = "met" if len(met) == len(reached) and max(met) <= GOAL_SECONDS else "NOT met"
    ratios = [a / p for a, p in zip(reached, plain) if a and p]
    print(f"Model5 to 80% from Train: {', '.join(_seconds(r) for r in reached)} (goal <= {GOAL_SECONDS:.0f} s: {verdict})"
          + (f"; app / plain reference, same seed: median {statistics.median(ratios):.2f}" if ratios else ""))
    for epochs in (3, 10):
        reference = plain_reference(epochs, 0)
        print(f"plain GRU reference, {epochs} epochs: {reference['accuracy']:.1%} in {reference['seconds']:.1f} s")


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    main()
