"""``--lights console``: prints each light change as one line. Handy without a bridge."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

from thermalcount.lights.base import Lights
from thermalcount.support.streams import print_line


class ConsoleLights(Lights):
    """Prints ``2026-12-05 21:03:12 lights on (occupancy 1)`` when the desired state changes.

    The timestamp has the same form as every plain log line of ``run``, so the two streams
    (lights on stdout, the log on stderr) can be read side by side."""

    backend = "console"
    target = "console"

    def __init__(self, stream: Optional[TextIO] = None, clock=time.time):
        super().__init__()
        self._stream = stream
        self._clock = clock

    def _apply(self, on: bool) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self._clock()))
        with self._lock:
            reason = self._reason
        why = f" ({reason})" if reason else ""
        # A full or closed stdout drops the line; the lights state still changes.
        print_line(f"{stamp} lights {'on' if on else 'off'}{why}", stream)
        super()._apply(on)


# --- the registry's entry points for ``--lights console`` (thermalcount.lights.registry) -----

TAKES_TARGETS = False


def open_lights(settings, on_status=None, *, stream: Optional[TextIO] = None) -> ConsoleLights:
    return ConsoleLights(stream=stream)
