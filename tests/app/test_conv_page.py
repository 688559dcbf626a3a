"""The convolution lab, run by AppTest: every tab with its numbers, the steppers, impossible settings
explained, a link with junk in it, and the shape tracer's presets."""
from tests.app.test_pages import click, open_page, texts

PAGE = "app_pages/conv_lab.py"


def markdown(app) -> str:
    return " ".join(texts(app.markdown))


def errors(app) -> str:
    return " ".join(texts(app.error))


def test_the_window_steps_over_the_output_with_the_formula_worked_out():
    app = open_page(PAGE)
    assert "Convolution" in app.title[0].value and not app.error
    assert "⌊(5 + 2·1 − 1·(3 − 1) − 1) / 2⌋ + 1 = ⌊4 / 2⌋ + 1 = 3, so the output is **3×3**" in markdown(app)
    assert "Output cell **1 of 9**: row 0, column 0." in markdown(app)
    assert any(code.value.startswith("out[0, 0] = ") for code in app.code)
    click(app, "Next")
    assert "Output cell **2 of 9**: row 0, column 1." in markdown(app)
    assert any(code.value.startswith("out[0, 1] = ") for code in app.code)
    assert any("nn.Conv2d(1, 1, kernel_size=3, stride=2, padding=1" in code.value for code in app.code)


def test_an_impossible_window_is_explained_and_a_possible_one_comes_back():
    app = open_page(PAGE, tab="window", n="3", p="0")
    app.slider(key="conv_k").set_value(7).run()
    assert not app.exception
    assert "The kernel spans 7 cells but the padded input has only 3" in errors(app)
    app.slider(key="conv_p").set_value(2).run()
    assert not app.error and "so the output is **1×1**" in markdown(app)


def test_settings_are_kept_on_a_visit_to_another_page():
    app = open_page(PAGE, tab="window")
    app.slider(key="conv_n").set_value(8).run()
    app.slider(key="conv_p").set_value(2).run()
    app.switch_page("app_pages/home.py").run()
    app.switch_page(PAGE).run()
    assert (app.slider(key="conv_n").value, app.slider(key="conv_p").value) == (8, 2)
    assert "so the output is **5×5**" in markdown(app)


def test_junk_in_the_link_is_named_and_replaced_by_defaults():
    app = open_page(PAGE, tab="window", k="-3", s="abc", n="99", d="2")
    warnings = " ".join(texts(app.warning))
    assert all(f"setting '{name}' was not usable" in warnings for name in ("k", "s", "n"))
    assert "setting 'd'" not in warnings
    assert app.slider(key="conv_k").value == 3 and app.slider(key="conv_d").value == 2
    assert not app.error


def test_the_transposed_convolution_two_ways_agrees_with_torch():
    app = open_page(PAGE, tab="transposed", n="4", k="4", s="2", p="1", op="0")
    assert "so the output is **8×8**" in markdown(app)  # DCGAN's doubling
    assert any("takes 8×8 back to 4×4" in caption for caption in texts(app.caption))
    assert any("give the same 8×8 output: the largest difference between them is 0.0e+00" in text
               for text in texts(app.success))
    assert "Stamp **1 of 16**: input cell (0, 0)" in markdown(app)
    click(app, "Next")
    assert "Stamp **2 of 16**: input cell (0, 1)" in markdown(app)
    assert any("nn.ConvTranspose2d(1, 1, kernel_size=4, stride=2, padding=1, output_padding=0" in code.value
               for code in app.code)


def test_transposed_settings_that_cannot_work_or_cannot_be_read_say_so():
    app = open_page(PAGE, tab="transposed", n="4", k="3", s="2", op="1")
    app.slider(key="conv_op").set_value(2).run()
    assert "smaller than the stride or the dilation" in errors(app)
    app.slider(key="conv_op").set_value(0).run()
    app.slider(key="conv_n").set_value(16).run()
    app.slider(key="conv_s").set_value(4).run()
    assert "too many cells to read" in errors(app) and not app.exception


def test_the_spreadsheet_fit_gets_below_the_least_squares_filter():
    app = open_page(PAGE, tab="sheet")
    assert not app.error
    caption = next(text for text in texts(app.caption) if text.startswith("After 300 steps"))
    final, least_squares = [float(word.rstrip(";.")) for word in caption.split() if word.rstrip(";.")
                            .replace(".", "", 1).isdigit() and "." in word][:2]
    assert final < least_squares < 70
    assert app.metric[0].value == "70.00"  # the filter starts at zeros: every cell is wrong by itself
    click(app, "Next")
    assert float(app.metric[0].value) < 70


def test_the_overlap_map_is_even_only_when_the_stride_divides_the_kernel():
    app = open_page(PAGE, tab="checker")
    assert any("k = 3 is not divisible by s = 2" in text and "1, 2, 4" in text for text in texts(app.warning))
    app.slider(key="conv_ck").set_value(4).run()
    assert any("every cell gets 4 stamps" in text for text in texts(app.success))
    scores = app.dataframe[0].value
    by_name = dict(zip(scores.iloc[:, 0], scores.iloc[:, 1]))
    assert by_name["Pixel shuffle + ICNR"] < 0.1 < 1 < by_name["Transposed conv, k 3"]


def test_the_tracer_counts_the_lessons_mnist_cnn_and_follows_a_preset():
    app = open_page(PAGE, tab="tracer")
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Parameters"] == "12,126" and metrics["Output shape"] == "10"
    traced = next(frame.value for frame in app.dataframe if "agree" in frame.value.columns)
    assert set(traced["agree"]) == {"✅"} and list(traced["Parameters"][:2]) == [80, 16]
    app.selectbox(key="conv_tpreset").set_value("dcgan_g").run()
    assert app.text_input(key="conv_tshape").value == "100x1x1"
    assert {metric.label: metric.value for metric in app.metric}["Output shape"] == "3×64×64"
    assert any("nn.ConvTranspose2d(100, 512" in code.value for code in app.code)


def test_a_bad_input_shape_says_how_to_write_one():
    app = open_page(PAGE, tab="tracer")
    app.text_input(key="conv_tshape").set_value("28 by 28").run()
    assert "Write the input shape without the batch as C or C×H×W" in errors(app) and not app.exception
