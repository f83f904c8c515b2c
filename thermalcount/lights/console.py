"""``--lights console``: prints each light change as one line. Handy without a bridge."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

from thermalcount.lights.base import Lights
from thermalcount.streams import print_line


class ConsoleLights(Lights):
    """Prints ``HH:MM:SS lights on`` / ``... lights off`` when the desired state changes."""

    backend = "console"
    target = "console"

    def __init__(self, stream: Optional[TextIO] = None, clock=time.time):
        super().__init__()
        self._stream = stream
        self._clock = clock

    def _apply(self, on: bool) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stamp = time.strftime("%H:%M:%S", time.localtime(self._clock()))
        # A full or closed stdout drops the line; the lights state still changes.
        print_line(f"{stamp} lights {'on' if on else 'off'}", stream)
        super()._apply(on)
