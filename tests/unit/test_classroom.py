"""The classroom rules without a server: limits, the fair order of the queue, wait estimates."""
from __future__ import annotations

from dataclasses import asdict, replace

import pytest

from core import darknet_lab, mnist_lab, schedule_lab
from core.classroom import Limits, service_order, start_times
from core.errors import UserError


# ----- the order runs start in ---------------------------------------------------------------
def test_a_burst_from_one_student_does_not_make_the_others_wait_behind_it():
    queue = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"), ("c1", "C"), ("a4", "A"), ("b2", "B")]
    assert service_order(queue, {}) == ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]


def test_the_session_served_longest_ago_goes_first():
    queue = [("a1", "A"), ("b1", "B"), ("c1", "C")]
    assert service_order(queue, {"A": 3, "B": 1}) == ["c1", "b1", "a1"]  # C never served, then B (turn 1), then A


def test_a_session_at_its_running_limit_waits_for_everyone_else():
    queue = [("a1", "A"), ("b1", "B")]
    assert service_order(queue, {}, busy={"A"}) == ["b1", "a1"]


def test_each_session_keeps_the_order_it_sent_its_runs_in():
    queue = [(f"a{i}", "A") for i in range(5)]
    assert service_order(queue, {"A": 9}) == [f"a{i}" for i in range(5)]


# ----- how long a waiting run waits ------------------------------------------------------------
def test_the_wait_adds_up_the_runs_ahead_and_what_is_left_of_the_running_one():
    assert start_times([60, 30, 10], [20], devices=1) == pytest.approx([20, 80, 110])
    assert start_times([10], [], devices=1) == [0]
    assert start_times([10], [-5], devices=1) == [0]  # a run taking longer than expected is about to end


def test_two_devices_share_the_runs_ahead():
    # devices free at 10 s and 40 s: the 60 s run goes to the first (busy until 70 s), the next device is free at 40 s
    assert start_times([60, 10], [10, 40], devices=2)[-1] == pytest.approx(40)
    assert start_times([60, 60, 10], [], devices=2)[-1] == pytest.approx(60)


# ----- limits --------------------------------------------------------------------------------------
def test_the_default_limits_are_valid_and_survive_a_round_trip():
    limits = Limits(queued_per_session=4, max_run_minutes=5, sizes=("quick", "demo"))
    assert Limits.from_dict(limits.to_dict()) == limits
    assert Limits().validated() == Limits()


@pytest.mark.parametrize("bad, key", [
    (dict(running_per_session=0), "limits.bad_count"),
    (dict(queued_per_session=0), "limits.bad_count"),
    (dict(queued_total=10**6), "limits.bad_count"),
    (dict(queued_total=2.5), "limits.bad_count"),
    (dict(max_run_minutes=-1), "limits.bad_minutes"),
    (dict(sizes=()), "limits.bad_sizes"),
    (dict(sizes=("huge",)), "limits.bad_sizes"),
])
def test_nonsense_limits_are_refused_with_what_to_change(bad, key):
    with pytest.raises(UserError) as caught:
        Limits(**bad).validated()
    assert caught.value.key == key


def test_saved_limits_that_make_no_sense_fall_back_to_the_defaults():
    assert Limits.from_dict({"queued_total": -3}) == Limits()
    assert Limits.from_dict({"queued_total": 7, "from_a_newer_version": 1}) == Limits(queued_total=7)
    assert Limits.from_dict(None) == Limits()


def test_a_size_the_instructor_closed_is_refused_with_the_sizes_that_are_open():
    limits = Limits(sizes=("quick", "demo"))
    refusal = limits.refusal("lecture", None)
    assert refusal.key == "jobs.size_not_allowed" and "quick, demo" in str(refusal)
    assert limits.refusal("demo", None) is None
    assert limits.refusal(None, None) is None  # a run of a lab without sizes (the LR finder)


def test_a_runs_size_is_its_work_not_its_label():
    assert mnist_lab.size_of_values(asdict(mnist_lab.preset_spec("basic_cnn", "quick"))) == "quick"
    assert mnist_lab.size_of("basic_cnn", epochs=1, n_train=60_000) == "demo"  # "quick", with all the digits
    assert mnist_lab.size_of("basic_cnn", epochs=40, n_train=6_000) == "lecture"
    assert mnist_lab.size_of("basic_cnn", epochs=1, n_train=6_000, preset="lecture") == "lecture"  # as labelled
    assert mnist_lab.size_of("resnet_cnn", epochs=12, n_train=60_000) == "lecture"
    for size in ("quick", "demo", "lecture"):
        assert darknet_lab.size_of(darknet_lab.preset_spec(size)) == size
    quick_with_the_lecture_model = replace(darknet_lab.preset_spec("quick"), blocks=(1, 2, 4, 6, 3), nf=32)
    assert darknet_lab.size_of(quick_with_the_lecture_model) == "lecture"
    one_cycle = schedule_lab.ScheduleSpec(phases=tuple(schedule_lab.preset_rows("one_cycle")), n_train=6_000)
    assert schedule_lab.size_of_values(asdict(one_cycle)) in ("quick", "demo")
    assert schedule_lab.size_of(replace(one_cycle, n_train=60_000, phases=tuple(
        dict(row, epochs=10) for row in one_cycle.phases))) == "lecture"


def test_a_run_expected_to_outlast_the_time_limit_is_refused_before_it_starts():
    limits = Limits(max_run_minutes=2)
    assert limits.refusal({}, 3 * 60).key == "jobs.too_long"
    assert limits.refusal({}, 60) is None
    assert limits.refusal({}, None) is None  # no estimate: the limit stops it while it trains
    assert Limits().refusal({}, 10**6) is None  # 0 minutes: no limit
