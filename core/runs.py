"""The run store: every run's spec, state, metrics, result, last sample grid and (for the labs that
look inside a trained model) its weights, in SQLite.

Finished runs outlive the server; a run that was queued or running when the server
stopped is marked ``interrupted`` the next time the store is opened.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "runs.sqlite"
ACTIVE_STATES = ("queued", "running")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, session TEXT, kind TEXT, spec TEXT, state TEXT,
    message TEXT, created REAL, started REAL, finished REAL, result TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT, seq INTEGER, t REAL, data TEXT, PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT PRIMARY KEY, seq INTEGER, t REAL, png BLOB, caption TEXT
);
CREATE TABLE IF NOT EXISTS grids (
    run_id TEXT, seq INTEGER, t REAL, png BLOB, caption TEXT, step INTEGER, PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS weights (
    run_id TEXT PRIMARY KEY, data BLOB
);
CREATE TABLE IF NOT EXISTS pins (
    run_id TEXT PRIMARY KEY, pinned REAL, replay_speed REAL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY, value TEXT
);
"""
MAX_GRIDS = 120  # sample grids kept per run: ~30 KB each
RUN_COLUMNS = ("id", "session", "kind", "spec", "state", "message", "created", "started", "finished", "result")


def store_path() -> Path:
    """$PLAYGROUND_DB, or data/runs.sqlite in the repository."""
    return Path(os.environ.get("PLAYGROUND_DB", DEFAULT_PATH))


class RunStore:
    """A thread-safe handle on the SQLite file; the job manager's worker and the pages share it."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path or store_path())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._mark_interrupted()

    def _mark_interrupted(self) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE runs SET state='interrupted', message=?, finished=? WHERE state IN (?, ?)",
                (json.dumps({"key": "run.interrupted"}), time.time(), *ACTIVE_STATES),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_run(self, run_id: str, session: str, kind: str, spec: dict, created: float) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO runs (id, session, kind, spec, state, created) VALUES (?, ?, ?, ?, 'queued', ?)",
                (run_id, session, kind, json.dumps(spec), created),
            )

    def set_state(self, run_id: str, state: str, message: dict | None = None, **times: float) -> None:
        """Record a state change; ``times`` may set ``started`` and/or ``finished``."""
        fields = {"state": state, "message": json.dumps(message) if message else None, **times}
        assignments = ", ".join(f"{name}=?" for name in fields)
        with self._lock, self._db:
            self._db.execute(f"UPDATE runs SET {assignments} WHERE id=?", (*fields.values(), run_id))

    def set_result(self, run_id: str, result: dict) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE runs SET result=? WHERE id=?", (json.dumps(result), run_id))

    def add_metrics(self, run_id: str, rows: Iterable[tuple[int, float, dict]]) -> None:
        """Append (seq, time, data) metric rows in one transaction."""
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, seq, t, data) VALUES (?, ?, ?, ?)",
                [(run_id, seq, t, json.dumps(data)) for seq, t, data in rows],
            )

    def save_sample(self, run_id: str, seq: int, t: float, png: bytes, caption: str = "",
                    step: int | None = None) -> None:
        """Keep a run's sample grids, for a scrubber over them: at most ``MAX_GRIDS``; beyond that every second
        one goes (the first and the latest stay), so that a long run keeps grids from all along its course."""
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO grids (run_id, seq, t, png, caption, step) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (run_id, seq, t, png, caption, step))
            (count,) = self._db.execute("SELECT COUNT(*) FROM grids WHERE run_id=?", (run_id,)).fetchone()
            if count > MAX_GRIDS:
                self._db.execute(
                    "DELETE FROM grids WHERE run_id=? AND seq IN (SELECT seq FROM (SELECT seq, ROW_NUMBER() "
                    "OVER (ORDER BY seq) AS n FROM grids WHERE run_id=?) WHERE n % 2 = 0 AND n < ?)",
                    (run_id, run_id, count))

    def save_weights(self, run_id: str, data: bytes) -> None:
        """Keep a run's trained weights (``torch.save`` bytes of a state dict; the last ones sent)."""
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO weights (run_id, data) VALUES (?, ?)", (run_id, data))

    def weights(self, run_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM weights WHERE run_id=?", (run_id,)).fetchone()
        return row[0] if row else None

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id=?", (run_id,)
            ).fetchone()
        return _decode_run(row) if row else None

    def list_runs(self, kind: str | None = None, limit: int = 200, session: str | None = None,
                  also: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Runs, newest first: of one kind, and only ``session``'s and those in ``also`` when a session is given."""
        conditions, args = [], []
        if kind:
            conditions.append("kind=?")
            args.append(kind)
        if session is not None:
            conditions.append(f"(session=? OR id IN ({', '.join('?' * len(also))}))")
            args += [session, *also]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs{where} ORDER BY created DESC LIMIT ?",
                                    (*args, limit)).fetchall()
        return [_decode_run(row) for row in rows]

    def pin(self, run_id: str, replay_speed: float | None = None) -> None:
        """Show a run on everyone's Home page (replayed at ``replay_speed`` when one is given)."""
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO pins (run_id, pinned, replay_speed) VALUES (?, ?, ?)",
                             (run_id, time.time(), replay_speed))

    def unpin(self, run_id: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM pins WHERE run_id=?", (run_id,))

    def pins(self) -> dict[str, float | None]:
        """Pinned run ids, newest pin first, each with its replay speed (None: shown as it ended)."""
        with self._lock:
            return dict(self._db.execute("SELECT run_id, replay_speed FROM pins ORDER BY pinned DESC").fetchall())

    def get_setting(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_setting(self, key: str, value: Any) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def metrics(self, run_id: str, after_seq: int = -1) -> list[tuple[int, float, dict]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, t, data FROM metrics WHERE run_id=? AND seq>? ORDER BY seq",
                (run_id, after_seq),
            ).fetchall()
        return [(seq, t, json.loads(data)) for seq, t, data in rows]

    def samples(self, run_id: str) -> list[tuple[int, float, bytes, str, int | None]]:
        """The run's kept grids in order: (seq, t, png, caption, step). A run stored by an older version, which
        kept only its latest grid (in ``samples``), gives that one."""
        with self._lock:
            rows = self._db.execute("SELECT seq, t, png, caption, step FROM grids WHERE run_id=? ORDER BY seq",
                                    (run_id,)).fetchall()
            if not rows:
                rows = [(*row, None) for row in self._db.execute(
                    "SELECT seq, t, png, caption FROM samples WHERE run_id=?", (run_id,)).fetchall()]
        return rows

    def sample(self, run_id: str) -> tuple[int, float, bytes, str] | None:
        """The run's latest grid: (seq, t, png, caption)."""
        grids = self.samples(run_id)
        return grids[-1][:4] if grids else None


def _decode_run(row: tuple) -> dict[str, Any]:
    run = dict(zip(RUN_COLUMNS, row))
    for field in ("spec", "message", "result"):
        run[field] = json.loads(run[field]) if run[field] else None
    return run
