"""The style lab in a real browser: a small style transfer shows its picture forming (new frames, later
evaluations in the caption), ends with "Done" and offers the PNG (the other tabs: tests/app/test_style_page.py)."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import REPO_ROOT

pytestmark = pytest.mark.e2e

EN = json.loads((REPO_ROOT / "core" / "locales" / "en.json").read_text(encoding="utf-8"))
RUN_TIMEOUT_MS = 120_000
STEPS = 20
FRAME_CAPTION = re.compile(r"After (\d+) evaluations")  # style.frame_caption
# Records each (src, caption) of the forming picture; Streamlit replaces elements on every update, so the
# observer looks the picture up afresh on each change of the page.
FRAME_OBSERVER = r"""
() => {
  window.__frames = [];
  const scan = () => {
    for (const figure of document.querySelectorAll('[data-testid="stImage"]')) {
      const img = figure.querySelector('img');
      const caption = figure.querySelector('[data-testid="stImageCaption"]');
      const text = caption ? caption.innerText.trim() : '';
      if (!img || !img.getAttribute('src') || !/^After \d+ evaluations/.test(text)) continue;
      const last = window.__frames[window.__frames.length - 1];
      if (!last || last[0] !== img.getAttribute('src') || last[1] !== text) {
        window.__frames.push([img.getAttribute('src'), text]);
      }
    }
  };
  new MutationObserver(scan).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['src']});
  scan();
}
"""


def test_a_small_transfer_shows_the_picture_forming_and_finishes(page: Page, server, artifacts):
    page.goto(f"{server.url}/style?tab=transfer&preset=quick&opt=adam&lr=0.03&steps={STEPS}")
    expect(page.locator("h1").filter(has_text="Style transfer")).to_be_visible()
    expect(page.get_by_text(EN["style.press_paint"])).to_be_visible()
    paint = page.get_by_role("button", name=EN["style.paint"])
    expect(paint).to_be_enabled(timeout=RUN_TIMEOUT_MS)

    page.evaluate(FRAME_OBSERVER)
    paint.click()
    expect(page.get_by_text(f"Done: {STEPS} evaluations")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.wait_for_function(
        "(steps) => { const f = window.__frames || []; const last = f[f.length - 1];"
        " return !!last && last[1].startsWith(`After ${steps} evaluations`); }", arg=STEPS)

    frames = page.evaluate("() => window.__frames")
    steps = [int(FRAME_CAPTION.search(caption).group(1)) for _, caption in frames]
    assert len({src for src, _ in frames}) >= 2, f"the picture never changed: {frames}"
    assert steps == sorted(steps) and steps[0] < steps[-1] == STEPS, f"frame evaluations {steps}"
    expect(page.get_by_role("button", name=EN["style.download_png"])).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    page.screenshot(path=str(artifacts / "style-transfer.png"))

