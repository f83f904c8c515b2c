"""Log and console lines that cannot end a long-running command.

``run`` and ``room`` write a line per event, light change and notice to stdout/stderr. When
that is a full disk (``> log.txt`` on a full card), ``/dev/full`` or a pipe whose reader has
gone (``| head``), a write raises; the counting and the lights matter more than the line, so
the line is dropped and the next one tries again.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Optional, TextIO

from thermalcount.support.redaction import redact


def print_line(text: str, stream: Optional[TextIO]) -> bool:
    """Print one line to ``stream`` and flush it; False (nothing raised) if it cannot take it.

    ``stream`` is None when the process was started with it closed (``2>&-``): the line is
    dropped rather than sent to the other stream.
    """
    if stream is None:
        return False
    try:
        print(text, file=stream, flush=True)
        return True
    except (OSError, ValueError):  # ValueError: the stream was closed
        return False


def settle_std_streams() -> None:
    """Before exiting: if stdout or stderr still cannot be flushed, point it at /dev/null.

    Python flushes both at exit and turns a failure into exit status 120 and a message; a
    run that ended well must exit 0, and the lines already failed once each.
    """
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass


def log_line_writer(stream: Optional[TextIO], *, prefix: str = "") -> Callable[[str], None]:
    """A ``report(message)`` for plain log lines (``run``/``room`` under systemd):
    ``2026-12-05 21:03:12 {prefix}{message}``, redacted, one line each, dropped (not raised)
    when ``stream`` is full or closed. ``stream`` None: sys.stderr as it is at each call."""
    def report(message: str) -> None:
        # Redacted: a log line must not carry a password or a Hue key.
        print_line(redact(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {prefix}{message}"), stream or sys.stderr)

    return report


def is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal (the dashboard) or not (plain log lines for journald)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
