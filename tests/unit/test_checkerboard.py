"""The checkerboard lab (Lesson 12, and Lesson 7's pixel shuffle + ICNR): five upsamplers, the artefact each
leaves at initialisation, how it is measured, the runner and its estimates."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from core import checkerboard_lab as lab
from core.checkerboard_figures import losses_figure, outputs_and_spectra_figure
from core.errors import RunCancelled, TrainingDiverged, UserError
from core.models.upsampling_generator import UPSAMPLERS, icnr_, upsampling_generator
from tests.unit.conftest import CancelAfter, RecordingContext

TINY = {"preset": "quick", "steps": 6, "lr": 3e-3, "width": 8, "batch_size": 8, "seed": 0}


# ----- the generators ----------------------------------------------------------------------------------
@pytest.mark.parametrize("upsampler", UPSAMPLERS)
def test_every_upsampler_doubles_the_picture_at_each_stage(upsampler):
    inputs = torch.randn(2, 1, 8, 8)
    assert upsampling_generator(upsampler, width=4, stages=1)(inputs).shape == (2, 1, 16, 16)
    assert upsampling_generator(upsampler, width=4, stages=2)(inputs).shape == (2, 1, 32, 32)
    assert upsampling_generator(upsampler, width=4, out_channels=3)(inputs).shape == (2, 3, 32, 32)


def test_icnr_makes_the_pixel_shuffles_sub_pixels_equal_at_initialisation():
    torch.manual_seed(0)
    inputs = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        icnr = upsampling_generator("shuffle_icnr", width=8, stages=1)(inputs)
        plain = upsampling_generator("shuffle", width=8, stages=1)(inputs)
    assert lab.subpixel_spread(icnr) < 1e-6
    assert lab.subpixel_spread(plain) > 0.1


def test_icnr_copies_one_kernel_to_each_group_of_sub_pixel_channels():
    weight = icnr_(torch.empty(8, 3, 3, 3))
    groups = weight.view(2, 4, 3, 3, 3)
    assert torch.equal(groups, groups[:, :1].expand_as(groups)) and not torch.equal(groups[0], groups[1])
    with pytest.raises(ValueError, match="multiple of 4"):
        icnr_(torch.empty(6, 3, 3, 3))


def test_an_unknown_upsampler_is_refused():
    with pytest.raises(ValueError, match="Unknown upsampler"):
        upsampling_generator("bicubic")


# ----- measuring the artefact --------------------------------------------------------------------------
def test_the_spectrum_of_a_planted_checkerboard_peaks_at_the_nyquist_corner():
    rows, columns = np.indices((32, 32))
    board = np.where((rows + columns) % 2 == 0, 1.0, -1.0)
    noise = np.random.default_rng(0).normal(scale=0.1, size=(4, 32, 32))
    power = lab.spectrum(board + noise)
    assert power.shape == (32, 32)
    assert np.unravel_index(power.argmax(), power.shape) == (0, 0)  # (N/2, N/2), where fftshift puts it


def test_a_flat_picture_has_no_checkerboard_and_a_planted_one_a_high_score():
    rows, columns = np.indices((32, 32))
    board = np.where((rows + columns) % 2 == 0, 1.0, -1.0)
    smooth = np.sin(rows / 5.0) + np.cos(columns / 7.0)
    assert lab.checkerboard_score(smooth) < 0.1
    assert lab.checkerboard_score(smooth + 0.5 * board) > 1


def test_at_initialisation_deconv3_leaves_a_checkerboard_nearest_and_icnr_do_not():
    scores = {name: lab.checkerboard_score(output) for name, output in lab.untrained_outputs(width=16).items()}
    assert scores["deconv3"] > scores["nearest"] + 1
    assert scores["shuffle"] > scores["shuffle_icnr"] + 1
    assert scores["shuffle_icnr"] < 0.2 and scores["nearest"] < 0.3


def test_the_untrained_outputs_are_the_same_every_time_and_leave_the_random_numbers_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    first = lab.untrained_outputs(width=8, batch=4)
    assert torch.equal(torch.rand(3), expected)
    again = lab.untrained_outputs(width=8, batch=4)
    assert set(first) == set(UPSAMPLERS)
    assert all(first[name].shape == (4, 32, 32) and np.array_equal(first[name], again[name]) for name in first)
    flat = lab.constant_input_outputs(width=8)
    assert all(output.shape == (32, 32) for output in flat.values())


# ----- the runner --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run() -> RecordingContext:
    context = RecordingContext()
    lab.run_checkerboard(TINY, context)
    return context


def test_a_run_reports_every_generators_loss_each_step(tiny_run):
    rows = tiny_run.of("metrics")
    assert [row["step"] for row in rows] == list(range(1, TINY["steps"] + 1))
    assert all(row["total_steps"] == TINY["steps"] and row["eta"] >= 0 and row["elapsed"] > 0 for row in rows)
    assert all(f"loss_{name}" in row for row in rows for name in UPSAMPLERS)


def test_a_run_shows_its_outputs_and_ends_with_lower_losses(tiny_run):
    picture = Image.open(io.BytesIO(tiny_run.of("samples")[-1]["png"]))
    assert picture.format == "PNG" and picture.height > 5 * 32 and picture.width > 8 * 32
    [result] = tiny_run.of("result")
    first = tiny_run.of("metrics")[0]
    assert result["steps"] == TINY["steps"] and result["device"] and result["seconds"] > 0
    assert all(result["final_loss"][name] < first[f"loss_{name}"] for name in UPSAMPLERS)
    assert all(np.array(result["outputs"][name]).shape == (32, 32) for name in UPSAMPLERS)
    assert all(np.array(result["spectra"][name]).shape == (32, 32) for name in UPSAMPLERS)  # the batch's, as at init
    assert set(result["spectra_score"]) == set(UPSAMPLERS)


def test_cancel_stops_the_run_within_a_step():
    context = CancelAfter(2)
    with pytest.raises(RunCancelled):
        lab.run_checkerboard({**TINY, "steps": 50}, context)
    assert len(context.of("metrics")) == 2 and not context.of("result")


def test_a_huge_learning_rate_stops_the_run_with_advice():
    with pytest.raises(TrainingDiverged, match="at step .* 10 times smaller"):
        lab.run_checkerboard({**TINY, "lr": 1.0, "steps": 30}, RecordingContext())


# ----- settings ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"lr": 0}, "above 0"), ({"lr": -1e-3}, "above 0"), ({"lr": 2.0}, "at most 1"),
    ({"lr": float("nan")}, "must be a number"), ({"lr": "fast"}, "must be a number"),
    ({"steps": 0}, "steps must be between 1 and 5000"), ({"steps": 5001}, "steps must be between"),
    ({"width": 3}, "width must be between 4 and 256"), ({"width": 257}, "width must be between"),
    ({"batch_size": 1}, "batch_size must be between 2 and 512"), ({"seed": -1}, "seed must be between"),
    ({"seed": 2**31}, "seed must be between"), ({"steps": 2.5}, "whole number"), ({"width": True}, "whole number"),
    ({"preset": "huge"}, "Unknown preset"),
])
def test_settings_that_make_no_sense_are_refused_with_what_to_change(change, message):
    with pytest.raises(UserError, match=message):
        lab.spec_from_dict({**lab.preset_spec("demo").to_dict(), **change})


def test_the_presets_are_valid_and_grow():
    specs = [lab.preset_spec(preset) for preset in lab.PRESETS]
    assert all(lab.validate(spec) for spec in specs)
    assert [lab.size_of_values(spec.to_dict()) for spec in specs] == list(lab.PRESETS)
    assert lab.size_of_values({**lab.preset_spec("demo").to_dict(), "preset": "quick", "steps": 4000}) == "lecture"
    stored = [{"spec": {**TINY, "newer_field": 1}}, {"spec": {"steps": -1}}]
    assert [run["spec"]["steps"] for run in lab.readable_runs(stored)] == [TINY["steps"]]


# ----- estimates ---------------------------------------------------------------------------------------
def test_the_estimate_comes_from_the_warm_up_then_from_finished_runs():
    demo = lab.preset_spec("demo")
    warm = {"checkerboard_seconds_per_step": 0.1}
    assert lab.estimate_seconds(demo, warm, [], "CPU") == pytest.approx(0.1 * demo.steps)
    wider = dataclasses.replace(demo, width=2 * demo.width)
    assert lab.estimate_seconds(wider, warm, [], "CPU") == pytest.approx(4 * 0.1 * demo.steps)
    finished = {"state": "finished", "spec": demo.to_dict(), "result": {"seconds": 30.0, "device": "CPU"}}
    assert lab.estimate_seconds(demo, warm, [finished], "CPU") == pytest.approx(30.0)
    assert lab.estimate_seconds(demo, warm, [finished], "H100") == pytest.approx(0.1 * demo.steps)
    assert lab.estimate_seconds(demo, {}, [], "CPU") is None


def test_the_warm_up_times_a_step_of_all_five():
    seconds = lab.warm_up()["checkerboard_seconds_per_step"]
    assert 0 < seconds < 5
    assert lab.estimate_seconds(lab.preset_spec("quick"), {"checkerboard_seconds_per_step": seconds}, [], "CPU") > 0


# ----- figures -----------------------------------------------------------------------------------------
def test_the_figures_show_every_upsampler():
    names = {name: name.upper() for name in UPSAMPLERS}
    outputs = {name: np.random.default_rng(i).normal(size=(32, 32)) for i, name in enumerate(UPSAMPLERS)}
    spectra = {name: lab.spectrum(output) for name, output in outputs.items()}
    figure = outputs_and_spectra_figure(outputs, spectra, names, {"x": "x", "y": "y", "frequency": "f"})
    assert len(figure.data) == 2 * len(UPSAMPLERS)
    assert [a.text for a in figure.layout.annotations] == list(names.values())
    frame = pd.DataFrame({"step": [1, 2], **{f"loss_{name}": [1.0, 0.5] for name in UPSAMPLERS}})
    losses = losses_figure(frame, names, {"step": "step", "loss": "loss"})
    assert [trace.name for trace in losses.data] == list(names.values()) and losses.layout.yaxis.type == "log"
