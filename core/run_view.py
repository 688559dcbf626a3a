"""What a page knows about a run: the events read so far, folded into tables and pictures."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from core.jobs import ACTIVE, Event, JobManager

TRAINING_COLUMNS = ("step", "epoch", "train_loss", "lr", "momentum", "valid_loss", "accuracy", "valid_on")


@dataclass
class RunView:
    run_id: str
    cursor: int = 0
    rows: list[dict] = field(default_factory=list)
    sample_png: bytes | None = None
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
                self.sample_png = event.data["png"]
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
    def active(self) -> bool:
        return self.state in ACTIVE

    def frame(self, columns: tuple[str, ...] = TRAINING_COLUMNS) -> pd.DataFrame:
        """The metrics so far, one row per step, with at least ``columns`` (blank where never sent)."""
        frame = pd.DataFrame(self.rows)
        return frame.reindex(columns=list(dict.fromkeys([*columns, *frame.columns])))

    @property
    def latest(self) -> dict:
        return self.rows[-1] if self.rows else {}
