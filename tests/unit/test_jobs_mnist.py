"""One real MNIST run through the job manager, as the lab page starts it (core.labs.RUNNERS)."""
from __future__ import annotations

import time

import pytest

from core.labs import RUNNERS
from core.mnist_lab import ARCHITECTURES, estimate_seconds, preset_spec, spec_from_dict
from core.train import DeviceConfig
from tests.unit.conftest import started_manager

TIMEOUT = 180


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    # The lab page's MNIST runner, alone: a worker warms up every runner module it is given (each lab's data
    # and timings), and the other labs' warm-ups would only delay this run by seconds.
    with started_manager(tmp_path_factory.mktemp("mnist-jobs") / "runs.sqlite", {"mnist": RUNNERS["mnist"]}) as manager:
        yield manager


def test_a_small_quick_run_trains_and_reports_a_confusion_matrix(manager):
    spec = {**preset_spec("basic_cnn", "quick").to_dict(), "n_train": 600, "epochs": 1}
    run_id = manager.submit("mnist", spec, "s-mnist")
    deadline = time.monotonic() + TIMEOUT
    while manager.status(run_id)["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
    status = manager.status(run_id)
    assert status["state"] == "finished", status

    events, _ = manager.events(run_id, 0)
    metrics = [e.data for e in events if e.kind == "metrics"]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5]  # 600 digits in batches of 128
    assert all(m["total_steps"] == 5 for m in metrics)
    assert {"train_loss", "lr", "momentum", "eta", "elapsed"} <= set(metrics[0])
    assert metrics[-1]["valid_on"] == 10_000 and metrics[-1]["epoch"] == pytest.approx(1.0)

    [result] = [e.data for e in events if e.kind == "result"]
    confusion = result["confusion"]
    assert len(confusion) == 10 and all(len(row) == 10 for row in confusion)
    assert sum(map(sum, confusion)) == 10_000
    assert [sum(row) for row in confusion][:2] == [980, 1135]  # rows are the true digits
    assert 0 <= result["accuracy"] <= 1
    assert result["accuracy"] == pytest.approx(sum(confusion[d][d] for d in range(10)) / 10_000)
    assert result["accuracy"] == pytest.approx(metrics[-1]["accuracy"])
    assert result["parameters"] == 12_126 and result["seconds"] > 0
    assert result["device"] == DeviceConfig.auto().describe()  # "CPU" here

    samples = [e.data for e in events if e.kind == "samples"]
    assert len(samples) >= 2  # before training and after it
    assert all(s["png"][:8] == b"\x89PNG\r\n\x1a\n" for s in samples)

    stored = manager.store.get_run(run_id)
    assert stored["state"] == "finished" and stored["result"]["confusion"] == confusion
    assert spec_from_dict(stored["spec"]).n_train == 600
    assert len(manager.store.metrics(run_id)) == 5
    assert manager.store.sample(run_id)[2][:4] == b"\x89PNG"


def test_the_worker_measured_every_architecture(manager):
    deadline = time.monotonic() + TIMEOUT
    while "mnist_seconds_per_step" not in manager.info and time.monotonic() < deadline:
        time.sleep(0.1)
    measured = manager.info["mnist_seconds_per_step"]
    assert set(measured) == set(ARCHITECTURES) and all(s > 0 for s in measured.values())
    assert manager.info["device"] == DeviceConfig.auto().describe()
    quick = estimate_seconds(preset_spec("basic_cnn", "quick"), measured)
    lecture = estimate_seconds(preset_spec("basic_cnn", "lecture"), measured)
    assert 0 < quick < lecture
