"""Queue fairness: 100 submissions from 30 sessions at once, through the real job manager.

Each session sends 1 to 6 short runs in a burst, all sessions at the same moment (a thread each).
For every session: when its last run finished, against its *fair share* — when it would have
finished if the device were shared equally among the sessions that still have work (processor
sharing, the fluid ideal). The goal is a largest ratio of at most 1.2. The reference is the same
burst served first-come-first-served, in the order the runs actually arrived.

    PYTHONPATH=. .venv/bin/python bench/queue_fairness.py [--sessions 30] [--runs 100] [--seconds 0.1]
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

from core.classroom import Limits
from core.jobs import JobManager
from core.runs import RunStore


def hold(spec: dict, context) -> None:
    """A run that occupies the device for spec['seconds'] and reports one step."""
    time.sleep(spec["seconds"])
    context.emit("metrics", {"step": 1})


RUNNERS = {"hold": "bench.queue_fairness:hold"}


def burst_sizes(sessions: int, runs: int, rng: random.Random) -> list[int]:
    """How many runs each session sends: 1 to 6, adding up to ``runs``."""
    sizes = [1] * sessions
    while sum(sizes) < runs:
        candidates = [i for i, size in enumerate(sizes) if size < 6]
        sizes[rng.choice(candidates)] += 1
    return sizes


def fair_finish(sizes: list[int], service: float) -> list[float]:
    """When each session's last run ends if the device is shared equally among sessions with work left."""
    return [sum(min(other, mine) for other in sizes) * service for mine in sizes]


def fifo_finish(arrival_sessions: list[int], sessions: int, service: float) -> list[float]:
    """When each session's last run ends if runs are served in the order they arrived."""
    last = [0.0] * sessions
    for position, session in enumerate(arrival_sessions, start=1):
        last[session] = position * service
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=0.1, help="how long each run holds the device")
    args = parser.parse_args()
    rng = random.Random(0)
    sizes = burst_sizes(args.sessions, args.runs, rng)

    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(Path(folder) / "runs.sqlite")
        manager = JobManager(store, RUNNERS, limits=Limits(queued_per_session=6, queued_total=args.runs))
        try:
            warm = manager.submit("hold", {"seconds": 0.0}, "warm-up")  # the worker process starts first
            while manager.status(warm)["state"] != "finished":
                time.sleep(0.05)
            ids: dict[int, list[str]] = {i: [] for i in range(args.sessions)}
            start = threading.Barrier(args.sessions + 1)

            def send(session: int) -> None:
                start.wait()
                for _ in range(sizes[session]):
                    ids[session].append(manager.submit("hold", {"seconds": args.seconds}, f"student-{session}"))

            threads = [threading.Thread(target=send, args=(i,)) for i in range(args.sessions)]
            for thread in threads:
                thread.start()
            start.wait()
            burst_time = time.time()
            for thread in threads:
                thread.join()
            every = [run_id for session_ids in ids.values() for run_id in session_ids]
            while any(manager.status(run_id)["state"] != "finished" for run_id in every):
                time.sleep(0.1)
            runs = {run_id: manager.status(run_id) for run_id in every}
        finally:
            manager.shutdown()
            store.close()

    service = statistics.mean(run["finished"] - run["started"] for run in runs.values())
    session_of = {run_id: session for session, session_ids in ids.items() for run_id in session_ids}
    actual = [max(runs[run_id]["finished"] for run_id in ids[session]) - burst_time for session in range(args.sessions)]
    fair = fair_finish(sizes, service)
    arrival = [session_of[run_id] for run_id in sorted(every, key=lambda run_id: runs[run_id]["created"])]
    fifo = fifo_finish(arrival, args.sessions, service)
    ratios = [a / f for a, f in zip(actual, fair)]
    fifo_ratios = [a / f for a, f in zip(fifo, fair)]
    worst = max(range(args.sessions), key=ratios.__getitem__)
    print(f"{len(every)} runs from {args.sessions} sessions (1 to {max(sizes)} each), {service * 1000:.0f} ms per run "
          f"on the device, all done {max(actual):.1f} s after the burst")
    print(f"largest finish time / fair share, round-robin queue: {max(ratios):.2f} "
          f"(session with {sizes[worst]} runs: {actual[worst]:.2f} s vs {fair[worst]:.2f} s)   goal <= 1.2")
    print(f"largest finish time / fair share, first-come-first-served: {max(fifo_ratios):.2f}")
    print(f"median ratio: round-robin {statistics.median(ratios):.2f}, first-come-first-served "
          f"{statistics.median(fifo_ratios):.2f}")


if __name__ == "__main__":
    main()
