"""The ``thermalcount`` command line.

Each command lives in its own module and is imported only when it is invoked (or when help
lists it), so ``thermalcount --help`` stays fast and never touches numpy-heavy, let alone
torch, code. Each command parses options, calls one library function and lets
:class:`~thermalcount.errors.ThermalcountError` turn into a one-line message.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import sys
import threading

import click

from thermalcount import __version__
from thermalcount.errors import ThermalcountError
from thermalcount.support.interrupts import redeliver_lost_interrupts
from thermalcount.support.redaction import redact

# name -> "module:attribute". Order is the order of the lifecycle, shown by --help.
COMMANDS = {
    "record": "thermalcount.cli.record_cmd:record",
    "simulate": "thermalcount.cli.simulate_cmd:simulate",
    "import": "thermalcount.cli.import_cmd:import_",
    "train": "thermalcount.cli.train_cmd:train",
    "export": "thermalcount.cli.export_cmd:export",
    "inspect": "thermalcount.cli.inspect_cmd:inspect",
    "count": "thermalcount.cli.count_cmd:count",
    "run": "thermalcount.cli.run_cmd:run",
    "hue": "thermalcount.cli.hue_cmd:hue",
    "room": "thermalcount.cli.room_cmd:room",
    "bench": "thermalcount.cli.bench_cmd:bench",
    "evaluate": "thermalcount.cli.evaluate_cmd:evaluate",
    "doctor": "thermalcount.cli.doctor_cmd:doctor",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is needed."""

    def list_commands(self, ctx):
        return [name for name in COMMANDS if _module_exists(COMMANDS[name])]

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None or not _module_exists(target):
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ThermalcountError as error:
            raise _as_click_error(error) from None
        except OSError as error:
            # A path the operating system refused (name too long, a loop of symlinks, a file
            # where a folder should be...) that no command-specific check caught: still the
            # user's input, so one line naming the path rather than an "internal error".
            if error.filename is None or isinstance(error, (BlockingIOError, InterruptedError)):
                raise
            raise _as_click_error(_path_error(error)) from None
        except SystemError as error:
            # Ctrl-C while h5py was inside one of our Python callbacks (the store's RollbackFile):
            # h5py re-raises the KeyboardInterrupt as a SystemError. It is still Ctrl-C.
            if _interrupted(error):
                raise click.Abort() from None
            raise
        except click.ClickException as error:
            # Click's own usage errors quote the option value, which may be a URL with a password.
            error.message = redact(error.message)
            raise


def _module_exists(target: str) -> bool:
    module_name = target.split(":")[0]
    return importlib.util.find_spec(module_name) is not None


class _ThermalcountClickError(click.ClickException):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _interrupted(error: BaseException) -> bool:
    """True when a KeyboardInterrupt is anywhere in ``error``'s chain of causes."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _path_error(error: OSError) -> ThermalcountError:
    name = str(error.filename)
    if len(name) > 80:
        name = name[:60] + "..." + name[-16:]
    reason = error.strerror or type(error).__name__
    return ThermalcountError(f"cannot use {name}: {reason}; check the path and its folders")


def _as_click_error(error: ThermalcountError) -> click.ClickException:
    # Messages are one line by contract; collapse any stray newline rather than trust it.
    # Redacted here, once for every command: a URL or key in a message must not reach the journal.
    message = redact(" ".join(str(error).split())) or type(error).__name__
    return _ThermalcountClickError(message, getattr(error, "exit_code", 1))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="thermalcount")
def cli():
    """Count people through a doorway with an 8x8 thermal sensor and switch the lights.

    \b
    Lifecycle:
      record / simulate / import   frames -> recording.h5
      train                        recordings -> model (autoencoder + k-means)
      export / inspect             model -> one fused ONNX graph
      count / run                  count people offline / live, switch lights
      bench / evaluate             latency and counting accuracy
      doctor                       check the set-up first (sensor, model, bridge, broker)

    Every command works without hardware: --sensor sim and --lights console.
    """


def main(argv=None):
    """Console entry point. Unexpected errors get one line too, unless THERMALCOUNT_DEBUG=1."""
    redeliver_lost_interrupts()
    try:
        cli.main(args=argv, prog_name="thermalcount", standalone_mode=True)
    except SystemExit:
        raise
    except Exception as error:  # pragma: no cover - last resort, keeps tracebacks off screens
        if os.environ.get("THERMALCOUNT_DEBUG"):
            raise
        detail = redact(" ".join(str(error).split()))
        try:
            click.echo(
                f"Error: internal error ({type(error).__name__}: {detail}); "
                "re-run with THERMALCOUNT_DEBUG=1 for a traceback and report it",
                err=True,
            )
        except (OSError, ValueError):
            pass  # stderr full or closed: the exit status still says it
        sys.exit(70)
    finally:
        # The command is over (its output written, its exit status chosen): a Ctrl-C now would
        # only interrupt the interpreter's own clean-up and print an "Exception ignored"
        # traceback after a finished result (seen when Ctrl-C met a finishing evaluate).
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
