"""The style lab in a real browser: a style transfer shows its picture forming (new frames, later evaluations in
the caption), Cancel stops it with its frames kept and the PNG offered (other tabs: tests/app/test_style_page.py)."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import REPO_ROOT, record_pictures, wait_for_pictures

pytestmark = pytest.mark.e2e

EN = json.loads((REPO_ROOT / "core" / "locales" / "en.json").read_text(encoding="utf-8"))
RUN_TIMEOUT_MS = 120_000
STEPS = 2000  # minutes on any machine: the test cancels it once the picture has changed twice
FRAME_CAPTION = re.compile(r"After (\d+) evaluations")  # style.frame_caption


def test_a_transfer_shows_the_picture_forming_and_cancel_keeps_it(page: Page, server, artifacts):
    page.goto(f"{server.url}/style?tab=transfer&preset=quick&opt=adam&lr=0.03&steps={STEPS}")
    expect(page.locator("h1").filter(has_text="Style transfer")).to_be_visible()
    expect(page.get_by_text(EN["style.press_paint"])).to_be_visible()
    paint = page.get_by_role("button", name=EN["style.paint"])
    expect(paint).to_be_enabled(timeout=RUN_TIMEOUT_MS)

    record_pictures(page, r"^After \d+ evaluations")
    paint.click()
    frames = wait_for_pictures(page, 3, RUN_TIMEOUT_MS)  # a frame every ~2 s while it runs
    page.get_by_role("button", name=EN["mnist.cancel"]).click()
    expect(page.get_by_text(EN["state_note.cancelled"])).to_be_visible(timeout=30_000)

    steps = [int(FRAME_CAPTION.search(caption).group(1)) for _, caption in frames]
    assert steps == sorted(steps) and steps[0] < steps[-1] < STEPS, f"frame evaluations {steps}"
    expect(page.get_by_role("button", name=EN["style.download_png"])).to_be_visible()  # the frames are kept
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    page.screenshot(path=str(artifacts / "style-transfer.png"))
