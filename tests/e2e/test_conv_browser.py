"""The convolution lab in a real browser: Play slides the window (the lit box moves and the sum
changes), a slider redraws the grids and the link, the transposed convolution agrees with torch,
and the quick checkerboard run trains to its end."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from .conftest import REPO_ROOT

pytestmark = pytest.mark.e2e

EN = json.loads((REPO_ROOT / "core" / "locales" / "en.json").read_text(encoding="utf-8"))
RUN_TIMEOUT_MS = 120_000
WINDOW_BOX = """() => {
    const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
    const box = plot.layout.shapes[0];
    return [box.x0, box.y0];
}"""


def open_lab(page: Page, server, query: str) -> None:
    """Straight to the lab's address, as a student who was sent its link."""
    page.goto(f"{server.url}/convolutions?{query}")


def test_play_slides_the_window_then_a_slider_and_the_transposed_tab_redraw(page: Page, server, artifacts):
    page.goto(server.url)
    page.get_by_role("link", name=EN["lab.convolutions.title"]).first.click()
    expect(page.locator("h1").filter(has_text="Convolution arithmetic")).to_be_visible()
    expect(page.get_by_text("Output cell 1 of 9: row 0, column 0.")).to_be_visible()
    expect(page.get_by_text("so the output is 3×3")).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first).to_be_visible()
    first_box = page.evaluate(WINDOW_BOX)
    written_sum = page.locator('[data-testid="stCode"]').filter(has_text="out[")
    expect(written_sum).to_contain_text("out[0, 0] = ")
    page.get_by_role("button", name=EN["rnn.next"]).click()
    expect(page.get_by_text("Output cell 2 of 9: row 0, column 1.")).to_be_visible()
    box_moved_to = "([x, y]) => (" + WINDOW_BOX + ")().join() === [x, y].join()"
    page.wait_for_function(box_moved_to, arg=[first_box[0] + 2, first_box[1]])  # one stride to the right
    page.get_by_role("button", name=EN["rnn.play"]).click()  # about a cell a second
    expect(page.get_by_text("Output cell 9 of 9: row 2, column 2.")).to_be_visible(timeout=30_000)
    page.wait_for_function(box_moved_to, arg=[first_box[0] + 4, first_box[1] + 4])
    expect(written_sum).to_contain_text("out[2, 2] = ")
    expect(page.get_by_role("button", name=EN["rnn.play"])).to_be_visible()  # it stopped at the last cell
    page.screenshot(path=str(artifacts / "conv-window.png"))

    slider = page.locator('[data-testid="stSlider"]').filter(has_text=EN["conv.n"]).get_by_role("slider")
    slider.focus()
    slider.press("ArrowLeft")  # a 4×4 input
    expect(page.get_by_text("so the output is 2×2")).to_be_visible()
    expect(page.get_by_text("Output cell 1 of 4: row 0, column 0.")).to_be_visible()  # a new grid starts again
    page.wait_for_url("**n=4**")  # the link follows

    page.get_by_role("tab", name=EN["conv.tab.transposed"]).click()  # the same settings, output padding 1
    expect(page.get_by_text("so the output is 8×8")).to_be_visible()
    expect(page.get_by_text("takes 8×8 back to 4×4")).to_be_visible()
    expect(page.get_by_text("give the same 8×8 output")).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(2)
    page.screenshot(path=str(artifacts / "conv-transposed.png"))


def test_the_quick_checkerboard_run_trains_to_its_end(page: Page, server, artifacts):
    open_lab(page, server, "tab=checker&preset=quick")
    expect(page.get_by_text("k = 3 is not divisible by s = 2")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("training steps of all five generators")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name=EN["conv.train"]).click()
    expect(page.get_by_text("Trained 40 steps")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_text("After 40 training steps")).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(4)  # overlap, init, losses, trained
    page.screenshot(path=str(artifacts / "conv-checkerboards.png"))
