"""When the lights should be on: a pure function of occupancy over time.

No clock, no thread: the caller passes the frame time, so the same code runs live, on a
replay at any speed, and in tests with made-up times.
"""

from __future__ import annotations

from typing import Optional

from thermalcount.config import load_config
from thermalcount.errors import UsageError

#: Seconds the room must stay empty before the lights go off, unless ``--off-delay`` or
#: ``[lights] off_delay`` in config.toml says otherwise. The only place this number lives.
DEFAULT_OFF_DELAY = 30.0


def configured_off_delay(given: Optional[float] = None) -> float:
    """``given`` (``--off-delay``) when not None, else ``[lights] off_delay`` in config.toml,
    else :data:`DEFAULT_OFF_DELAY`. ``run`` and ``room`` both take their delay from here."""
    if given is not None:
        return float(given)
    configured = load_config().off_delay
    return DEFAULT_OFF_DELAY if configured is None else configured  # 0 in the config means 0


class LightPolicy:
    """On as soon as occupancy > 0; off once it has been 0 for ``off_delay`` seconds.

    The delay keeps a count that flickers 1 -> 0 -> 1 at the door from toggling the lights.
    At start the room counts as empty since the first update, so a freshly started counter
    turns the lights off after one delay unless someone is counted in.

    Call :meth:`update` every frame (not only on count events): the switch-off is due on
    time, not on an event.
    """

    def __init__(self, off_delay: float = DEFAULT_OFF_DELAY):
        off_delay = float(off_delay)
        if not off_delay >= 0:  # also rejects NaN
            # A UsageError is a ValueError that the CLI prints as one line, no traceback.
            raise UsageError(f"off-delay {off_delay:g} is not a number of seconds >= 0; use 0 or more seconds")
        self.off_delay = off_delay
        self.desired: Optional[bool] = None
        #: Why ``desired`` last changed, in words for the light log ("occupancy 2").
        self.reason: Optional[str] = None
        self._empty_since: Optional[float] = None

    def update(self, time: float, occupancy: int) -> Optional[bool]:
        """Feed one observation; returns the new desired state when it changes, else None."""
        if occupancy > 0:
            self._empty_since = None
            if self.desired is not True:
                self.desired = True
                self.reason = f"occupancy {occupancy}"
                return True
            return None
        if self._empty_since is None:
            self._empty_since = time
        if self.desired is not False and time - self._empty_since >= self.off_delay:
            self.desired = False
            self.reason = f"off-delay expired (room empty for {self.off_delay:g} s)"
            return False
        return None

    def off_due(self) -> Optional[float]:
        """The time the lights will go off if nobody comes in (None if not counting down)."""
        if self._empty_since is None or self.desired is False:
            return None
        return self._empty_since + self.off_delay
