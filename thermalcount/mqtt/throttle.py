"""Notices that anyone on the broker can trigger, said at most once a minute.

Any client allowed to publish on the broker can send junk to a ``.../set`` topic. Each junk
message used to log a line, so one script could flood the journal (and the SD card) of
every door. The first one is said at once (a user testing by hand sees it); the rest are
counted and the count goes out with the next notice a minute or more later, or at close.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

#: Wall seconds between two notices of the same kind.
NOTICE_INTERVAL = 60.0


class Throttled:
    """``throttled(message)`` reports ``message`` now or counts it for the next report."""

    def __init__(self, report: Callable[[str], None], what: str, *, interval: float = NOTICE_INTERVAL,
                 clock: Callable[[], float] = time.monotonic):
        self._report = report
        self._what = what  # "junk commands": names what the count counts
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._next = float("-inf")
        self.held = 0  # counted, not yet said

    def __call__(self, message: str) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next:
                self.held += 1
                return
            held, self.held = self.held, 0
            self._next = now + self._interval
        if held:
            message += f" ({held} more {self._what} ignored since the last notice)"
        self._report(message)

    def flush(self) -> None:
        """Say how many were counted but not said (at close)."""
        with self._lock:
            held, self.held = self.held, 0
        if held:
            self._report(f"{held} more {self._what} ignored since the last notice")
