"""Stop-on-signal for the long-running commands (``run``, ``room``, ``record``).

SIGTERM (systemd, ``kill``) and SIGINT (Ctrl-C) do not raise: they ask the command's loop to
stop, and the loop ends at its next step with its files flushed and closed and its summary
printed. The previous handlers come back when the block ends.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class stop_on_signals:
    """``with stop_on_signals(loop.stop): loop.run()``: a signal calls ``stop`` instead of
    raising. Outside the main thread (embedded use) nothing is installed: Python only lets the
    main thread set signal handlers."""

    def __init__(self, stop: Callable[[], None]):
        self._stop = stop
        self._previous = {}

    def __enter__(self) -> "stop_on_signals":
        if threading.current_thread() is threading.main_thread():
            for signum in _STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self._stop()

    def __exit__(self, *exc) -> bool:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        return False
