"""The restoration lab in a real browser: stage 1 shows its triptych of held-out crops refreshing (new pictures,
later steps in the caption), Cancel stops it with the pictures and the charts kept (other tabs:
tests/app/test_restore_page.py)."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import REPO_ROOT, record_pictures, wait_for_pictures

pytestmark = pytest.mark.e2e

EN = json.loads((REPO_ROOT / "core" / "locales" / "en.json").read_text(encoding="utf-8"))
RUN_TIMEOUT_MS = 120_000
STEPS = 5000  # minutes on any machine: the test cancels it once the triptych has changed twice
CAPTION = re.compile(r"after step (\d+)")  # restore.triptych_caption


def test_stage_one_shows_the_triptych_refreshing_and_cancel_keeps_it(page: Page, server, artifacts):
    page.goto(f"{server.url}/restoration?tab=train&preset=quick&mse_steps={STEPS}&feature_steps=0&gan_steps=0")
    expect(page.locator("h1").filter(has_text="Image restoration")).to_be_visible()
    expect(page.get_by_text(EN["restore.press_train"])).to_be_visible()
    train = page.get_by_role("button", name=EN["restore.train"])
    expect(train).to_be_enabled(timeout=RUN_TIMEOUT_MS)

    record_pictures(page, r"^Held-out crops after step \d+")
    train.click()
    frames = wait_for_pictures(page, 3, RUN_TIMEOUT_MS)  # a triptych every ~3 s while it runs
    page.get_by_role("button", name=EN["mnist.cancel"]).click()
    expect(page.get_by_text(EN["state_note.cancelled"])).to_be_visible(timeout=30_000)

    steps = [int(CAPTION.search(caption).group(1)) for _, caption in frames]
    assert steps == sorted(steps) and steps[0] < steps[-1] < STEPS, f"triptych steps {steps}"
    expect(page.get_by_role("button", name=EN["style.download_png"])).to_be_visible()  # the pictures are kept
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    page.screenshot(path=str(artifacts / "restore-train.png"))
