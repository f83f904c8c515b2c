"""Ctrl-C delivered whole: held back while a big library imports, and never lost in a callback.

A KeyboardInterrupt that lands inside ``import torch`` (1-2 s, far longer on a busy machine)
leaves torch half initialised: measured here, the import then failed with a RecursionError or
an ImportError naming no module ("training needs torch ... (None is missing)"), and a later
import of the half-made module could hang. So the interrupt is noted, the import finishes,
and the interrupt is raised right after it, as a plain KeyboardInterrupt ("Aborted!").
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
from contextlib import contextmanager

#: How long after a lost interrupt it is sent again: long enough for the callback that swallowed
#: it to have returned (they run for microseconds), short enough that the user sees no delay.
REDELIVERY_DELAY_S = 0.01


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


def redeliver_lost_interrupts() -> None:
    """Install a ``sys.unraisablehook`` that turns a KeyboardInterrupt the interpreter could not
    raise (it landed in a weakref callback or a ``__del__``) into a fresh SIGINT, delivered to
    the main thread from a timer thread. Sending it from the hook itself would not do: the
    handler would run inside the hook, and the interrupt would be lost there in turn. Whatever
    handles SIGINT then handles it (the default KeyboardInterrupt, or a command's own stop);
    where SIGINT is ignored, nothing happens. Other unraisable errors are reported as before."""
    if getattr(sys.unraisablehook, "redelivers_interrupts", False):
        return
    previous = sys.unraisablehook

    def hook(unraisable):
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            timer = threading.Timer(REDELIVERY_DELAY_S, _thread.interrupt_main, args=(signal.SIGINT,))
            timer.daemon = True
            timer.start()
            return
        previous(unraisable)

    hook.redelivers_interrupts = True
    sys.unraisablehook = hook
