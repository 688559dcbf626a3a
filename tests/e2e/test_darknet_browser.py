"""The Darknet lab in a real browser: start the demo preset and see pictures per second arrive."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from .conftest import REPO_ROOT

pytestmark = pytest.mark.e2e

EN = json.loads((REPO_ROOT / "core" / "locales" / "en.json").read_text(encoding="utf-8"))
RUN_TIMEOUT_MS = 120_000


def test_the_demo_preset_starts_and_shows_pictures_per_second(page: Page, server, artifacts):
    page.goto(f"{server.url}/darknet")  # Home's links to the labs: test_conv_browser.py, test_mnist_browser.py
    expect(page.locator("h1").filter(has_text=EN["dark.title"])).to_be_visible()
    expect(page.get_by_text("Estimated training time")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_text("209,442")).to_be_visible()  # the demo Darknet's parameters
    page.get_by_role("button", name=EN["dark.train"]).click()
    speed = page.get_by_test_id("stMetric").filter(has_text=EN["dark.images_per_second"])
    expect(speed).to_be_visible(timeout=RUN_TIMEOUT_MS)
    value = float(speed.get_by_test_id("stMetricValue").inner_text().replace(",", ""))
    assert value > 0
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    page.screenshot(path=str(artifacts / "darknet-training.png"))
    page.get_by_role("button", name=EN["mnist.cancel"]).click()
    expect(page.get_by_text(EN["state_note.cancelled"])).to_be_visible(timeout=30_000)
