"""The learning-rate & momentum lab in a real browser: edit the table, train, and Chinese.

Run with ``.venv/bin/python -m pytest tests/e2e/test_schedule_browser.py -q -p no:cacheprovider -s``.
Screenshots and the measured edit-to-redraw latency go to ``test-artifacts/`` (git-ignored).
"""
from __future__ import annotations

import json
import math
import re
import time
from urllib.parse import unquote

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .conftest import REPO_ROOT, expect_no_page_not_found, record_latency

pytestmark = pytest.mark.e2e

EN = json.loads((REPO_ROOT / "core" / "locales" / "en.json").read_text(encoding="utf-8"))
ZH = json.loads((REPO_ROOT / "core" / "locales" / "zh.json").read_text(encoding="utf-8"))
CJK = re.compile(r"[\u4e00-\u9fff]")
REDRAW_GOAL_MS = 300  # recorded, not asserted: a busy 2-core CI box may be slower
REDRAW_LIMIT_MS = 5000
TRAIN_TIMEOUT_MS = 120_000
MEASURE_TIMEOUT_MS = 120_000  # the worker times every architecture at start-up
# 6,000 digits in batches of 512: 11 full batches and one of 368, 12 iterations an epoch; the
# one-cycle phases of 1.35, 1.35 and 0.3 epochs end at iterations 16, 32 and 36.
ITERATIONS_AT_512 = 36
# The data editor's accessible (fallback) table names each cell glide-cell-<column>-<row>, and
# the grid focuses the selected one. Column 0 is the row marker, 1 the index, then the frame's.
LR_START_COLUMN = 3  # glide column index: the row-marker column (0), epochs, optimizer, lr start (the index is hidden)

# The values of the schedule figure's traces, by name and y axis: {"plan|y": [...], ...}.
# Plotly.py sends numeric arrays as {dtype, bdata} (base64); gd.data keeps them so, hence the
# decoding here (arrays and typed arrays pass through).
TRACES = r"""
() => {
  const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  if (!plot || !plot.data) return null;
  const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array,
                 u2: Uint16Array, i1: Int8Array, u1: Uint8Array};
  const values = (array) => {
    if (!array) return [];
    if (array.bdata !== undefined) {
      const bytes = Uint8Array.from(atob(array.bdata), (c) => c.charCodeAt(0));
      return Array.from(new TYPES[array.dtype](bytes.buffer));
    }
    return Array.from(array);
  };
  const traces = {};
  for (const trace of plot.data) {
    const key = `${trace.name}|${trace.yaxis || "y"}`;
    if (!(key in traces)) traces[key] = {x: values(trace.x), y: values(trace.y)};
  }
  return traces;
}
"""
# True (and the time noted) once the plan's first learning rate is the expected one.
PLAN_STARTS_AT = r"""
([expected, plan]) => {
  const traces = (%s)();
  const y = traces && traces[`${plan}|y`] && traces[`${plan}|y`].y;
  if (!y || !y.length || Math.abs(y[0] - expected) > 1e-12 * Math.max(1, Math.abs(expected))) return false;
  if (window.__redrawAt === undefined) window.__redrawAt = performance.now();
  return true;
}
""" % TRACES.strip()
# Notes the time the Enter that commits the cell edit goes down (capture: before the grid sees it).
NOTE_ENTER = r"""
() => {
  window.__enterAt = undefined;
  window.__redrawAt = undefined;
  window.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && window.__enterAt === undefined) window.__enterAt = performance.now();
  }, {capture: true});
}
"""


# ----- helpers -------------------------------------------------------------------------------
def traces(page: Page) -> dict:
    return page.evaluate(TRACES) or {}


def open_schedules(page: Page, url: str, title: str = EN["sched.title"], plan: str = EN["schart.plan"],
                   wait_for_worker: bool = True) -> None:
    page.goto(url)
    expect(page.locator("h1").filter(has_text=title)).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')).to_be_visible()
    page.wait_for_function(f"() => {{ const t = ({TRACES.strip()})(); "
                           f"return t && t['{plan}|y'] && t['{plan}|y'].y.length > 0; }}")
    expect_no_page_not_found(page)
    if wait_for_worker:
        wait_for_estimate(page)


def wait_for_estimate(page: Page) -> None:
    """Wait until the worker has measured the machine. Until then the page redraws itself once
    the measurement lands (which drops a cell being edited) and the worker keeps the CPU busy."""
    started = time.monotonic()
    estimate = re.escape(EN["mnist.estimate"].partition("{")[0])
    page.get_by_text(re.compile(estimate)).wait_for(state="visible", timeout=MEASURE_TIMEOUT_MS)
    if time.monotonic() - started > 1:
        print(f"\n  worker measured the machine after {time.monotonic() - started:.1f} s")


def select_cell(page: Page, column: int, row: int) -> None:
    """Select a cell of the (canvas) data editor: click the row, then walk with the arrow keys
    until the grid reports the wanted cell focused. Robust against column widths."""
    canvas = page.get_by_test_id("data-grid-canvas")
    box = canvas.bounding_box()
    header, row_height = 36, 35  # Streamlit's data editor: 35 px rows under a 36 px header
    # A data cell of the wanted row, left of the wanted column (the first data column).
    in_row = ("(row) => { const id = (document.activeElement || {}).id || '';"
              " return id.startsWith('glide-cell-') && id.endsWith(`-${row}`); }")
    for attempt in range(5):  # a click can select no cell (the first after a modal closed did): again
        page.mouse.click(box["x"] + 110, box["y"] + header + row_height * row + row_height / 2)
        try:
            page.wait_for_function(in_row, arg=row, polling=20, timeout=2000)
            break
        except PlaywrightTimeout:
            print(f"  note: click {attempt + 1} on the table selected no cell of row {row}; again")
    wanted = f"glide-cell-{column}-{row}"
    focused = None
    for _ in range(20):
        focused = page.evaluate("() => document.activeElement && document.activeElement.id")
        match = re.fullmatch(r"glide-cell-(\d+)-(\d+)", focused or "")
        assert match, f"clicking the table focused {focused!r}, not a cell"
        if focused == wanted:
            return
        assert int(match[2]) == row, f"clicked row {match[2]}, not {row}"
        page.keyboard.press("ArrowRight" if int(match[1]) < column else "ArrowLeft")
        page.wait_for_function("(before) => document.activeElement && document.activeElement.id !== before",
                               arg=focused, polling=20, timeout=5000)
    raise AssertionError(f"could not select {wanted} (last focused: {focused})")


# ----- tests -------------------------------------------------------------------------------
def test_editing_a_cell_redraws_the_plan(page: Page, server, artifacts):
    sent: list[float] = []  # when the browser sent each websocket frame (time.monotonic)
    page.on("websocket", lambda socket: socket.on("framesent", lambda _: sent.append(time.monotonic())))
    open_schedules(page, f"{server.url}/schedules")
    plan = traces(page)[f"{EN['schart.plan']}|y"]["y"]
    assert len(plan) == 141 and plan[0] == pytest.approx(0.01) and max(plan) == pytest.approx(0.1), plan[:3]
    facts = EN["sched.plan_facts"].format(phases=3, iterations=141, per_epoch=47, epochs=3.0)
    expect(page.get_by_text(facts)).to_be_visible()

    select_cell(page, LR_START_COLUMN, 0)
    page.screenshot(path=str(artifacts / "schedules-cell-selected.png"))
    page.keyboard.press("Enter")  # opens the cell's editor, its value selected
    editor = page.locator("input:focus, textarea:focus")  # the overlay editor takes the focus
    expect(editor).to_have_count(1)
    editor.fill("0.05")
    page.evaluate(NOTE_ENTER)
    pressed = time.monotonic()
    page.keyboard.press("Enter")
    page.wait_for_function(PLAN_STARTS_AT, arg=[0.05, EN["schart.plan"]], polling=10, timeout=30_000)
    wall_ms = (time.monotonic() - pressed) * 1000
    enter_at, redraw_at = page.evaluate("() => [window.__enterAt, window.__redrawAt]")
    assert enter_at is not None and redraw_at is not None, (enter_at, redraw_at)
    latency_ms = redraw_at - enter_at
    # Of which the browser holds the edit before sending it (Streamlit 1.67's frontend debounces
    # the editor's value by 150 ms); the rest is the rerun, the transfer and plotly's redraw.
    to_send_ms = next(((t - pressed) * 1000 for t in sent if t >= pressed), float("nan"))
    print(f"\n  edit-to-redraw: {latency_ms:.0f} ms in the browser ({wall_ms:.0f} ms as the test saw it, "
          f"{to_send_ms:.0f} ms of it before the edit was sent; goal {REDRAW_GOAL_MS} ms)")

    plan = traces(page)[f"{EN['schart.plan']}|y"]["y"]
    assert plan[0] == pytest.approx(0.05) and max(plan) == pytest.approx(0.1), plan[:3]
    page.wait_for_function("() => decodeURIComponent(location.search).includes('phases=1.35,sgd_momentum,0.05')")
    query = unquote(page.url.partition("?")[2])
    assert "phases=1.35,sgd_momentum,0.05," in query, page.url
    expect(page.get_by_role("button", name=EN["sched.train"])).to_be_enabled()
    page.wait_for_timeout(300)  # the chart finishes drawing
    page.screenshot(path=str(artifacts / "schedules-edited.png"))

    record_latency(artifacts, {
        "schedule_edit_to_redraw_ms": round(latency_ms, 1),
        "schedule_edit_to_redraw_wall_ms": round(wall_ms, 1),
        "schedule_edit_enter_to_sent_ms": None if math.isnan(to_send_ms) else round(to_send_ms, 1),
        "schedule_edit_to_redraw_goal_ms": REDRAW_GOAL_MS,
    })
    assert 0 < latency_ms < REDRAW_LIMIT_MS, f"edit-to-redraw took {latency_ms:.0f} ms (goal {REDRAW_GOAL_MS} ms)"


def test_training_the_actual_curve_follows_the_plan(page: Page, server, artifacts):
    open_schedules(page, f"{server.url}/schedules")
    batch = page.get_by_label(EN["mnist.batch"])
    batch.fill("512")
    batch.press("Enter")
    facts = EN["sched.plan_facts"].format(phases=3, iterations=ITERATIONS_AT_512, per_epoch=12, epochs=3.0)
    expect(page.get_by_text(facts)).to_be_visible()
    expect(batch).to_have_value("512")
    page.wait_for_function("() => new URLSearchParams(location.search).get('bs') === '512'")

    train = page.get_by_role("button", name=EN["sched.train"])
    expect(train).to_be_enabled()
    train.click()
    started = time.monotonic()
    finished = page.get_by_test_id("stAlertContentSuccess").filter(has_text="Finished:")
    expect(finished).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    print(f"\n  trained {time.monotonic() - started:.1f} s after the click: {finished.inner_text()}")
    expect(train).to_be_enabled(timeout=15_000)  # the page redrew once the run ended

    plan_key, actual = f"{EN['schart.plan']}|y", EN["sched.actual"]
    page.wait_for_function(
        f"() => {{ const t = ({TRACES.strip()})(); return t && t['{actual}|y'] && t['{plan_key}'] && "
        f"t['{actual}|y'].y.length === t['{plan_key}'].y.length; }}", timeout=15_000)
    found = traces(page)
    plan, used, loss = found[plan_key], found[f"{actual}|y"], found.get(f"{actual}|y3")
    assert len(plan["y"]) == len(used["y"]) == ITERATIONS_AT_512, (len(plan["y"]), len(used["y"]))
    assert used["x"] == plan["x"], (used["x"][:5], plan["x"][:5])  # iteration i's lr at x = i
    off = [(i, p, u) for i, (p, u) in enumerate(zip(plan["y"], used["y"]))
           if not math.isclose(p, u, rel_tol=1e-9, abs_tol=0.0)]
    assert not off, f"the optimizer's lr left the plan at (iteration, plan, actual): {off[:5]}"
    assert loss is not None, sorted(found)
    assert len(loss["y"]) == ITERATIONS_AT_512, len(loss["y"])
    assert all(value is not None and math.isfinite(value) for value in loss["y"]), loss["y"]
    page.wait_for_timeout(500)  # the chart and the metrics settle
    page.screenshot(path=str(artifacts / "schedules-trained.png"))


def test_chinese_page_renders(page: Page, server, artifacts):
    open_schedules(page, f"{server.url}/schedules?lang=zh", title=ZH["sched.title"], plan=ZH["schart.plan"],
                   wait_for_worker=False)
    title = page.locator("h1").filter(has_text=ZH["sched.title"])
    assert "学习率" in title.inner_text()
    assert CJK.search(title.inner_text())
    expect(page.get_by_role("button", name=ZH["sched.train"])).to_be_visible()
    expect(page.get_by_text(ZH["sched.table"])).to_be_visible()
    assert "lang=zh" in page.url
    page.wait_for_timeout(1000)  # the table and the code block settle
    page.screenshot(path=str(artifacts / "schedules-zh.png"))


def test_the_lr_finder_suggests_a_rate_and_use_it_rescales_the_plan(page: Page, server, artifacts):
    """'Use it' sits inside the finder's fragment: its click must still redraw the whole page
    (the table, the plan and the link), not only the fragment."""
    open_schedules(page, f"{server.url}/schedules")
    page.get_by_role("button", name=EN["sched.finder_run"]).click()
    done = page.get_by_test_id("stAlertContentSuccess").filter(has_text="Done in")
    expect(done).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    use = page.get_by_role("button", name=re.compile(r"^Use it"))
    suggestion = float(use.inner_text().rsplit(" ", 1)[-1])
    use.click()
    page.wait_for_function(
        f"() => {{ const t = ({TRACES.strip()})(); const y = t && t['{EN['schart.plan']}|y'] && t['{EN['schart.plan']}|y'].y;"
        f" return y && Math.abs(Math.max(...y) - {suggestion}) < 0.05 * {suggestion}; }}", timeout=15_000)
    page.wait_for_function("() => new URLSearchParams(location.search).has('phases')")
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts / "schedules-finder.png"))
