"""Replaying a stored run at its recorded pace, or faster, without training anything."""
from __future__ import annotations

import pytest

from core.jobs import Event, JobManager
from core.run_view import ReplayView, RunView
from core.runs import RunStore
from tests.unit.conftest import FakeClock


@pytest.fixture
def manager(tmp_path):
    """A manager with no device: it only reads the store, as for a run recorded before a restart."""
    store = RunStore(tmp_path / "runs.sqlite")
    store.add_run("recorded01", "s-teacher", "count", {"steps": 4}, created=995.0)
    store.set_state("recorded01", "running", started=1000.0)
    store.add_metrics("recorded01", [(2 + i, 1000.0 + 10 * (i + 1), {"step": i + 1, "total_steps": 4}) for i in range(4)])
    store.save_sample("recorded01", 6, 1040.0, b"png", "after 4 steps")
    store.set_result("recorded01", {"accuracy": 0.9})
    store.set_state("recorded01", "finished", finished=1041.0)
    manager = JobManager(store, {}, devices=())
    yield manager
    manager.shutdown()
    store.close()


def test_a_replay_shows_the_run_at_its_recorded_pace(manager):
    clock = FakeClock()
    view = ReplayView("recorded01", clock=clock).refresh(manager)
    assert view.active and view.rows == []  # it starts as a run that just started
    clock.now += 10
    assert [row["step"] for row in view.refresh(manager).rows] == [1]
    clock.now += 19
    assert [row["step"] for row in view.refresh(manager).rows] == [1, 2]
    assert view.active and view.result is None and view.sample_png is None
    clock.now += 12
    view.refresh(manager)
    assert len(view.rows) == 4 and view.sample_png == b"png" and view.result == {"accuracy": 0.9}
    assert view.state == "finished" and not view.active


def test_a_faster_replay_shows_the_same_run_sooner(manager):
    clock = FakeClock()
    view = ReplayView("recorded01", speed=4, clock=clock).refresh(manager)
    clock.now += 5  # 20 recorded seconds
    assert [row["step"] for row in view.refresh(manager).rows] == [1, 2]
    clock.now += 6
    assert view.refresh(manager).state == "finished"
    assert view.frame().equals(RunView("recorded01").refresh(manager).frame())  # the same run, in the end


def test_a_step_recorded_with_a_clock_a_little_behind_is_still_shown(manager):
    store = manager.store
    store.add_run("skewed0001", "s", "count", {}, created=995.0)
    store.set_state("skewed0001", "running", started=1000.0)
    times = [1010.0, 1025.0, 1020.0, 1030.0]  # step 2 came from a node whose clock was 5 s ahead
    store.add_metrics("skewed0001", [(2 + i, t, {"step": i + 1}) for i, t in enumerate(times)])
    store.set_state("skewed0001", "finished", finished=1031.0)
    clock = FakeClock()
    view = ReplayView("skewed0001", clock=clock).refresh(manager)
    clock.now += 22
    assert [row["step"] for row in view.refresh(manager).rows] == [1]  # step 2 is not due yet, so neither is 3
    clock.now += 10
    assert [row["step"] for row in view.refresh(manager).rows] == [1, 2, 3, 4]
    assert view.state == "finished"


def test_a_run_interrupted_by_a_restart_replays_to_its_last_step_and_ends_there(manager):
    store = manager.store
    store.add_run("interrupt1", "s", "count", {}, created=995.0)
    store.set_state("interrupt1", "running", started=1000.0)
    store.add_metrics("interrupt1", [(2, 1010.0, {"step": 1}), (3, 1020.0, {"step": 2})])
    store.set_state("interrupt1", "interrupted", {"key": "run.interrupted"}, finished=1000.0 + 3 * 3600)
    clock = FakeClock()
    view = ReplayView("interrupt1", clock=clock).refresh(manager)
    clock.now += 20
    view.refresh(manager)
    assert len(view.rows) == 2 and view.state == "interrupted"  # not "training" for three more hours


def test_a_faster_replay_says_the_time_left_at_its_own_pace(manager):
    manager.store.add_metrics("recorded01", [(7, 1041.0, {"step": 5, "total_steps": 5, "eta": 40.0})])
    clock = FakeClock()
    view = ReplayView("recorded01", speed=4, clock=clock).refresh(manager)
    clock.now += 100
    assert view.refresh(manager).latest["eta"] == pytest.approx(10.0)


def test_a_long_runs_view_keeps_its_grids_thinned_as_the_store_does():
    from core.runs import MAX_GRIDS

    view = RunView("long")
    view.fold([Event(seq, "samples", {"png": b"png", "step": seq}, float(seq)) for seq in range(MAX_GRIDS + 1)])
    steps = [step for step, _ in view.samples]
    assert len(steps) == MAX_GRIDS // 2 + 1 and steps[0] == 0 and steps[-1] == MAX_GRIDS
    assert view.sample_png == b"png"


def test_only_a_run_that_trains_is_live_and_a_replay_is_live_until_it_ends(manager):
    """A live panel redraws every second only for a run that trains: a queued run's panel waits
    (its place in the queue polls on its own), and a replay plays its recorded wait in the queue too."""
    view = RunView("somerun001")
    view.fold([Event(0, "state", {"state": "queued"}, 1000.0)])
    assert view.active and not view.live
    view.fold([Event(1, "state", {"state": "running"}, 1005.0)])
    assert view.live
    view.fold([Event(2, "state", {"state": "finished"}, 1010.0)])
    assert not view.active and not view.live
    clock = FakeClock()
    replay = ReplayView("recorded01", clock=clock).refresh(manager)
    replay.fold([Event(0, "state", {"state": "queued"}, 995.0)])
    assert replay.live
    clock.now += 100
    assert not replay.refresh(manager).live
