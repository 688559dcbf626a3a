"""What a page knows about a run: the events read so far, folded into tables and pictures."""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import pandas as pd

from core.jobs import ACTIVE, FINISHED, RUNNING, Event, JobManager
from core.runs import MAX_GRIDS

TRAINING_COLUMNS = ("step", "epoch", "train_loss", "lr", "momentum", "valid_loss", "accuracy", "valid_on")


@dataclass
class RunView:
    run_id: str
    cursor: int = 0
    rows: list[dict] = field(default_factory=list)
    samples: list[tuple[int, bytes]] = field(default_factory=list)  # (step, png) of every grid, for a scrubber
    result: dict | None = None
    state: str | None = None
    message: dict | None = None
    last_event_time: float | None = None

    def fold(self, events: list[Event]) -> None:
        for event in events:
            if event.kind == "metrics":
                self.rows.append(event.data)
                self.last_event_time = event.t
            elif event.kind == "samples":
                self.samples.append((event.data.get("step", 0), event.data["png"]))
                if len(self.samples) > MAX_GRIDS:  # as the store thins them: every second one, the latest kept
                    self.samples = self.samples[::2]
            elif event.kind == "result":
                self.result = event.data
            elif event.kind == "state":
                self.state, self.message = event.data["state"], event.data.get("message")

    def refresh(self, manager: JobManager) -> "RunView":
        """Read what arrived since the last refresh (the cursor makes this cheap)."""
        if self.state is None or self.state in ACTIVE:
            events, self.cursor = manager.events(self.run_id, self.cursor)
            self.fold(events)
        return self

    @property
    def sample_png(self) -> bytes | None:
        """The latest sample grid."""
        return self.samples[-1][1] if self.samples else None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def live(self) -> bool:
        """Training now, so that its panel redraws every second. A queued run's panel is drawn once:
        only its place in the queue is kept up to date (``ui.common.queue_line``)."""
        return self.state == RUNNING

    def frame(self, columns: tuple[str, ...] = TRAINING_COLUMNS) -> pd.DataFrame:
        """The metrics so far, one row per step, with at least ``columns`` (blank where never sent)."""
        frame = pd.DataFrame(self.rows)
        return frame.reindex(columns=list(dict.fromkeys([*columns, *frame.columns])))

    @property
    def latest(self) -> dict:
        return self.rows[-1] if self.rows else {}


MAX_REPLAY_SPEED = 100.0


@dataclass
class ReplayView(RunView):
    """A stored run shown again as if it were training: its events arrive at the pace they were
    recorded, ``speed`` times faster. It costs no training: the events come from the store."""

    speed: float = 1.0
    clock: Callable[[], float] = time.monotonic
    began: float | None = None
    recording: list[Event] = field(default_factory=list)
    origin: float = 0.0  # when the recorded run started

    def refresh(self, manager: JobManager) -> "ReplayView":
        if self.began is None:
            self.recording = self._script(manager)
            status = manager.status(self.run_id) or {}
            self.origin = status.get("started") or min((event.t for event in self.recording), default=0.0)
            self.began, self.state = self.clock(), RUNNING
        elapsed = (self.clock() - self.began) * self.speed
        due = list(itertools.takewhile(lambda event: event.t - self.origin <= elapsed, self.recording[self.cursor:]))
        self.cursor += len(due)
        self.fold(due)
        if self.cursor >= len(self.recording) and self.state == RUNNING:
            self.state = FINISHED  # a recording without a final state (a run that never ended)
        return self

    @property
    def live(self) -> bool:
        return self.active  # its recorded wait in the queue plays out too, redrawn as it goes

    def fold(self, events: list[Event]) -> None:
        """As for a live run, with the time left shortened by the replay's speed."""
        super().fold([replace(event, data={**event.data, "eta": event.data["eta"] / self.speed})
                      if event.kind == "metrics" and isinstance(event.data.get("eta"), (int, float)) else event
                      for event in events])

    def _script(self, manager: JobManager) -> list[Event]:
        """The run's events in their order, each at the time it is to be shown: what came after the
        last step (the result, the final state) right after it, not when the run was marked ended —
        for a run interrupted by a restart, that is when the server came back, maybe hours later."""
        events, _ = manager.events(self.run_id, 0)
        last_step = max((event.t for event in events if event.kind in ("metrics", "samples")), default=None)
        if last_step is None:
            return events
        return [replace(event, t=min(event.t, last_step)) if event.kind in ("result", "state") else event
                for event in events]
