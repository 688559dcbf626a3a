"""The convolution lab's figures and code panels show what the numbers say: the lit cells are the
window's, the output fills in cell by cell, the stamps build torch's answer, impossible pictures are
refused, and the code to take home prints what the lab shows."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from core.conv_figures import (CURRENT, DONE, FEEDS, GRID_LABEL_KEYS, PADDING, PENDING, cell_text, fit_figure,
                               overlap_figure, sheet_figure, stamps_figure, window_figure, zero_insertion_figure)
from core.conv_grids import (SHEET_INPUT, SHEET_KERNEL, ConvSettings, check_drawable, conv2d, conv_transpose2d,
                             example_input, example_kernel, overlap_counts, spreadsheet_fit, window)
from core.errors import UserError
from core.snippets import conv_snippet, sheet_snippet

LABELS = {key: key for key in GRID_LABEL_KEYS} | {"cell": "r{row} c{column}", "count": "count", "step": "step",
                                                   "error": "error", "fit": "fit", "least_squares": "lsq"}


def panel_traces(figure):
    """Each panel's heatmap: z holds what each cell is, text its number."""
    return [trace for trace in figure.data if trace.type == "heatmap"]


def test_the_lit_cells_are_the_window_of_the_current_output_cell():
    s = ConvSettings(7, 3, stride=2, padding=1, dilation=2)
    x, w = example_input(7), example_kernel(3)
    figure = window_figure(x, w, s, current=4, labels=LABELS)  # output is 3×3: cell 4 is row 1, column 1
    grid, kernel, output = panel_traces(figure)
    lit = {(r, c) for r, row in enumerate(grid.z) for c, kind in enumerate(row) if kind == FEEDS}
    assert lit == {(r, c) for r, c, _, _ in window(1, 1, s)}
    assert grid.z[0][0] == PADDING or (0, 0) in lit
    box = figure.layout.shapes[0]
    assert (box.x0 + 0.5, box.y0 + 0.5) == (2, 2)  # one stride right and down, in padded coordinates
    assert (box.x1 - box.x0, box.y1 - box.y0) == (5, 5)  # a 3×3 kernel with dilation 2 spans 5
    kinds = np.array(output.z).flatten()
    assert list(kinds) == [DONE] * 4 + [CURRENT] + [PENDING] * 4
    expected = conv2d(x, w, s).flatten()
    shown = np.array(output.text).flatten()
    assert list(shown[:5]) == [cell_text(v) for v in expected[:5]] and set(shown[5:]) == {""}


def test_stamping_all_cells_shows_torchs_output_and_fewer_leave_cells_blank():
    s = ConvSettings(3, 3, stride=2, padding=1, output_padding=1)
    x, w = example_input(3), example_kernel(3)
    expected = conv_transpose2d(x, w, s)
    *_, output = panel_traces(stamps_figure(x, w, s, upto=9, labels=LABELS))
    assert np.array(output.text).tolist() == [[cell_text(v) for v in row] for row in expected]
    *_, output = panel_traces(stamps_figure(x, w, s, upto=1, labels=LABELS))
    blank = np.array(output.text) == ""
    assert blank.any() and not blank.all()
    assert (np.array(output.z)[blank] == PENDING).all()


def test_the_zero_inserted_picture_convolves_to_torchs_output():
    s = ConvSettings(4, 4, stride=2, padding=1)
    x, w = example_input(4, seed=3), example_kernel(4, seed=3)
    spread, flipped, output = panel_traces(zero_insertion_figure(x, w, s, LABELS))
    assert np.array(spread.z).shape == (11, 11)  # 4 cells with a zero between each: 7; then d·(k − 1) − p = 2 around
    assert np.array(output.text).tolist() == [[cell_text(v) for v in row] for row in conv_transpose2d(x, w, s)]
    assert np.array(flipped.text).tolist() == [[cell_text(v) for v in row] for row in w[::-1, ::-1]]


def test_negative_numbers_use_a_real_minus_sign():
    assert cell_text(-3.0) == "−3" and cell_text(2.5) == "2.5" and cell_text(np.nan) == ""
    assert cell_text(-0.123, decimals=2) == "−0.12"


def test_grids_too_big_to_read_are_refused_with_a_way_out():
    check_drawable(ConvSettings(16, 7, 1, 3))  # the largest window picture
    with pytest.raises(UserError, match="too many cells to read"):
        check_drawable(ConvSettings(16, 7, stride=4, dilation=3), transposed=True)
    with pytest.raises(UserError, match="up to 16×16"):
        check_drawable(ConvSettings(17, 3))


def test_the_overlap_map_boxes_its_interior_only_when_there_is_one():
    assert len(overlap_figure(overlap_counts(5, 3, 2), 2, LABELS).layout.shapes) == 1
    assert len(overlap_figure(overlap_counts(2, 7, 1), 6, LABELS).layout.shapes) == 0


def test_the_fit_curve_grows_to_the_step_shown_in_a_fixed_frame():
    fit = spreadsheet_fit()
    early, late = fit_figure(fit.losses, 10, fit.least_squares_l1, LABELS), fit_figure(
        fit.losses, 300, fit.least_squares_l1, LABELS)
    assert len(early.data[0].x) == 11 and len(late.data[0].x) == 301
    assert early.layout.yaxis.range == late.layout.yaxis.range
    grids = panel_traces(sheet_figure(fit, SHEET_INPUT, 300, LABELS))
    assert [np.array(g.z).shape for g in grids] == [(6, 6), (3, 3), (4, 4), (4, 4)]


# ----- the code panels --------------------------------------------------------------------------------
def printed_by(code: str) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(code, {})
    return output.getvalue()


@pytest.mark.parametrize("transposed", [False, True])
def test_the_layer_code_prints_the_size_the_lab_shows(transposed):
    s = ConvSettings(6, 3, stride=2, padding=1, output_padding=1 if transposed else 0)
    size = s.transpose_size() if transposed else s.conv_size()
    assert printed_by(conv_snippet(s, transposed)) == f"torch.Size([1, 1, {size}, {size}])\nTrue\n"


def test_the_spreadsheet_code_reaches_the_labs_fit():
    edited = SHEET_INPUT.copy()
    edited[0, 0] = 5  # a student's edit
    printed = printed_by(sheet_snippet(edited, SHEET_KERNEL))
    assert printed.startswith(f"L1 error {spreadsheet_fit(edited).losses[-2]:.1f};")
