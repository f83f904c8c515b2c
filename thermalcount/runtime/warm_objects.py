"""Static warm things: person states that stay in view too long to be people.

Part of the counter (:mod:`thermalcount.runtime.counter`, module docstring, point 5), kept
apart because it is its own small bookkeeping: a leaky sum per state of how long the
counter saw it. People pass through a state in a fraction of a second and lingerers stay a
few seconds; a state that fills most of the last minute is a warm object (a radiator, a
room the model mistakes for a faint person). Such a state then counts as empty, and a
two-people state as one person. A truly empty view for STATIC_CLEAR_SECONDS undoes it all.
"""

from __future__ import annotations

import math

#: Time constant of the leaky sum of each state's seen time.
STATIC_WINDOW_SECONDS = 60.0
#: A truly empty view for this long means a static warm thing has gone.
STATIC_CLEAR_SECONDS = 10.0


class WarmObjects:
    """Which person states are taken for static warm things (0 ``static_seconds``: never)."""

    __slots__ = ("static_seconds", "states", "_presence")

    def __init__(self, static_seconds: float):
        self.static_seconds = float(static_seconds)
        #: States currently taken for a static warm thing (they count as empty).
        self.states: set = set()
        self._presence: dict = {}  # state -> (leaky seen-seconds, time of last booking)

    def book(self, state: int, people: int, seconds: float, time: float) -> bool:
        """Book that ``state`` (showing ``people``) was seen for ``seconds`` up to ``time``.
        True when this makes it a warm object (the caller re-reads its passage then)."""
        if self.static_seconds <= 0:
            return False
        if people == 0:
            if seconds >= STATIC_CLEAR_SECONDS and self.states:
                self.states.clear()  # a long truly empty stretch: the warm thing has gone
            return False
        if state in self.states:
            return False
        booked = self._presence.get(state)
        value = seconds if booked is None else booked[0] * math.exp((booked[1] - time) / STATIC_WINDOW_SECONDS) + seconds
        self._presence[state] = (value, time)
        if value < self.static_seconds:
            return False
        self.states.add(state)
        self._presence.pop(state, None)
        return True

    def people(self, state: int, people: int) -> int:
        """How many people ``state`` shows once the warm objects are taken out."""
        if state in self.states:
            return 0
        if people >= 2 and self.states:
            return 1  # one of the two warm blobs is the static thing
        return people


__all__ = ["WarmObjects", "STATIC_WINDOW_SECONDS", "STATIC_CLEAR_SECONDS"]
