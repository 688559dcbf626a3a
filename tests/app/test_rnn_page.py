"""The RNN lab, run by AppTest: each tab, the stepper, settings and their mistakes, the link, a real run."""
import pytest

from tests.app.test_pages import click, open_page, texts
from tests.app.test_schedule_page import wait_for

PAGE = "app_pages/rnn_lab.py"


def markdown(app) -> str:
    return " ".join(texts(app.markdown))


def test_the_data_tab_checks_the_lessons_numbers():
    app = open_page(PAGE)
    assert "RNN" in app.title[0].value and not app.error
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Validation words"] == "13,017" and metrics["Vocabulary"] == "38"
    assert any(caption.startswith("✓ The lesson printed the same") for caption in texts(app.caption))
    assert any("[2, 18, 10, 11, 8" in code.value for code in app.code)
    app.number_input(key="rnn_any_number").set_value(8123).run()
    assert any("eight thousand one hundred twenty three" in code.value for code in app.code)


def test_the_batches_tab_cuts_the_validation_stream_as_the_lesson_did():
    app = open_page(PAGE, tab="batches")
    assert not app.exception and not app.error
    info = " ".join(texts(app.info))
    assert "203 rows × 64 columns" in info and "3 batches of 95" in info and "12,928 words" in info
    assert any(code.value.startswith("x: xxbos eight thousand one") for code in app.code)
    app.slider(key="rnn_vbptt").set_value(20).run()
    assert "9 batches of 45" in " ".join(texts(app.info))  # the first batch is bptt + 25
    app.slider(key="rnn_vbatch").set_value(9).run()  # the last batch; then fewer batches: no crash
    app.slider(key="rnn_vbptt").set_value(100).run()
    assert not app.exception and app.slider(key="rnn_vbatch").value <= 2


def test_the_unrolling_tab_steps_word_by_word():
    app = open_page(PAGE, tab="unroll")
    assert "Word **1** of 3: **eight**" in markdown(app)
    assert any("no finished run yet" in warning for warning in texts(app.warning))  # nothing trained yet here
    assert any("only guesses after its last word" in info for info in texts(app.info))
    click(app, "Next")
    click(app, "Next")
    assert "Word **3** of 3: **one**" in markdown(app)
    assert "After “eight thousand one” it guesses" in markdown(app)
    assert next(b for b in app.button if b.label.startswith("Next")).disabled
    click(app, "◀ Back")
    assert "Word **2** of 3" in markdown(app)


def test_the_same_network_three_ways_agrees():
    app = open_page(PAGE, tab="unroll")
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["largest difference of 2,432 numbers"] == "0.0e+00"
    assert float(metrics["largest difference of 81,920 numbers"]) < 1e-5


def test_choosing_a_model_sets_the_lessons_numbers_for_it():
    app = open_page(PAGE, tab="train")
    app.selectbox(key="rnn_model").set_value("model5").run()
    assert app.number_input(key="rnn_epochs").value == 5 and app.text_input(key="rnn_lr").value == "0.01"
    assert app.number_input(key="rnn_bptt").value == 20 and app.toggle(key="rnn_rand").value
    app.radio(key="rnn_preset").set_value("lecture").run()
    assert app.number_input(key="rnn_epochs").value == 10
    assert app.query_params["model"] == "model5" and app.query_params["epochs"] == "10"
    assert any("Total: 54,950 parameters" in caption for caption in texts(app.caption))


@pytest.mark.parametrize("field, value, message", [
    ("rnn_lr", "abc", "Type the learning rate as a number"), ("rnn_lr", "0", "above 0"),
    ("rnn_lr", "-1", "above 0"), ("rnn_lr", "1e9", "at most 1"), ("rnn_bptt", 20, "Model0 reads exactly three"),
    ("rnn_bs", 1, "bs must be between 2"),
])
def test_settings_that_make_no_sense_get_a_message_and_no_train_button(field, value, message):
    app = open_page(PAGE, tab="train")
    widget = app.text_input(key=field) if field == "rnn_lr" else app.number_input(key=field)
    widget.set_value(value).run()
    assert not app.exception
    assert message in " ".join(texts(app.error))
    assert next(b for b in app.button if b.label.startswith("▶ Train")).disabled


def test_junk_in_the_link_is_named_and_the_page_still_works():
    app = open_page(PAGE, model="model9", bs="abc", tab="nowhere", number="12", lr="nan")
    warnings = " ".join(texts(app.warning))
    for name in ("model", "bs", "tab", "number", "lr"):
        assert f"'{name}'" in warnings
    assert app.selectbox(key="rnn_model").value == "model0" and not app.exception


def test_a_link_to_a_model_gets_that_models_preset():
    app = open_page(PAGE, model="model3", tab="train", epochs="7")
    assert app.number_input(key="rnn_epochs").value == 7  # from the link
    assert app.text_input(key="rnn_lr").value == "0.01" and app.number_input(key="rnn_bptt").value == 20  # model3's demo


def test_a_quick_run_trains_fills_the_table_and_lends_its_weights_to_the_stepper():
    app = open_page(PAGE, tab="train", model="model1", preset="quick")
    click(app, "▶ Train")
    wait_for(app, lambda a: bool(a.success) or bool(a.error), seconds=120)
    assert not app.error, texts(app.error)
    assert "Finished, Model1" in app.success[0].value
    assert "validation words guessed right (the lesson: 46.1%)" in app.success[0].value
    table = app.dataframe[-1].value
    here = dict(zip(table["model"], table["here"]))
    assert here["Model1 · the same as a loop"].endswith("%") and here["Model0 · three words, written out"] == ""
    stepper = open_page(PAGE, tab="unroll", model="model1")
    assert any(caption.startswith("The weights of run") for caption in texts(stepper.caption))
    shared = open_page(PAGE, run=app.session_state["rnn_run_id"])  # a link to the run opens its Train tab
    assert shared.success and "guessed right" in shared.success[0].value
    named = open_page(PAGE, tab="unroll", run=app.session_state["rnn_run_id"])  # unless the link names its tab
    assert "Word **1** of 3" in markdown(named)


def test_switching_the_language_keeps_the_open_tab():
    app = open_page(PAGE, tab="unroll")
    app.selectbox(key="lang").set_value("zh").run()
    assert "第 **1** 个单词" in markdown(app) and not app.exception


def test_the_page_reads_in_chinese():
    app = open_page(PAGE, lang="zh", tab="unroll")
    assert "RNN" in app.title[0].value and "第 7 课" in app.title[0].value
    assert not app.exception and not app.error


def test_play_starts_from_the_word_shown_and_choosing_another_model_stops_it():
    app = open_page(PAGE, tab="unroll")
    click(app, "Next")
    click(app, "▶ Play")
    assert "Word **2** of 3" in markdown(app)  # the timer moves it on, not the press itself
    assert any(b.label == "⏸ Pause" for b in app.button)
    app.selectbox(key="rnn_model").set_value("model5").run()
    assert "Word **1** of 8" in markdown(app) and any(b.label == "▶ Play" for b in app.button)


def test_a_visit_to_another_tab_keeps_the_chosen_batch_and_column():
    app = open_page(PAGE, tab="batches")
    app.slider(key="rnn_vbatch").set_value(3).run()
    app.slider(key="rnn_vcolumn").set_value(5).run()
    app.session_state["rnn_tab"] = "data"
    app.run()
    app.session_state["rnn_tab"] = "batches"
    app.run()
    assert app.slider(key="rnn_vbatch").value == 3 and app.slider(key="rnn_vcolumn").value == 5
