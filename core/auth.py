"""The instructor's password: checked in constant time, and wrong guesses slowed down.

Nothing unlocks when the deployment set no password. Each wrong password makes the browser
session that sent it wait longer before its next try, doubling from the third one on, up to
a minute; a quarter of an hour without a wrong try forgets them. Many wrong passwords across
the whole server in a minute lock everyone out for that minute, so that opening new sessions
does not help a guesser either. Not by IP address: a class behind one NAT or proxy shares
one, and a guessing student would lock the instructor out.
"""
from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from typing import Callable, Iterable

from core.errors import UserError

FREE_TRIES = 2  # typos cost nothing
LONGEST_WAIT = 60.0  # seconds
FORGET_AFTER = 15 * 60.0  # seconds without a wrong try
SERVER_WINDOW, SERVER_MAX_FAILURES = 60.0, 20


class PasswordGate:
    def __init__(self, password: str | None, clock: Callable[[], float] = time.monotonic):
        self._password = (password or "").encode()
        self._clock = clock
        self._failures: dict[str, tuple[int, float, float]] = {}  # who -> (wrong tries, may try again at, last one)
        self._recent: deque[float] = deque()  # times of every wrong try on the server
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self._password)

    def check(self, attempt: str, senders: Iterable[str]) -> bool:
        """True for the right password. A UserError says to wait when ``senders`` (or the whole
        server) tried too many wrong ones; no password is even compared then."""
        senders = [sender for sender in senders if sender]
        if not self.configured:
            raise UserError("auth.not_configured", "Instructor mode is off on this server: the deployment set no "
                            "password (PLAYGROUND_INSTRUCTOR_PASSWORD).")
        with self._lock:
            now = self._clock()
            self._raise_if_waiting(senders, now)
            if hmac.compare_digest(attempt.encode(), self._password):
                for sender in senders:
                    self._failures.pop(sender, None)
                return True
            self._recent.append(now)
            for sender in senders:
                count = self._remembered(sender, now)[0] + 1
                delay = 0.0 if count <= FREE_TRIES else min(LONGEST_WAIT, 2.0 ** (count - FREE_TRIES))
                self._failures[sender] = (count, now + delay, now)
            return False

    def _remembered(self, sender: str, now: float) -> tuple[int, float, float]:
        count, until, last = self._failures.get(sender, (0, now, now))
        if now - last > FORGET_AFTER:
            self._failures.pop(sender, None)
            return 0, now, now
        return count, until, last

    def _raise_if_waiting(self, senders: list[str], now: float) -> None:
        while self._recent and self._recent[0] < now - SERVER_WINDOW:
            self._recent.popleft()
        until = max([self._remembered(sender, now)[1] for sender in senders] + [now])
        if len(self._recent) >= SERVER_MAX_FAILURES:
            until = max(until, self._recent[0] + SERVER_WINDOW)
        if until > now:
            raise UserError("auth.wait", "Too many wrong passwords: try again in {seconds:.0f} s.",
                            seconds=max(1.0, until - now))
