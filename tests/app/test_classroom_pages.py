"""A class on one server, through the real pages: instructor mode, limits, pins, replays, share links."""
import time

import pytest
from streamlit.testing.v1 import AppTest

import ui.common

from core import mnist_lab
from core.classroom import Limits
from tests.app.test_pages import MNIST_PAGE, click, open_page, texts, train_small_run, wait_until_done
from ui.common import PASSWORD_VARIABLE, job_manager, password_gate, train_and_cancel

INSTRUCTOR_PAGE = "app_pages/instructor.py"
PASSWORD = "pickled-gradient-42"


@pytest.fixture
def classroom(monkeypatch):
    """A server with an instructor password, as a school deploys it; one person's server afterwards."""
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    password_gate.clear()
    yield
    monkeypatch.delenv(PASSWORD_VARIABLE)
    password_gate.clear()
    job_manager().set_limits(Limits())
    for run_id in job_manager().store.pins():
        job_manager().store.unpin(run_id)


def unlock(app: AppTest, password: str = PASSWORD) -> AppTest:
    app.text_input(key="teach_password").input(password)
    app.button(key="teach_unlock_button").click().run()
    assert not app.exception, app.exception
    return app


def test_without_a_password_there_is_no_instructor_mode():
    app = open_page(INSTRUCTOR_PAGE)
    assert any(PASSWORD_VARIABLE in text for text in texts(app.info))
    assert not app.text_input  # nothing to type a password into


def test_a_wrong_password_is_refused_and_the_right_one_unlocks(classroom):
    app = unlock(open_page(INSTRUCTOR_PAGE), "guess")
    assert "not the instructor password" in " ".join(texts(app.error))
    assert "instructor" not in app.session_state
    app = unlock(open_page(INSTRUCTOR_PAGE))
    assert app.session_state["instructor"] is True
    assert "The queue" in texts(app.subheader) and "Limits for students" in texts(app.subheader)


def test_the_instructor_closes_the_lecture_size_and_a_student_is_told_what_to_pick(classroom):
    teacher = unlock(open_page(INSTRUCTOR_PAGE))
    teacher.multiselect(key="teach_sizes").unselect("lecture")
    teacher.button(key="teach_save").click().run()
    assert "Saved" in " ".join(texts(teacher.success))
    assert job_manager().limits.sizes == ("quick", "demo")

    student = open_page(MNIST_PAGE)
    student.radio(key="mnist_preset").set_value("lecture").run()
    click(student, "▶")
    assert "allows only the Quick, Demo size" in " ".join(texts(student.error))
    assert student.session_state["mnist_run_id"] is None

    job_manager().set_limits(Limits(sizes=("quick",)))
    sly = open_page(MNIST_PAGE, preset="quick", epochs="3", n_train="60000")  # a "quick" run with the demo's work
    click(sly, "▶")
    assert "allows only the Quick size" in " ".join(texts(sly.error))
    assert sly.session_state["mnist_run_id"] is None


def test_the_instructor_sees_the_size_a_run_amounts_to_not_the_preset_it_started_from(classroom):
    spec = {**mnist_lab.preset_spec("basic_cnn", "quick").to_dict(), "epochs": 3, "n_train": 60000}
    store = job_manager().store
    store.add_run("sizedrun01", "s-sly", "mnist", spec, created=1000.0)  # "quick", with the demo's work
    store.set_state("sizedrun01", "finished", finished=1010.0)
    teacher = unlock(open_page(INSTRUCTOR_PAGE))
    table = next(frame.value for frame in teacher.dataframe if "sizedrun01" in list(frame.value["Run"]))
    what = table.set_index("Run").loc["sizedrun01", "What"]
    assert what == "MNIST: a CNN from scratch · Demo"


def listed_runs(app: AppTest) -> list[str]:
    """The run ids in the lab's "all runs" table."""
    return [str(run_id) for run_id in app.dataframe[-1].value["Run"]] if "No runs yet." not in texts(app.caption) else []


def test_a_student_lists_only_their_own_runs_on_a_class_server(classroom):
    alices_run = train_small_run(open_page(MNIST_PAGE))
    bob = open_page(MNIST_PAGE)
    assert alices_run not in listed_runs(bob)
    assert alices_run not in bob.multiselect(key="mnist_compare").options

    job_manager().store.pin(alices_run)  # the instructor shares it
    assert alices_run in listed_runs(open_page(MNIST_PAGE))


def test_a_pinned_replay_on_home_plays_the_run_again_without_training(classroom):
    recorded = train_small_run(open_page(MNIST_PAGE))
    job_manager().store.pin(recorded, 20.0)
    student = open_page()
    assert "Pinned by your instructor" in " ".join(texts(student.subheader))
    click(student, "Replay at 20×")
    assert student.session_state["mnist_run_id"] == recorded
    captions = " ".join(texts(student.caption))
    assert "A replay at 20×" in captions
    assert float(student.query_params["replay"]) == 20  # the link replays it too
    active_before = set(job_manager().active_runs())
    wait_until_done(student)
    assert "Finished" in " ".join(texts(student.success))
    assert set(job_manager().active_runs()) <= active_before  # nothing was trained for it


def test_every_lab_offers_a_link_to_its_setup():
    for page, path in ((MNIST_PAGE, "/mnist"), ("app_pages/schedule_lab.py", "/schedules"), ("app_pages/darknet_lab.py", "/darknet")):
        links = [code.value for code in open_page(page).sidebar.code]
        assert links == [path], (page, links)  # the defaults need no settings in the link
    app = open_page(MNIST_PAGE)
    app.number_input(key="mnist_epochs").set_value(5).run()
    assert [code.value for code in app.sidebar.code] == ["/mnist?epochs=5"]


def test_a_run_waiting_in_the_queue_says_its_place_and_the_wait_and_draws_no_empty_chart():
    manager = job_manager()
    blocker = manager.submit("mnist", {"arch": "basic_cnn", "preset": "demo", "epochs": 30, "max_lr": 0.1,
                                       "batch_size": 128, "optimizer": "sgd", "n_train": 60_000, "seed": 0},
                             "s-someone-else")
    try:
        app = open_page(MNIST_PAGE)
        app.radio(key="mnist_preset").set_value("quick").run()
        click(app, "▶")
        waiting = " ".join(texts(app.info))
        assert "1st in the queue, about" in waiting, waiting
        # A class's queued runs poll every second: their panels say where they wait and nothing more.
        assert not app.get("plotly_chart"), "a queued run's live panel redrew its empty chart"
    finally:
        manager.cancel(blocker, "s-someone-else")
        if app.session_state["mnist_run_id"]:
            manager.cancel(app.session_state["mnist_run_id"], app.session_state["session_id"])
    wait_until_done(app)


def test_a_run_that_starts_while_its_page_is_drawn_does_not_freeze_the_panel(monkeypatch):
    """A page decides early whether its panel redraws every second (only while the run trains), and its
    panel looks at the run later. If the run starts in between, the page runs once more and decides
    again; otherwise the panel would show a training run and never redraw."""
    manager = job_manager()
    app = open_page(MNIST_PAGE, epochs="20")
    click(app, "▶")
    run_id = app.session_state["mnist_run_id"]
    try:
        deadline = time.monotonic() + 60
        while manager.status(run_id)["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        decisions = []

        def still_queued_at_first_look(*args, **kwargs):
            decisions.append(train_and_cancel(*args, **kwargs))
            return decisions[-1] and len(decisions) > 1

        monkeypatch.setattr(ui.common, "train_and_cancel", still_queued_at_first_look)
        app.run()
        assert not app.exception, app.exception
        assert decisions == [True, True], "the page did not decide again once its panel saw the run training"
        assert any(f"Run {run_id} · Training" in text for text in texts(app.caption))  # the panel follows it
    finally:
        manager.cancel(run_id, app.session_state["session_id"])
    wait_until_done(app)


def test_a_run_interrupted_by_a_restart_can_be_run_again_from_its_spec():
    store = job_manager().store
    spec = {"arch": "basic_cnn", "preset": "quick", "epochs": 1, "max_lr": 0.1, "batch_size": 128,
            "optimizer": "sgd", "n_train": 600, "seed": 0}
    store.add_run("1a2b3c4d5e", "s-before-restart", "mnist", spec, created=1.0)
    store.set_state("1a2b3c4d5e", "interrupted", {"key": "run.interrupted"}, finished=2.0)  # as a restart leaves it
    app = open_page(MNIST_PAGE, run="1a2b3c4d5e")
    assert any("Interrupted" in text for text in texts(app.warning))
    click(app, "Run it again")
    again = app.session_state["mnist_run_id"]
    assert again != "1a2b3c4d5e"
    assert job_manager().status(again)["spec"] == spec
    wait_until_done(app)
    assert job_manager().status(again)["state"] == "finished"
