"""The SQLite run store: what a run leaves behind survives a restart of the server."""
from __future__ import annotations

import os

import pytest

from core import runs
from core.runs import RunStore

PNG = b"\x89PNG\r\n\x1a\n fake grid"


@pytest.fixture
def path(tmp_path):
    return tmp_path / "runs.sqlite"


def fill_finished_run(store: RunStore, run_id: str = "r1") -> None:
    store.add_run(run_id, "session-a", "mnist", {"arch": "basic_cnn", "epochs": 1}, created=100.0)
    store.set_state(run_id, "running", started=101.0)
    store.add_metrics(run_id, [(2, 102.0, {"step": 1, "train_loss": 2.3}),
                               (3, 103.0, {"step": 2, "train_loss": 1.9})])
    store.add_metrics(run_id, [(4, 104.0, {"step": 3, "train_loss": 1.5, "accuracy": 0.6})])
    store.save_sample(run_id, 1, 101.5, b"first grid", "before training")
    store.save_sample(run_id, 5, 104.5, PNG, "after step 3")
    store.set_result(run_id, {"accuracy": 0.61, "confusion": [[1, 0], [0, 1]]})
    store.set_state(run_id, "finished", finished=105.0)


def test_a_run_is_all_there_after_reopening(path):
    store = RunStore(path)
    fill_finished_run(store)
    store.close()

    store = RunStore(path)
    run = store.get_run("r1")
    assert run["state"] == "finished"
    assert run["session"] == "session-a" and run["kind"] == "mnist"
    assert run["spec"] == {"arch": "basic_cnn", "epochs": 1}
    assert (run["created"], run["started"], run["finished"]) == (100.0, 101.0, 105.0)
    assert run["result"] == {"accuracy": 0.61, "confusion": [[1, 0], [0, 1]]}
    assert run["message"] is None
    metrics = store.metrics("r1")
    assert [seq for seq, _, _ in metrics] == [2, 3, 4]
    assert [data["step"] for _, _, data in metrics] == [1, 2, 3]
    assert metrics[-1] == (4, 104.0, {"step": 3, "train_loss": 1.5, "accuracy": 0.6})
    assert [seq for seq, _, _ in store.metrics("r1", after_seq=3)] == [4]
    assert store.sample("r1") == (5, 104.5, PNG, "after step 3")  # the latest grid
    store.close()


@pytest.mark.parametrize("state", ["queued", "running"])
def test_a_run_left_active_is_interrupted_on_reopen(path, state):
    store = RunStore(path)
    fill_finished_run(store, "done")
    store.add_run("left", "session-b", "mnist", {}, created=200.0)
    if state == "running":
        store.set_state("left", "running", started=201.0)
    store.add_run("failed", "session-b", "mnist", {}, created=150.0)
    store.set_state("failed", "failed", {"key": "run.crashed", "params": {}}, finished=151.0)
    store.close()

    store = RunStore(path)
    left = store.get_run("left")
    assert left["state"] == "interrupted"
    assert left["message"] == {"key": "run.interrupted"}
    assert left["finished"] is not None
    assert store.get_run("done")["state"] == "finished"
    assert store.get_run("done")["finished"] == 105.0
    assert store.get_run("failed")["state"] == "failed"
    assert store.get_run("failed")["message"] == {"key": "run.crashed", "params": {}}
    store.close()


def test_list_runs_newest_first_and_by_kind(path):
    store = RunStore(path)
    store.add_run("old", "s", "mnist", {}, created=1.0)
    store.add_run("new", "s", "mnist", {}, created=3.0)
    store.add_run("other", "s", "gans", {}, created=2.0)
    assert [r["id"] for r in store.list_runs()] == ["new", "other", "old"]
    assert [r["id"] for r in store.list_runs(kind="mnist")] == ["new", "old"]
    assert [r["id"] for r in store.list_runs(limit=1)] == ["new"]
    assert store.get_run("nope") is None
    assert store.metrics("nope") == [] and store.sample("nope") is None
    store.close()


def test_store_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYGROUND_DB", str(tmp_path / "x" / "elsewhere.sqlite"))
    assert runs.store_path() == tmp_path / "x" / "elsewhere.sqlite"
    store = RunStore()
    assert store.path == tmp_path / "x" / "elsewhere.sqlite" and store.path.exists()
    store.close()
    monkeypatch.delenv("PLAYGROUND_DB")
    assert runs.store_path() == runs.DEFAULT_PATH


def test_the_unit_tests_never_touch_the_real_store():
    assert os.environ["PLAYGROUND_DB"] != str(runs.DEFAULT_PATH)
    assert runs.store_path() != runs.DEFAULT_PATH


def test_every_grid_is_kept_with_its_step_and_a_long_run_is_thinned_evenly(path):
    store = RunStore(path)
    for seq in range(runs.MAX_GRIDS + 1):
        store.save_sample("long", seq, float(seq), PNG, step=seq * 10)
    kept = store.samples("long")
    assert len(kept) == runs.MAX_GRIDS // 2 + 1
    assert kept[0][4] == 0 and kept[-1][4] == runs.MAX_GRIDS * 10  # the first and the latest stay
    assert {b[0] - a[0] for a, b in zip(kept, kept[1:])} == {2}  # evenly thinned
    store.close()


def test_a_store_from_before_grids_gives_its_one_sample(path):
    store = RunStore(path)
    with store._db:
        store._db.execute("INSERT INTO samples VALUES ('old', 7, 1.0, ?, 'old grid')", (PNG,))
    assert store.samples("old") == [(7, 1.0, PNG, "old grid", None)] and store.sample("old")[3] == "old grid"
    store.close()
