"""The bias lab in a real browser: the COMPAS headline, then a pivot of the cross-tab redraws its table,
its chart and the link; then the feedback loop steps a day (one test: each page load costs seconds)."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import REPO_ROOT, expect_no_page_not_found

pytestmark = pytest.mark.e2e

EN = json.loads((REPO_ROOT / "core" / "locales" / "en.json").read_text(encoding="utf-8"))
CROSSTAB_GROUPS = """() => {
    const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
    return plot.data.map(trace => trace.name);
}"""


def open_lab(page: Page, server, query: str = "") -> None:
    """Home first, then the lab's address, as a student who was sent its link."""
    page.goto(server.url)
    expect(page.get_by_role("link", name=EN["lab.bias.title"]).first).to_be_visible(timeout=60_000)
    page.goto(f"{server.url}/bias{query}")
    expect(page.locator("h1").filter(has_text=EN["lab.bias.title"])).to_be_visible()
    expect_no_page_not_found(page)


def crosstab_cells(page: Page) -> list[str]:
    """The cross-tab's cells, as the data grid's accessible table holds them."""
    return page.get_by_test_id("stDataFrame").first.locator("td").all_inner_texts()


def test_pivoting_the_crosstab_redraws_it_and_the_feedback_loop_steps_a_day(page: Page, server, artifacts):
    open_lab(page, server)
    expect(page.get_by_text(re.compile(r"labelled higher risk 1\.92× as often"))).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("stDataFrame").first.locator("td").first).to_have_text("African-American")
    by_race = crosstab_cells(page)
    assert by_race[:5] == ["African-American", "Low", "873", "473", "1346"]
    assert page.evaluate(CROSSTAB_GROUPS)[0] == "African-American"

    page.get_by_test_id("stSelectbox").filter(has_text=EN["bias.by"]).click()
    page.get_by_role("option", name=EN["bias.by.sex"]).click()
    expect(page.get_by_test_id("stDataFrame").first.locator("td").first).to_have_text("Female")
    by_sex = crosstab_cells(page)
    assert by_sex != by_race and "Male" in by_sex and "Caucasian" not in by_sex
    assert page.evaluate(CROSSTAB_GROUPS) == ["Female", "Male"]
    page.wait_for_function("() => new URLSearchParams(location.search).get('by') === 'sex'")
    expect(page.get_by_role("heading", name="Error rates by sex")).to_be_visible()
    page.screenshot(path=str(artifacts / "bias-compas-by-sex.png"))

    page.get_by_role("tab", name=EN["bias.tab.loop"]).click()
    expect(page.get_by_text(re.compile(r"^Day 60: district A gets"))).to_be_visible()
    page.get_by_role("button", name=EN["bias.next_day"]).click()
    expect(page.get_by_text(re.compile(r"^Day 61: district A gets"))).to_be_visible()
    page.wait_for_function("() => new URLSearchParams(location.search).get('days') === '61'")
    page.screenshot(path=str(artifacts / "bias-feedback-loop.png"))
