"""Lesson 13's claim, checked: with the same epochs, one-cycle beats a constant learning rate.

The MNIST demo size (basic_cnn, all 60,000 digits, batch 128, 3 epochs, SGD with momentum)
trained with three tables of the learning-rate lab: one-cycle (``phases_1cycle(3, 0.1, 10,
10, .95, .85)``), a constant 0.1 (one-cycle's peak) and the lesson's three-phase cosine
example, each with a few seeds, through the lab's own runner (``run_schedule``). Prints each
run's validation accuracy on the 10,000 test digits, the mean per table, and the error-rate
ratio of each table against one-cycle. Takes about 8 s a run on a quiet 2-core machine.

    PYTHONPATH=. .venv/bin/python bench/one_cycle_vs_constant.py [--seeds 2]
"""
from __future__ import annotations

import argparse
import statistics

from core import schedule_lab as lab

TABLES = ("one_cycle", "constant", "lesson_cosine")


class Collect:
    """The runner's events, kept: only the result matters here."""

    def __init__(self):
        self.result: dict | None = None

    def emit(self, kind: str, data: dict) -> None:
        if kind == "result":
            self.result = data

    def cancelled(self) -> bool:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    accuracy: dict[str, list[float]] = {name: [] for name in TABLES}
    for seed in range(args.seeds):
        for name in TABLES:
            spec = lab.ScheduleSpec(phases=tuple(lab.preset_rows(name)), n_train=60_000, batch_size=128,
                                    seed=seed, preset=name)
            events = Collect()
            lab.run_schedule(spec.to_dict(), events)
            accuracy[name].append(events.result["accuracy"])
            print(f"seed {seed}  {name:14s} accuracy {events.result['accuracy']:.2%}  ({events.result['seconds']:.1f} s)")
    base_error = 1 - statistics.mean(accuracy["one_cycle"])
    for name in TABLES:
        mean = statistics.mean(accuracy[name])
        print(f"{name:14s} mean {mean:.2%}  error rate {1 - mean:.2%}  error / one-cycle's {(1 - mean) / base_error:.2f}")


if __name__ == "__main__":
    main()
