"""How fast the convolution lab redraws after a slider moves, at the largest grids it draws.

Goal: under 200 ms from a slider change to the redrawn figure in the browser, for grids up to 16×16.

Two measurements:

* **In core** (always): everything the page computes for one redraw, with the figure serialised to
  the JSON Streamlit sends. The sliding window at its largest (16×16 input, 7×7 kernel, padding 3:
  a 22×22 padded grid) and the transposed convolution at n = 16, k = 4, s = 2, p = 1 (a 34×34 canvas
  and a 35×35 zero-inserted grid, both ways and torch's check). The reference, in the same process,
  is plain PyTorch computing the same numbers (``F.conv2d`` / ``F.conv_transpose2d``): the ratio
  says what drawing the numbers costs over computing them.
* **In the browser** (``--browser``): a real Streamlit server and headless Chromium. The input size
  slider is moved with the keyboard between 15 and 16, and the time is taken from the key press
  until the chart in the page holds the new grid (polled every animation frame). The reference is
  a bare Streamlit page with the same slider and one plain plotly heatmap of the same padded grid,
  served and measured the same way: what any Streamlit page with a plotly chart costs here.

    PYTHONPATH=. .venv/bin/python bench/conv_redraw.py [--browser] [--repeats 10]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.schedule_redraw import timed
from core.arithmetic import conv_out_worked, conv_transpose_out_worked
from core.conv_figures import GRID_LABEL_KEYS, stamps_figure, window_figure, zero_insertion_figure
from core.conv_grids import (ConvSettings, example_input, example_kernel, two_ways_difference, window_sum,
                             written_sum)

GOAL_SECONDS = 0.2
LABELS = {key: key for key in GRID_LABEL_KEYS} | {"cell": "row {row}, column {column}"}
WINDOW = ConvSettings(16, 7, stride=1, padding=3)
TRANSPOSED = ConvSettings(16, 4, stride=2, padding=1)


def window_redraw(s: ConvSettings = WINDOW) -> int:
    conv_out_worked(s.n, s.kernel, s.stride, s.padding, s.dilation)
    x, w = example_input(s.n), example_kernel(s.kernel)
    current = s.conv_size() ** 2 // 2
    written_sum(*window_sum(x, w, *divmod(current, s.conv_size()), s))
    return len(window_figure(x, w, s, current, LABELS).to_json())


def transposed_redraw(s: ConvSettings = TRANSPOSED) -> int:
    conv_transpose_out_worked(s.n, s.kernel, s.stride, s.padding, s.output_padding, s.dilation)
    x, w = example_input(s.n), example_kernel(s.kernel)
    two_ways_difference(x, w, s)
    return len(stamps_figure(x, w, s, s.n * s.n // 2, LABELS).to_json()) + len(
        zero_insertion_figure(x, w, s, LABELS).to_json())


def torch_reference(s: ConvSettings, transposed: bool) -> None:
    x = torch.as_tensor(example_input(s.n))[None, None]
    w = torch.as_tensor(example_kernel(s.kernel))[None, None]
    if transposed:
        F.conv_transpose2d(x, w, stride=s.stride, padding=s.padding, output_padding=s.output_padding,
                           dilation=s.dilation)
    else:
        F.conv2d(x, w, stride=s.stride, padding=s.padding, dilation=s.dilation)


def report(name: str, times: list[float]) -> None:
    print(f"  {name:44s} median {statistics.median(times) * 1000:8.2f} ms  "
          f"range {min(times) * 1000:.2f}-{max(times) * 1000:.2f} ms")


def in_core(repeats: int) -> None:
    for title, ours, transposed, settings in (
            ("sliding window, 16×16 input, k 7, p 3", window_redraw, False, WINDOW),
            ("transposed conv, 16×16 input, k 4, s 2, p 1", transposed_redraw, True, TRANSPOSED)):
        mine = timed(ours, repeats)
        reference = timed(lambda: torch_reference(settings, transposed), repeats)
        print(f"{title}; JSON sent to the browser: {ours() / 1024:.0f} KiB")
        report("redraw in core (ours)", mine)
        report("the same numbers by plain torch (reference)", reference)
        print(f"  ratio ours / reference: {statistics.median(mine) / statistics.median(reference):.0f}")


# The browser's reference: a bare Streamlit page (no lab, no sidebar) with the same slider, drawing
# grids of the same sizes as plain plotly heatmaps with their numbers: one for the sliding window
# (its padded input), two for the transposed convolution (its canvas and its zero-inserted grid).
REFERENCE_APP = """
import numpy as np
import plotly.graph_objects as go
import streamlit as st
n = st.slider("Input size n", 1, 16, 15)
sizes = [n + 6] if st.query_params.get("case") == "window" else [2 * n + 2, 2 * n + 3]
for size in sizes:
    grid = np.random.default_rng(size).integers(0, 10, size=(size, size))
    text = [[str(value) for value in row] for row in grid]
    st.plotly_chart(go.Figure(go.Heatmap(z=grid, text=text, texttemplate="%{text}", showscale=False)))
"""
BROWSER_CASES = (  # title, the lab's address, the reference's, the width of each first panel at input size n
    ("sliding window, padded input 21↔22 cells wide", "convolutions?tab=window&n=15&k=7&s=1&p=3&d=1",
     "?case=window", lambda n: n + 6, lambda n: n + 6),
    ("transposed conv, canvas 32↔34 cells wide", "convolutions?tab=transposed&n=15&k=4&s=2&p=1&d=1&op=0",
     "?case=transposed", lambda n: n, lambda n: 2 * n + 2),  # the lab's first panel is the input itself
)


DRAWN = """width => {  // the chart is replaced on each redraw: between the two there is none
    const plot = document.querySelector('.js-plotly-plot');
    return Boolean(plot && plot.data && plot.data[0].text[0].length === width);
}"""


def slider_move(page, n: int, width) -> float:
    """Seconds from a key press that moves the input size slider to ``n`` (from n ∓ 1) until the first
    chart holds the new grid."""
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Input size n").get_by_role("slider")
    slider.focus()
    start = time.perf_counter()
    slider.press("ArrowRight" if n == 16 else "ArrowLeft")
    page.wait_for_function(DRAWN, arg=width(n), polling="raf", timeout=30_000)
    seconds = time.perf_counter() - start
    page.wait_for_timeout(300)
    return seconds


def interleaved_moves(pages_and_widths: list, repeats: int) -> list[list[float]]:
    """Each page's slider moved 15 ↔ 16 in turn, so that a busy moment of the machine hits all of them;
    the first move, which pays for each page's own warm-up, is left out."""
    times = [[] for _ in pages_and_widths]
    for repeat in range(repeats + 1):
        n = 16 if repeat % 2 == 0 else 15
        for measured, (page, width) in zip(times, pages_and_widths):
            seconds = slider_move(page, n, width)
            if repeat:
                measured.append(seconds)
    return times


def open_and_settle(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    page.wait_for_timeout(1000)


def in_browser(repeats: int) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, running_server

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        reference_app = Path(folder) / "reference.py"
        reference_app.write_text(REFERENCE_APP)
        with running_server(Path(folder) / "runs.sqlite", Path(folder) / "lab.log") as lab, \
                running_server(Path(folder) / "other.sqlite", Path(folder) / "reference.log",
                               script=str(reference_app)) as reference:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ours_page, reference_page = browser.new_page(viewport=VIEWPORT), browser.new_page(viewport=VIEWPORT)
            ours_page.goto(lab.url)
            ours_page.wait_for_selector("text=Convolution arithmetic", timeout=60_000)
            for title, address, reference_address, width, reference_width in BROWSER_CASES:
                open_and_settle(ours_page, f"{lab.url}/{address}")
                open_and_settle(reference_page, f"{reference.url}/{reference_address}")
                ours, plain = interleaved_moves([(ours_page, width), (reference_page, reference_width)], repeats)
                print(f"{title}, {repeats} slider moves between n = 15 and 16")
                report("key press to redrawn chart, the lab (ours)", ours)
                report("bare Streamlit + plain plotly heatmaps (reference)", plain)
                print(f"  ratio ours / reference: {statistics.median(ours) / statistics.median(plain):.2f}")
                print(f"  goal: under {GOAL_SECONDS * 1000:.0f} ms -> "
                      f"{'met' if statistics.median(ours) < GOAL_SECONDS else 'NOT met'}")
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--browser", action="store_true", help="also time the redraw in a real browser")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    in_core(args.repeats)
    if args.browser:
        in_browser(args.repeats)


if __name__ == "__main__":
    main()
