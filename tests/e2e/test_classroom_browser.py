"""A class on one server, in real browsers: two students each start a run and see only their own;
the instructor unlocks instructor mode and cancels one of them."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import CLASS_PASSWORD, DEFAULT_TIMEOUT_MS, REPO_ROOT, VIEWPORT

pytestmark = pytest.mark.e2e

EN = json.loads((REPO_ROOT / "core" / "locales" / "en.json").read_text(encoding="utf-8"))
PASSWORD = CLASS_PASSWORD  # the class_server fixture (conftest.py) starts its server with it
RUN_IN_LINK = re.compile(r"[?&]run=([0-9a-f]{10})")
WARM_UP_TIMEOUT_MS = 180_000  # the worker times every lab's models before the first estimate


@pytest.fixture
def browser_page(chromium):
    """A function that opens a fresh browser context (a new student, or the instructor)."""
    contexts = []

    def open_page() -> Page:
        context = chromium.new_context(viewport=VIEWPORT, locale="en-US")
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def start_long_run(page: Page, url: str) -> str:
    """Open the MNIST lab with 20 epochs (minutes of training) and press Train; the run's id.
    Straight to the lab's address: the class_server fixture has visited Home already."""
    page.goto(f"{url}/mnist?epochs=20")
    expect(page.get_by_text("Estimated training time")).to_be_visible(timeout=WARM_UP_TIMEOUT_MS)
    page.get_by_role("button", name=EN["mnist.train"]).click()
    expect(page).to_have_url(RUN_IN_LINK)
    return RUN_IN_LINK.search(page.url).group(1)


def runs_offered_to_open(page: Page) -> str:
    """The text of every run the "open a run" list offers this browser."""
    page.get_by_text(EN["mnist.all_runs"]).click()
    page.get_by_test_id("stSelectbox").filter(has_text=EN["runs.open"]).click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return " ".join(options)


def test_students_see_only_their_own_runs_and_the_instructor_cancels_one(class_server, browser_page, artifacts):
    alice, bob = browser_page(), browser_page()
    alices_run = start_long_run(alice, class_server.url)
    expect(alice.get_by_text(re.compile(r"Step \d+ of"))).to_be_visible(timeout=WARM_UP_TIMEOUT_MS)
    bobs_run = start_long_run(bob, class_server.url)
    expect(bob.get_by_text(re.compile(r"1st in the queue, about \d+"))).to_be_visible()
    bob.screenshot(path=str(artifacts / "classroom-student-queued.png"))

    assert bobs_run not in runs_offered_to_open(alice)
    assert alices_run not in runs_offered_to_open(bob)

    teacher = browser_page()
    teacher.goto(f"{class_server.url}/instructor")
    teacher.get_by_label(EN["teach.password"]).fill("not-it")
    teacher.get_by_role("button", name=EN["teach.unlock"]).click()
    expect(teacher.get_by_text(EN["teach.wrong"])).to_be_visible()
    teacher.get_by_label(EN["teach.password"]).fill(PASSWORD)
    teacher.get_by_role("button", name=EN["teach.unlock"]).click()
    expect(teacher.get_by_role("heading", name=EN["teach.queue"])).to_be_visible()

    teacher.get_by_test_id("stMultiSelect").filter(has_text=EN["teach.cancel_which"]).click()
    offered = teacher.get_by_role("option").all_inner_texts()
    assert any(alices_run in option for option in offered) and any(bobs_run in option for option in offered)
    teacher.get_by_role("option").filter(has_text=alices_run).click()
    teacher.keyboard.press("Escape")
    teacher.screenshot(path=str(artifacts / "classroom-instructor.png"))
    teacher.get_by_role("button", name=EN["teach.cancel"]).click()

    expect(alice.get_by_text(EN["run.cancelled_by_instructor"])).to_be_visible(timeout=30_000)
    # Bob's page polled only his place in the queue; now that his run trains, his live panel follows it.
    expect(bob.get_by_text(re.compile(r"Step \d+ of"))).to_be_visible(timeout=60_000)
    bob.get_by_role("button", name=EN["mnist.cancel"]).click()
    expect(bob.get_by_text(EN["state_note.cancelled"])).to_be_visible(timeout=30_000)


def test_a_reload_is_the_same_student(class_server, browser_page):
    page = browser_page()
    page.goto(class_server.url)
    you_are = page.get_by_text(re.compile(r"you are student [0-9a-f]{6}"))
    expect(you_are).to_be_visible()
    before = you_are.inner_text()
    page.wait_for_function("document.cookie.includes('playground_student=')")  # set once the page has drawn
    assert re.search(r"student ([0-9a-f]{6})", before).group(1) in page.evaluate("document.cookie")
    page.reload()
    expect(you_are).to_be_visible()
    assert you_are.inner_text() == before  # same limits, same turn in the queue, same runs to cancel
    other = browser_page()  # another browser is another student
    other.goto(class_server.url)
    expect(other.get_by_text(re.compile(r"you are student [0-9a-f]{6}"))).not_to_have_text(before)
