"""The MNIST lab's run spec: presets, validation, advice and the time estimate."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest

from core import mnist_lab
from core.errors import UserError
from core.mnist_lab import (ARCHITECTURES, PRESETS, MnistSpec, advice, estimate_seconds,
                            preset_spec, spec_from_dict, validate)
from core.models import REGISTRY


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("arch", list(REGISTRY))
def test_every_preset_of_every_architecture_is_valid(arch, preset):
    spec = preset_spec(arch, preset)
    assert validate(spec) is spec
    assert spec.arch == arch and spec.preset == preset
    assert spec_from_dict(spec.to_dict()) == spec  # what the job manager stores comes back
    assert advice(spec) == []


def test_presets_carry_the_lessons_numbers():
    assert ARCHITECTURES == tuple(REGISTRY)
    lecture = preset_spec("basic_cnn", "lecture")
    assert (lecture.epochs, lecture.max_lr, lecture.n_train) == (3, 0.1, 60_000)  # fit_one_cycle(3, 0.1)
    assert (preset_spec("conv_layer_cnn", "lecture").epochs, preset_spec("conv_layer_cnn", "lecture").max_lr) == (10, 0.1)
    assert (preset_spec("resnet_cnn", "lecture").epochs, preset_spec("resnet_cnn", "lecture").max_lr) == (12, 0.05)
    quick = preset_spec("resnet_cnn", "quick")
    assert (quick.epochs, quick.n_train, quick.max_lr) == (1, 6_000, 0.05)
    for arch in REGISTRY:
        assert preset_spec(arch, "demo").epochs <= 3


BAD = [
    ("max_lr", 0, "mnist.lr_positive"),
    ("max_lr", -1, "mnist.lr_positive"),
    ("max_lr", float("nan"), "mnist.lr_positive"),
    ("max_lr", float("inf"), "mnist.lr_positive"),
    ("max_lr", "0.1", "mnist.lr_positive"),
    ("max_lr", 1e9, "mnist.lr_too_big"),
    ("epochs", 0, "mnist.epochs_range"),
    ("epochs", 51, "mnist.epochs_range"),
    ("batch_size", 0, "mnist.batch_range"),
    ("batch_size", 1, "mnist.batch_range"),  # BatchNorm cannot train on a single digit
    ("seed", -1, "mnist.seed_range"),
    ("batch_size", 5000, "mnist.batch_range"),
    ("n_train", 10, "mnist.n_train_range"),
    ("n_train", 60_001, "mnist.n_train_range"),
    ("arch", "lenet", "mnist.bad_arch"),
    ("preset", "huge", "mnist.bad_preset"),
    ("optimizer", "lamb", "mnist.bad_optimizer"),
]


@pytest.mark.parametrize("field,value,key", BAD, ids=[f"{f}={v}" for f, v, _ in BAD])
def test_validate_refuses_with_a_message_key(field, value, key):
    spec = replace(MnistSpec(), **{field: value})
    with pytest.raises(UserError) as caught:
        validate(spec)
    assert caught.value.key == key
    assert str(caught.value)  # an English sentence for the student
    assert isinstance(caught.value, ValueError)  # plain callers may catch ValueError


def test_validate_accepts_the_limits():
    for spec in (MnistSpec(max_lr=100.0), MnistSpec(max_lr=1e-6), MnistSpec(epochs=1), MnistSpec(epochs=50),
                 MnistSpec(batch_size=2), MnistSpec(batch_size=4096), MnistSpec(n_train=100),
                 MnistSpec(optimizer="adam")):
        assert validate(spec) is spec


def test_spec_from_dict_ignores_unknown_fields_and_validates():
    spec = spec_from_dict({"arch": "resnet_cnn", "epochs": 2, "max_lr": 0.05, "colour": "blue"})
    assert spec == MnistSpec(arch="resnet_cnn", epochs=2, max_lr=0.05)
    with pytest.raises(UserError) as caught:
        spec_from_dict({"max_lr": -0.1})
    assert caught.value.key == "mnist.lr_positive"


@pytest.mark.parametrize("field,value", [("epochs", 2.5), ("batch_size", 64.5), ("n_train", 600.5)])
def test_validate_refuses_fractional_counts(field, value):
    with pytest.raises(UserError):
        validate(replace(MnistSpec(), **{field: value}))


def test_advice_warns_above_a_learning_rate_of_one():
    assert advice(MnistSpec(max_lr=1.0)) == []
    notes = advice(MnistSpec(max_lr=3.0))
    assert [key for key, _, _ in notes] == ["mnist.lr_risky"]
    assert "NaN" in notes[0][1]
    validate(MnistSpec(max_lr=3.0))  # a warning, not a refusal


def test_estimate_is_none_until_measured():
    assert estimate_seconds(MnistSpec(), {}) is None
    assert estimate_seconds(MnistSpec(arch="resnet_cnn"), {"basic_cnn": 0.01}) is None


def test_estimate_scales_with_epochs_digits_and_batch():
    measured = {"basic_cnn": 0.01}
    one = estimate_seconds(MnistSpec(epochs=1), measured)
    assert one > 0
    assert estimate_seconds(MnistSpec(epochs=3), measured) == pytest.approx(3 * one)
    # 469 steps of 128 at 0.01 s, and validation worth 39 steps per epoch
    assert one == pytest.approx(0.01 * (math.ceil(60_000 / 128) + 39))
    # half the digits: half the training, the same validation
    half = estimate_seconds(MnistSpec(epochs=1, n_train=30_000), measured)
    assert half == pytest.approx(0.01 * (math.ceil(30_000 / 128) + 39))
    # a bigger batch: fewer steps, each longer, about the same time per epoch
    assert estimate_seconds(MnistSpec(epochs=1, batch_size=256), measured) == pytest.approx(one, rel=0.01)


def run_record(arch="basic_cnn", seconds=10.0, device="CPU", state="finished", **spec):
    return {"state": state, "spec": {"arch": arch, "epochs": 2, **spec},
            "result": {"seconds": seconds, "device": device}}


def test_timings_come_from_the_newest_finished_run_on_this_device():
    warm_up = {"basic_cnn": 0.05, "resnet_cnn": 0.2}
    runs = [  # newest first, as the run store lists them
        run_record(seconds=11.0),
        run_record(seconds=99.0),
        run_record(seconds=1.0, device="NVIDIA H100"),
        run_record(seconds=5.0, state="cancelled"),
    ]
    table = mnist_lab.step_seconds(warm_up, runs, "CPU")
    assert table["resnet_cnn"] == 0.2  # never run: the start-up timing
    spec = MnistSpec(epochs=2)
    assert estimate_seconds(spec, table) == pytest.approx(11.0)  # a run like the newest takes as long
    assert mnist_lab.step_seconds(warm_up, [], "CPU") == warm_up


def test_steps_per_epoch():
    assert mnist_lab.steps_per_epoch(MnistSpec(n_train=6_000, batch_size=128)) == 47
    assert mnist_lab.steps_per_epoch(MnistSpec(n_train=600, batch_size=128)) == 5


def test_a_stored_spec_that_makes_no_sense_is_a_user_error():
    for values in ({"arch": ["basic_cnn"]}, {"max_lr": True}, {"max_lr": 10**400}, {"epochs": "3"}):
        with pytest.raises(UserError):
            spec_from_dict(values)
    runs = [{"spec": {"arch": "basic_cnn"}}, {"spec": {"arch": ["x"]}}, {"spec": None}]
    readable = mnist_lab.readable_runs(runs)
    assert [run["spec"]["arch"] for run in readable] == ["basic_cnn"]
    assert readable[0]["spec"]["epochs"] == MnistSpec().epochs  # missing fields get their defaults
