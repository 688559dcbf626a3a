"""Shared fixtures of the unit tests.

No test may write to the real run store (data/runs.sqlite): PLAYGROUND_DB points at a
temporary file for the whole session. PLAYGROUND_DATA is left alone: its default, ./data,
already holds the unpacked MNIST, and pointing it at an empty folder would unpack 55 MB
again in every process.
"""
from __future__ import annotations

import contextlib
import time

import pytest

from core.data.mnist import DigitTensors, mnist_tensors
from core.jobs import JobManager
from core.runs import RunStore


@contextlib.contextmanager
def started_manager(db_path, runners, **options):
    """A job manager on its own store, shut down (workers stopped) afterwards."""
    store = RunStore(db_path)
    manager = JobManager(store, runners, **options)
    try:
        yield manager
    finally:
        manager.shutdown()
        store.close()


def wait_for(predicate, what: str, timeout: float = 60.0):
    """The first true value of ``predicate()``, polled every 20 ms; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class FakeClock:
    """A clock that moves only when a test says so: ``clock.now += seconds``."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingContext:
    """What a runner sees of the job manager, for calling a runner directly: emitted events are
    kept in a list, and Cancel is never pressed."""

    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    def emit(self, kind: str, data: dict) -> None:
        self.events.append((kind, data))

    def cancelled(self) -> bool:
        return False

    def of(self, kind: str) -> list[dict]:
        return [data for event_kind, data in self.events if event_kind == kind]


class CancelAfter(RecordingContext):
    """Presses Cancel once ``rows`` metrics rows have come."""

    def __init__(self, rows: int):
        super().__init__()
        self.rows = rows

    def cancelled(self) -> bool:
        return len(self.of("metrics")) >= self.rows


class CancelAfterCalls(RecordingContext):
    """Presses Cancel at the runner's ``calls``-th look at the button: inside a step that looks more than once."""

    def __init__(self, calls: int):
        super().__init__()
        self.calls = calls

    def cancelled(self) -> bool:
        self.calls -= 1
        return self.calls < 0


@pytest.fixture(scope="session", autouse=True)
def isolated_run_db(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("PLAYGROUND_DB", str(tmp_path_factory.mktemp("store") / "runs.sqlite"))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def mnist_train() -> DigitTensors:
    """All 60,000 training digits, normalised, read once per session."""
    return mnist_tensors(True)


@pytest.fixture(scope="session")
def mnist_valid() -> DigitTensors:
    """All 10,000 validation digits, normalised, read once per session."""
    return mnist_tensors(False)
