"""The pages, run by streamlit.testing's AppTest: what a student sees, without a browser."""
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import TIMEOUT

HOME = str(Path(__file__).resolve().parents[2] / "Home.py")
MNIST_PAGE = "app_pages/mnist_lab.py"


def open_page(page: str | None = None, **query) -> AppTest:
    app = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    app.query_params.update(query)
    app.run()
    if page:
        app.switch_page(page).run()
    assert not app.exception, app.exception
    return app


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def click(app: AppTest, label_start: str) -> None:
    next(b for b in app.button if b.label.startswith(label_start)).click()
    app.run()
    assert not app.exception, app.exception


def wait_until_done(app: AppTest, seconds: float = 90) -> None:
    """Re-run the page (as the fragment's timer does in a browser) until the run ended."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        app.run()
        assert not app.exception, app.exception
        if app.success or app.error or any("Cancelled" in w for w in texts(app.warning)):
            return
    pytest.fail("the run did not end in time")


def train_small_run(app: AppTest, n_train: int = 600) -> str:
    """Train the quick preset on a few hundred digits (a real run of a second or two) to its end."""
    app.radio(key="mnist_preset").set_value("quick").run()
    app.number_input(key="mnist_n_train").set_value(n_train).run()
    click(app, "▶")
    run_id = app.session_state["mnist_run_id"]
    wait_until_done(app)
    return run_id


def test_home_shows_every_lab_and_the_device():
    app = open_page()
    markdown = " ".join(texts(app.markdown))
    for title in ("MNIST", "Learning rate", "Convolution", "Style transfer", "GANs", "restoration", "RNN", "Bias", "Darknet"):
        assert title in markdown
    assert any("CPU" in text or "GPU" in text or "Measuring" in text for text in texts(app.info) + texts(app.caption))


def test_home_in_chinese():
    app = open_page(lang="zh")
    assert app.title[0].value != "fast.ai lesson playground"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in app.title[0].value + app.markdown[0].value)


def test_mnist_lab_shows_the_lesson_model():
    app = open_page(MNIST_PAGE)
    assert "MNIST" in app.title[0].value
    assert any("12,126" in caption for caption in texts(app.caption))
    assert app.selectbox(key="mnist_arch").value == "basic_cnn"
    assert not app.error


@pytest.mark.parametrize("lr", ["0", "-1", "1e9", "nan", "abc", ""])
def test_bad_learning_rate_is_refused_with_a_message(lr):
    app = open_page(MNIST_PAGE)
    app.text_input(key="mnist_lr").set_value(lr).run()
    assert app.error, f"no error shown for learning rate {lr!r}"
    train = next(b for b in app.button if "Train" in b.label)
    assert train.disabled


def test_zero_epochs_is_refused_with_a_message():
    app = open_page(MNIST_PAGE)
    app.number_input(key="mnist_epochs").set_value(0).run()
    assert any("Epochs" in text for text in texts(app.error))


def test_risky_learning_rate_gets_a_warning_but_is_allowed():
    app = open_page(MNIST_PAGE)
    app.text_input(key="mnist_lr").set_value("5").run()
    assert app.warning and not app.error


def test_junk_in_the_link_falls_back_to_defaults_with_a_notice():
    app = open_page(MNIST_PAGE, arch="nonsense", epochs="-3", lr="abc", bs="1e99", zzz="1",
                    run="[click](http://example.invalid)")
    assert app.selectbox(key="mnist_arch").value == "basic_cnn"
    assert app.number_input(key="mnist_epochs").value == 3
    assert app.text_input(key="mnist_lr").value == "0.1"
    assert len(app.warning) >= 5
    assert app.session_state["mnist_run_id"] is None
    assert not app.error


def test_a_link_reproduces_the_setup():
    app = open_page(MNIST_PAGE, arch="resnet_cnn", preset="lecture", epochs="12", lr="0.05")
    assert app.selectbox(key="mnist_arch").value == "resnet_cnn"
    assert app.radio(key="mnist_preset").value == "lecture"
    assert app.number_input(key="mnist_epochs").value == 12
    assert app.text_input(key="mnist_lr").value == "0.05"
    assert app.query_params["arch"] == "resnet_cnn"


def test_changing_the_preset_fills_in_its_numbers():
    app = open_page(MNIST_PAGE)
    app.selectbox(key="mnist_arch").set_value("resnet_cnn").run()
    app.radio(key="mnist_preset").set_value("lecture").run()
    assert app.number_input(key="mnist_epochs").value == 12
    assert app.text_input(key="mnist_lr").value == "0.05"
    assert app.query_params["epochs"] == "12"


def test_a_tiny_run_goes_from_train_to_finished_and_can_be_compared():
    app = open_page(MNIST_PAGE)
    first_run = train_small_run(app)
    assert any("Finished" in text for text in texts(app.success)), texts(app.success) + texts(app.error)
    assert len(app.get("plotly_chart")) == 2  # the training curves and the confusion matrix
    assert app.query_params["run"] == first_run

    click(app, "▶")
    wait_until_done(app)
    compare = app.multiselect(key="mnist_compare")
    assert any(option.startswith(first_run[:6]) for option in compare.options)
    compare.select(first_run).run()
    assert not app.exception
    curves = app.get("plotly_chart")[0].proto.spec
    assert curves.count(first_run[:6]) >= 1  # the earlier run is drawn beside this one


def test_a_finished_run_reopens_from_its_link():
    app = open_page(MNIST_PAGE)
    run_id = train_small_run(app)

    reopened = open_page(MNIST_PAGE, run=run_id)
    assert any("Finished" in text for text in texts(reopened.success))
    assert any(run_id in caption for caption in texts(reopened.caption))


def test_cancel_stops_a_run():
    app = open_page(MNIST_PAGE)
    app.radio(key="mnist_preset").set_value("demo").run()
    click(app, "▶")
    run_id = app.session_state["mnist_run_id"]
    click(app, "■")
    wait_until_done(app)
    assert any("Cancelled" in text for text in texts(app.warning))
    from ui.common import job_manager

    assert job_manager().status(run_id)["state"] == "cancelled"


def test_settings_survive_a_visit_to_home():
    app = open_page(MNIST_PAGE)
    app.number_input(key="mnist_epochs").set_value(5).run()
    app.text_input(key="mnist_lr").set_value("0.03").run()
    app.switch_page("app_pages/home.py").run()
    app.query_params.clear()  # a browser's link loses the lab's settings on the way to Home
    app.run()
    app.switch_page(MNIST_PAGE).run()
    assert not app.exception and not app.error
    assert app.number_input(key="mnist_epochs").value == 5
    assert app.text_input(key="mnist_lr").value == "0.03"
