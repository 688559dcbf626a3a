"""The learning-rate & momentum lab, run by AppTest: the table, the plan, the link, training."""
import base64
import json
import time

import numpy as np
import pytest

from core import schedule_lab as lab
from core.schedules import schedule_curves
from tests.app.test_pages import open_page, texts

PAGE = "app_pages/schedule_lab.py"


def plan_lr(app) -> np.ndarray:
    """The y values of the chart's dashed plan trace in the learning-rate panel."""
    return trace(app, "plan", axis="y")


def trace(app, name: str, axis: str) -> np.ndarray:
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    for data in spec["data"]:
        if data.get("name") == name and data.get("yaxis", "y") == axis:
            return decode(data["y"])
    raise AssertionError(f"no trace {name!r} on {axis}: {[d.get('name') for d in spec['data']]}")


def decode(values) -> np.ndarray:
    if isinstance(values, dict):  # plotly sends long arrays as base64 typed arrays
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
    return np.asarray(values, dtype=float)


def edit(app, changes: dict) -> None:
    """What st.data_editor sends when a student edits cells (its key changes with each preset)."""
    key = f"sched_table_{app.session_state['sched_table_version']}"
    app.session_state[key] = {"edited_rows": {}, "added_rows": [], "deleted_rows": [], **changes}
    app.run()
    assert not app.exception, app.exception


def errors(app) -> str:
    return " ".join(texts(app.error))


def wait_for(app, done, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        app.run()
        assert not app.exception, app.exception
        if done(app):
            return
    pytest.fail("the run did not end in time")


def test_the_page_opens_on_the_lessons_one_cycle_plan():
    app = open_page(PAGE)
    assert "Learning rate" in app.title[0].value
    assert not app.error
    lr = plan_lr(app)
    assert lr[0] == pytest.approx(0.01) and lr.max() == pytest.approx(0.1)
    assert any("3 phases, 141 iterations (47 per epoch, 3 epochs)" in c for c in texts(app.caption))


def test_editing_a_cell_redraws_the_curve_and_the_link():
    app = open_page(PAGE)
    edit(app, {"edited_rows": {0: {"lr_start": 0.05}}})
    assert plan_lr(app)[0] == pytest.approx(0.05)
    assert app.query_params["phases"].startswith("1.35,sgd_momentum,0.05,0.1,linear")


def test_a_preset_fills_the_table():
    app = open_page(PAGE)
    app.selectbox(key="sched_preset").set_value("sgdr").run()
    assert not app.exception
    rows = app.session_state["sched_rows"]
    assert [row["epochs"] for row in rows] == [0.05, 0.95, 2.0, 4.0]
    assert any("4 phases" in caption for caption in texts(app.caption))
    assert plan_lr(app).max() == pytest.approx(lab.SGDR_DEFAULTS["lr"])


def test_preset_parameters_are_the_lesson_functions_arguments():
    app = open_page(PAGE)
    app.number_input(key="sched_param_one_cycle_pct").set_value(40.0).run()
    next(b for b in app.button if b.label == "Fill the table with these").click().run()
    assert [row["epochs"] for row in app.session_state["sched_rows"]] == [0.9, 0.9, 1.2]


def test_the_link_holds_the_table_and_reproduces_it():
    rows = lab.preset_rows("adam_then_sgd")
    rows[1]["lr_end"] = 3e-4
    app = open_page(PAGE, phases=lab.rows_to_text(rows), bs="256", n_train="60000")
    assert app.session_state["sched_rows"] == rows
    assert app.number_input(key="sched_bs").value == 256
    expected = schedule_curves(lab.phases_from_rows(rows), lab.iterations_per_epoch(60_000, 256))["lr"]
    np.testing.assert_allclose(plan_lr(app)[:5], expected.iloc[:5])
    assert not app.warning


def test_junk_in_the_link_is_named_and_ignored():
    app = open_page(PAGE, phases="1,2,3~oops", bs="-5", swa="abc", run="../../etc")
    warnings = " ".join(texts(app.warning))
    for name in ("phases", "bs", "swa", "run"):
        assert name in warnings
    assert plan_lr(app).max() == pytest.approx(0.1)  # the default one-cycle table
    assert not app.error


@pytest.mark.parametrize("changes, message", [
    ({"edited_rows": {0: {"epochs": -1}}}, "Phase 1: Epochs must be above 0"),
    ({"edited_rows": {1: {"lr_decay": "exponential", "lr_end": None}}}, "Phase 2: Exponential decay"),
    ({"edited_rows": {2: {"lr_decay": "polynomial"}}}, "Phase 3: Polynomial decay needs a power"),
    ({"edited_rows": {2: {"lr_decay": "polynomial", "power": -1}}}, "power must be above 0"),
    ({"edited_rows": {0: {"optimizer": "sgd"}}}, "Plain SGD has no momentum"),
    ({"deleted_rows": [0, 1, 2]}, "no phases"),
    ({"edited_rows": {0: {"epochs": 40}}}, "limited to 30 epochs"),
])
def test_a_table_that_makes_no_sense_gets_a_message_and_no_train_button(changes, message):
    app = open_page(PAGE)
    edit(app, changes)
    assert message in errors(app)
    train = next(b for b in app.button if b.label.startswith("▶"))
    assert train.disabled


def test_the_page_reads_in_chinese():
    app = open_page(PAGE, lang="zh")
    assert "学习率" in app.title[0].value
    assert not app.error


def test_train_with_this_schedule_the_optimizer_follows_the_plan():
    app = open_page(PAGE)
    app.number_input(key="sched_bs").set_value(512).run()
    next(b for b in app.button if b.label.startswith("▶")).click().run()
    assert not app.exception, app.exception
    run_id = app.session_state["sched_run_id"]
    wait_for(app, lambda a: bool(a.success) or bool(a.error))
    assert not app.error, errors(app)
    assert "Finished" in app.success[0].value
    actual = trace(app, "this run (actual)", axis="y")  # the lr read back from the optimizer
    expected = schedule_curves(lab.phases_from_rows(lab.preset_rows("one_cycle")), lab.iterations_per_epoch(6000, 512))
    np.testing.assert_allclose(actual, expected["lr"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(trace(app, "this run (actual)", axis="y2"), expected["momentum"].to_numpy(), rtol=1e-12)
    assert len(trace(app, "this run (actual)", axis="y3")) == len(expected)  # the loss, on the same iterations
    assert app.query_params["run"] == run_id


def test_swa_reports_the_accuracy_with_and_without_it():
    app = open_page(PAGE)
    app.selectbox(key="sched_preset").set_value("constant").run()
    app.number_input(key="sched_bs").set_value(1024).run()
    app.number_input(key="sched_swa").set_value(1.0).run()
    next(b for b in app.button if b.label.startswith("▶")).click().run()
    wait_for(app, lambda a: bool(a.success) or bool(a.error))
    assert not app.error, errors(app)
    labels = [metric.label for metric in app.metric]
    assert "Validation accuracy" in labels and "Accuracy with SWA" in labels
    assert any("average of 3 sets of weights" in caption for caption in texts(app.caption))


def test_lr_finder_suggests_a_rate_and_use_it_rescales_the_table():
    app = open_page(PAGE)
    app.slider(key="sched_finder_iterations").set_value(30).run()
    next(b for b in app.button if b.label.startswith("🔎")).click().run()
    assert not app.exception, app.exception
    wait_for(app, lambda a: any("Done in" in s for s in texts(a.success)) or bool(a.error))
    assert not app.error, errors(app)
    use = next(b for b in app.button if b.label.startswith("Use it"))
    suggestion = float(use.label.rsplit(" ", 1)[-1])
    use.click().run()
    assert not app.exception, app.exception
    assert plan_lr(app).max() == pytest.approx(suggestion, rel=0.05)
    rows = app.session_state["sched_rows"]
    assert rows[0]["lr_end"] / rows[0]["lr_start"] == pytest.approx(10)  # the shape kept, the height changed


def test_torch_schedulers_overlay_the_plan_and_the_lr_axis_can_be_logarithmic():
    app = open_page(PAGE)
    app.multiselect(key="sched_overlays").set_value(list(lab.OVERLAYS)).run()
    app.toggle(key="sched_log_lr").set_value(True).run()
    assert not app.exception, app.exception
    one_cycle = trace(app, "torch OneCycleLR", axis="y")
    assert len(one_cycle) == 141 and one_cycle.max() == pytest.approx(0.1, rel=1e-3)
    restarts = trace(app, "torch CosineAnnealingWarmRestarts", axis="y")
    assert restarts[47] == pytest.approx(0.1)  # restarted after one epoch of 47 iterations
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["yaxis"]["type"] == "log"


def test_a_link_to_another_labs_run_is_named_and_ignored():
    from core.runs import RunStore

    store = RunStore()  # the app tests' store (PLAYGROUND_DB)
    store.add_run("0123456789", "someone", "mnist", {"arch": "basic_cnn"}, time.time())
    app = open_page(PAGE, run="0123456789")
    assert app.session_state["sched_run_id"] is None
    assert any("run" in warning for warning in texts(app.warning))
    assert not app.error


def test_preset_arguments_that_make_no_sense_get_a_message():
    app = open_page(PAGE)
    app.number_input(key="sched_param_one_cycle_div").set_value(0.0).run()
    next(b for b in app.button if b.label == "Fill the table with these").click().run()
    assert not app.exception, app.exception
    assert "div must be a number from 1 to" in errors(app)
    assert plan_lr(app).max() == pytest.approx(0.1)  # the table stays as it was


def test_a_schedule_that_diverges_stops_with_a_message_that_says_what_to_change():
    app = open_page(PAGE)
    app.selectbox(key="sched_preset").set_value("constant").run()
    edit(app, {"edited_rows": {0: {"lr_start": 1000.0}}})
    next(b for b in app.button if b.label.startswith("▶")).click().run()
    wait_for(app, lambda a: bool(a.success) or bool(a.error))
    message = errors(app)
    assert ("NaN" in message or "exploded" in message) and "10 times smaller" in message, message
