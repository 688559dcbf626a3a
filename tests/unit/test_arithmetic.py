"""The convolution lab's numbers: output-size formulas against torch's own layers, the two
pictures of a transposed convolution against conv_transpose2d, overlap maps, the spreadsheet fit."""
from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.arithmetic import conv_out, conv_out_worked, conv_transpose_out, conv_transpose_out_worked, pool_out
from core.conv_grids import (SHEET_INPUT, SHEET_KERNEL, ConvSettings, check_drawable, conv2d, conv_transpose2d,
                             example_input, example_kernel, interior, is_even, overlap_counts, overlap_counts_1d,
                             spreadsheet_fit, stamped, two_ways_difference, undoes_shape, window, window_sum,
                             written_sum, zero_inserted)
from core.errors import UserError

RANDOM = random.Random(12)
CONFIGS = [dict(n=RANDOM.randint(1, 20), kernel=RANDOM.randint(1, 7), stride=RANDOM.randint(1, 4),
                padding=RANDOM.randint(0, 4), dilation=RANDOM.randint(1, 3), output_padding=RANDOM.randint(0, 3))
           for _ in range(300)]


def torch_size(call) -> int | None:
    """The length torch gives, or None when torch refuses the settings."""
    try:
        return call().shape[-1]
    except RuntimeError:
        return None


def ours(formula, **settings) -> int | None:
    try:
        return formula(**settings)
    except UserError:
        return None


def test_conv_out_is_torchs_on_300_settings():
    for c in CONFIGS:
        x, w = torch.zeros(1, 1, c["n"]), torch.zeros(1, 1, c["kernel"])
        expected = torch_size(lambda: F.conv1d(x, w, stride=c["stride"], padding=c["padding"], dilation=c["dilation"]))
        got = ours(conv_out, n=c["n"], kernel=c["kernel"], stride=c["stride"], padding=c["padding"], dilation=c["dilation"])
        assert got == expected, c


def test_conv_transpose_out_is_torchs_on_300_settings_with_output_padding():
    accepted = 0
    for c in CONFIGS:
        x, w = torch.zeros(1, 1, c["n"]), torch.zeros(1, 1, c["kernel"])
        expected = torch_size(lambda: F.conv_transpose1d(x, w, stride=c["stride"], padding=c["padding"],
                                                         output_padding=c["output_padding"], dilation=c["dilation"]))
        got = ours(conv_transpose_out, **c)
        assert got == expected, c
        accepted += got is not None
    assert accepted > 100  # most settings are possible: the test is not only about refusals


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_out_is_torchs_for_max_and_average_pooling(ceil_mode):
    for c in CONFIGS:
        x = torch.zeros(1, 1, c["n"])
        settings = dict(kernel_size=c["kernel"], stride=c["stride"], padding=c["padding"], ceil_mode=ceil_mode)
        maximum = torch_size(lambda: F.max_pool1d(x, dilation=c["dilation"], **settings))
        assert ours(pool_out, n=c["n"], kernel=c["kernel"], stride=c["stride"], padding=c["padding"],
                    dilation=c["dilation"], ceil_mode=ceil_mode) == maximum, c
        average = torch_size(lambda: F.avg_pool1d(x, **settings))
        if average is not None or ours(pool_out, n=c["n"], kernel=c["kernel"], stride=c["stride"],
                                       padding=c["padding"], ceil_mode=ceil_mode) is not None:
            assert ours(pool_out, n=c["n"], kernel=c["kernel"], stride=c["stride"], padding=c["padding"],
                        ceil_mode=ceil_mode) == average, c


def test_pool_stride_defaults_to_the_kernel_as_in_torch():
    assert pool_out(28, 2) == 14


def test_the_lessons_sizes():
    assert [conv_out(n, 3, 2, 1) for n in (28, 14, 7, 4, 2)] == [14, 7, 4, 2, 1]  # Lesson 7's MNIST CNN
    assert conv_transpose_out(1, 4, 1, 0) == 4 and conv_transpose_out(4, 4, 2, 1) == 8  # DCGAN's generator
    assert conv_out(4, 3) == 2 and conv_transpose_out(2, 3) == 4  # the spreadsheet: 4×4 → 2×2 → 4×4


def test_the_worked_formulas_show_the_settings_and_end_at_the_formulas_answer():
    assert conv_out_worked(5, 3, 2, 1) == "⌊(5 + 2·1 − 1·(3 − 1) − 1) / 2⌋ + 1 = ⌊4 / 2⌋ + 1 = 3"
    assert conv_transpose_out_worked(4, 4, 2, 1).endswith(f"= {conv_transpose_out(4, 4, 2, 1)}")
    for config in CONFIGS[:50]:
        settings = {k: v for k, v in config.items() if k != "output_padding"}
        size = ours(conv_out, **settings)
        if size is not None:
            assert conv_out_worked(**settings).endswith(f"= {size}")


@pytest.mark.parametrize("call, words", [
    (lambda: conv_out(3, 5), "spans 5 cells"),
    (lambda: conv_out(4, 0), "kernel must be at least 1"),
    (lambda: conv_out(4, 3, padding=-1), "cannot be negative"),
    (lambda: conv_out(4.5, 3), "whole number"),
    (lambda: conv_transpose_out(4, 3, stride=2, output_padding=2), "smaller than the stride"),
    (lambda: conv_transpose_out(2, 3, padding=3), "Use less padding"),
    (lambda: pool_out(8, 3, padding=2), "at most half"),
])
def test_impossible_settings_say_what_to_change(call, words):
    with pytest.raises(ValueError, match=words):
        call()


# ----- the sliding window -------------------------------------------------------------------------------
def test_each_output_cell_is_the_written_sum_of_its_window():
    for n, k, s, p, d in [(5, 3, 1, 0, 1), (7, 3, 2, 1, 1), (6, 2, 2, 0, 1), (8, 3, 1, 2, 2), (16, 5, 3, 2, 1)]:
        settings = ConvSettings(n, k, s, p, d)
        x, w = example_input(n, seed=n), example_kernel(k, seed=k)
        expected = conv2d(x, w, settings)
        for row, col in itertools.product(range(settings.conv_size()), repeat=2):
            pairs, total = window_sum(x, w, row, col, settings)
            assert total == pytest.approx(expected[row, col])
            assert len(pairs) == k * k


def test_a_window_moves_by_the_stride_and_spreads_by_the_dilation():
    settings = ConvSettings(7, 3, stride=2, padding=1, dilation=2)
    cells = window(1, 2, settings)
    assert cells[0] == (2, 4, 0, 0) and cells[-1] == (6, 8, 2, 2)


def test_the_written_sum_leaves_out_paddings_zeros_and_brackets_negatives():
    assert written_sum([(0.0, 1.0), (3.0, -1.0), (2.0, 2.0)], 1.0) == "3·(−1) + 2·2 = 1"
    assert written_sum([(1.0, -1.0), (8.0, -1.0)], -9.0) == "1·(−1) + 8·(−1) = −9"  # a result needs no brackets


def test_grids_larger_than_the_lab_draws_are_refused():
    with pytest.raises(UserError, match="up to 16"):
        check_drawable(ConvSettings(n=17))


# ----- the transposed convolution two ways --------------------------------------------------------------
def transposed_settings():
    for n, k, s, p, op, d in itertools.product((1, 2, 4), (1, 2, 3, 4), (1, 2, 3), (0, 1, 2, 4), (0, 1, 2), (1, 2)):
        settings = ConvSettings(n, k, s, p, d, op)
        try:
            settings.transpose_size()
        except UserError:
            continue
        yield settings


def test_stamps_and_zero_insertion_both_equal_conv_transpose2d():
    checked = 0
    for settings in transposed_settings():
        x, w = example_input(settings.n, seed=3), example_kernel(settings.kernel, seed=4)
        expected = conv_transpose2d(x, w, settings)
        np.testing.assert_allclose(stamped(x, w, settings).output, expected, err_msg=str(settings))
        np.testing.assert_allclose(zero_inserted(x, w, settings).output, expected, err_msg=str(settings))
        checked += 1
    assert checked > 200


def test_the_two_ways_differ_from_torch_only_by_rounding_and_the_shape_undoes_the_convs():
    assert two_ways_difference(example_input(5), example_kernel(3), ConvSettings(5, 3, 2, 1, output_padding=1)) == 0
    assert undoes_shape(ConvSettings(5, 3, 2, 1, output_padding=1))  # 5 → 10 → 5, the sliding window's default
    # output padding at least the stride (allowed under a larger dilation) adds a cell the convolution keeps
    assert not undoes_shape(ConvSettings(5, 3, stride=1, dilation=2, output_padding=1))  # 5 → 10 → 6


def test_zero_insertion_puts_stride_minus_one_zeros_between_cells_and_flips_the_kernel():
    settings = ConvSettings(3, 3, stride=2, padding=1, output_padding=1)
    x, w = example_input(3), example_kernel(3)
    picture = zero_inserted(x, w, settings)
    assert picture.grid.shape == (3 * 2 - 1 + 2 * (3 - 1 - 1) + 1,) * 2
    np.testing.assert_array_equal(picture.grid[1:-2:2, 1:-2:2], x)  # the input, one zero apart, inside a border of 1
    assert (picture.kind == 1).sum() == 5 * 5 - 9
    np.testing.assert_array_equal(picture.flipped, w[::-1, ::-1])


def test_stamping_cell_by_cell_builds_the_output_up():
    settings = ConvSettings(2, 3, stride=2)
    x, w = np.ones((2, 2)), np.ones((3, 3))
    assert stamped(x, w, settings, upto=1).canvas.sum() == 9
    assert stamped(x, w, settings).canvas.max() == 4  # the centre: all four stamps overlap there


# ----- checkerboards ------------------------------------------------------------------------------------
def test_kernel_3_stride_2_overlaps_unevenly_and_kernel_4_stride_2_evenly():
    uneven = interior(overlap_counts(8, 3, 2), 3)
    even = interior(overlap_counts(8, 4, 2), 4)
    assert uneven.min() == 1 and uneven.max() == 4  # the checkerboard: 1, 2 and 4 stamps side by side
    assert even.size and even.min() == even.max() == 4
    assert not is_even(3, 2) and is_even(4, 2) and is_even(6, 3) and not is_even(5, 3)


def test_overlap_counts_are_the_stamps_of_ones():
    settings = ConvSettings(5, 3, stride=2)
    np.testing.assert_array_equal(overlap_counts(5, 3, 2), stamped(np.ones((5, 5)), np.ones((3, 3)), settings).canvas)
    assert overlap_counts_1d(3, 2, 2).tolist() == [1, 1, 1, 1, 1, 1]


# ----- the spreadsheet ----------------------------------------------------------------------------------
def test_the_spreadsheet_fit_rebuilds_the_16_cells_to_a_small_l1_error():
    fit = spreadsheet_fit()
    assert fit.small.shape == (2, 2) and fit.padded.shape == (6, 6)
    assert fit.losses[0] == pytest.approx(np.abs(SHEET_INPUT).sum())  # a filter of zeros rebuilds zeros
    assert fit.losses[-1] < 0.3 * fit.losses[0]
    assert fit.losses[-1] <= fit.least_squares_l1 + 1e-6  # at least as good as the least-squares filter, by L1
    rebuilt = F.conv2d(torch.as_tensor(fit.padded)[None, None], torch.as_tensor(fit.filters[-1])[None, None])[0, 0]
    assert np.abs(rebuilt.numpy() - SHEET_INPUT).sum() == pytest.approx(fit.losses[-1], rel=1e-6)


def test_the_fitted_filter_is_a_transposed_convolution_of_the_2x2():
    fit = spreadsheet_fit(steps=50)
    flipped = fit.filters[-1][::-1, ::-1].copy()
    np.testing.assert_allclose(conv_transpose2d(fit.small, flipped, ConvSettings(2, 3)), fit.reconstructions[-1])


@pytest.mark.parametrize("x, kernel, words", [
    (np.zeros((3, 3)), SHEET_KERNEL, "4×4 input"),
    (np.full((4, 4), np.nan), SHEET_KERNEL, "between −1000 and 1000"),
    (np.ones((4, 4)), SHEET_KERNEL, "turns the input into zeros"),
])
def test_a_spreadsheet_that_cannot_be_fitted_says_why(x, kernel, words):
    with pytest.raises(UserError, match=words):
        spreadsheet_fit(x, kernel)
