"""The Darknet lab, run by AppTest: knobs, the model's size, a quick run, the DAWNBench panel."""
import pytest

from tests.app.test_pages import click, open_page, texts
from tests.app.test_schedule_page import wait_for

PAGE = "app_pages/darknet_lab.py"


def test_the_page_shows_the_model_and_its_size_and_says_the_data_is_synthetic():
    app = open_page(PAGE)
    from ui.common import job_manager

    wait_for(app, lambda a: "cifar_synthetic" in job_manager().info, seconds=60)  # the worker has read the data
    assert "Darknet" in app.title[0].value and not app.error
    if job_manager().info["cifar_synthetic"]:
        assert any("synthetic stand-in" in warning for warning in texts(app.warning))
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Parameters"] == "209,442"  # the demo Darknet (1, 1, 1, 1) from 8 channels
    app.radio(key="dark_preset").set_value("lecture").run()
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Parameters"] == "31,410,922" and metrics["Multiply-adds per picture"] == "400.9 M"
    assert app.text_input(key="dark_blocks").value == "1, 2, 4, 6, 3"
    assert app.query_params["preset"] == "lecture"


@pytest.mark.parametrize("blocks", ["", "1, x", "1, 99", "1,1,1,1,1,1,1"])
def test_groups_that_make_no_sense_get_a_message(blocks):
    app = open_page(PAGE)
    app.text_input(key="dark_blocks").set_value(blocks).run()
    assert not app.exception
    assert "residual layers, such as 1, 2, 4, 6, 3" in " ".join(texts(app.error))
    assert next(b for b in app.button if b.label.startswith("▶")).disabled


def test_a_link_sets_the_knobs_and_junk_is_named():
    app = open_page(PAGE, blocks="2, 2", nf="16", epochs="abc", amp="7")
    assert app.text_input(key="dark_blocks").value == "2, 2" and app.selectbox(key="dark_nf").value == 16
    warnings = " ".join(texts(app.warning))
    assert "epochs" in warnings and "amp" in warnings


def test_a_quick_run_trains_and_fills_the_dawnbench_panel():
    app = open_page(PAGE)
    app.radio(key="dark_preset").set_value("quick").run()
    click(app, "▶")
    wait_for(app, lambda a: bool(a.success) or bool(a.error), seconds=120)
    assert not app.error, texts(app.error)
    assert "Finished" in app.success[0].value
    labels = [metric.label for metric in app.metric]
    assert "Training pictures per second" in labels
    table = app.dataframe[-1].value
    assert list(table["Who"])[0] == "This run" and "3.29 s" in list(table["Time to 94%"])
    if "synthetic" in app.success[0].value:
        assert list(table["Time to 94%"])[0] == "no claim: synthetic data"


def test_the_page_reads_in_chinese():
    app = open_page(PAGE, lang="zh")
    assert "Darknet" in app.title[0].value and "配方" in app.title[0].value
    assert not app.error


def test_a_stored_run_with_a_partial_result_opens_without_a_crash():
    import time

    from core.runs import RunStore

    store = RunStore()  # the app tests' store (PLAYGROUND_DB)
    store.add_run("abcdef0123", "someone", "darknet", lab_spec_dict(), time.time())
    store.set_result("abcdef0123", {"accuracy": 0.5})
    store.set_state("abcdef0123", "finished", finished=time.time())
    app = open_page(PAGE, run="abcdef0123")
    assert not app.exception, app.exception
    assert any("no claim: synthetic data" in str(frame.value.values) for frame in app.dataframe)


def lab_spec_dict() -> dict:
    from core import darknet_lab

    return darknet_lab.preset_spec("quick").to_dict()
