"""Ctrl-C during a big import is held back until the import is done, then delivered."""

import os
import signal
import threading

import pytest

from thermalcount.support.interrupts import interrupt_after


def test_an_interrupt_inside_the_block_is_raised_after_it():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupt_after():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("the block ran to its end")
    assert done == ["the block ran to its end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_without_an_interrupt_nothing_changes():
    with interrupt_after():
        value = 1
    assert value == 1 and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_error_in_the_block_still_restores_the_handler():
    with pytest.raises(ImportError):
        with interrupt_after():
            raise ImportError("no such module")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupt_after():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_it_is_a_plain_block():
    seen = []

    def worker():
        with interrupt_after():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]


# A Ctrl-C that lands in a weakref callback is swallowed by the interpreter ("Exception ignored
# in ..."); with the hook it arrives again in the main thread. Run in a fresh interpreter, as
# the hook is process-wide. The callback raises KeyboardInterrupt itself: exactly what a SIGINT
# arriving while it runs does, without waiting for a race.
LOST_INTERRUPT = """
import sys, time, weakref
from thermalcount.support.interrupts import redeliver_lost_interrupts
if sys.argv[1] == "hook":
    redeliver_lost_interrupts()
    redeliver_lost_interrupts()  # installing twice keeps one hook

class Thing:
    pass

def callback(reference):
    raise {error}

try:
    thing = Thing()
    reference = weakref.ref(thing, callback)
    del thing
    for _ in range(300):
        time.sleep(0.01)
    print("ran to its end")
except KeyboardInterrupt:
    print("interrupted")
"""


def _lost_interrupt(error: str, mode: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", LOST_INTERRUPT.format(error=error), mode],
                          capture_output=True, text=True, timeout=60)


def test_an_interrupt_lost_in_a_callback_is_delivered_again():
    result = _lost_interrupt("KeyboardInterrupt", "hook")
    assert result.stdout.strip() == "interrupted"
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr


def test_without_the_hook_the_interpreter_loses_it():
    # The failure the hook exists for, so the test above cannot pass for another reason.
    result = _lost_interrupt("KeyboardInterrupt", "plain")
    assert result.stdout.strip() == "ran to its end"
    assert "Exception ignored" in result.stderr and "KeyboardInterrupt" in result.stderr


def test_other_lost_errors_are_still_reported():
    result = _lost_interrupt("ValueError('a bug in a callback')", "hook")
    assert result.stdout.strip() == "ran to its end"
    assert "Exception ignored" in result.stderr and "a bug in a callback" in result.stderr


def test_the_command_line_installs_it():
    import subprocess
    import sys

    code = ("import sys; from thermalcount.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(getattr(sys.unraisablehook, 'redelivers_interrupts', False))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().endswith("True")
