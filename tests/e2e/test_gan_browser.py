"""The GAN lab in a real browser: a short DCGAN run redraws its grid of samples while it trains (a new picture,
a later step in the caption), ends with its "Done" message and shows its chart."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import REPO_ROOT, record_pictures, wait_for_picture

pytestmark = pytest.mark.e2e

EN = json.loads((REPO_ROOT / "core" / "locales" / "en.json").read_text(encoding="utf-8"))
RUN_TIMEOUT_MS = 120_000
STEPS = 20
GRID_CAPTION = re.compile(r"The same 64 noise vectors at step (\d+)\.")  # gan.grid_caption


def test_a_short_dcgan_run_redraws_its_sample_grid_and_finishes(page: Page, server, artifacts):
    # Straight to the lab's address: the server fixture has visited Home once (a cold server's very first visit
    # straight to a lab's address shows "Page not found").
    page.goto(f"{server.url}/gans?preset=quick&steps={STEPS}&width=8")
    expect(page.locator("h1").filter(has_text="GANs")).to_be_visible()
    expect(page.get_by_text(EN["gan.press_train"])).to_be_visible()
    steps_input = page.get_by_role("spinbutton", name=EN["gan.steps"], exact=True)
    expect(steps_input).to_have_value(str(STEPS))  # the link's settings were taken
    train = page.get_by_role("button", name=EN["gan.train"].format(loss=EN["gan.loss.dcgan"]))
    expect(train).to_be_enabled(timeout=RUN_TIMEOUT_MS)  # the worker may still be timing the device

    record_pictures(page, r"^The same 64 noise vectors at step \d+")
    train.click()
    expect(page.get_by_text(f"Done: {STEPS} steps")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    grids = wait_for_picture(page, f"The same 64 noise vectors at step {STEPS}.")  # the final grid shown last
    steps = [int(GRID_CAPTION.search(caption).group(1)) for _, caption in grids]
    assert len({src for src, _ in grids}) >= 2, f"the grid never changed: {grids}"
    assert steps == sorted(steps) and steps[0] < steps[-1] == STEPS, f"grid steps {steps}"
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    expect(page.get_by_text(EN["gan.interpolation"])).to_be_visible()
    page.screenshot(path=str(artifacts / "gan-dcgan.png"))
