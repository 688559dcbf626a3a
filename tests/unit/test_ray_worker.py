"""Runs through Ray (core.ray_worker): a local Ray instance of 2 CPUs, one slot, fake runners and a tiny MNIST run.

One Ray instance and one manager serve the module (an actor takes a second or two to
start and import torch); each test waits for its own runs to end. The tests start their
own instance (address="local"), never join one that is running; Ray does not let it be
kept to loopback on Linux, and its token authentication keeps others out.
"""
from __future__ import annotations

import os
import socket
import time

import pytest

ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")

from core.jobs import WARMED_UP  # noqa: E402  (after the skip: these tests need ray)
from core.mnist_lab import preset_spec  # noqa: E402
from core.ray_worker import (  # noqa: E402
    CPUS_PER_RUN, GPUS_PER_RUN, SLOTS, RaySettings, RayWorker, actor_options, manager_for_ray, ray_settings_from_env,
)
from core.runs import RunStore  # noqa: E402
from tests.unit.conftest import started_manager, wait_for  # noqa: E402
from tests.unit.fake_runners import RUNNERS  # noqa: E402

TIMEOUT = 60
RUNNERS_AND_MNIST = {**RUNNERS, "mnist": "core.mnist_lab:run_mnist"}
CPU_SLOT = RaySettings(address="local", gpus_per_run=0, cpus_per_run=1, slots=1)


# ----- settings from the environment ------------------------------------------------------------
def test_without_an_address_there_is_no_ray():
    assert ray_settings_from_env({}) is None
    assert ray_settings_from_env({"PLAYGROUND_RAY_ADDRESS": "  ", GPUS_PER_RUN: "1"}) is None


def test_settings_are_read_from_the_environment():
    assert ray_settings_from_env({"PLAYGROUND_RAY_ADDRESS": "auto"}) == RaySettings("auto", None, 1.0, 1)
    settings = ray_settings_from_env({"PLAYGROUND_RAY_ADDRESS": "ray://head:10001", GPUS_PER_RUN: "0.5",
                                      CPUS_PER_RUN: "4", SLOTS: "8"})
    assert settings == RaySettings("ray://head:10001", gpus_per_run=0.5, cpus_per_run=4.0, slots=8)
    assert ray_settings_from_env({"PLAYGROUND_RAY_ADDRESS": "local", GPUS_PER_RUN: "0"}).gpus_per_run == 0


@pytest.mark.parametrize("name, value", [
    (GPUS_PER_RUN, "one"), (GPUS_PER_RUN, "-1"), (GPUS_PER_RUN, "1.5"), (GPUS_PER_RUN, "nan"),
    (CPUS_PER_RUN, "0"), (SLOTS, "0"), (SLOTS, "2.5"),
])
def test_a_bad_value_is_refused_with_the_variable_named(name, value):
    with pytest.raises(ValueError, match=name) as caught:
        ray_settings_from_env({"PLAYGROUND_RAY_ADDRESS": "auto", name: value})
    assert "set it to" in str(caught.value)


# ----- runs through a local Ray instance -------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def manager(local_ray, tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("ray-jobs") / "runs.sqlite")
    manager = manager_for_ray(store, RUNNERS_AND_MNIST, CPU_SLOT)
    yield manager
    manager.shutdown()
    store.close()


@pytest.fixture(autouse=True)
def idle_afterwards(request):
    yield
    if "manager" not in request.fixturenames:
        return
    manager = request.getfixturevalue("manager")
    for run_id in manager.active_runs():
        manager.cancel(run_id, manager.status(run_id)["session"])
    wait_for(lambda: not manager.active_runs(), "every run to stop after Cancel")


def wait_ended(manager, run_id: str, timeout: float = TIMEOUT) -> dict:
    return wait_for(lambda: (s := manager.status(run_id))["state"] not in ("queued", "running") and s,
                    f"{run_id} to end", timeout)


def events_of(manager, run_id: str, kind: str | None = None):
    events = manager.events(run_id, 0)[0]
    return [e for e in events if kind is None or e.kind == kind]


def without_pids(events) -> list[tuple[str, dict]]:
    return [(e.kind, {k: v for k, v in e.data.items() if k != "pid"}) for e in events]


def test_the_gpu_share_follows_the_cluster(local_ray):
    assert actor_options(RaySettings("local"))["num_gpus"] == 0  # this instance has no GPU
    assert actor_options(RaySettings("local", gpus_per_run=0.5))["num_gpus"] == 0.5  # a share set explicitly is kept
    assert actor_options(CPU_SLOT)["num_cpus"] == 1


def test_a_run_through_ray_reports_what_the_local_worker_reports(manager, tmp_path):
    spec = {"steps": 5, "sample_first": True}
    run_id = manager.submit("count", spec, "s-ray")
    status = wait_ended(manager, run_id)
    assert status["state"] == "finished" and status["message"] is None, status
    through_ray = events_of(manager, run_id)

    with started_manager(tmp_path / "local.sqlite", RUNNERS) as local:
        local_id = local.submit("count", spec, "s-local")
        assert wait_ended(local, local_id)["state"] == "finished"
        locally = events_of(local, local_id)
    assert without_pids(through_ray) == without_pids(locally)
    assert [e.seq for e in through_ray] == list(range(len(through_ray)))

    [result] = [e.data for e in through_ray if e.kind == "result"]
    assert result["pid"] != os.getpid()  # it ran in the actor's process
    assert manager.info["fake_worker_pid"] == result["pid"] and manager.info[WARMED_UP] is True
    stored = manager.store.get_run(run_id)
    assert stored["state"] == "finished" and stored["result"]["steps"] == 5
    assert [data["step"] for _, _, data in manager.store.metrics(run_id)] == [1, 2, 3, 4, 5]
    assert manager.store.sample(run_id)[2] == b"\x89PNG fake 5"


def test_cancel_reaches_a_running_job(manager):
    run_id = manager.submit("count", {"steps": 1000, "sleep": 0.05}, "s-cancel")
    wait_for(lambda: len(events_of(manager, run_id, "metrics")) >= 3, "the run to be under way")
    asked = time.monotonic()
    assert manager.cancel(run_id, "s-cancel") is True
    status = wait_ended(manager, run_id, timeout=10)
    assert status["state"] == "cancelled", status
    assert time.monotonic() - asked < 3
    assert len(events_of(manager, run_id, "metrics")) < 1000 and not events_of(manager, run_id, "result")
    assert manager.store.get_run(run_id)["state"] == "cancelled"


def test_a_tiny_mnist_run_trains_through_ray(manager):
    spec = {**preset_spec("basic_cnn", "quick").to_dict(), "n_train": 600, "epochs": 1}
    run_id = manager.submit("mnist", spec, "s-mnist")
    status = wait_ended(manager, run_id)
    assert status["state"] == "finished", status
    metrics = [e.data for e in events_of(manager, run_id, "metrics")]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5]  # 600 digits in batches of 128
    [result] = [e.data for e in events_of(manager, run_id, "result")]
    assert 0 <= result["accuracy"] <= 1 and sum(map(sum, result["confusion"])) == 10_000
    assert result["device"] == "CPU"
    assert manager.store.get_run(run_id)["result"]["accuracy"] == result["accuracy"]
    assert set(manager.info["mnist_seconds_per_step"]) >= {"basic_cnn"}  # the actor warmed mnist_lab up


def test_a_run_whose_actor_dies_fails_and_a_new_actor_takes_over(manager):
    before = manager.submit("count", {"steps": 1}, "s-crash")
    assert wait_ended(manager, before)["state"] == "finished"
    [old] = [e.data["pid"] for e in events_of(manager, before, "result")]
    crashing = manager.submit("crash", {}, "s-crash")
    following = manager.submit("count", {"steps": 2}, "s-crash")  # same session: it starts after the crash
    status = wait_ended(manager, crashing)
    assert status["state"] == "failed" and status["message"]["key"] == "run.worker_died", status
    assert manager.store.get_run(crashing)["state"] == "failed"
    assert wait_ended(manager, following)["state"] == "finished"
    [new] = [e.data["pid"] for e in events_of(manager, following, "result")]
    assert new != old  # a fresh actor took over
    wait_for(lambda: manager.info.get("fake_worker_pid") == new, "the new actor's warm-up info")


def test_receive_keeps_to_its_timeout_and_wakes_at_once(local_ray):
    worker = RayWorker(RUNNERS, "ray-test", actor_options(CPU_SLOT))
    wake, waker = socket.socketpair()
    try:
        wait_for(lambda: (m := worker.receive(1.0, wake)) and m == ("info", {WARMED_UP: True}), "the warm-up")
        started = time.monotonic()
        assert worker.receive(0.3, wake) is None
        assert 0.25 < time.monotonic() - started < 1.0
        waker.send(b"!")
        started = time.monotonic()
        assert worker.receive(10, wake) is None
        assert time.monotonic() - started < 0.5
        assert worker.alive()
    finally:
        worker.stop()
        wake.close()
        waker.close()
    assert not worker.alive()
