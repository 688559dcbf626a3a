"""Runs jobs on a Ray cluster: one long-lived actor per slot holds its GPU share and talks to its device thread as the local worker process does."""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from core.jobs import REPO_ROOT, JobManager, RunContext, resolve
from core.runs import RunStore
from core.worker import run_one, warm_up_infos

log = logging.getLogger(__name__)

ADDRESS = "PLAYGROUND_RAY_ADDRESS"
GPUS_PER_RUN = "PLAYGROUND_RAY_GPUS_PER_RUN"
CPUS_PER_RUN = "PLAYGROUND_RAY_CPUS_PER_RUN"
SLOTS = "PLAYGROUND_RAY_SLOTS"
LOCAL = "local"  # the address that starts a Ray instance of our own on this machine
PASSED_TO_ACTORS = ("PLAYGROUND_DATA", "PLAYGROUND_CIFAR10")  # where runners read data sets
WAKE_CHECK_SECONDS = 0.05  # the longest a Cancel or a new run waits to be noticed
OUTBOX_WAIT_SECONDS = 1.0  # how long one poll of an actor's outbox may wait for a message
PLACEMENT_PATIENCE_SECONDS = 60.0  # after this, a slot Ray cannot place yet is worth a log line


@dataclass(frozen=True)
class RaySettings:
    address: str  # "local", "auto", "host:port" or "ray://host:10001"
    gpus_per_run: float | None = None  # None: one GPU if the cluster has any, else none
    cpus_per_run: float = 1.0  # Ray also caps the actor's OpenMP threads (torch) at this
    slots: int = 1  # runs that may train at once across the cluster


def ray_settings_from_env(environ: Mapping[str, str] = os.environ) -> RaySettings | None:
    """The Ray cluster named by the PLAYGROUND_RAY_* variables, or None: use the local worker."""
    address = environ.get(ADDRESS, "").strip()
    if not address:
        return None
    return RaySettings(
        address=address,
        gpus_per_run=_setting(environ, GPUS_PER_RUN, float, None, _valid_gpus,
                              "0 (CPU only), a fraction such as 0.5, or a whole number of GPUs"),
        cpus_per_run=_setting(environ, CPUS_PER_RUN, float, 1.0, lambda v: math.isfinite(v) and v > 0,
                              "a number of CPUs above 0, such as 1 or 4"),
        slots=_setting(environ, SLOTS, int, 1, lambda v: v >= 1, "a whole number of 1 or more"),
    )


def _setting(environ: Mapping[str, str], name: str, convert: Callable[[str], Any], default: Any,
             valid: Callable[[Any], bool], expected: str) -> Any:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise ValueError(f"{name}={text!r} is not valid: set it to {expected}, or leave it unset.")
    return value


def _valid_gpus(value: float) -> bool:
    # Ray shares a GPU only in fractions of one; above one it hands out whole GPUs.
    return math.isfinite(value) and value >= 0 and (value <= 1 or value.is_integer())


def manager_for_ray(store: RunStore, runners: Mapping[str, str], settings: RaySettings,
                    **manager_options: Any) -> JobManager:
    """A JobManager whose device threads ("ray-0", "ray-1", ...) each feed a Ray actor.

    The queue, quotas and order stay in the JobManager; Ray only decides where each slot's
    actor lives. ``manager_options`` go to JobManager as they are (``limits=...``).
    """
    connect(settings)
    options = actor_options(settings)
    return JobManager(store, runners, devices=tuple(f"ray-{i}" for i in range(settings.slots)),
                      worker_factory=functools.partial(RayWorker, options=options), **manager_options)


def connect(settings: RaySettings) -> None:
    """Join the cluster, or start a Ray instance of our own on this machine for "local".

    Already connected (a test's own instance, a second manager) is left as it is. A local
    instance cannot be kept to loopback: on Linux Ray swaps 127.0.0.1 for the machine's
    address and its servers listen on every interface. Ray's token authentication, on by
    default for an instance that ray.init starts, is what keeps others out. A server that
    joins a cluster with token authentication needs RAY_AUTH_MODE=token and the token
    (~/.ray/auth_token or RAY_AUTH_TOKEN), as any Ray driver does.
    """
    import ray

    if ray.is_initialized():
        return
    if settings.address == LOCAL:
        ray.init(address=LOCAL, include_dashboard=False)  # a dashboard would be one more open port
    else:
        ray.init(address=settings.address)  # "ray://..." needs the ray[client] extra (grpcio)


def actor_options(settings: RaySettings) -> dict[str, Any]:
    """What each slot's actor asks Ray for.

    Code: an actor imports ``core`` and the runners from the repository folder on *its*
    node, which must hold the same checkout and packages as this server (one image for
    every node). That is what the runners need anyway (torch, the shipped MNIST in
    sample_data/), and it uploads nothing; a ``working_dir`` runtime_env would upload the
    code but still not the packages. PYTHONPATH names the folder, as for the local worker,
    because Ray adds the driver's current directory to workers' paths only when not in
    client (``ray://``) mode and only when the server was started from the repository.
    """
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    env.update({name: os.environ[name] for name in PASSED_TO_ACTORS if name in os.environ})
    return {"num_cpus": settings.cpus_per_run, "num_gpus": _gpus_per_run(settings),
            "max_restarts": 0,  # a dead actor is replaced by the device thread, which fails its run first
            "runtime_env": {"env_vars": env}}


def _gpus_per_run(settings: RaySettings) -> float:
    import ray

    gpus = ray.cluster_resources().get("GPU", 0)
    if settings.gpus_per_run is None:
        return 1.0 if gpus >= 1 else 0.0
    if settings.gpus_per_run > gpus:  # an autoscaler may still add them; if not, no run ever starts
        log.warning("%s=%s but the Ray cluster has %s GPUs now: runs wait until it has them "
                    "(set %s=0 to train on CPUs).", GPUS_PER_RUN, settings.gpus_per_run, gpus, GPUS_PER_RUN)
    return settings.gpus_per_run


# ----- inside the actor ---------------------------------------------------------------------
class _Mailbox:
    """Both directions of an actor's messages, with the poll/recv/send that RunContext uses.

    Cancel arrives by an actor method on another thread and waits here, so the poll
    that RunContext makes every training step is a local check, not a round trip.
    Outgoing messages wait here until the server's next poll of the outbox takes them.
    """

    def __init__(self):
        self._inbox: deque[tuple] = deque()
        self._outbox: list[tuple] = []
        self._outbox_changed = threading.Condition()

    def poll(self) -> bool:
        return bool(self._inbox)

    def recv(self) -> tuple:
        return self._inbox.popleft()

    def deliver(self, message: tuple) -> None:
        self._inbox.append(message)

    def send(self, message: tuple) -> None:
        with self._outbox_changed:
            self._outbox.append(message)
            self._outbox_changed.notify_all()

    def take(self, wait_seconds: float) -> list[tuple]:
        with self._outbox_changed:
            self._outbox_changed.wait_for(lambda: self._outbox, wait_seconds)
            taken, self._outbox = self._outbox, []
        return taken


class _JobActor:
    """One slot's actor. Its jobs run one at a time in Ray's default group; cancels and outbox
    polls have groups (threads) of their own, so that they are served while a job trains."""

    GROUPS = {"control": 1, "outbox": 1}

    def __init__(self, runners: Mapping[str, str]):
        self._runners = {kind: resolve(path) for kind, path in runners.items()}
        self._mailbox = _Mailbox()

    def warm_up(self) -> None:
        for info in warm_up_infos(self._runners.values()):
            self._mailbox.send(("info", info))

    def run(self, run_id: str, kind: str, spec: dict) -> None:
        context = RunContext(run_id, self._mailbox)  # type: ignore[arg-type]  # a Connection's poll/recv/send
        state, outcome = run_one(self._runners[kind], spec, context)
        context.flush()
        self._mailbox.send(("done", run_id, state, outcome))

    def cancel(self, run_id: str) -> None:  # "control" group
        self._mailbox.deliver(("cancel", run_id))

    def messages(self, wait_seconds: float) -> list[tuple]:  # "outbox" group
        return self._mailbox.take(wait_seconds)


@functools.cache
def _actor_class():
    import ray

    return ray.remote(concurrency_groups=_JobActor.GROUPS)(_JobActor)


# ----- on the server ------------------------------------------------------------------------
class RayWorker:
    """A device thread's handle on its slot's actor, with the interface of core.jobs._WorkerProcess.

    The constructor returns once Ray has placed the actor, so a slot that waits for a free
    GPU takes no run from the queue meanwhile: an idle slot elsewhere gets it.
    """

    def __init__(self, runners: Mapping[str, str], device: str, options: Mapping[str, Any]):
        self.runners, self.device, self.options = dict(runners), device, dict(options)
        self._actor = _actor_class().options(**self.options).remote(self.runners)
        self._received: deque[tuple] = deque()
        self._dead = False
        self._outbox = self._poll_outbox()
        self._actor.warm_up.remote()
        self._wait_until_placed()

    def replaced(self) -> "RayWorker":
        """A fresh actor for the same slot, this one killed."""
        self.stop()
        return RayWorker(self.runners, self.device, self.options)

    def start_job(self, job) -> None:
        self._actor.run.remote(job.id, job.kind, job.spec)

    def cancel(self, run_id: str) -> None:
        self._actor.cancel.options(concurrency_group="control").remote(run_id)

    def receive(self, timeout: float, wake: socket.socket) -> tuple | None:
        """The actor's next message, or None after ``timeout``, once ``wake`` has a byte, or
        once the actor is dead."""
        import ray

        deadline = time.monotonic() + timeout
        while not self._received and not self._dead and not _woken(wake):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _ = ray.wait([self._outbox], timeout=min(WAKE_CHECK_SECONDS, left))
            if ready:
                self._collect()
        return self._received.popleft() if self._received else None

    def alive(self) -> bool:
        return not self._dead

    def stop(self) -> None:
        import ray

        self._dead = True
        with contextlib.suppress(Exception):  # already gone, or Ray shut down before us
            ray.kill(self._actor)

    def _poll_outbox(self):
        return self._actor.messages.options(concurrency_group="outbox").remote(OUTBOX_WAIT_SECONDS)

    def _collect(self) -> None:
        import ray

        try:
            self._received.extend(ray.get(self._outbox))
        except ray.exceptions.RayError as error:  # the actor died, or could not be created
            log.warning("slot %s: its Ray actor is gone: %s", self.device, str(error).splitlines()[0][:300])
            self._dead = True
            return
        self._outbox = self._poll_outbox()

    def _wait_until_placed(self) -> None:
        """Block until the actor answered its first outbox poll (or died trying)."""
        import ray

        while not ray.wait([self._outbox], timeout=PLACEMENT_PATIENCE_SECONDS)[0]:
            log.warning("slot %s: Ray has not placed its actor yet (%s); waiting", self.device,
                        {key: self.options[key] for key in ("num_cpus", "num_gpus")})
        self._collect()


def _woken(wake: socket.socket) -> bool:
    if not select.select([wake], [], [], 0)[0]:
        return False
    wake.recv(4096)
    return True
