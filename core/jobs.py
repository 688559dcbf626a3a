"""The process-wide job manager: a queue of runs, worker threads, events read through a cursor.

A page submits a spec and keeps only the run id. A thread per device feeds a worker
process (so at most one run per device at a time), which executes the runner registered
for the spec's kind; the runner reports through ``RunContext.emit``. Events go to an in-memory log, which
pages read from a cursor, and to the run store, which outlives the server. No worker
ever touches Streamlit.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable, Mapping

from core.classroom import DEFAULT_RUN_SECONDS, Limits, service_order, start_times
from core.errors import QuotaExceeded
from core.runs import RunStore

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]

WARMED_UP = "warmed_up"  # the info key a worker sends once every runner module has warmed up
QUEUED, RUNNING, FINISHED, FAILED, CANCELLED, INTERRUPTED = (
    "queued", "running", "finished", "failed", "cancelled", "interrupted",
)
ACTIVE = (QUEUED, RUNNING)
STORE_FLUSH_SECONDS = 1.0
EVENT_BATCH_SECONDS = 0.1  # well under the live panels' 1 s refresh
FINISHED_KEPT_IN_MEMORY = 16


@dataclass
class Event:
    seq: int
    kind: str  # "state", "metrics", "samples", "weights" or "result"
    data: dict
    t: float


@dataclass
class Job:
    id: str
    session: str
    kind: str
    spec: dict
    created: float
    state: str = QUEUED
    message: dict | None = None  # {"key": i18n key, "params": {...}, "text": English}
    started: float | None = None
    finished: float | None = None
    estimate: float | None = None  # seconds the page expected it to take, for the queue's wait estimates
    privileged: bool = False  # the instructor's: outside the students' limits
    stop_message: dict | None = None  # why it was stopped, when not by the student who sent it
    events: list[Event] = field(default_factory=list)
    cancel_requested: threading.Event = field(default_factory=threading.Event)


class RunContext:
    """What a runner sees of its job, inside the worker process: emit events, check for Cancel."""

    def __init__(self, run_id: str, connection: Connection):
        self.run_id, self._connection = run_id, connection
        self._cancelled = False
        self.stop_requested = False
        self._pending: list[tuple[str, dict, float]] = []
        self._last_send = time.monotonic()

    def cancelled(self) -> bool:
        """True once the page asked to cancel (checked every training step: a cheap poll)."""
        while not self._cancelled and self._connection.poll():
            try:
                message = self._connection.recv()
            except EOFError:  # the server is gone: nobody is watching this run any more
                message = ("stop",)
            if message[0] == "stop" or (message[0] == "cancel" and message[1] == self.run_id):
                self._cancelled = True
                self.stop_requested = message[0] == "stop"
        return self._cancelled

    def emit(self, kind: str, data: dict) -> None:
        """Report an event. Step metrics travel in batches (a message per step would wake the
        server ~200 times a second on a small CPU); anything else goes at once."""
        self._pending.append((kind, data, time.time()))
        if kind != "metrics" or time.monotonic() - self._last_send >= EVENT_BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._connection.send(("events", self.run_id, self._pending))
            self._pending = []
        self._last_send = time.monotonic()


Runner = Callable[[dict, RunContext], None]


def resolve(path: str) -> Callable:
    """The function a ``"module:function"`` name stands for (runners and sizers are named so, so
    that a worker process or a Ray actor can import them)."""
    module_name, function_name = path.split(":")
    return getattr(importlib.import_module(module_name), function_name)


LIMITS_SETTING = "limits"


class JobManager:
    """Queues runs and executes them, one at a time per device, in a worker process per device.

    Why processes: PyTorch's OpenMP pool runs 2-3x slower when it is driven from a thread
    other than a process's main thread (measured here: 5.3 s instead of 2.2 s per MNIST
    epoch), and a run that crashes or runs out of memory takes down only its worker.
    ``runners`` maps a spec kind to ``"module:function"`` so that the worker can import it.
    """

    def __init__(
        self,
        store: RunStore,
        runners: Mapping[str, str],
        devices: tuple[str, ...] = ("default",),
        limits: Limits | None = None,
        sizers: Mapping[str, str] | None = None,
        worker_factory: Callable[[Mapping[str, str], str], Any] | None = None,
    ):
        self.store = store
        # What runs the jobs of one device: a local worker process, or (core.ray_worker) a Ray actor.
        self._worker_factory = worker_factory or _WorkerProcess
        self.runners = dict(runners)
        self.devices = devices
        self.sizers = dict(sizers or {})  # kind -> "module:function" telling a spec's size preset from its work
        self.limits = (limits or Limits.from_dict(store.get_setting(LIMITS_SETTING))).validated()
        self.info: dict[str, Any] = {}  # what workers measured at start-up (seconds per step, ...)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: list[str] = []  # in order of arrival; service_order() says which starts next
        self._turns = 0  # counts the runs started, so that _last_served orders the sessions' turns
        self._last_served: dict[str, float] = {}
        self._seconds_taken: dict[str, float] = {}  # per kind, for the wait of runs sent without an estimate
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wakers: list[socket.socket] = []  # a byte on one wakes its device thread at once
        self._threads = [
            threading.Thread(target=self._serve_device, args=(device,), name=f"runs-{device}", daemon=True)
            for device in devices
        ]
        for thread in self._threads:
            thread.start()

    # ----- what pages call -------------------------------------------------------------
    def submit(self, kind: str, spec: dict, session: str, estimate: float | None = None,
               privileged: bool = False) -> str:
        """Queue a run of ``session``'s within the limits (``privileged``: the instructor's, outside
        them); ``estimate`` is how many seconds the page expects it to take."""
        if kind not in self.runners:
            raise ValueError(f"No runner for {kind!r}")
        with self._lock:
            if not privileged:
                self._check_limits_locked(self.size_of(kind, spec), session, estimate)
            job = Job(id=uuid.uuid4().hex[:10], session=session, kind=kind, spec=dict(spec), created=time.time(),
                      estimate=estimate, privileged=privileged)
            self.store.add_run(job.id, session, kind, job.spec, job.created)
            # A session new to the queue takes its turn at the end of the current round, just before
            # the session served last: not ahead of everyone (a reloaded page is a new session).
            self._last_served.setdefault(session, self._turns - 0.5)
            self._jobs[job.id] = job
            self._queue.append(job.id)
            self._append_locked(job, "state", {"state": QUEUED})
        self._wake_devices()
        return job.id

    def _check_limits_locked(self, size: str | None, session: str, estimate: float | None) -> None:
        limits = self.limits
        if (refusal := limits.refusal(size, estimate)) is not None:
            raise refusal
        mine = [job for job in self._jobs.values() if job.session == session and job.state in ACTIVE]
        queued = sum(job.state == QUEUED for job in mine)
        if queued >= limits.queued_per_session or len(mine) >= limits.running_per_session + limits.queued_per_session:
            raise QuotaExceeded(
                "jobs.quota",
                "You already have {running} run(s) training and {queued} waiting; one browser may "
                "have {max_running} training and {max_queued} waiting. Wait for one to finish, or cancel one.",
                running=len(mine) - queued, queued=queued,
                max_running=limits.running_per_session, max_queued=limits.queued_per_session,
            )
        if len(self._queue) >= limits.queued_total:
            raise QuotaExceeded("jobs.queue_full", "{queued} runs are already waiting on this server. "
                                "Try again in a few minutes.", queued=len(self._queue))

    def size_of(self, kind: str, spec: dict) -> str | None:
        """The size preset a run's work amounts to (whatever its label says): what the size limit
        goes by, and what the instructor is shown."""
        if kind not in self.sizers:
            return None
        return resolve(self.sizers[kind])(spec)

    def set_limits(self, limits: Limits) -> None:
        """New limits for the runs sent from now on (and the longest-run limit for those training);
        kept in the store, so that a restarted server keeps them."""
        limits = limits.validated()
        self.store.set_setting(LIMITS_SETTING, limits.to_dict())
        with self._lock:
            self.limits = limits

    def cancel(self, run_id: str, session: str, privileged: bool = False) -> bool:
        """Ask a run of ``session``'s to stop: a queued one is dropped now, a running one at its
        next step. Nobody but the instructor (``privileged``) can cancel another session's run."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None or job.state not in ACTIVE or (job.session != session and not privileged):
                return False
            if job.session != session:
                job.stop_message = {"key": "run.cancelled_by_instructor", "params": {},
                                    "text": "Your instructor cancelled this run."}
            job.cancel_requested.set()
            if job.state == QUEUED:
                self._queue.remove(run_id)
                self._finish_locked(job, CANCELLED, job.stop_message)
        self._wake_devices()
        return True

    def status(self, run_id: str) -> dict[str, Any] | None:
        """State, message, times and queue position of a run, live or from the store."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is not None:
                return self._describe_locked(job, self._waits_locked())
        run = self.store.get_run(run_id)
        if run is not None:
            run.update(queue_position=None, wait_seconds=None)
        return run

    def queue(self) -> list[dict[str, Any]]:
        """Every run training or waiting, of every session, running ones first then in the order
        they will start: what the instructor sees."""
        with self._lock:
            waits = self._waits_locked()
            running = [job for job in self._jobs.values() if job.state == RUNNING]
            return [self._describe_locked(job, waits) for job in running + [self._jobs[i] for i in waits]]

    def visible_runs(self, kind: str, session: str | None) -> list[dict[str, Any]]:
        """Stored runs of a kind, newest first, that ``session`` may list: its own and the pinned
        ones (None: everyone's, for a server used by one person)."""
        return self.store.list_runs(kind, session=session, also=tuple(self.store.pins()) if session else ())

    def _order_locked(self) -> list[str]:
        return service_order(((i, self._jobs[i].session) for i in self._queue), self._last_served,
                             self._busy_sessions_locked())

    def _busy_sessions_locked(self) -> set[str]:
        """Sessions with as many runs training as they may have at once."""
        running = Counter(job.session for job in self._jobs.values() if job.state == RUNNING and not job.privileged)
        return {session for session, count in running.items() if count >= self.limits.running_per_session}

    def _describe_locked(self, job: Job, waits: dict[str, tuple[int, float]]) -> dict[str, Any]:
        """A run's status; ``waits`` (from ``_waits_locked``) gives its place and wait while it is queued."""
        position, wait = waits.get(job.id, (None, None))
        return {
            "id": job.id, "session": job.session, "kind": job.kind, "spec": job.spec, "state": job.state,
            "message": job.message, "created": job.created, "started": job.started, "finished": job.finished,
            "estimate": job.estimate, "privileged": job.privileged, "queue_position": position,
            "wait_seconds": wait,
        }

    def _waits_locked(self) -> dict[str, tuple[int, float]]:
        """Every queued run, in the order they will start, with its place (from 1) and the seconds until it starts."""
        now = time.time()
        running_left = [self._expected_seconds(job) - (now - (job.started or now))
                        for job in self._jobs.values() if job.state == RUNNING]
        order = self._order_locked()
        starts = start_times([self._expected_seconds(self._jobs[i]) for i in order], running_left, len(self.devices))
        return {run_id: (place, start) for place, (run_id, start) in enumerate(zip(order, starts), start=1)}

    def _expected_seconds(self, job: Job) -> float:
        return job.estimate or self._seconds_taken.get(job.kind, DEFAULT_RUN_SECONDS)

    def events(self, run_id: str, cursor: int = 0) -> tuple[list[Event], int]:
        """Events of a run from ``cursor`` on, and the cursor to pass next time."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is not None:
                new = job.events[cursor:]
                return new, cursor + len(new)
        return self._events_from_store(run_id, cursor)

    def weights(self, run_id: str) -> bytes | None:
        """The trained weights a run sent (a state dict in ``torch.save`` form), if it sent any."""
        return self.store.weights(run_id)

    def active_runs(self, session: str | None = None) -> list[str]:
        with self._lock:
            return [
                job.id for job in self._jobs.values()
                if job.state in ACTIVE and (session is None or job.session == session)
            ]

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel everything and stop the workers (tests and server shutdown)."""
        with self._lock:
            for job in self._jobs.values():
                job.cancel_requested.set()  # the owner check of cancel() is for pages, not for this
        self._stopping.set()
        self._wake_devices()
        for thread in self._threads:
            thread.join(timeout)

    # ----- the device side ----------------------------------------------------------------
    def _serve_device(self, device: str) -> None:
        """Feeds one worker process with queued jobs and files what it reports."""
        worker = self._worker_factory(self.runners, device)
        running: _RunningJob | None = None
        wake, waker = socket.socketpair()
        waker.setblocking(False)
        with self._lock:
            self._wakers.append(waker)
        try:
            while not self._stopping.is_set():
                try:
                    running, worker = self._serve_once(worker, running, wake)
                except Exception:  # the store or the OS failed us: fail this run, keep serving
                    log.exception("device %s: serving a run failed", device)
                    if running is not None:
                        worker.cancel(running.job.id)
                        with contextlib.suppress(Exception):
                            self._done(running, FAILED, {"key": "run.crashed", "params": {"error": "server error"},
                                                         "text": "server error"})
                        running = None
                    time.sleep(1.0)
        finally:
            worker.stop()
            with self._lock:
                self._wakers.remove(waker)
            wake.close()
            waker.close()

    def _serve_once(self, worker: "_WorkerProcess", running: "_RunningJob | None",
                    wake: socket.socket) -> tuple["_RunningJob | None", "_WorkerProcess"]:
        """One turn of the device loop: start, cancel or follow a run; replace a dead worker."""
        if running is None and not worker.alive():  # it died while idle (killed, failed warm-up)
            worker = worker.replaced()
        if running is None and (job := self._take_next()) is not None:
            running = _RunningJob(job, self.store)
            worker.start_job(job)
        if running is not None and not running.cancel_sent and (
                running.job.cancel_requested.is_set() or self._over_time(running)):
            worker.cancel(running.job.id)
            running.cancel_sent = True
        message = worker.receive(timeout=1.0, wake=wake)
        if message is not None:
            running = self._handle(message, running)
        elif running is not None and not worker.alive():
            self._done(running, FAILED, {"key": "run.worker_died", "params": {},
                                         "text": "The training process stopped (out of memory?)."})
            running, worker = None, worker.replaced()
        return running, worker

    def _over_time(self, running: "_RunningJob") -> bool:
        """Whether a student's run passed the longest-run limit (it is then stopped, with a message)."""
        limit = self.limits.max_run_minutes
        if not limit or running.job.privileged or time.time() - running.job.started < 60 * limit:
            return False
        running.job.stop_message = {"key": "run.time_limit", "params": {"minutes": limit},
                                    "text": f"Stopped: runs may train for at most {limit:g} min on this server."}
        return True

    def _wake_devices(self) -> None:
        with self._lock:
            wakers = list(self._wakers)
        for waker in wakers:
            try:
                waker.send(b"!")
            except OSError:  # its buffer is full: it is awake already
                pass

    def _handle(self, message: tuple, running: "_RunningJob | None") -> "_RunningJob | None":
        what = message[0]
        if what == "info":
            self.info.update(message[1])
        elif what == "events" and running is not None and message[1] == running.job.id:
            for kind, data, t in message[2]:
                running.record(self._append(running.job, kind, data, t))
        elif what == "done" and running is not None and message[1] == running.job.id:
            state, outcome = message[2], message[3]
            if state == CANCELLED and running.job.stop_message:
                outcome = running.job.stop_message
            self._done(running, state, outcome)
            return None
        return running

    def _take_next(self) -> Job | None:
        with self._lock:
            busy = self._busy_sessions_locked()
            startable = [i for i in self._order_locked() if self._jobs[i].privileged or self._jobs[i].session not in busy]
            if not startable:  # nothing queued, or only runs of sessions already training (another device is free)
                return None
            job = self._jobs[startable[0]]
            self._queue.remove(job.id)
            self._turns += 1
            self._last_served[job.session] = self._turns
            job.state, job.started = RUNNING, time.time()
            self.store.set_state(job.id, RUNNING, started=job.started)
            self._append_locked(job, "state", {"state": RUNNING})
            return job

    def _done(self, running: "_RunningJob", state: str, message: dict | None) -> None:
        running.flush()
        if state == FINISHED and running.job.started:
            taken = time.time() - running.job.started
            previous = self._seconds_taken.get(running.job.kind, taken)
            self._seconds_taken[running.job.kind] = 0.5 * previous + 0.5 * taken
        with self._lock:
            self._finish_locked(running.job, state, message)

    def _append(self, job: Job, kind: str, data: dict, t: float | None = None) -> Event:
        with self._lock:
            return self._append_locked(job, kind, data, t)

    def _append_locked(self, job: Job, kind: str, data: dict, t: float | None = None) -> Event:
        event = Event(seq=len(job.events), kind=kind, data=data, t=t or time.time())
        job.events.append(event)
        return event

    def _finish_locked(self, job: Job, state: str, message: dict | None) -> None:
        job.state, job.message, job.finished = state, message, time.time()
        self.store.set_state(job.id, state, message, finished=job.finished)
        self._append_locked(job, "state", {"state": state, "message": message})
        done = [run_id for run_id, kept in self._jobs.items() if kept.state not in ACTIVE]
        for run_id in done[:-FINISHED_KEPT_IN_MEMORY]:
            del self._jobs[run_id]  # still in the store: events() reads it from there

    def _events_from_store(self, run_id: str, cursor: int) -> tuple[list[Event], int]:
        """A run no longer in memory (finished long ago, or before a restart) replays from the store.

        Stored metrics and the kept sample grids keep the sequence numbers they had live, and
        the result and final state come right after them, as they did live: a cursor taken
        while the run was live goes on working.
        """
        run = self.store.get_run(run_id)
        if run is None:
            return [], cursor
        events = [Event(seq, "metrics", data, t) for seq, t, data in self.store.metrics(run_id)]
        for seq, t, png, caption, step in self.store.samples(run_id):
            events.append(Event(seq, "samples", {"png": png, "caption": caption,
                                                 **({} if step is None else {"step": step})}, t))
        events.sort(key=lambda event: event.seq)
        next_seq = events[-1].seq + 1 if events else 2  # live, seqs 0 and 1 were "queued" and "running"
        finished = run["finished"] or 0.0
        if run["result"]:
            events.append(Event(next_seq, "result", run["result"], finished))
            next_seq += 1
        events.append(Event(next_seq, "state", {"state": run["state"], "message": run["message"]}, finished))
        new = [event for event in events if event.seq >= cursor]
        return new, max(cursor, next_seq + 1)


class _RunningJob:
    """The parent's side of the job in progress: files its events in the store, metrics in batches."""

    def __init__(self, job: Job, store: RunStore):
        self.job, self.store = job, store
        self.pending: list[tuple[int, float, dict]] = []
        self.cancel_sent = False
        self.last_flush = time.monotonic()

    def record(self, event: Event) -> None:
        if event.kind == "metrics":
            self.pending.append((event.seq, event.t, event.data))
            if time.monotonic() - self.last_flush > STORE_FLUSH_SECONDS:
                self.flush()
        elif event.kind == "samples":
            self.store.save_sample(self.job.id, event.seq, event.t, event.data["png"], event.data.get("caption", ""),
                                   event.data.get("step"))
        elif event.kind == "weights":
            self.store.save_weights(self.job.id, event.data["state"])
        elif event.kind == "result":
            self.store.set_result(self.job.id, event.data)

    def flush(self) -> None:
        if self.pending:
            self.store.add_metrics(self.job.id, self.pending)
            self.pending = []
        self.last_flush = time.monotonic()


class _WorkerProcess:
    """A child Python process (``python -m core.worker``) that runs jobs in its main thread.

    It talks over a private socket pair. Not multiprocessing's spawn: spawn re-imports the
    parent's ``__main__``, which under Streamlit is the app script itself.
    """

    def __init__(self, runners: Mapping[str, str], device: str):
        parent_end, child_end = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "core.worker", str(child_end.fileno()), json.dumps(dict(runners))],
            pass_fds=[child_end.fileno()], cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))},
        )
        child_end.close()
        self.connection = Connection(parent_end.detach())
        self.runners, self.device = dict(runners), device

    def replaced(self) -> "_WorkerProcess":
        """A fresh worker for the same device, this one stopped and its socket closed."""
        self.stop()
        return _WorkerProcess(self.runners, self.device)

    def start_job(self, job: Job) -> None:
        self._send(("run", job.id, job.kind, job.spec))

    def cancel(self, run_id: str) -> None:
        self._send(("cancel", run_id))

    def receive(self, timeout: float, wake: socket.socket) -> tuple | None:
        """The child's next message, or None after ``timeout`` or once ``wake`` has a byte."""
        ready = wait([self.connection, wake], timeout)
        if wake in ready:
            wake.recv(4096)
        if self.connection not in ready:
            return None
        try:
            return self.connection.recv()
        except (EOFError, OSError):
            time.sleep(0.1)  # the child is gone; alive() says so
            return None

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self._send(("stop",))
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.connection.close()

    def _send(self, message: tuple) -> None:
        try:
            self.connection.send(message)
        except OSError:
            pass  # a dead child cannot be told anything; _serve_device notices it is gone
