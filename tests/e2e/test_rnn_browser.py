"""The RNN lab in a real browser: step through the unrolled Model0 (Next, then Play moves the
highlight), look at the batches, and train a quick Model1 to its end."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from .conftest import REPO_ROOT

pytestmark = pytest.mark.e2e

EN = json.loads((REPO_ROOT / "core" / "locales" / "en.json").read_text(encoding="utf-8"))
RUN_TIMEOUT_MS = 120_000


def outlined_step(page: Page) -> int:
    """Which word of the diagram is outlined (the current step), read from the drawn figure itself."""
    return page.evaluate("""() => {
        const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
        return plot.data[0].marker.line.width.findIndex(width => width > 0);
    }""")


def test_stepping_through_the_unrolled_model_moves_the_highlight(page: Page, server, artifacts):
    page.goto(f"{server.url}/rnn")  # Home's links to the labs: test_conv_browser.py, test_mnist_browser.py
    expect(page.locator("h1").filter(has_text=EN["rnn.title"])).to_be_visible()
    page.get_by_role("tab", name=EN["rnn.tab.unroll"]).click()
    expect(page.get_by_text("Word 1 of 3")).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    assert outlined_step(page) == 0
    page.get_by_role("button", name=EN["rnn.next"]).click()
    expect(page.get_by_text("Word 2 of 3: thousand")).to_be_visible()
    page.wait_for_function("() => document.querySelector('[data-testid=\"stPlotlyChart\"] .js-plotly-plot')"
                           ".data[0].marker.line.width[1] > 0")
    page.get_by_role("button", name=EN["rnn.back"]).click()
    expect(page.get_by_text("Word 1 of 3: eight")).to_be_visible()
    page.get_by_role("button", name=EN["rnn.play"]).click()  # steps itself, about a word a second
    expect(page.get_by_text("Word 3 of 3: one")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("After “eight thousand one” it guesses")).to_be_visible()
    assert outlined_step(page) == 2
    expect(page.get_by_role("button", name=EN["rnn.play"])).to_be_visible()  # it stopped at the end
    page.screenshot(path=str(artifacts / "rnn-unrolled.png"))


def test_the_batches_tab_shows_the_lessons_cut(page: Page, server, artifacts):
    page.goto(f"{server.url}/rnn?tab=batches")
    expect(page.get_by_text("3 batches of 95, 69, 38 rows")).to_be_visible(timeout=60_000)
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    page.screenshot(path=str(artifacts / "rnn-batches.png"))


def test_a_quick_model1_trains_to_its_end(page: Page, server, artifacts):
    page.goto(f"{server.url}/rnn?tab=train&model=model1&preset=quick")
    expect(page.get_by_text("Estimated training time")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name=EN["rnn.train"].format(model=EN["rnn.name.model1"])).click()
    expect(page.get_by_text("validation words guessed right")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_text(EN["rnn.strip"])).to_be_visible()
    page.screenshot(path=str(artifacts / "rnn-trained.png"))
