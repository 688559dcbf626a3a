"""The RNN lab (Lesson 7): human numbers, how a language model's batches are cut, Model0 to Model5,
the proofs that the written-out, looped and nn.RNN versions agree, the runner and its estimates."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core import rnn_explore as explore
from core import rnn_lab as lab
from core.data.human_numbers import load, load_ids, number_words, position_of
from core.errors import TrainingDiverged, UserError
from core.i18n import strings
from core.models import LANGUAGE_MODELS
from core.models.human_numbers_rnn import FeatureNorm, Model0, Model1, model3
from core.rnn_figures import (accuracy_figure, batches_figure, guesses_png, hidden_figure, lengths_figure,
                              top_words_figure, unrolled_figure)
from core.snippets import rnn_snippet
from core.text.language_model import MAX_EXTRA, LanguageModelBatches, batchify, length_sample
from core.text.unrolling import loop_against_torch_rnn, next_word_guesses, trace, written_out_against_loop
from core.train import weights_bytes
from tests.unit.conftest import RecordingContext


# ----- the data ----------------------------------------------------------------------------------------
def test_the_data_has_the_lessons_numbers():
    train, valid, vocab = load()
    assert len(valid) == 13_017 and len(vocab) == 38  # what the lesson printed
    assert train[:6] == ["xxbos", "one", ",", "two", ",", "three"]
    assert train[-3:] == [",", "eight", "thousand"]  # ... seven thousand nine hundred ninety nine , eight thousand
    assert valid[:5] == ["xxbos", "eight", "thousand", "one", ","]
    assert valid[-6:] == ["nine", "thousand", "nine", "hundred", "ninety", "nine"]
    assert load_ids()[1][:20].tolist() == [2, 18, 10, 11, 8, 18, 10, 12, 8, 18, 10, 13, 8, 18, 10, 14, 8, 18, 10, 15]
    assert vocab.itos[:8] == ("xxunk", "xxpad", "xxbos", "xxfld", "xxmaj", "xxup", "xxrep", "xxwrep")
    assert sum(not token.startswith("xx") and token != "," for token in vocab.itos) == 29  # number words


@pytest.mark.parametrize("n, words", [
    (1, "one"), (10, "ten"), (19, "nineteen"), (20, "twenty"), (99, "ninety nine"), (100, "one hundred"),
    (101, "one hundred one"), (110, "one hundred ten"), (1000, "one thousand"), (1001, "one thousand one"),
    (8123, "eight thousand one hundred twenty three"), (9999, "nine thousand nine hundred ninety nine"),
])
def test_numbers_are_written_as_the_data_set_writes_them(n, words):
    assert " ".join(number_words(n)) == words


@pytest.mark.parametrize("n", [0, -3, 10_000])
def test_a_number_outside_the_data_set_is_refused(n):
    with pytest.raises(ValueError, match="1 to 9999"):
        number_words(n)


@pytest.mark.parametrize("n", [8001, 8002, 8123, 9999])
def test_position_of_finds_each_validation_number(n):
    _, valid, _ = load()
    start = position_of(n)
    assert valid[start:start + len(number_words(n))] == number_words(n)
    assert valid[start - 1] in (",", "xxbos")


# ----- batches ---------------------------------------------------------------------------------------
def test_batchify_cuts_the_stream_into_consecutive_columns():
    columns = batchify(torch.arange(23), 4)  # 5 rows; the last 3 tokens do not fill a row
    assert columns.shape == (5, 4)
    assert columns[:, 0].tolist() == [0, 1, 2, 3, 4] and columns[:, 1].tolist() == [5, 6, 7, 8, 9]


@pytest.mark.parametrize("bs, bptt, randomise", [(64, 70, True), (64, 20, True), (64, 3, False), (7, 5, False),
                                                 (13, 20, True), (2, 9, True)])
def test_each_epoch_reads_every_token_once_as_input_with_the_next_token_as_target(bs, bptt, randomise):
    stream = torch.arange(2_000)
    batches = LanguageModelBatches(stream, bs, bptt, randomise, seed=3)
    rows = len(stream) // bs
    for _ in range(3):  # the randomised lengths differ from epoch to epoch; the count does not
        seen = []
        epoch = list(batches)
        assert len(epoch) == len(batches)
        for x, y in epoch:
            assert x.shape == y.shape and x.shape[1] == bs
            assert torch.equal(y, x + 1)  # stream[i] = i: each target is the token after its input
            seen += x.flatten().tolist()
        # every token that fills a row, except each column's last (only ever a target), exactly once
        expected = [column * rows + row for column in range(bs) for row in range(rows - 1)]
        assert sorted(seen) == expected


def test_the_lessons_validation_batches_come_out_as_in_the_lesson():
    _, valid, _ = load_ids()
    batches = LanguageModelBatches(valid, 64, 70, randomise=True)
    lengths = batches.epoch_lengths()
    assert len(lengths) == 3 and lengths[0] == 95  # the lesson: x1 is 95 x 64, and there are 3 batches
    assert sum(lengths) * 64 == 12_928  # x1.numel() + x2.numel() + x3.numel() in the lesson
    x, y = next(iter(LanguageModelBatches(valid, 64, 70, randomise=True)))
    assert load()[2].textify(x[:5, 0]) == "xxbos eight thousand one ,"
    assert load()[2].textify(y[:4, 0]) == "eight thousand one ,"


@pytest.mark.parametrize("bs, bptt", [(7, 5), (2, 120), (13, 9), (64, 20)])
def test_fitting_an_epoch_to_its_batch_count_keeps_every_batch_near_bptt(bs, bptt):
    for ids in load_ids()[:2]:
        batches = LanguageModelBatches(ids, bs, bptt, randomise=True, seed=1)
        for _ in range(3):
            assert max(batches.epoch_lengths()) <= 1.5 * (bptt + MAX_EXTRA)


def test_the_loaders_random_lengths_stay_around_bptt():
    lengths = length_sample(70, n=2000)
    assert min(lengths) >= 5 and max(lengths) <= 70 + MAX_EXTRA
    assert 60 < np.median(lengths) < 75
    assert 0.02 < np.mean(np.array(lengths) < 50) < 0.1  # one time in 20, around bptt / 2


# ----- the models ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(LANGUAGE_MODELS))
def test_each_model_reads_seq_by_bs_words(name):
    model = LANGUAGE_MODELS[name]()
    x = torch.randint(0, 38, (3 if name == "model0" else 20, 16))
    out = model(x)
    expected = (16, 38) if not model.predicts_every_word else (x.shape[0], 16, 38)
    assert out.shape == expected


def test_model0_has_the_lessons_layers_and_size():
    model = LANGUAGE_MODELS["model0"]()
    assert [name for name, _ in model.named_children()] == ["i_h", "h_h", "h_o", "bn"]
    assert sum(p.numel() for p in model.parameters()) == 38 * 64 + (64 * 64 + 64) + (64 * 38 + 38) + 2 * 64


def test_model1_is_model0_as_a_loop():
    torch.manual_seed(0)
    x = torch.randint(0, 38, (3, 64))
    written_out, looped = written_out_against_loop(Model0(), Model1(), x)
    assert torch.equal(written_out, looped)
    model0, model1 = Model0(), Model1()
    model1.load_state_dict(model0.state_dict())
    assert torch.equal(model0(x), model1(x))  # in training mode too (BatchNorm on the batch)


def test_model3s_loop_is_an_nn_rnn_with_a_relu_holding_its_weights():
    torch.manual_seed(0)
    looped, by_torch = loop_against_torch_rnn(model3(), torch.randint(0, 38, (20, 64)))
    assert looped.shape == by_torch.shape == (20, 64, 64)
    assert looped.abs().max() > 0.1 and torch.allclose(looped, by_torch, atol=1e-5)


@pytest.mark.parametrize("name", ["model2", "model3", "model5"])
def test_stepping_word_by_word_gives_what_the_model_computes_at_once(name):
    torch.manual_seed(0)
    model = LANGUAGE_MODELS[name]().eval()
    ids = torch.randint(0, 38, (9,))
    steps = trace(model, ids)
    if model.keeps_state:
        model.reset()
    with torch.no_grad():
        at_once = model(ids[:, None])[:, 0].softmax(-1)
    assert torch.allclose(torch.tensor(np.stack([s.probabilities for s in steps])), at_once, atol=1e-5)
    assert steps[0].hidden.shape == (2 if name == "model5" else 1, 64)


def test_model0_steps_three_words_and_guesses_only_after_the_third():
    torch.manual_seed(0)
    model = LANGUAGE_MODELS["model0"]().eval()
    ids = torch.tensor([18, 10, 11])
    steps = trace(model, ids)
    with torch.no_grad():
        assert torch.allclose(torch.tensor(steps[-1].probabilities), model(ids[:, None])[0].softmax(-1), atol=1e-6)


def graph_size(tensor: torch.Tensor) -> int:
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack += [next_node for next_node, _ in node.next_functions]
    return len(seen)


@pytest.mark.parametrize("name", ["model3", "model5"])
def test_the_state_is_kept_between_batches_without_the_graph_growing(name):
    model = LANGUAGE_MODELS[name]()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    batches = LanguageModelBatches(load_ids()[0], 64, 20)
    sizes, last_state = [], None
    for step, (x, y) in zip(range(100), batches):
        loss = nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        sizes.append(graph_size(loss))
        assert not model.h.requires_grad  # detached: the state carries no history
        if last_state is not None:
            assert not torch.equal(model.h, last_state)
        last_state = model.h.clone()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert len(set(sizes[1:-1])) == 1  # every full batch builds the same graph, the 2nd as the 99th


def test_a_kept_state_reads_two_batches_as_one_text():
    torch.manual_seed(0)
    model = LANGUAGE_MODELS["model5"]().eval()
    x = torch.randint(0, 38, (30, 4))
    with torch.no_grad():
        whole = model(x)
        model.reset()
        parts = torch.cat([model(x[:12]), model(x[12:])])
    assert torch.allclose(whole, parts, atol=1e-5)


def test_the_lessons_batchnorm_only_ran_because_bs_equalled_nh():
    outputs = torch.randn(20, 32, 64)  # (seq, bs, nh) with bs 32
    with pytest.raises(RuntimeError):
        nn.BatchNorm1d(64)(outputs)  # it reads bs as the features
    normalised = FeatureNorm(64)(outputs * 3 + 5)
    assert normalised.shape == outputs.shape
    assert normalised.mean(dim=(0, 1)).abs().max() < 1e-4  # each of the nh features: mean 0 ...
    assert (normalised.std(dim=(0, 1)) - 1).abs().max() < 1e-2  # ... and spread 1


# ----- specs, presets, validation ---------------------------------------------------------------------
def test_the_lecture_preset_is_the_lessons_configuration():
    for name, (epochs, lr, pct) in {"model0": (6, 1e-4, 0.3), "model2": (10, 1e-4, 0.1), "model3": (20, 3e-3, 0.3),
                                    "model5": (10, 1e-2, 0.3)}.items():
        spec = lab.preset_spec(name, "lecture")
        assert (spec.epochs, spec.max_lr, spec.pct_start, spec.bs, spec.nh) == (epochs, lr, pct, 64, 64)
    assert lab.preset_spec("model0", "lecture").bptt == 3 and not lab.preset_spec("model0", "lecture").randomise
    assert lab.preset_spec("model4", "lecture").bptt == 20 and lab.preset_spec("model4", "lecture").randomise


@pytest.mark.parametrize("name", lab.MODELS)
def test_sizes_grow_from_quick_to_lecture_and_a_run_is_sized_by_its_work(name):
    quick, demo, lecture = (lab.preset_spec(name, size) for size in lab.PRESETS)
    assert quick.epochs <= demo.epochs <= lecture.epochs
    assert lab.size_of_values(quick.to_dict()) == "quick"
    assert lab.size_of_values(dataclasses.replace(quick, epochs=lecture.epochs).to_dict()) == "lecture"


@pytest.mark.parametrize("change, message", [
    ({"max_lr": 0}, "learning rate must be above 0"), ({"max_lr": -1.0}, "learning rate must be above 0"),
    ({"max_lr": float("nan")}, "must be a number"), ({"max_lr": 10.0}, "at most 1"),
    ({"epochs": 0}, "epochs must be between 1"), ({"bs": 1}, "bs must be between 2"),
    ({"bptt": 0}, "bptt must be between 1"), ({"nh": 10_000}, "nh must be between"),
    ({"pct_start": 1.5}, "between 0 and 1"), ({"epochs": 2.5}, "whole number"),
    ({"model": "model9"}, "Unknown model"), ({"bptt": 20, "randomise": True}, "Model0 reads exactly three words"),
])
def test_settings_that_make_no_sense_are_refused_with_what_to_change(change, message):
    values = {**lab.preset_spec("model0", "demo").to_dict(), **change}
    with pytest.raises(UserError, match=message):
        lab.spec_from_dict(values)


def test_randomised_lengths_need_a_bptt_of_five_or_more():
    with pytest.raises(UserError, match="at least 5 words"):
        lab.validate(dataclasses.replace(lab.preset_spec("model5"), bptt=3))
    assert lab.validate(dataclasses.replace(lab.preset_spec("model5"), bptt=3, randomise=False))


def test_a_stored_spec_with_unknown_or_odd_values_is_read_or_refused_politely():
    assert lab.spec_from_dict({**lab.preset_spec("model5").to_dict(), "from_a_newer_version": 1}).model == "model5"
    with pytest.raises(UserError, match="epochs must be a whole number"):
        lab.spec_from_dict({"model": "model5", "epochs": "many"})
    with pytest.raises(UserError, match="max_lr must be a number"):
        lab.spec_from_dict({"model": "model5", "max_lr": {"a": 1}})


# ----- the runner --------------------------------------------------------------------------------------
def run(spec: lab.RnnSpec) -> RecordingContext:
    context = RecordingContext()
    lab.run_rnn(spec.to_dict(), context)
    return context


@pytest.fixture(scope="module")
def short_model5() -> tuple[lab.RnnSpec, RecordingContext]:
    spec = dataclasses.replace(lab.preset_spec("model5", "demo"), epochs=2)
    return spec, run(spec)


def test_a_short_model5_run_reads_human_numbers_far_better_than_model0(short_model5):
    _, context = short_model5
    [result] = context.of("result")
    model0 = run(lab.preset_spec("model0", "demo")).of("result")[0]
    assert result["accuracy"] > 0.65 and result["accuracy"] > model0["accuracy"] + 0.2
    assert result["lesson_accuracy"] == 0.755 and result["parameters"] == 54_950


def test_a_run_reports_its_schedule_validation_and_guesses(short_model5):
    spec, context = short_model5
    rows = context.of("metrics")
    assert [row["step"] for row in rows] == list(range(1, len(rows) + 1))
    lrs = [row["lr"] for row in rows]
    assert max(lrs) == pytest.approx(spec.max_lr, rel=0.05) and lrs[0] < spec.max_lr / 10 and lrs[-1] < lrs[0]
    validated = [row for row in rows if "accuracy" in row]
    assert len(validated) >= spec.epochs * lab.VALIDATIONS_PER_EPOCH
    assert validated[-1]["step"] == rows[-1]["step"] and validated[-1]["valid_on"] == 202 * 64
    assert validated[-1]["accuracy"] == context.of("result")[0]["accuracy"]
    picture = Image.open(io.BytesIO(context.of("samples")[-1]["png"]))
    assert picture.format == "PNG" and picture.width > 600


def test_the_weights_a_run_sends_rebuild_its_model(short_model5):
    spec, context = short_model5
    model = lab.trained_model(spec.to_dict(), context.of("weights")[0]["state"])
    batches = LanguageModelBatches(load_ids()[1], spec.bs, spec.bptt)
    _, accuracy, _ = lab.evaluate(model, batches)
    assert accuracy == pytest.approx(context.of("result")[0]["accuracy"], abs=1e-6)


def test_a_model_that_reads_a_long_window_still_shows_its_guesses():
    context = run(dataclasses.replace(lab.preset_spec("model1", "quick"), bptt=60))
    assert context.of("result") and Image.open(io.BytesIO(context.of("samples")[-1]["png"])).height > 100


def test_weights_that_do_not_fit_the_model_are_set_aside():
    spec = lab.preset_spec("model5")
    other = weights_bytes(LANGUAGE_MODELS["model3"]())
    assert lab.trained_model(spec.to_dict(), other) is None and lab.trained_model(spec.to_dict(), b"junk") is None


def test_an_untrained_model_is_the_same_each_time_and_leaves_the_random_numbers_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    first = lab.untrained_model("model2")
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), lab.untrained_model("model2").parameters()))


def test_evaluating_leaves_the_model_as_it_found_it():
    model = LANGUAGE_MODELS["model3"]()
    model.train()
    model(torch.randint(0, 38, (5, 64)))
    state = model.h.clone()
    lab.evaluate(model, LanguageModelBatches(load_ids()[1], 64, 20))
    assert model.training and torch.equal(model.h, state)


def test_a_learning_rate_that_explodes_stops_the_run_with_advice():
    with pytest.raises(TrainingDiverged, match="NaN at step .* 10 times smaller"):
        run(dataclasses.replace(lab.preset_spec("model3", "quick"), max_lr=1.0))  # a relu loop, nothing bounds it


def test_guesses_along_a_text_come_from_the_words_before_each():
    ids = load_ids()[1][:12]
    torch.manual_seed(0)
    guesses, probabilities = next_word_guesses(LANGUAGE_MODELS["model0"](), ids, window=3)
    assert len(guesses) == len(probabilities) == 9  # words 3 to 11, each from the three before it
    guesses, _ = next_word_guesses(LANGUAGE_MODELS["model5"](), ids)
    assert len(guesses) == 11 and all(0 <= g < 38 for g in guesses)


# ----- estimates -----------------------------------------------------------------------------------------
def test_the_estimate_comes_from_the_warm_up_then_from_finished_runs():
    spec = lab.preset_spec("model5", "demo")
    warm = lab.seconds_per_row({"model5": 0.02}, [], "CPU")
    assert warm["model5"] == pytest.approx(0.02 / 20)  # the timed step read 20 rows of the lesson's batch
    five = lab.estimate_seconds(spec, warm)
    ten = lab.estimate_seconds(dataclasses.replace(spec, epochs=10), warm)
    assert ten == pytest.approx(2 * five)
    finished = {"state": "finished", "spec": spec.to_dict(), "result": {"seconds": 12.0, "device": "CPU"}}
    measured = lab.seconds_per_row({"model5": 0.02}, [finished], "CPU")
    assert lab.estimate_seconds(spec, measured) == pytest.approx(12.0)
    assert lab.seconds_per_row({"model5": 0.02}, [finished], "H100")["model5"] == warm["model5"]  # another device
    assert lab.estimate_seconds(spec, {}) is None


def test_small_batches_take_longer_and_count_as_bigger_runs():
    quick = lab.preset_spec("model3", "quick")
    per_row = {"model3": 1e-3}
    tiny = dataclasses.replace(quick, bs=2)  # measured here: 13x the time of bs 64 for the same epochs
    assert 10 < lab.estimate_seconds(tiny, per_row) / lab.estimate_seconds(quick, per_row) < 25
    assert lab.size_of_values(tiny.to_dict()) != "quick"  # a limit on sizes cannot be dodged by a small bs


def test_the_warm_up_times_every_model():
    timings = lab.warm_up()["rnn_seconds_per_step"]
    assert set(timings) == set(lab.MODELS) and all(0 < seconds < 5 for seconds in timings.values())


# ----- what the page shows -----------------------------------------------------------------------------
def test_the_batch_picture_shows_the_lessons_validation_batches():
    picture = explore.batch_picture(64, 70, True)
    assert picture.batch_of_cell.shape == (203, 64) and picture.dropped == 13_017 - 203 * 64
    assert set(np.unique(picture.batch_of_cell)) == {-1, 0, 1, 2}
    assert (picture.batch_of_cell[-1] == -1).all()  # the last row is only ever a target
    inputs, targets = explore.batch_text(picture, 0, 0)
    assert inputs.startswith("xxbos eight thousand one ,") and targets.startswith("eight thousand one ,")
    second_column = explore.batch_text(picture, 0, 1)[0]
    assert explore.batch_table(picture, 0).iloc[:, 1].tolist() == second_column.split()[:8]


def test_the_results_table_takes_the_newest_finished_run_of_each_model():
    runs = [  # newest first, as the store lists them
        {"id": "b", "state": "finished", "spec": {"model": "model5", "preset": "demo", "epochs": 5},
         "result": {"accuracy": 0.82, "seconds": 5.0}},
        {"id": "c", "state": "failed", "spec": {"model": "model3", "preset": "demo", "epochs": 10}, "result": None},
        {"id": "a", "state": "finished", "spec": {"model": "model5", "preset": "quick", "epochs": 1},
         "result": {"accuracy": 0.6, "seconds": 1.0}},
    ]
    rows = {row["model"]: row for row in explore.results_rows(runs)}
    assert rows["model5"]["here"] == 0.82 and rows["model5"]["run"] == "b"
    assert rows["model3"]["here"] is None and rows["model3"]["lesson"] == 0.542


@pytest.mark.parametrize("name", lab.MODELS)
def test_every_layer_is_named_in_both_languages_and_counted(name):
    model = LANGUAGE_MODELS[name]()
    table = explore.parameter_table(model)
    assert table["parameters"].sum() == sum(p.numel() for p in model.parameters())
    for language in ("en", "zh"):
        assert all(f"rnn.role.{layer}" in strings(language) for layer in table["layer"])
    assert "class" in explore.model_source(name) and f"def {name}(" in explore.model_source(name)


def test_the_words_to_step_through_start_at_the_chosen_number():
    vocab = load()[2]
    context, words = explore.words_to_step(LANGUAGE_MODELS["model0"](), 8123)
    assert context is None and vocab.textify(words) == "eight thousand one hundred"
    context, words = explore.words_to_step(LANGUAGE_MODELS["model5"](), 8123)
    assert len(words) == explore.STEP_WORDS + 1 and len(context) == explore.CONTEXT_WORDS
    assert vocab.textify(context).endswith("eight thousand one hundred twenty two ,")  # what a kept state has read


def test_a_model_that_keeps_its_state_is_stepped_from_the_state_its_context_left():
    torch.manual_seed(0)
    model = LANGUAGE_MODELS["model5"]()
    ids = torch.randint(0, 38, (12,))
    primed, whole = trace(model, ids[8:], context=ids[:8]), trace(model, ids)
    assert all(np.allclose(a.hidden, b.hidden, atol=1e-6) for a, b in zip(primed, whole[8:]))


def test_the_equivalence_rows_report_tiny_differences():
    torch.manual_seed(0)
    rows = explore.equivalence(Model0(), model3())
    assert [row["what"] for row in rows] == ["written_out_vs_loop", "loop_vs_nn_rnn"]
    assert rows[0]["largest_difference"] == 0.0 and rows[1]["largest_difference"] < 1e-5
    assert rows[1]["numbers"] == 20 * 64 * 64


@pytest.mark.parametrize("name", ["model0", "model5"])
def test_the_code_panel_runs_on_its_own_and_trains(name, capsys):
    spec = lab.preset_spec(name, "quick")
    model = LANGUAGE_MODELS[name]()
    code = explore.model_source(name) + "\n\n" + rnn_snippet(name, 1, spec.max_lr, spec.pct_start, spec.bs, spec.bptt,
                                                             model.predicts_every_word, model.keeps_state)
    namespace: dict = {}
    exec(compile(code, "code panel", "exec"), namespace)  # nothing from this repository is imported
    assert " ".join(namespace["words"](8123)) == "eight thousand one hundred twenty three"
    assert torch.isfinite(namespace["loss"]) and "epoch 1: training loss" in capsys.readouterr().out


# ----- figures -----------------------------------------------------------------------------------------
LABELS = {**{key: key for key in ("column", "row", "drawn", "first", "length", "share", "carried", "embedding",
                                   "state", "probability", "lesson", "here", "accuracy")},
          "hover": "%{customdata}", "cell": "%{z}", "word": "word {i}: {word}", "hidden": "state {i}, layer {layer}",
          "output": "guess of word {i}", "layer": "layer {layer}"}


def test_the_batch_grid_colours_each_batch_and_frames_the_chosen_one():
    picture = explore.batch_picture(64, 70, True)
    figure = batches_figure(picture.batch_of_cell, picture.words, LABELS, chosen_rows=(95, 69), chosen_column=3)
    [heatmap] = figure.data
    assert np.asarray(heatmap.z).shape == (203, 64) and np.asarray(heatmap.customdata)[0, 0] == "xxbos"
    frames = [(shape.y0, shape.y1) for shape in figure.layout.shapes]
    assert frames[0] == (94.5, 163.5)


def test_the_unrolled_diagram_has_a_word_a_state_and_a_guess_per_step():
    figure = unrolled_figure(["eight", "thousand", "one"], layers=2, predicts_every_word=True, keeps_state=True,
                             current=1, labels=LABELS, guesses=["thousand", "one", "hundred"])
    words, layer1, layer2, outputs = figure.data
    assert list(words.text) == ["eight", "thousand", "one"] and len(layer1.x) == len(layer2.x) == 3
    assert list(outputs.text) == ["thousand", "one", ""]  # guesses appear once their step is reached
    assert list(words.marker.line.width) == [0, 4, 0]  # the current step is outlined
    single = unrolled_figure(["a", "b", "c"], 1, predicts_every_word=False, keeps_state=False, current=0,
                             labels=LABELS)
    assert len(single.data[-1].x) == 1  # Model0 and Model1 guess once, after the last word


def test_the_state_picture_has_the_embedding_and_each_layer():
    figure = hidden_figure(np.arange(64.0), np.ones((2, 64)), LABELS)
    assert len(figure.data) == 3 and np.asarray(figure.data[0].z).shape == (4, 16)


def test_the_top_words_are_sorted_and_the_right_one_is_green():
    probabilities = np.array([0.1, 0.6, 0.3] + [0.0] * 35)
    figure = top_words_figure(probabilities, [f"w{i}" for i in range(38)], "w2", LABELS, k=3)
    assert list(figure.data[0].y) == ["w1", "w2", "w0"]
    assert figure.data[0].marker.color[1] != figure.data[0].marker.color[0]


def test_the_other_figures_build():
    lengths_figure(length_sample(20, 200), 20, 45, LABELS)
    figure = accuracy_figure([{"model": "Model0", "lesson": 0.46, "here": None},
                              {"model": "Model5", "lesson": 0.755, "here": 0.82}], LABELS)
    assert list(figure.data[1].y) == [None, 82.0]
    png = guesses_png(["a", "b", "c", "d"], ["b", "x"], [0.9, 0.2], first_guessed=2)
    assert Image.open(io.BytesIO(png)).format == "PNG"
