"""Time to 98.5%: from pressing Train on the MNIST lab's 'demo' preset to a full validation >= 98.5%.

Goal: <= 15 s on 2 CPU cores. Measured on the 2-core CPU box (torch 2.14.1, quiet machine):
met, with room to spare. Median 7.10-7.33 s over three runs of this script (seeds 0-2 twice,
seeds 0-4 once; 4.77-7.39 s in all: seeds 3 and 4 reach 98.5% after 2 epochs, seeds 0-2
after 3), against 6.58-6.76 s for the plain loop: ratio of medians 1.08-1.10; the 11
same-seed pairs: median 1.09, range 1.00-1.10. Final accuracy 98.83-98.98%. The page shows
it up to 0.5 s later (7.51 s).
Numbers and how to read them: bench/README.md.

"Pressing Train" is what the page does: submit the 'demo' spec of basic_cnn (3 epochs of all
60,000 digits, batch 128, SGD momentum 0.9 + one-cycle max_lr 0.1) to the JobManager, then read
events through the cursor every 0.5 s. The clock runs from submit to the first metrics event
with ``valid_on == 10000`` (the full validation at an epoch's end, not the 1,000-digit one the
live chart gets between) and ``accuracy >= 0.985``; its timestamp is when the worker emitted
it, and the time the page thread read it (up to 0.5 s later) is printed beside it. The worker's
start-up is excluded (the first submit waits until ``manager.info`` is filled); the run goes on
to its end so that every epoch's accuracy is printed. Seeds 0..n-1.

The reference is the plain PyTorch loop of bench/overhead.py with the same spec and seeds,
in this process's main thread, timed from its start to the validation that first reaches
98.5%; the ratio managed/plain says what the app adds to the student's wait. Runs that other
processes disturbed are set aside and retried, as in bench/overhead.py.

    PYTHONPATH=. .venv/bin/python bench/time_to_accuracy.py [--repeats 3] [--target 0.985] [--budget 150]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import torch

from core.mnist_lab import cached_digits, preset_spec
from overhead import (HYPER, QUIET_SHARE, budget_left, load_note, managed_run, measured, plain_run,
                      set_budget, spread, start_manager)

GOAL_SECONDS = 15.0
PRESET = "demo"


def first_reaching(accuracies: list[float], times: list[float], target: float) -> float | None:
    return next((t for a, t in zip(accuracies, times) if a >= target), None)


def managed_to_target(manager, spec: dict, target: float) -> dict:
    n_valid = len(cached_digits(False).labels)
    seen: dict = {}

    def on_metrics(event, page_now: float) -> None:
        if "page" not in seen and event.data.get("valid_on") == n_valid and event.data["accuracy"] >= target:
            seen["page"], seen["event"] = page_now, event

    result = managed_run(manager, spec, on_metrics=on_metrics)
    result["to_target"] = seen["event"].t - result["created"] if seen else None
    result["page_saw_target"] = seen.get("page")
    return result


def plain_to_target(epochs: int, seed: int, target: float) -> dict:
    result = plain_run(epochs, seed=seed)
    result["to_target"] = first_reaching(result["accuracies"], result["epoch_ends"], target)
    return result


def show(t: float | None) -> str:
    return f"{t:6.2f} s" if t is not None else "  never"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.985)
    parser.add_argument("--budget", type=float, default=150.0,
                        help="seconds after which disturbed runs are not retried and no repeat starts")
    args = parser.parse_args()
    set_budget(args.budget)
    demo = preset_spec(HYPER["arch"], PRESET)
    assert (demo.batch_size, demo.max_lr, demo.optimizer, demo.n_train) == (
        HYPER["batch_size"], HYPER["max_lr"], "sgd", 60_000), "the plain reference no longer matches the preset"

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"'{PRESET}' preset of {demo.arch}: {demo.epochs} epochs, target {100 * args.target:.1f}%, "
          f"{args.repeats} repeats")
    cached_digits(True), cached_digits(False)
    plain_run(epochs=1, n_train=20 * HYPER["batch_size"])  # warm this process's allocator and kernels
    plain, managed = [], []
    with tempfile.TemporaryDirectory(prefix="bench-tta-") as folder:
        manager = start_manager(folder)
        try:
            for seed in range(args.repeats):
                if seed and not budget_left():
                    print(f"  time budget spent (a busy machine): seeds {seed}..{args.repeats - 1} skipped")
                    break
                order = ("plain", "managed") if seed % 2 == 0 else ("managed", "plain")
                for side in order:
                    if side == "plain":
                        p = measured(f"seed {seed} plain", plain_to_target, demo.epochs, seed, args.target)
                        plain.append(p)
                        print(f"  seed {seed} plain   to {100 * args.target:.1f}%: {show(p['to_target'])}  "
                              f"(whole run {p['wall']:.2f} s)  acc/epoch "
                              f"{', '.join(f'{a:.4f}' for a in p['accuracies'])}  {load_note(p)}", flush=True)
                    else:
                        spec = preset_spec(demo.arch, PRESET)
                        m = measured(f"seed {seed} managed", managed_to_target, manager,
                                     {**spec.to_dict(), "seed": seed}, args.target)
                        managed.append(m)
                        page = f", page read it at {m['page_saw_target']:.2f} s" if m["page_saw_target"] else ""
                        print(f"  seed {seed} managed to {100 * args.target:.1f}%: {show(m['to_target'])}{page}  "
                              f"(submit to finished {m['wall']:.2f} s)  acc/epoch "
                              f"{', '.join(f'{a:.4f}' for a in m['accuracies'])}  {load_note(m)}", flush=True)
        finally:
            manager.shutdown()
            manager.store.close()

    print()
    aside = sum(len(r["discarded"]) for r in plain + managed)
    print(f"{aside} disturbed run(s) set aside and run again; "
          f"{sum(r['foreign'] > QUIET_SHARE for r in plain + managed)} kept still disturbed (budget or retries spent)")
    reached_m = [m["to_target"] for m in managed if m["to_target"] is not None]
    reached_p = [p["to_target"] for p in plain if p["to_target"] is not None]
    print(f"managed runs that reached {100 * args.target:.1f}%: {len(reached_m)}/{len(managed)}; "
          f"plain: {len(reached_p)}/{len(plain)}")
    if not reached_m or not reached_p:
        print("no ratio: some side never reached the target")
        return
    print(f"managed, submit to {100 * args.target:.1f}%   {spread(reached_m)}")
    print(f"plain, start to {100 * args.target:.1f}%      {spread(reached_p)}")
    page = [m["page_saw_target"] for m in managed if m["page_saw_target"] is not None]
    print(f"managed, page read it        {spread(page)}")
    print(f"managed, submit to finished  {spread([m['wall'] for m in managed])}")
    # The time is counted in whole epochs (full validation runs at an epoch's end), so the
    # spread across seeds is mostly which epoch crosses the target; compare seed by seed.
    same_seed = [m["to_target"] / p["to_target"] for m, p in zip(managed, plain)
                 if m["to_target"] is not None and p["to_target"] is not None]
    median = statistics.median(reached_m)
    print(f"median time to {100 * args.target:.1f}% through the app: {median:.2f} s "
          f"(goal <= {GOAL_SECONDS:.0f} s: {'met' if median <= GOAL_SECONDS else 'NOT met'}); "
          f"ratio of medians managed/plain {median / statistics.median(reached_p):.3f}; "
          f"same-seed ratios {', '.join(f'{r:.3f}' for r in same_seed)} "
          f"(median {statistics.median(same_seed):.3f})")


if __name__ == "__main__":
    main()
