"""What a server shared by a class needs beyond one student: the limits an instructor sets, the
fair order in which waiting runs start, and how long a waiting run will wait."""
from __future__ import annotations

import heapq
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import Iterable, Mapping

from core.errors import QuotaExceeded, UserError

SIZES = ("quick", "demo", "lecture")  # the size presets of the labs that train real models
DEFAULT_RUN_SECONDS = 60.0  # a run of a kind never timed here is guessed to take a minute
MAX_PER_SESSION, MAX_TOTAL, MAX_MINUTES = 20, 500, 24 * 60


@dataclass(frozen=True)
class Limits:
    """Per-session and server-wide limits; the instructor changes them while the server runs."""

    running_per_session: int = 1
    queued_per_session: int = 2
    queued_total: int = 20
    max_run_minutes: float = 0.0  # a run still training after this long is stopped; 0: no limit
    sizes: tuple[str, ...] = SIZES  # the size presets students may start (no "lecture" during a lecture)

    def validated(self) -> "Limits":
        """These limits, or a UserError that says which one makes no sense."""
        for name, value, highest in (("running_per_session", self.running_per_session, MAX_PER_SESSION),
                                     ("queued_per_session", self.queued_per_session, MAX_PER_SESSION),
                                     ("queued_total", self.queued_total, MAX_TOTAL)):
            if value != int(value) or not 1 <= value <= highest:  # every run waits in the queue, if only briefly
                raise UserError("limits.bad_count", "{name} must be a whole number from 1 to {highest}.",
                                name=name, highest=highest)
        if not 0 <= self.max_run_minutes <= MAX_MINUTES:
            raise UserError("limits.bad_minutes", "The longest run must be between 0 (no limit) and {highest} minutes.",
                            highest=MAX_MINUTES)
        unknown = [size for size in self.sizes if size not in SIZES]
        if unknown or not self.sizes:
            raise UserError("limits.bad_sizes", "Allow at least one of the sizes {sizes}.", sizes=", ".join(SIZES))
        return self

    def to_dict(self) -> dict:
        return {**asdict(self), "sizes": list(self.sizes)}

    @classmethod
    def from_dict(cls, values: Mapping | None) -> "Limits":
        """Limits saved by an earlier server; unknown keys are dropped, bad values give the defaults."""
        known = {f.name for f in fields(cls)}
        chosen = {key: value for key, value in (values or {}).items() if key in known}
        if "sizes" in chosen:
            chosen["sizes"] = tuple(chosen["sizes"])
        try:
            return cls(**chosen).validated()
        except (TypeError, ValueError):
            return cls()

    def refusal(self, size: str | None, estimate_seconds: float | None) -> QuotaExceeded | None:
        """Why a student may not start a run of this size (see ``size_of``) now, or None."""
        if size in SIZES and size not in self.sizes:
            return QuotaExceeded("jobs.size_not_allowed", "Your instructor allows only the {sizes} size(s) right now: "
                             "pick one of them, and no more epochs or data than it has.", sizes=", ".join(self.sizes))
        if self.max_run_minutes and estimate_seconds and estimate_seconds > 60 * self.max_run_minutes:
            return QuotaExceeded("jobs.too_long", "This run would take about {minutes:.0f} min; runs may take at most "
                             "{limit:g} min here. Use a smaller size or fewer epochs.",
                             minutes=estimate_seconds / 60, limit=self.max_run_minutes)
        return None


def size_of(work: float, preset_work: Mapping[str, float], label: str | None = None) -> str:
    """The size preset a run amounts to: the smallest whose work (epochs x examples x cost of the
    model) covers this run's, or the one it was started from if that is larger. So a "quick" run
    given the lecture's epochs in the widgets or the link is a lecture run."""
    by_work = next((size for size in SIZES if work <= preset_work[size] * (1 + 1e-9)), SIZES[-1])
    return max(by_work, label if label in SIZES else by_work, key=SIZES.index)


def service_order(queue: Iterable[tuple[str, str]], last_served: Mapping[str, float],
                  busy: Iterable[str] = ()) -> list[str]:
    """The order in which the queued runs ``(run_id, session)`` will start: sessions take turns
    (round robin), the one served longest ago first, each session's own runs in the order it
    sent them — so one student's burst of runs does not make everyone else wait behind it.
    Sessions in ``busy`` (at their limit of running runs) come after everyone else's turn."""
    by_session: dict[str, deque] = {}
    for run_id, session in queue:
        by_session.setdefault(session, deque()).append(run_id)
    busy = set(busy)
    turns = sorted(by_session, key=lambda s: (s in busy, last_served.get(s, -1)))  # stable: ties by arrival
    order = []
    while turns:
        for session in list(turns):
            order.append(by_session[session].popleft())
            if not by_session[session]:
                turns.remove(session)
    return order


def start_times(durations: Iterable[float], running_left: Iterable[float], devices: int) -> list[float]:
    """In how many seconds each queued run starts, for runs of these durations in the order they
    will start, with runs needing ``running_left`` seconds more on ``devices`` devices (each run
    goes to the device free earliest)."""
    free_at = sorted(max(0.0, left) for left in running_left)[:devices]
    free_at += [0.0] * (devices - len(free_at))
    heapq.heapify(free_at)
    starts = []
    for duration in durations:
        starts.append(heapq.heappop(free_at))
        heapq.heappush(free_at, starts[-1] + duration)
    return starts
