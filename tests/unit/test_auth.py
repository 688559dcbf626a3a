"""Instructor mode: no password set means no instructor; a wrong password is refused; guessing is slowed."""
from __future__ import annotations

import pytest

from core.auth import FORGET_AFTER, FREE_TRIES, LONGEST_WAIT, SERVER_MAX_FAILURES, SERVER_WINDOW, PasswordGate
from core.errors import UserError
from tests.unit.conftest import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


@pytest.mark.parametrize("password", [None, ""])
def test_without_a_configured_password_nothing_unlocks(password):
    gate = PasswordGate(password)
    assert not gate.configured
    for attempt in ("", "admin", "password"):
        with pytest.raises(UserError) as caught:
            gate.check(attempt, ["s1"])
        assert caught.value.key == "auth.not_configured"


def test_the_right_password_unlocks_and_a_wrong_one_does_not(clock):
    gate = PasswordGate("correct horse", clock)
    assert gate.check("correct horse", ["s1"]) is True
    assert gate.check("correct hors", ["s1"]) is False
    assert gate.check("", ["s1"]) is False
    assert gate.check("correct horse ", ["s1"]) is False


def test_after_a_few_wrong_tries_the_sender_must_wait_longer_each_time(clock):
    gate = PasswordGate("secret", clock)
    for _ in range(FREE_TRIES):
        assert gate.check("guess", ["s1"]) is False  # typos cost nothing
    assert gate.check("guess", ["s1"]) is False
    with pytest.raises(UserError) as caught:
        gate.check("secret", ["s1"])  # even the right one waits: nothing is compared while waiting
    assert caught.value.key == "auth.wait" and caught.value.params["seconds"] == pytest.approx(2)
    clock.now += 2
    assert gate.check("guess", ["s1"]) is False
    with pytest.raises(UserError) as caught:
        gate.check("guess", ["s1"])
    assert caught.value.params["seconds"] == pytest.approx(4)  # doubled
    assert gate.check("secret", ["s2"]) is True  # another browser is not slowed by s1's guesses
    clock.now += 4
    assert gate.check("secret", ["s1"]) is True


def test_the_wait_stops_growing_at_a_minute_and_is_forgotten_after_a_quiet_quarter_hour(clock):
    gate = PasswordGate("secret", clock)
    for _ in range(12):
        clock.now += LONGEST_WAIT
        gate.check("guess", ["s1"])
    with pytest.raises(UserError) as caught:
        gate.check("guess", ["s1"])
    assert caught.value.params["seconds"] == pytest.approx(LONGEST_WAIT)  # not 2**10 s
    clock.now += FORGET_AFTER + 1
    assert gate.check("guess", ["s1"]) is False  # a fresh start: a free try, no wait afterwards
    assert gate.check("secret", ["s1"]) is True


def test_many_wrong_passwords_across_the_server_lock_everyone_out_for_a_while(clock):
    gate = PasswordGate("secret", clock)
    for i in range(SERVER_MAX_FAILURES):
        gate.check("guess", [f"fresh-session-{i}"])  # a guesser opening a new session for every try
    with pytest.raises(UserError) as caught:
        gate.check("secret", ["the-instructor"])
    assert caught.value.key == "auth.wait"
    clock.now += SERVER_WINDOW + 1
    assert gate.check("secret", ["the-instructor"]) is True
