"""Ctrl-C held back while a big library imports, then delivered.

A KeyboardInterrupt that lands inside ``import torch`` (1-2 s, far longer on a busy machine)
leaves torch half initialised: measured here, the import then failed with a RecursionError or
an ImportError naming no module ("training needs torch ... (None is missing)"), and a later
import of the half-made module could hang. So the interrupt is noted, the import finishes,
and the interrupt is raised right after it, as a plain KeyboardInterrupt ("Aborted!").
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


@contextmanager
def interrupt_after():
    """Run the block with SIGINT deferred to its end (main thread only, and only where SIGINT
    is not ignored; elsewhere the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started with Ctrl-C ignored: keep it so
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt
