"""The job manager, with tiny fake runners (tests/unit/fake_runners.py) in a real worker process.

One manager serves the whole module (a worker process takes seconds to start); each test
waits for its own runs to end, and a fixture cancels whatever a failed test left behind.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest

from core.classroom import Limits
from core.errors import UserError
from core.jobs import WARMED_UP, JobManager, QuotaExceeded
from core.runs import RunStore
from tests.unit.conftest import started_manager, wait_for
from tests.unit.fake_runners import RUNNERS, SIZERS

TIMEOUT = 60  # seconds; generous, the first job of a worker also pays for importing torch


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    return tmp_path_factory.mktemp("jobs") / "runs.sqlite"


@pytest.fixture(scope="module")
def manager(db_path):
    with started_manager(db_path, RUNNERS, sizers=SIZERS) as manager:
        yield manager


@pytest.fixture(autouse=True)
def idle_afterwards(manager):
    yield
    for run_id in manager.active_runs():
        manager.cancel(run_id, manager.status(run_id)["session"])
    deadline = time.monotonic() + TIMEOUT
    while manager.active_runs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not manager.active_runs(), "a run did not stop after Cancel"


def wait_state(manager: JobManager, run_id: str, *states: str, timeout: float = TIMEOUT) -> dict:
    return wait_for(lambda: (s := manager.status(run_id)) and s["state"] in states and s,
                    f"{run_id} to be {'/'.join(states)}", timeout)


def all_events(manager: JobManager, run_id: str):
    return manager.events(run_id, 0)[0]


def states_of(events) -> list[str]:
    return [e.data["state"] for e in events if e.kind == "state"]


def metrics_of(events) -> list[dict]:
    return [e.data for e in events if e.kind == "metrics"]


def result_of(events) -> dict:
    results = [e.data for e in events if e.kind == "result"]
    assert len(results) == 1, results
    return results[0]


def run_to_end(manager, kind="count", spec=None, session="s-end", states=("finished", "failed", "cancelled")):
    run_id = manager.submit(kind, spec or {"steps": 2}, session)
    return run_id, wait_state(manager, run_id, *states)


# ----- the life of a run -------------------------------------------------------------------
def test_a_run_goes_queued_running_finished(manager):
    run_id = manager.submit("count", {"steps": 3}, "s-life")
    assert isinstance(run_id, str) and run_id
    assert manager.status(run_id)["state"] in ("queued", "running")
    status = wait_state(manager, run_id, "finished", "failed", "cancelled")
    assert status["state"] == "finished", status
    assert status["message"] is None and status["queue_position"] is None
    assert status["created"] <= status["started"] <= status["finished"]
    assert status["spec"] == {"steps": 3} and status["kind"] == "count"
    events = all_events(manager, run_id)
    assert states_of(events) == ["queued", "running", "finished"]
    assert [m["i"] for m in metrics_of(events)] == [0, 1, 2]
    assert result_of(events)["steps"] == 3
    assert events[-1].kind == "state"  # the final state comes last, after the result
    stored = manager.store.get_run(run_id)
    assert stored["state"] == "finished" and stored["result"]["steps"] == 3
    assert [data["i"] for _, _, data in manager.store.metrics(run_id)] == [0, 1, 2]
    assert manager.info["fake_worker_pid"] == result_of(events)["pid"]  # warm_up ran in the worker
    assert manager.info[WARMED_UP] is True  # and the worker said when every module had warmed up
    assert run_id not in manager.active_runs()


def test_submit_of_an_unknown_kind_is_refused(manager):
    with pytest.raises(ValueError, match="gan"):
        manager.submit("gan", {}, "s-unknown")
    assert manager.status("no-such-run") is None
    assert manager.events("no-such-run") == ([], 0)
    assert manager.cancel("no-such-run", "s-unknown") is False


def test_events_through_a_cursor_arrive_in_order_and_only_once(manager):
    run_id = manager.submit("count", {"steps": 30, "sleep": 0.05}, "s-cursor")
    wait_for(lambda: metrics_of(all_events(manager, run_id)), "the first metrics")
    first, cursor = manager.events(run_id, 0)
    assert [e.seq for e in first] == list(range(cursor))
    wait_state(manager, run_id, "finished")
    second, cursor2 = manager.events(run_id, cursor)
    assert second, "the second read had nothing new: the first one was not mid-run"
    assert [e.seq for e in second] == list(range(cursor, cursor2))
    assert manager.events(run_id, cursor2) == ([], cursor2)
    events = first + second
    assert [m["i"] for m in metrics_of(events)] == list(range(30))
    assert [e.t for e in events if e.kind == "metrics"] == sorted(e.t for e in events if e.kind == "metrics")
    assert states_of(events) == ["queued", "running", "finished"]


# ----- cancel ----------------------------------------------------------------------------
def test_cancelling_a_running_job_stops_it(manager):
    run_id = manager.submit("count", {"steps": 400, "sleep": 0.05}, "s-cancel")
    wait_for(lambda: len(metrics_of(all_events(manager, run_id))) >= 3, "the run to be under way")
    assert manager.cancel(run_id, "someone-else") is False  # only its own browser may cancel a run
    assert manager.cancel(run_id, "s-cancel") is True
    status = wait_state(manager, run_id, "finished", "failed", "cancelled", timeout=30)
    assert status["state"] == "cancelled"
    events = all_events(manager, run_id)
    assert len(metrics_of(events)) < 400
    assert not [e for e in events if e.kind == "result"]
    assert states_of(events) == ["queued", "running", "cancelled"]
    assert manager.cancel(run_id, "s-cancel") is False  # nothing left to cancel
    assert manager.store.get_run(run_id)["state"] == "cancelled"


def test_cancelling_a_queued_job_ends_it_at_once(manager):
    busy = manager.submit("count", {"steps": 400, "sleep": 0.05}, "s-busy")
    wait_state(manager, busy, "running")
    waiting = manager.submit("count", {"steps": 2}, "s-waiting")
    assert manager.status(waiting)["state"] == "queued"
    assert manager.status(waiting)["queue_position"] == 1
    assert manager.cancel(waiting, "s-waiting") is True
    status = manager.status(waiting)  # no waiting: the worker never sees it
    assert status["state"] == "cancelled" and status["queue_position"] is None
    assert states_of(all_events(manager, waiting)) == ["queued", "cancelled"]
    assert manager.store.get_run(waiting)["state"] == "cancelled"
    assert manager.status(busy)["state"] == "running"  # the other run goes on
    assert waiting not in manager.active_runs() and busy in manager.active_runs("s-busy")


# ----- quota -----------------------------------------------------------------------------
def test_a_session_may_have_one_running_and_two_queued(manager):
    long = {"steps": 400, "sleep": 0.05}
    first = manager.submit("count", long, "s-greedy")
    wait_state(manager, first, "running")
    second = manager.submit("count", long, "s-greedy")
    third = manager.submit("count", long, "s-greedy")
    assert [manager.status(r)["state"] for r in (first, second, third)] == ["running", "queued", "queued"]
    with pytest.raises(QuotaExceeded) as caught:
        manager.submit("count", long, "s-greedy")
    assert caught.value.key == "jobs.quota"
    assert (caught.value.params["running"], caught.value.params["queued"]) == (1, 2)
    assert isinstance(caught.value, UserError)
    assert sorted(manager.active_runs("s-greedy")) == sorted([first, second, third])
    other = manager.submit("count", {"steps": 1}, "s-modest")  # another browser is not blocked
    assert manager.status(other)["state"] == "queued"
    manager.cancel(third, "s-greedy")
    fourth = manager.submit("count", long, "s-greedy")  # room again after a cancel
    assert manager.status(fourth)["state"] == "queued"


# ----- a class on one server ------------------------------------------------------------------
LONG = {"steps": 2000, "sleep": 0.05}


@pytest.fixture
def classroom_limits(manager):
    """Limits for one test, the defaults back afterwards."""
    def apply(**limits):
        manager.set_limits(Limits(**limits))
    yield apply
    manager.set_limits(Limits())


def block_the_device(manager, session="s-blocker") -> str:
    blocker = manager.submit("count", LONG, session)
    wait_state(manager, blocker, "running")
    return blocker


def test_waiting_runs_start_in_turns_across_sessions_not_first_come_first_served(manager, classroom_limits):
    classroom_limits(queued_per_session=3)
    blocker = block_the_device(manager)
    burst = [manager.submit("count", {"steps": 1}, "s-burst") for _ in range(3)]
    late = [manager.submit("count", {"steps": 1}, session) for session in ("s-late-1", "s-late-2")]
    positions = {run_id: manager.status(run_id)["queue_position"] for run_id in burst + late}
    assert positions == {burst[0]: 1, late[0]: 2, late[1]: 3, burst[1]: 4, burst[2]: 5}
    waits = [manager.status(run_id)["wait_seconds"] for run_id in (burst[0], late[0], late[1], burst[1])]
    assert waits == sorted(waits) and waits[0] < waits[-1]  # each waits longer than the one before it
    manager.cancel(blocker, "s-blocker")
    for run_id in burst + late:
        wait_state(manager, run_id, "finished")
    started = sorted(burst + late, key=lambda run_id: manager.status(run_id)["started"])
    assert started == [burst[0], late[0], late[1], burst[1], burst[2]]


def test_a_new_session_takes_its_turn_at_the_end_of_the_round_not_ahead_of_everyone(manager):
    f1 = manager.submit("count", LONG, "s-round-f")
    wait_state(manager, f1, "running")
    g1 = manager.submit("count", LONG, "s-round-g")
    manager.cancel(f1, "s-round-f")
    wait_state(manager, g1, "running")
    f2 = manager.submit("count", {"steps": 1}, "s-round-f")  # F was served before G: F goes first
    g2 = manager.submit("count", {"steps": 1}, "s-round-g")
    e1 = manager.submit("count", {"steps": 1}, "s-round-e")  # a student who reloaded the page: a new session
    assert [manager.status(r)["queue_position"] for r in (f2, e1, g2)] == [1, 2, 3]
    manager.cancel(g1, "s-round-g")


def test_a_burst_from_many_sessions_at_once_stays_within_the_limits(manager, classroom_limits):
    classroom_limits(queued_per_session=2, queued_total=25)
    blocker = block_the_device(manager)
    sessions = [f"s-class-{i}" for i in range(30)]
    refused: list[str] = []

    def send(session):
        for _ in range(4):  # 120 submissions in all; at most 2 per session and 25 in all may wait
            try:
                manager.submit("count", {"steps": 1}, session)
            except QuotaExceeded as error:
                refused.append(error.key)

    threads = [threading.Thread(target=send, args=(session,)) for session in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queued = [run for run in manager.queue() if run["state"] == "queued"]
    assert len(queued) == 25 and len(refused) == 120 - 25
    assert max(Counter(run["session"] for run in queued).values()) <= 2
    assert set(refused) == {"jobs.quota", "jobs.queue_full"}
    assert [run["queue_position"] for run in queued] == list(range(1, 26))
    for run in queued:
        manager.cancel(run["id"], run["session"])
    manager.cancel(blocker, "s-blocker")


def test_a_student_neither_lists_nor_cancels_another_students_run_but_the_instructor_can(manager):
    mine = manager.submit("count", LONG, "s-alice")
    wait_state(manager, mine, "running")
    assert manager.cancel(mine, "s-bob") is False
    assert mine not in manager.active_runs("s-bob")
    assert [run["id"] for run in manager.visible_runs("count", "s-bob")] == []
    assert mine in [run["id"] for run in manager.visible_runs("count", "s-alice")]
    assert mine in [run["id"] for run in manager.visible_runs("count", None)]  # one person's server: all runs
    manager.store.pin(mine)  # the instructor shared it: now everyone lists it
    assert mine in [run["id"] for run in manager.visible_runs("count", "s-bob")]
    manager.store.unpin(mine)
    assert manager.cancel(mine, "s-instructor", privileged=True) is True
    assert wait_state(manager, mine, "cancelled", "finished", "failed")["state"] == "cancelled"


def test_a_run_the_instructor_cancels_says_so_to_its_student(manager):
    running = manager.submit("count", LONG, "s-pupil")
    wait_state(manager, running, "running")
    waiting = manager.submit("count", LONG, "s-pupil")
    for run_id in (waiting, running):
        assert manager.cancel(run_id, "s-teacher", privileged=True) is True
        status = wait_state(manager, run_id, "cancelled", "finished", "failed")
        assert status["state"] == "cancelled" and status["message"]["key"] == "run.cancelled_by_instructor"
    own = manager.submit("count", LONG, "s-pupil")
    manager.cancel(own, "s-pupil")
    assert wait_state(manager, own, "cancelled")["message"] is None  # the student's own cancel needs no note


def test_with_two_devices_a_student_still_trains_one_run_at_a_time(db_path):
    with started_manager(db_path.with_name("two-devices.sqlite"), RUNNERS, devices=("gpu0", "gpu1")) as two:
        first = two.submit("count", LONG, "s-eager")
        second = two.submit("count", LONG, "s-eager")
        wait_state(two, first, "running")
        time.sleep(1.5)  # the other device is idle all along
        assert two.status(second)["state"] == "queued"
        other = two.submit("count", LONG, "s-patient")
        wait_state(two, other, "running")  # another student gets the free device
        two.cancel(first, "s-eager")
        wait_state(two, second, "running")


def test_the_instructor_is_outside_the_students_limits(manager, classroom_limits):
    classroom_limits(queued_per_session=1, sizes=("quick",))
    blocker = block_the_device(manager, "s-teacher")
    with pytest.raises(QuotaExceeded) as caught:
        manager.submit("count", {"steps": 1, "size": "lecture"}, "s-student")
    assert caught.value.key == "jobs.size_not_allowed"
    extra = [manager.submit("count", {"steps": 1, "size": "lecture"}, "s-teacher", privileged=True) for _ in range(3)]
    with pytest.raises(QuotaExceeded):
        manager.submit("count", {"steps": 1}, "s-teacher")  # the same session, unprivileged: one may wait
    manager.cancel(blocker, "s-teacher")
    assert all(wait_state(manager, run_id, "finished")["privileged"] for run_id in extra)


def test_a_run_past_the_time_limit_is_stopped_with_a_message(manager, classroom_limits):
    classroom_limits(max_run_minutes=0.02)  # 1.2 s
    run_id = manager.submit("count", LONG, "s-slow")
    status = wait_state(manager, run_id, "cancelled", "finished", "failed", timeout=30)
    assert status["state"] == "cancelled"
    assert status["message"]["key"] == "run.time_limit" and status["message"]["params"] == {"minutes": 0.02}
    assert status["finished"] - status["started"] < 10


def test_limits_outlive_a_restart(manager, db_path, classroom_limits):
    classroom_limits(queued_per_session=5, max_run_minutes=3, sizes=("quick", "demo"))
    with started_manager(db_path, RUNNERS, devices=()) as restarted:  # nothing is running: no run gets interrupted
        assert restarted.limits == Limits(queued_per_session=5, max_run_minutes=3, sizes=("quick", "demo"))


# ----- failures --------------------------------------------------------------------------
def test_a_user_error_fails_the_run_with_its_message_key(manager):
    run_id, status = run_to_end(manager, "bad", {"value": 12}, "s-bad")
    assert status["state"] == "failed"
    assert status["message"] == {"key": "fake.too_big", "params": {"value": 12}, "text": "The value 12 is too big."}
    assert manager.store.get_run(run_id)["message"] == status["message"]
    events = all_events(manager, run_id)
    assert len(metrics_of(events)) == 1  # what it emitted before failing is kept
    assert events[-1].data == {"state": "failed", "message": status["message"]}


def test_a_bug_in_a_runner_fails_the_run_and_the_worker_goes_on(manager):
    _, before = run_to_end(manager, "count", {"steps": 1}, "s-bug")
    pid = result_of(all_events(manager, before["id"]))["pid"]
    run_id, status = run_to_end(manager, "broken", {}, "s-bug")
    assert status["state"] == "failed"
    assert status["message"]["key"] == "run.crashed"
    assert status["message"]["params"]["error"] == "RuntimeError: boom"  # first line only
    after_id, after = run_to_end(manager, "count", {"steps": 1}, "s-bug")
    assert after["state"] == "finished"
    assert result_of(all_events(manager, after_id))["pid"] == pid  # the same worker process


@pytest.mark.parametrize("gpu", [False, True])
def test_a_run_out_of_memory_fails_with_a_message_and_gives_its_memory_back(manager, gpu):
    run_id, status = run_to_end(manager, "hog", {"mb": 400, "gpu": gpu}, "s-hog")
    assert status["state"] == "failed"
    assert status["message"]["key"] == "run.out_of_memory"
    assert status["message"]["text"] == ("Out of GPU memory." if gpu else "Out of memory.")
    during = metrics_of(all_events(manager, run_id))[0]
    _, after = run_to_end(manager, "memory", {}, "s-hog")
    measured = result_of(all_events(manager, after["id"]))
    assert measured["pid"] == during["pid"]  # the same worker goes on serving
    assert measured["resident_mb"] < during["resident_mb"] - 300  # and the 400 MB are free again


def test_a_crashed_worker_fails_its_run_and_the_next_one_runs(manager):
    _, before = run_to_end(manager, "count", {"steps": 1}, "s-crash")
    old_pid = result_of(all_events(manager, before["id"]))["pid"]
    crashing = manager.submit("crash", {}, "s-crash")
    following = manager.submit("count", {"steps": 2}, "s-crash")  # same session: it starts after the crash
    status = wait_state(manager, crashing, "finished", "failed", "cancelled")
    assert status["state"] == "failed"
    assert status["message"]["key"] == "run.worker_died"
    assert manager.store.get_run(crashing)["state"] == "failed"
    assert wait_state(manager, following, "finished", "failed", "cancelled")["state"] == "finished"
    new_pid = result_of(all_events(manager, following))["pid"]
    assert new_pid != old_pid  # a fresh worker took over
    assert wait_for(lambda: manager.info.get("fake_worker_pid") == new_pid, "the new worker's warm-up info")


# ----- the store outlives the manager ------------------------------------------------------
def test_a_finished_run_replays_from_the_store_after_a_restart(manager, db_path):
    run_id, status = run_to_end(manager, "count", {"steps": 4}, "s-replay")
    assert status["state"] == "finished"
    live = all_events(manager, run_id)

    store = RunStore(db_path)  # as after a server restart: a new store and a new manager
    restarted = JobManager(store, RUNNERS)
    try:
        status = restarted.status(run_id)
        assert status["state"] == "finished" and status["spec"] == {"steps": 4}
        events, cursor = restarted.events(run_id, 0)
        assert [m["i"] for m in metrics_of(events)] == [0, 1, 2, 3]
        assert metrics_of(events) == metrics_of(live)
        assert result_of(events) == result_of(live)
        samples = [e.data for e in events if e.kind == "samples"]
        assert samples == [{"png": b"\x89PNG fake 4", "caption": "after 4"}]
        assert events[-1].kind == "state" and events[-1].data["state"] == "finished"
        assert restarted.events(run_id, cursor) == ([], cursor)
    finally:
        restarted.shutdown()
        store.close()


def result_pid(manager, run_id) -> int:
    return result_of(all_events(manager, run_id))["pid"]


def test_the_weights_a_run_sends_are_kept_for_after_a_restart(manager, db_path):
    run_id, status = run_to_end(manager, "count", {"steps": 1, "weights": "trained"}, "s-weights")
    assert status["state"] == "finished"
    other, _ = run_to_end(manager, "count", {"steps": 1}, "s-weights")
    assert manager.weights(run_id) == b"trained" and manager.weights(other) is None
    store = RunStore(db_path)  # as after a server restart
    try:
        assert store.weights(run_id) == b"trained"
        assert store.get_run(run_id)["result"] == {"steps": 1, "pid": result_pid(manager, run_id)}  # lists stay light
    finally:
        store.close()


def test_a_cursor_taken_live_still_reaches_the_end_once_the_run_left_memory(manager):
    run_id = manager.submit("count", {"steps": 3, "sleep": 0.3, "sample_first": True}, "s-page")
    wait_for(lambda: len(metrics_of(all_events(manager, run_id))) == 3, "three metrics")
    seen, cursor = manager.events(run_id, 0)  # a page's last refresh while the run was live
    assert states_of(seen) == ["queued", "running"]
    wait_state(manager, run_id, "finished")
    others = [manager.submit("count", {"steps": 1, "sleep": 0}, f"s-other-{i}") for i in range(17)]
    for other in others:  # 16 newer finished runs push this one out of memory
        wait_state(manager, other, "finished", "failed", "cancelled")
    rest, _ = manager.events(run_id, cursor)  # the page's next refresh
    assert [e.kind for e in rest if e.kind in ("result", "state")] == ["result", "state"]
    assert states_of(seen + rest)[-1] == "finished"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_worker_that_died_while_idle_is_replaced(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    manager = JobManager(store, RUNNERS)
    try:
        pid = wait_for(lambda: manager.info.get("fake_worker_pid"), "the worker's warm-up")
        os.kill(pid, signal.SIGKILL)  # this test's own worker, as the kernel's OOM killer would
        wait_for(lambda: not os.path.exists(f"/proc/{pid}/status") or "Z" in _proc_state(pid), "the worker to die", 10)
        run_id = manager.submit("count", {"steps": 1}, "s-idle")
        # wait for the run to end, or (not to wait out the timeout) for the device thread to die
        wait_for(lambda: manager.status(run_id)["state"] not in ("queued", "running")
                 or not any(thread.is_alive() for thread in manager._threads), "the run to end")
        assert manager.status(run_id)["state"] in ("finished", "failed")
        assert wait_state(manager, manager.submit("count", {"steps": 1}, "s-idle"), "finished")
    finally:
        manager.shutdown()
        store.close()


def _proc_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(line for line in status if line.startswith("State:"))
    except (OSError, StopIteration):
        return "Z"
