"""The learning-rate lab's core: table rows, links, presets, the runners, the figures, the code panel."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from core import schedule_lab as lab
from core.errors import UserError
from core.models import build
from core.schedules import DecayType, PhaseDriver, TrainingPhase, phase_boundaries, schedule_curves
from core.snippets import schedule_snippet
from core.train import Callback, DeviceConfig, Learner, PhaseSchedule, Reporter, TensorBatches, Validation, WeightAveraging
from core.viz import SCHEDULE_LABEL_KEYS, lr_finder_figure, schedule_figure, thinned_plan
from tests.unit.conftest import RecordingContext

CPU = DeviceConfig(torch.device("cpu"))


# ----- rows, presets and links --------------------------------------------------------------
@pytest.mark.parametrize("preset", lab.PRESETS)
def test_every_preset_round_trips_through_rows_and_links(preset):
    phases = lab.preset_phases(preset)
    rows = lab.preset_rows(preset)
    for read, planned in zip(lab.phases_from_rows(rows), phases, strict=True):
        assert read.epochs == pytest.approx(planned.epochs, abs=1e-9)  # rows keep 10 decimals: 0.3, not 0.2999…98
        assert dataclasses.replace(read, epochs=planned.epochs) == planned
    assert lab.rows_from_text(lab.rows_to_text(rows)) == rows
    assert lab.rows_from_frame(lab.frame_from_rows(rows)) == rows


def test_the_one_cycle_preset_is_the_lessons_function():
    rows = lab.preset_rows("one_cycle", cycle_len=3, lr=1e-2, div=10, pct=10, max_mom=0.95, min_mom=0.85)
    assert [row["epochs"] for row in rows] == [1.35, 1.35, 0.3]
    spans = [value for row in rows for value in (row["lr_start"], row["lr_end"])]
    assert spans == pytest.approx([1e-3, 1e-2, 1e-2, 1e-3, 1e-3, 1e-5])


def test_blank_cells_from_the_editor_mean_defaults_and_empty_rows_are_dropped():
    frame = pd.DataFrame([
        {"epochs": 1, "optimizer": "adam", "lr_start": 1e-3, "lr_end": np.nan, "lr_decay": "cosine",
         "power": None, "mom_start": None, "mom_end": None, "mom_decay": None, "image_size": np.nan},
        {column: None for column in lab.COLUMNS},  # the editor's new, untouched row
    ])
    rows = lab.rows_from_frame(frame)
    assert len(rows) == 1 and rows[0]["lr_end"] is None and rows[0]["image_size"] is None
    [phase] = lab.phases_from_rows(rows)
    assert phase == TrainingPhase(1.0, "adam", 1e-3, DecayType.COSINE)  # a scalar with a decay: down to 0
    assert phase.lr_span() == (1e-3, 0.0)


def test_a_bad_row_is_named_by_its_number():
    rows = lab.preset_rows("lesson_linear")
    rows[1]["lr_decay"] = "polynomial"
    with pytest.raises(UserError) as error:
        lab.phases_from_rows(rows)
    assert error.value.phase == 2 and error.value.key == "phase.poly_needs_power"
    rows[1]["power"] = 2.0
    assert lab.phases_from_rows(rows)[1].lr_decay == (DecayType.POLYNOMIAL, 2.0)


@pytest.mark.parametrize("rows, key", [
    ([], "schedule.no_phases"),
    ([{"epochs": 1.0}], "phase.lr_missing"),
    ([{"epochs": 1.0, "lr_start": 0.1, "lr_decay": "sideways"}], "phase.bad_decay"),
    ([{"epochs": 1.0, "lr_start": 0.1, "image_size": 20.5}], "phase.image_size"),
    ([{"epochs": 1.0, "lr_start": 0.1}] * (lab.MAX_PHASES + 1), "schedule.too_many_phases"),
])
def test_tables_that_make_no_sense_are_refused(rows, key):
    with pytest.raises(UserError) as error:
        lab.phases_from_rows(rows)
    assert error.value.key == key


@pytest.mark.parametrize("text", ["", "1,2,3", "x" * 5000, "1,sgd,0.1,,no,,,,no,~1,sgd,0.1,,no,,,,no",
                                  "1,bogus,0.1,,no,,,,no,", "1,sgd,0.1,,twirl,,,,no,", "inf,sgd,0.1,,no,,,,no,",
                                  "1,sgd,abc,,no,,,,no,"])
def test_junk_link_text_is_not_a_table(text):
    if text.count("~") == 1:  # two well-formed rows with one cell missing each: still junk
        text = text.replace(",no,~", ",~")
    with pytest.raises(ValueError):
        lab.rows_from_text(text)


def test_use_it_rescales_the_table_keeping_its_shape():
    rows = lab.preset_rows("one_cycle")
    scaled = lab.scale_lrs(rows, 0.5)
    assert max(max(r["lr_start"], r["lr_end"] or 0) for r in scaled) == pytest.approx(0.5)
    for before, after in zip(rows, scaled):
        assert after["lr_start"] / before["lr_start"] == pytest.approx(5)
        assert after["mom_start"] == before["mom_start"]


def test_validate_refuses_what_cannot_train():
    rows = tuple(lab.preset_rows("one_cycle"))
    lab.validate(lab.ScheduleSpec(phases=rows))
    for change, key in ((dict(n_train=1234), "schedule.bad_size"), (dict(batch_size=1), "mnist.batch_range"),
                        (dict(swa_start=3.0), "schedule.swa_start"), (dict(arch="vgg"), "mnist.bad_arch"),
                        (dict(phases=(rows[0] | {"epochs": 31.0},)), "schedule.train_too_long")):
        with pytest.raises(UserError) as error:
            lab.validate(lab.ScheduleSpec(**{"phases": rows, **change}))
        assert error.value.key == key


@pytest.mark.parametrize("batch", [0, -4, 1, 10**6])
def test_a_batch_size_that_makes_no_sense_gets_a_message_not_a_crash(batch):
    with pytest.raises(UserError) as error:
        lab.plan(lab.preset_rows("one_cycle"), 6000, batch)
    assert error.value.key == "mnist.batch_range"


def test_a_link_with_too_many_phases_is_not_cut_short():
    text = lab.rows_to_text(lab.preset_rows("constant") * (lab.MAX_PHASES + 1))
    assert not lab.is_table_text(text)
    assert lab.is_table_text(lab.rows_to_text(lab.preset_rows("constant") * lab.MAX_PHASES))


def test_a_stored_spec_with_broken_rows_is_a_user_error():
    with pytest.raises(UserError) as error:
        lab.spec_from_dict({"phases": [1, 2]})
    assert error.value.key == "spec.bad"


def test_the_plan_names_each_phase_and_the_finder_uses_the_first_optimizer():
    rows = lab.preset_rows("progressive_resizing")
    plan = lab.plan(rows, 6000, 128)
    assert plan.phase_names == ["1·SGD+momentum·20px", "2·SGD+momentum·28px"]
    assert lab.finder_optimizer(lab.preset_rows("adam_then_sgd")) == "adam"
    assert lab.finder_optimizer([]) == lab.finder_optimizer([{"optimizer": "lion"}]) == "sgd_momentum"


def test_an_edited_cell_changes_the_plan_though_plans_are_made_once_per_table():
    rows = lab.preset_rows("one_cycle")
    before = lab.plan(rows, 6000, 128)
    assert lab.plan([dict(row) for row in rows], 6000, 128) is before  # the page's rerun: the same table
    edited = [dict(row) for row in rows]
    edited[0]["lr_end"] = 0.5  # the warm-up now climbs to 0.5, not 0.1
    assert before.curves["lr"].max() == pytest.approx(0.1)
    assert lab.plan(edited, 6000, 128).curves["lr"].max() > 0.45
    assert len(lab.plan(rows, 6000, 64).curves) > len(before.curves)  # a smaller batch: more iterations
    edited[0]["lr_start"] = -1.0
    for _ in range(2):  # a refused table is refused again, not remembered as a plan
        with pytest.raises(UserError):
            lab.plan(edited, 6000, 128)


def test_iterations_per_epoch_is_what_tensor_batches_cut():
    for n, batch in ((6000, 128), (6000, 7), (6001, 2), (60000, 4096)):
        images = torch.zeros(n, 0)
        assert lab.iterations_per_epoch(n, batch) == len(list(TensorBatches(images, torch.zeros(n), batch, shuffle=True)))


def test_layer_groups_cover_every_parameter_once_in_order():
    model = build("resnet_cnn")
    groups = lab.layer_groups(model)
    assert len(groups) == 3
    flat = [p for group in groups for p in group]
    assert [id(p) for p in flat] == [id(p) for p in model.parameters()]


# ----- torch's own schedulers -------------------------------------------------------------------
def test_torch_one_cycle_overlay_peaks_at_the_tables_lr():
    overlay = lab.torch_overlay("OneCycleLR", 300, 100, 0.1)
    assert len(overlay) == 300 and overlay["lr"].max() == pytest.approx(0.1, rel=1e-3)
    assert overlay["lr"].iloc[0] == pytest.approx(0.1 / 25)
    assert overlay["momentum"].iloc[0] == pytest.approx(0.95)


def test_torch_warm_restarts_restart_after_one_two_four_epochs():
    lrs = lab.torch_overlay("CosineAnnealingWarmRestarts", 700, 100, 0.1)["lr"].to_numpy()
    restarts = [i for i in range(1, 700) if lrs[i] > lrs[i - 1]]
    assert restarts == [100, 300]  # T_0 = 1 epoch, T_mult = 2: cycles of 100, 200, 400 iterations


def test_an_unknown_overlay_is_refused():
    with pytest.raises(UserError):
        lab.torch_overlay("StepLR", 10, 5, 0.1)


# ----- the Learner with phases ------------------------------------------------------------------------
def test_fractional_epochs_stop_part_way_and_validate_at_the_end(mnist_train, mnist_valid):
    train = mnist_train.subset(256, seed=0)
    model = build("basic_cnn")
    validation = Validation(mnist_valid.images[:200], mnist_valid.labels[:200], every=1000)
    rows = []
    learner = Learner(model, TensorBatches(train.images, train.labels, 64, shuffle=True),
                      torch.optim.SGD(model.parameters(), lr=0.05), [validation, Reporter(rows.append)], device=CPU)
    learner.fit(1.5)
    assert learner.step == 6 and len(rows) == 6
    assert rows[3].get("valid_on") == 200 and rows[-1].get("valid_on") == 200  # each epoch's end, and the very end


def test_phase_schedule_swaps_optimizers_resizes_images_and_reports_what_was_used(mnist_train):
    train = mnist_train.subset(512, seed=0)
    phases = [TrainingPhase(1, "adam", (1e-3, 1e-4), DecayType.COSINE, image_size=16),
              TrainingPhase(0.5, "sgd_momentum", 0.05, momentum=(0.9, 0.8), momentum_decay=DecayType.LINEAR)]
    model = build("basic_cnn")
    batches = TensorBatches(train.images, train.labels, 64, shuffle=True)
    driver = PhaseDriver(model.parameters(), phases, len(batches))
    seen_sizes = []

    class Sizes(Callback):
        def before_batch(self, learner):
            seen_sizes.append(learner.image_size)

    rows = []
    learner = Learner(model, batches, driver.optimizer_for(0), [PhaseSchedule(driver), Sizes(), Reporter(rows.append)], device=CPU)
    model.register_forward_pre_hook(lambda module, args: seen_sizes.append(args[0].shape[-1]))
    learner.fit(driver.total_iterations / len(batches))
    plan = schedule_curves(phases, len(batches))
    assert [r["lr"] for r in rows] == list(plan["lr"])
    assert [r["momentum"] for r in rows] == pytest.approx(list(plan["momentum"]), rel=1e-12)
    assert [r["phase"] for r in rows] == list(plan["phase"])
    assert isinstance(learner.optimizer, torch.optim.SGD)
    assert seen_sizes[:2] == [16, 16] and seen_sizes[-2:] == [None, 28]  # 16 px in phase 1, the data's 28 after


def test_weight_averaging_averages_from_its_start_and_recomputes_batchnorm(mnist_train):
    train = mnist_train.subset(256, seed=0)
    model = build("basic_cnn")
    batches = TensorBatches(train.images, train.labels, 64, shuffle=True)
    averaging = WeightAveraging(start_step=4, every=4)
    learner = Learner(model, batches, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), [averaging], device=CPU)
    learner.fit(3)
    assert averaging.models_averaged == 3  # after steps 4, 8 and 12
    averaged = averaging.finish(learner)
    bn = next(m for m in averaged.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn.num_batches_tracked.item() == 4  # update_bn's one pass over the training data
    assert not torch.equal(next(averaged.parameters()), next(model.parameters()))


# ----- the runners ---------------------------------------------------------------------------------
def test_run_schedule_trains_with_the_table_and_reports_swa():
    rows = [lab.row_from_phase(TrainingPhase(1, "adam", 1e-3, DecayType.COSINE, image_size=20)),
            lab.row_from_phase(TrainingPhase(2, "sgd_momentum", (0.05, 1e-3), DecayType.EXPONENTIAL))]
    spec = lab.ScheduleSpec(phases=tuple(rows), batch_size=1024, swa_start=1.0)
    context = RecordingContext()
    lab.run_schedule(spec.to_dict(), context)
    metrics = context.of("metrics")
    plan = schedule_curves(lab.phases_from_rows(rows), lab.iterations_per_epoch(6000, 1024))
    assert [m["lr"] for m in metrics] == list(plan["lr"])
    [result] = context.of("result")
    assert result["iterations"] == len(plan) == 18  # 6 batches of up to 1,024 of the 6,000 digits, 3 epochs
    assert 0 <= result["accuracy"] <= 1 and 0 <= result["swa_accuracy"] <= 1
    assert result["swa_models"] == 3  # after epochs 1, 2 and 3


def test_run_schedule_with_discriminative_rates_reports_the_heads_rate():
    rows = lab.preset_rows("constant")
    rows[0]["epochs"] = 1.0
    context = RecordingContext()
    lab.run_schedule(lab.ScheduleSpec(phases=tuple(rows), batch_size=2048, discriminative=True).to_dict(), context)
    assert {m["lr"] for m in context.of("metrics")} == {0.1}


def test_run_lr_finder_reports_a_suggestion():
    context = RecordingContext()
    lab.run_lr_finder(lab.FinderSpec(iterations=20, batch_size=256).to_dict(), context)
    [result] = context.of("result")
    metrics = context.of("metrics")
    assert 10 <= len(metrics) <= 20 and metrics[0]["lr"] == pytest.approx(1e-5)
    assert result["suggestion"] > 0 and math.isfinite(result["suggestion"])


def test_a_finder_spec_that_makes_no_sense_is_refused():
    for values in ({"start_lr": 10, "end_lr": 1}, {"iterations": 3}, {"arch": "vgg"}, {"nonsense": 1, "optimizer": "lion"}):
        with pytest.raises(UserError):
            lab.finder_spec_from_dict(values)


def test_estimate_scales_with_iterations_and_pixels():
    rows = lab.preset_rows("constant")
    base = lab.estimate_seconds(lab.ScheduleSpec(phases=tuple(rows)), {"basic_cnn": 0.01})
    rows[0]["image_size"] = 14.0
    smaller = lab.estimate_seconds(lab.ScheduleSpec(phases=tuple(rows)), {"basic_cnn": 0.01})
    assert smaller < base and lab.estimate_seconds(lab.ScheduleSpec(phases=tuple(rows)), {}) is None


# ----- the figures -------------------------------------------------------------------------------------
def test_a_long_plan_is_thinned_but_keeps_every_phase_edge():
    phases = [TrainingPhase(1, "sgd_momentum", 0.1), TrainingPhase(1, "sgd_momentum", 0.01)] * 5
    curves = schedule_curves(phases, 10_000)
    boundaries = phase_boundaries(phases, 10_000)
    thin = thinned_plan(curves, boundaries)
    assert len(thin) < 2100
    for boundary in boundaries[1:-1]:
        assert {boundary - 1, boundary} <= set(thin["iteration"])  # the step down stays a sharp step
    assert thin["iteration"].iloc[-1] == len(curves) - 1


def test_the_schedule_figure_names_phases_and_draws_plan_dashed_and_actual_solid():
    phases = lab.preset_phases("adam_then_sgd")
    curves = schedule_curves(phases, 10)
    boundaries = phase_boundaries(phases, 10)
    run = pd.DataFrame({"step": np.arange(1, 31), "lr": curves["lr"], "momentum": curves["momentum"], "train_loss": 1.0})
    labels = {key: key for key in SCHEDULE_LABEL_KEYS}
    figure = schedule_figure(curves, boundaries, ["1·Adam", "2·SGD+momentum"], [("run", run)], [], labels)
    plan = [t for t in figure.data if t.name == "plan"]
    actual = [t for t in figure.data if t.name == "run"]
    assert {t.line.dash for t in plan} == {"dash"} and {t.line.dash for t in actual} == {None}
    assert list(actual[0].x) == list(range(30))  # step i + 1 used iteration i's lr
    assert [a.text for a in figure.layout.annotations] == ["1·Adam", "2·SGD+momentum"]
    assert [shape.x0 for shape in figure.layout.shapes] == [10]


def test_before_any_run_the_loss_panel_says_what_will_come_and_lr_can_be_logarithmic():
    phases = lab.preset_phases("one_cycle")
    curves = schedule_curves(phases, 10)
    labels = {key: key for key in SCHEDULE_LABEL_KEYS}
    figure = schedule_figure(curves, phase_boundaries(phases, 10), ["a", "b", "c"], [], [], labels, log_lr=True)
    assert figure.layout.yaxis.type == "log"
    assert "loss_waiting" in [a.text for a in figure.layout.annotations]
    assert list(figure.layout.xaxis3.range) == [0, 30]  # the iteration axis spans the plan


def test_the_finder_figure_marks_the_suggestion():
    frame = pd.DataFrame({"lr": np.geomspace(1e-4, 1, 20), "loss": np.linspace(2, 1, 20), "smoothed": np.linspace(2, 1, 20)})
    labels = {key: key for key in ("raw", "smoothed", "suggestion", "steepest", "lr_axis", "loss_axis")}
    figure = lr_finder_figure(frame, 0.1, 0.01, labels)
    assert figure.layout.xaxis.type == "log"
    assert any("suggestion: 0.1" in a.text for a in figure.layout.annotations)
    assert sorted(shape.x0 for shape in figure.layout.shapes) == [0.01, 0.1]  # data units, even on a log axis
    assert figure.layout.yaxis.range[0] <= 1.0  # the raw loss is inside the view


# ----- the code panel ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", lab.PRESETS)
def test_the_plain_pytorch_code_follows_the_same_plan(preset):
    phases = lab.preset_phases(preset)
    code = schedule_snippet(phases, 20, "basic_cnn", 8)
    used = []

    def record(optimizer, args, kwargs):
        group = optimizer.param_groups[0]
        used.append((group["lr"], group["betas"][0] if "betas" in group else group["momentum"]))

    handle = register_optimizer_step_pre_hook(record)  # every optimizer the code creates
    try:
        train = [(torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))) for _ in range(3)]
        exec(compile(code, "snippet", "exec"), {"model": build("basic_cnn"), "train": train})
    finally:
        handle.remove()
    plan = schedule_curves(phases, 20)
    assert [lr for lr, _ in used] == pytest.approx(list(plan["lr"]), rel=1e-9)
    assert [m for _, m in used] == pytest.approx(list(plan["momentum"]), rel=1e-9)


def test_the_gpu_path_amp_and_channels_last_trains_with_phases_on_the_cpu(mnist_train):
    """What CUDA gets (float16 autocast with a GradScaler, channels_last, an optimizer swapped
    mid-run, resized images), exercised on the CPU so that it is tested where no GPU is."""
    config = DeviceConfig(torch.device("cpu"), amp_dtype=torch.float16, channels_last=True)
    train = mnist_train.subset(256, seed=0)
    phases = [TrainingPhase(1, "adam", 1e-3, image_size=20), TrainingPhase(1, "sgd_momentum", 0.05)]
    model = build("basic_cnn")
    batches = TensorBatches(train.images, train.labels, 64, shuffle=True)
    driver = PhaseDriver(model.parameters(), phases, len(batches))
    layouts, rows = [], []
    learner = Learner(model, batches, driver.optimizer_for(0), [PhaseSchedule(driver), Reporter(rows.append)], device=config)
    learner.model.register_forward_pre_hook(
        lambda module, args: layouts.append((args[0].shape[-1], args[0].is_contiguous(memory_format=torch.channels_last))))
    assert learner.scaler.is_enabled()
    learner.fit(2)
    assert layouts[0] == (20, True) and layouts[-1] == (28, True)
    assert all(math.isfinite(row["train_loss"]) for row in rows) and len(rows) == 8
    assert learner.predict(mnist_train.images[:5]).dtype == torch.float32


def test_sgdr_warm_up_sliver_goes_unlabelled_and_a_constant_momentum_gets_a_readable_axis():
    phases = lab.preset_phases("sgdr")
    curves = schedule_curves(phases, 100)
    names = [f"{i}·x" for i in range(1, len(phases) + 1)]
    figure = schedule_figure(curves, phase_boundaries(phases, 100), names, [], [], {k: k for k in SCHEDULE_LABEL_KEYS})
    assert [a.text for a in figure.layout.annotations if a.text != "loss_waiting"] == ["2·x", "3·x", "4·x"]
    low, high = figure.layout.yaxis2.range
    assert low < 0.9 < high and high - low < 0.1  # momentum 0.9 all the way: a flat line mid-panel
