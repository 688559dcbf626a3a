"""The training loop and its callbacks, on a few thousand real digits."""
from __future__ import annotations

import math

import pytest
import torch

from core.errors import RunCancelled, TrainingDiverged, UserError
from core.models import build
from core.train import (Callback, CancelCheck, DeviceConfig, Learner, NaNGuard, OneCycle,
                        Reporter, TensorBatches, Validation)

CPU = DeviceConfig(torch.device("cpu"))


@pytest.fixture(scope="module")
def small(mnist_train, mnist_valid):
    """3,000 training and 1,000 validation digits."""
    return mnist_train.subset(3_000, seed=0), mnist_valid.subset(1_000, seed=0)


def make_learner(small, lr=0.1, callbacks=(), batch_size=64, device=CPU, arch="basic_cnn",
                 momentum=0.9, seed=0, n_train=None):
    """basic_cnn, SGD with momentum, on the 3,000 digits (or the first ``n_train`` of them)."""
    train, valid = small
    train = train.subset(n_train, seed=seed) if n_train else train
    torch.manual_seed(seed)
    model = build(arch)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    return Learner(
        model,
        TensorBatches(train.images, train.labels, batch_size, shuffle=True, seed=seed),
        optimizer, callbacks, device=device,
    )


class Record(Callback):
    """Keeps every row the Reporter hands on."""

    def __init__(self):
        self.rows = []


# ----- TensorBatches ---------------------------------------------------------------------
def test_tensor_batches_cover_every_digit_once_per_epoch():
    images = torch.arange(10.0).view(10, 1, 1, 1)
    labels = torch.arange(10)
    batches = TensorBatches(images, labels, batch_size=4, shuffle=True, seed=3)
    assert len(batches) == 3
    epoch1 = list(batches)
    assert [len(y) for _, y in epoch1] == [4, 4, 2]
    seen = torch.cat([y for _, y in epoch1])
    assert sorted(seen.tolist()) == list(range(10))
    assert all(torch.equal(x.view(-1).long(), y) for x, y in epoch1)  # images stay with their labels
    epoch2 = torch.cat([y for _, y in batches])
    assert not torch.equal(seen, epoch2)  # reshuffled each epoch
    in_order = torch.cat([y for _, y in TensorBatches(images, labels, 4, shuffle=False)])
    assert torch.equal(in_order, labels)


def test_tensor_batches_can_leave_out_the_short_last_batch_for_a_compiled_model():
    batches = TensorBatches(torch.zeros(10, 1, 1, 1), torch.arange(10), batch_size=4, shuffle=True, drop_last=True)
    assert len(batches) == 2 and [len(y) for _, y in batches] == [4, 4]


# ----- a real, short run -----------------------------------------------------------------
def test_short_one_cycle_run_learns_to_read_digits(small):
    rows = []
    learner = make_learner(small, callbacks=[OneCycle(0.1), NaNGuard(), Reporter(rows.append)])
    _, valid = small
    _, before, _ = learner.validate(valid.images, valid.labels)
    learner.fit(2)
    loss, accuracy, predicted = learner.validate(valid.images, valid.labels)
    assert before < 0.3  # chance before training
    assert accuracy > 0.8
    assert predicted.shape == (1_000,)
    assert learner.step == learner.total_steps == 2 * math.ceil(3_000 / 64) == len(rows)
    assert [r["step"] for r in rows] == list(range(1, learner.step + 1))
    assert rows[-1]["epoch"] == pytest.approx(2.0)
    assert rows[-1]["eta"] == pytest.approx(0.0)
    assert sum(r["train_loss"] for r in rows[-10:]) < sum(r["train_loss"] for r in rows[:10])


def test_validation_callback_reports_accuracy_on_all_digits_at_epoch_end(small):
    _, valid = small
    rows = []
    validation = Validation(valid.images, valid.labels, every=3, subset=200)
    learner = make_learner(small, n_train=640, callbacks=[OneCycle(0.1), validation, Reporter(rows.append)])
    learner.fit(1)
    with_accuracy = [r for r in rows if "accuracy" in r]
    assert [r["step"] for r in with_accuracy] == [3, 6, 9, 10]
    assert [r["valid_on"] for r in with_accuracy] == [200, 200, 200, 1_000]
    assert validation.last_predicted is not None and len(validation.last_predicted) == 1_000
    accuracy = (validation.last_predicted == valid.labels).float().mean().item()
    assert with_accuracy[-1]["accuracy"] == pytest.approx(accuracy)


# ----- NaN guard -------------------------------------------------------------------------
def test_nan_guard_stops_a_huge_learning_rate_and_says_where(small):
    learner = make_learner(small, lr=1e6, callbacks=[NaNGuard()])
    with pytest.raises(TrainingDiverged) as caught:
        learner.fit(1)
    error = caught.value
    assert isinstance(error, UserError) and error.key.startswith("train.diverged")
    assert learner.step < 10  # stopped at once, not at the end of the epoch
    message = str(error)
    assert f"step {learner.step}" in message
    assert "1e+06" in message  # the learning rate the student chose
    assert "1e+05" in message  # and a 10x smaller one to try
    assert error.params["step"] == learner.step and error.params["lr"] == 1e6


def test_nan_guard_names_the_scheduled_learning_rate(small):
    learner = make_learner(small, lr=1e6, callbacks=[OneCycle(1e6), NaNGuard()])
    with pytest.raises(TrainingDiverged) as caught:
        learner.fit(1)
    used = caught.value.params["lr"]
    assert used == pytest.approx(learner.metrics["lr"])
    assert 1e6 / 25 <= used < 1e6  # one-cycle warms up from max_lr / 25
    assert f"{used:.3g}" in str(caught.value)


def test_nan_guard_lets_a_sane_run_through(small):
    learner = make_learner(small, lr=0.05, n_train=640, callbacks=[OneCycle(0.05), NaNGuard()])
    learner.fit(1)
    assert learner.step == learner.total_steps


def test_a_compiled_twin_trains_the_same_weights_and_predictions_use_the_eager_model(small):
    learner = make_learner(small, n_train=640)
    calls = {"twin": 0}

    class Twin(torch.nn.Module):  # stands in for torch.compile's wrapper, which a CPU run never uses
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, images):
            calls["twin"] += 1
            return self.model(images)

    learner.compiled_for_training = Twin(learner.model)
    before = [p.detach().clone() for p in learner.model.parameters()]
    learner.fit(1)
    assert calls["twin"] == len(learner.train_data)
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.model.parameters()))  # the shared weights moved
    _, valid = small
    learner.predict(valid.images[:10])
    assert calls["twin"] == len(learner.train_data)


def test_nan_guard_catches_a_nan_loss():
    images, labels = torch.randn(8, 1, 28, 28), torch.zeros(8, dtype=torch.long)
    model = build("basic_cnn")
    learner = Learner(model, TensorBatches(images, labels, 4, shuffle=False),
                      torch.optim.SGD(model.parameters(), lr=0.01), [NaNGuard()], device=CPU,
                      loss_fn=lambda out, y: out.sum() * float("nan"))
    with pytest.raises(TrainingDiverged, match="became NaN at step 1"):
        learner.fit(1)


# ----- cancellation ----------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 5])
def test_cancel_stops_within_one_step(small, k):
    flag = {"cancelled": False}

    class Flip(Callback):
        def after_batch(self, learner):
            if learner.step == k:
                flag["cancelled"] = True

    finished = []

    class After(Callback):
        def after_fit(self, learner):
            finished.append(learner.step)

    learner = make_learner(small, n_train=640, callbacks=[CancelCheck(lambda: flag["cancelled"]), Flip(), After()])
    with pytest.raises(RunCancelled):
        learner.fit(2)
    assert learner.step == k
    assert finished == [k]  # after_fit still ran (cleanup happens on cancel)


# ----- one-cycle schedule -------------------------------------------------------------------
def test_one_cycle_records_what_the_optimizer_used(small):
    used = []
    rows = []
    learner = make_learner(small, n_train=960, callbacks=[OneCycle(0.1), Reporter(rows.append)])

    def before_step(optimizer, args, kwargs):
        group = optimizer.param_groups[0]
        used.append((group["lr"], group["momentum"]))

    learner.optimizer.register_step_pre_hook(before_step)
    learner.fit(2)
    recorded = [(r["lr"], r["momentum"]) for r in rows]
    assert len(recorded) == len(used) == learner.total_steps
    assert [lr for lr, _ in recorded] == pytest.approx([lr for lr, _ in used])
    assert [m for _, m in recorded] == pytest.approx([m for _, m in used])
    lrs = [lr for lr, _ in recorded]
    moms = [m for _, m in recorded]
    peak = lrs.index(max(lrs))
    assert lrs[0] == pytest.approx(0.1 / 25)  # warm-up from max_lr / 25
    assert max(lrs) == pytest.approx(0.1, rel=1e-3)
    assert learner.total_steps == 30 and peak == 8  # 30% warm-up: the 9th step uses max_lr
    assert lrs[-1] < 0.1 / 1000  # annealed to almost nothing
    assert moms[0] == pytest.approx(0.95) and moms[peak] == pytest.approx(0.85, abs=1e-3)
    assert moms[-1] == pytest.approx(0.95, abs=1e-3)


def test_one_cycle_records_adams_beta1_as_momentum(small):
    train, valid = small
    model = build("basic_cnn")
    rows = []
    learner = Learner(model, TensorBatches(train.images[:320], train.labels[:320], 32, shuffle=True),
                      torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.99)),
                      [OneCycle(1e-3), Reporter(rows.append)], device=CPU)
    learner.fit(1)
    moms = [r["momentum"] for r in rows]
    assert moms[0] == pytest.approx(0.95) and min(moms) == pytest.approx(0.85, abs=0.01)


# ----- devices ---------------------------------------------------------------------------
def test_auto_device_without_a_gpu_is_the_cpu_without_amp():
    config = DeviceConfig.auto()
    if torch.cuda.is_available():  # a GPU host: float16 autocast with loss scaling, channels_last
        assert config == DeviceConfig(torch.device("cuda"), amp_dtype=torch.float16, channels_last=True)
        assert config.grad_scaler().is_enabled()
        return
    assert config.device.type == "cpu"
    assert config.amp_dtype is None and config.channels_last is False
    assert config.describe() == "CPU"
    assert not config.grad_scaler().is_enabled()
    with config.autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_amp_and_channels_last_path_trains_on_the_cpu(small):
    config = DeviceConfig(torch.device("cpu"), amp_dtype=torch.bfloat16, channels_last=True)
    rows = []
    learner = make_learner(small, device=config, n_train=320,
                           callbacks=[OneCycle(0.1), NaNGuard(), Reporter(rows.append)])
    conv_weights = [m.weight for m in learner.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights)
    before = [w.detach().clone() for w in conv_weights]
    images = config.prepare_images(torch.randn(2, 1, 28, 28))
    assert images.is_contiguous(memory_format=torch.channels_last)
    with config.autocast():
        assert learner.model(images).dtype == torch.bfloat16  # autocast really is on
    learner.fit(1)
    assert learner.step == 5 and all(math.isfinite(r["train_loss"]) for r in rows)
    # the optimizer updated the same (channels_last) tensors the model uses
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights)
    assert all(not torch.equal(a, b) for a, b in zip(before, conv_weights))
    logits = learner.predict(small[1].images[:10])
    assert logits.dtype == torch.float32 and logits.shape == (10, 10)


def test_a_leftover_batch_of_one_digit_is_skipped_in_training():
    images, labels = torch.zeros(9, 1, 28, 28), torch.arange(9) % 10
    training = TensorBatches(images, labels, batch_size=4, shuffle=True)
    sizes = [len(batch) for batch, _ in training]
    assert sizes == [4, 4] and len(training) == 2  # BatchNorm cannot train on the ninth digit alone
    sizes = [len(batch) for batch, _ in TensorBatches(images, labels, batch_size=4, shuffle=False)]
    assert sizes == [4, 4, 1]  # evaluation keeps every digit
