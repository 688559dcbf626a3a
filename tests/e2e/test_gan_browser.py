"""The GAN lab in a real browser: a DCGAN run redraws its grid of samples while it trains (a new picture, a later
step in the caption), shows its chart, and Cancel stops it with its grids kept (the finished run's interpolation:
tests/app/test_gan_page.py)."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import REPO_ROOT, record_pictures, wait_for_pictures

pytestmark = pytest.mark.e2e

EN = json.loads((REPO_ROOT / "core" / "locales" / "en.json").read_text(encoding="utf-8"))
RUN_TIMEOUT_MS = 120_000
STEPS = 5000  # minutes on any machine: the test cancels it once the grid has changed
GRID_CAPTION = re.compile(r"The same 64 noise vectors at step (\d+)\.")  # gan.grid_caption


def test_a_dcgan_run_redraws_its_sample_grid_and_cancel_keeps_it(page: Page, server, artifacts):
    # Straight to the lab's address, as a student who was sent its link.
    page.goto(f"{server.url}/gans?preset=quick&steps={STEPS}&width=8")
    expect(page.locator("h1").filter(has_text="GANs")).to_be_visible()
    expect(page.get_by_text(EN["gan.press_train"])).to_be_visible()
    steps_input = page.get_by_role("spinbutton", name=EN["gan.steps"], exact=True)
    expect(steps_input).to_have_value(str(STEPS))  # the link's settings were taken
    train = page.get_by_role("button", name=EN["gan.train"].format(loss=EN["gan.loss.dcgan"]))
    expect(train).to_be_enabled(timeout=RUN_TIMEOUT_MS)  # the worker may still be timing the device

    record_pictures(page, r"^The same 64 noise vectors at step \d+")
    train.click()
    grids = wait_for_pictures(page, 3, RUN_TIMEOUT_MS)  # a grid every ~3 s while it trains
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    page.get_by_role("button", name=EN["mnist.cancel"]).click()
    expect(page.get_by_text(EN["state_note.cancelled"])).to_be_visible(timeout=30_000)

    steps = [int(GRID_CAPTION.search(caption).group(1)) for _, caption in grids]
    assert steps == sorted(steps) and steps[0] < steps[-1] < STEPS, f"grid steps {steps}"
    expect(page.get_by_text(re.compile(r"The same 64 noise vectors at step \d+"))).to_be_visible()  # kept
    page.screenshot(path=str(artifacts / "gan-dcgan.png"))
