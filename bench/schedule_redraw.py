"""How long the learning-rate lab takes to redraw a long plan after an edit, in ``core``.

Goal: under 100 ms for a 10-phase, 100,000-iteration schedule: parse the table's rows, build
the phases, compute every iteration's lr and momentum (``schedule_curves``), thin them for
the browser and build the plotly figure, serialised to the JSON Streamlit sends.

The reference, in the same process, is the plain-PyTorch way to get the same curve: a
LambdaLR over an SGD optimizer, stepped 100,000 times, reading ``param_groups`` each step.
The ratio ours / reference says what the lesson's vectorised formulas buy over stepping.
Both are timed 7 times; the medians and ranges are printed.

    PYTHONPATH=. .venv/bin/python bench/schedule_redraw.py [--iterations 100000] [--phases 10]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from core import schedule_lab as lab
from core.schedules import DecayType, TrainingPhase, decayed, phase_boundaries, schedule_curves
from core.viz import SCHEDULE_LABEL_KEYS, schedule_figure

DECAYS = [DecayType.LINEAR, DecayType.COSINE, DecayType.EXPONENTIAL, (DecayType.POLYNOMIAL, 2.0), DecayType.NO]
LABELS = {key: key for key in SCHEDULE_LABEL_KEYS}


def table(phases: int) -> list[dict]:
    """A table of ``phases`` rows mixing optimizers and every decay, as a student might edit it."""
    optimizers = ["sgd_momentum", "adam", "rmsprop"]
    return [lab.row_from_phase(TrainingPhase(1, optimizers[i % 3], (1e-2 / (i + 1), 1e-3 / (i + 1)), DECAYS[i % 5],
                                             momentum=(0.95, 0.85), momentum_decay=DecayType.LINEAR))
            for i in range(phases)]


def redraw(rows: list[dict], iters_per_epoch: int) -> int:
    phases = lab.phases_from_rows(rows)
    curves = schedule_curves(phases, iters_per_epoch)
    names = [f"{i}·{p.optimizer_label}" for i, p in enumerate(phases, start=1)]
    figure = schedule_figure(curves, phase_boundaries(phases, iters_per_epoch), names, [], [], LABELS)
    return len(figure.to_json())


def torch_reference(rows: list[dict], iters_per_epoch: int) -> list[float]:
    """The same lr curve from a torch LambdaLR stepped once per iteration (momentum left out)."""
    phases = lab.phases_from_rows(rows)
    boundaries = phase_boundaries(phases, iters_per_epoch)

    def factor(iteration: int) -> float:
        index = min(sum(b <= iteration for b in boundaries[1:]), len(phases) - 1)
        phase, start = phases[index], boundaries[index]
        return decayed(*phase.lr_span(), phase.lr_decay, iteration - start, boundaries[index + 1] - start)

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    lrs = []
    for _ in range(boundaries[-1]):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def timed(function, repeats: int = 7) -> list[float]:
    function()  # warm: imports, plotly's validators, the cached figure layout
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--phases", type=int, default=10)
    args = parser.parse_args()
    rows = table(args.phases)
    iters_per_epoch = args.iterations // args.phases
    ours = timed(lambda: redraw(rows, iters_per_epoch))
    reference = timed(lambda: torch_reference(rows, iters_per_epoch), repeats=3)
    print(f"{args.phases} phases, {args.iterations:,} iterations; JSON sent to the browser: "
          f"{redraw(rows, iters_per_epoch) / 1024:.0f} KiB")
    for name, times in (("redraw in core (ours)", ours), ("torch LambdaLR stepped (reference)", reference)):
        print(f"  {name:36s} median {statistics.median(times) * 1000:8.1f} ms  "
              f"range {min(times) * 1000:.1f}-{max(times) * 1000:.1f} ms")
    print(f"  ratio ours / reference: {statistics.median(ours) / statistics.median(reference):.3f}")
    print(f"  goal: redraw under 100 ms -> {'met' if statistics.median(ours) < 0.1 else 'NOT met'}")


if __name__ == "__main__":
    main()
