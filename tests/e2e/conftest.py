"""Fixtures of the end-to-end tests: a real Streamlit server and a real (headless) Chromium.

The server runs exactly as in production (``streamlit run Home.py``) in its own process
group, so that teardown also ends the job manager's worker process it starts. Its run
store is a temporary SQLite file (``PLAYGROUND_DB``), which the tests also read to
compare the time a metric was emitted with the time the browser showed it.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
# Streamlit's main area scrolls inside its own container: full_page screenshots show only
# the viewport, so the viewport itself is tall.
VIEWPORT = {"width": 1400, "height": 2000}
SERVER_START_TIMEOUT = 60.0
DEFAULT_TIMEOUT_MS = 60_000  # 2 busy cores: a page that draws plotly figures can be slow
HOME_TITLE = json.loads((REPO_ROOT / "core" / "locales" / "en.json").read_text(encoding="utf-8"))["home.title"]


@dataclass(frozen=True)
class Server:
    url: str
    db_path: Path
    log_path: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


def _stop(process: subprocess.Popen) -> None:
    """End the server and its worker: the whole process group, politely first."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # anything left in the group (the worker)
    except ProcessLookupError:
        pass
    process.wait(5)


def record_latency(artifacts: Path, measured: dict) -> None:
    """Add measurements to test-artifacts/latency.json, keeping what other tests wrote there."""
    path = artifacts / "latency.json"
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        recorded = {}
    recorded.update(measured)
    path.write_text(json.dumps(recorded, indent=2))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@contextlib.contextmanager
def running_server(db_path: Path, log_path: Path, script: str = "Home.py", **environment: str):
    """``streamlit run <script>`` on a free port, with these extra environment variables; stopped afterwards."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PLAYGROUND_DB": str(db_path), "PYTHONUNBUFFERED": "1", **environment}
    command = [
        sys.executable, "-m", "streamlit", "run", script,
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not _healthy(url):
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer {url}/_stcore/health within {SERVER_START_TIMEOUT:.0f} s:\n"
                            f"{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield Server(url, db_path, log_path)
    finally:
        _stop(process)


def visit_home(chromium, url: str) -> None:
    """Open Home once in a throwaway browser context and wait until it has drawn. Its run of Home.py starts the
    job manager's worker, which warms up (times every lab's models) while the tests go on."""
    from playwright.sync_api import expect

    context = chromium.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        page = context.new_page()
        page.goto(url)
        expect(page.locator("h1").filter(has_text=HOME_TITLE)).to_be_visible(timeout=DEFAULT_TIMEOUT_MS)
    finally:
        context.close()


# Records each (src, caption) of the pictures whose caption matches a pattern, as a live run redraws them.
# Streamlit replaces elements on every update, so the observer looks them up afresh on each change of the page.
PICTURE_OBSERVER = r"""
(pattern) => {
  const wanted = new RegExp(pattern);
  window.__pictures = [];
  const scan = () => {
    for (const figure of document.querySelectorAll('[data-testid="stImage"]')) {
      const img = figure.querySelector('img');
      const caption = figure.querySelector('[data-testid="stImageCaption"]');
      const text = caption ? caption.innerText.trim() : '';
      if (!img || !img.getAttribute('src') || !wanted.test(text)) continue;
      const last = window.__pictures[window.__pictures.length - 1];
      if (!last || last[0] !== img.getAttribute('src') || last[1] !== text) {
        window.__pictures.push([img.getAttribute('src'), text]);
      }
    }
  };
  new MutationObserver(scan).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['src']});
  scan();
}
"""


def expect_no_page_not_found(page) -> None:
    """Streamlit's "Page not found" modal is not over the page (it came over a lab opened by its link on a fresh
    server while the page files were in a folder named pages/, which Streamlit takes for its older multipage mode)."""
    from playwright.sync_api import expect

    expect(page.get_by_role("dialog").filter(has_text="Page not found")).to_have_count(0)


def record_pictures(page, caption_pattern: str) -> None:
    """From now on, keep every new (src, caption) of the pictures whose caption matches ``caption_pattern``."""
    page.evaluate(PICTURE_OBSERVER, caption_pattern)


def wait_for_pictures(page, count: int, timeout_ms: float = 120_000) -> list[list[str]]:
    """Wait until ``count`` different pictures have been recorded; every (src, caption) recorded."""
    page.wait_for_function("(count) => new Set((window.__pictures || []).map(p => p[0])).size >= count",
                           arg=count, timeout=timeout_ms)
    return page.evaluate("() => window.__pictures")


CLASS_PASSWORD = "e2e-instructor-secret"


@pytest.fixture(scope="session")
def server(tmp_path_factory, artifacts, chromium) -> Server:
    """One person's playground: no instructor password. Home has been visited once (its worker is warming up)."""
    with running_server(tmp_path_factory.mktemp("e2e-store") / "runs.sqlite", artifacts / "streamlit.log") as started:
        visit_home(chromium, started.url)
        yield started


@pytest.fixture(scope="module")
def class_server(tmp_path_factory, artifacts, chromium) -> Server:
    """A class's server (test_classroom_browser.py): instructor mode on (CLASS_PASSWORD). Home visited once."""
    with running_server(tmp_path_factory.mktemp("class-store") / "runs.sqlite", artifacts / "streamlit-class.log",
                        PLAYGROUND_INSTRUCTOR_PASSWORD=CLASS_PASSWORD) as started:
        visit_home(chromium, started.url)
        yield started


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.e2e_failed = report.failed
    return report


@pytest.fixture
def page(chromium, request, artifacts):
    """A fresh browser context per test: a new Streamlit session, nothing shared.

    A failing test leaves test-artifacts/failed-<test>.png behind.
    """
    context = chromium.new_context(viewport=VIEWPORT, locale="en-US")
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
        if getattr(request.node, "e2e_failed", False):
            page.screenshot(path=str(artifacts / f"failed-{request.node.name}.png"))
    finally:
        context.close()

