"""Option types and decorators shared by several commands."""

from __future__ import annotations

import math
import re

import click

from thermalcount.sensors.registry import DEFAULT_ADDRESS, DEFAULT_BUS

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """'90' -> 90.0, '30s' -> 30.0, '10m' -> 600.0, '1.5h' -> 5400.0. Raises ValueError."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration; use e.g. 30s, 10m, 2h or a number of seconds")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class Duration(click.ParamType):
    """A duration such as ``30s``, ``10m``, ``2h`` or plain seconds; converts to float seconds."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            seconds = float(value)
        else:
            try:
                seconds = parse_duration(value)
            except ValueError as error:
                self.fail(str(error), param, ctx)
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail(f"{value!r} must be longer than zero", param, ctx)
        if seconds > MAX_DURATION_SECONDS:
            self.fail(f"{value!r} is longer than 10 years; leave the option out to run until stopped", param, ctx)
        return seconds


class Speed(click.ParamType):
    """Replay/simulation pacing: a positive factor of real time, or ``max``. ``max`` -> None."""

    name = "speed"

    def convert(self, value, param, ctx):
        if value is None or (isinstance(value, str) and value.strip().lower() == "max"):
            return None
        try:
            speed = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a speed; use a factor such as 1 or 10, or 'max'", param, ctx)
        if not MIN_SPEED <= speed <= MAX_SPEED:  # also refuses nan
            self.fail(f"{value!r} must be greater than zero, from {MIN_SPEED:g} to {MAX_SPEED:.0f} times "
                      "real time (or 'max')", param, ctx)
        return speed


class FiniteFloat(click.FloatRange):
    """A float in a range that is never nan or infinite.

    click's FloatRange lets ``nan`` through every bound (every comparison with nan is false)
    and ``inf`` through an open upper end; both then break arithmetic deep in a run.
    """

    name = "number"

    def _describe_range(self) -> str:
        # click writes "x<=None" for a range without bounds; a finite number needs no range.
        return "" if self.min is None and self.max is None else super()._describe_range()

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class I2CAddress(click.ParamType):
    """An I2C address such as ``0x69`` or ``105``."""

    name = "address"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            address = value
        else:
            try:
                address = int(str(value), 0)
            except ValueError:
                self.fail(f"{value!r} is not an I2C address; use 0x69 or 0x68", param, ctx)
        if not 0x03 <= address <= 0x77:
            self.fail(f"{value!r} is outside the 7-bit I2C address range 0x03-0x77", param, ctx)
        return address


# Beyond these the pacing arithmetic overflows (a frame 1e299 s away) or means nothing.
MIN_SPEED = 0.001
MAX_SPEED = 1e6
MAX_DURATION_SECONDS = 10 * 365 * 86400.0

# Seeds are stored in the recording's HDF5 attributes, which hold at most 64-bit integers.
SEED = click.IntRange(0, 2**63 - 1)
# A billion frames is ~3 years at 10 FPS and ~250 GB: beyond that a frame count is a typo.
FRAME_COUNT = click.IntRange(1, 10**9)

DURATION = Duration()
SPEED = Speed()
I2C_ADDRESS = I2CAddress()


# -- the sensor options, shared by record, run and doctor ------------------------------------

#: ``--orientation`` means three things: ``record`` stores the setting in the file (default:
#: none), ``run`` may also find the travel axis from the frames (default: auto), ``doctor``
#: shows what run will do with it.
_AUTO_METAVAR = "auto|none|rotate=R,mirror=M"
_ORIENTATION = {
    "shown": dict(default="auto", show_default=True, metavar=_AUTO_METAVAR,
                  help="The --orientation run will use (shown with the model's travel axis)."),
    "stored": dict(default=None, metavar=None,
                   help="Sensor orientation, e.g. rotate=90,mirror=horizontal (stored in the file)."),
    "auto": dict(default="auto", show_default=True, metavar=_AUTO_METAVAR,
                 help="auto: find the travel axis from the frames (the model's until found, then earlier "
                      "frames re-counted); none: frames as the sensor gives them; "
                      "rotate=90,mirror=horizontal...: turned so (no detection)."),
}

#: The nine sensor options in the order --help lists them: (declarations, click keywords).
_SENSOR_OPTIONS = {
    "sensor": (("--sensor", "sensor_spec"), dict(
        default="amg8833", show_default=True, metavar="SENSOR",
        help="amg8833 (the real sensor), emulated, sim or replay:PATH.h5.")),
    "fps": (("--fps",), dict(type=click.Choice(["10", "1"]), default="10", show_default=True,
                             help="Sensor frame rate.")),
    "bus": (("--bus",), dict(type=int, default=DEFAULT_BUS, show_default=True, help="I2C bus number (amg8833).")),
    "address": (("--address",), dict(type=I2C_ADDRESS, default=hex(DEFAULT_ADDRESS), show_default=True,
                                     help="I2C address of the sensor: 0x69 or 0x68.")),
    "orientation": (("--orientation",), {}),  # from _ORIENTATION
    "speed": (("--speed",), dict(
        type=SPEED, default="1", show_default=True,
        help="Pacing of sim/replay/emulated sources: 1 = real time, 10 = ten times, max = flat out.")),
    "scenario": (("--scenario",), dict(default=None,
                                       help="Simulator scenario for --sensor sim/emulated (default: mixed).")),
    "seed": (("--seed",), dict(type=SEED, default=None, help="Simulator seed for --sensor sim/emulated.")),
    "faults": (("--faults",), dict(
        default=None, help="Fault plan for --sensor emulated, e.g. errno=5:0.02,disconnect=3s@10s, open=2 or busy.")),
}


def sensor_options(*names: str, orientation: str = "stored", sensor_note: str = ""):
    """The sensor options as one decorator: all nine, or only those ``names``, in one order.

    The command receives them as ``sensor_spec, fps, bus, address, orientation, speed,
    scenario, seed, faults`` (``fps`` as the string "10" or "1"). ``orientation`` is
    ``"stored"`` (record), ``"auto"`` (run) or ``"shown"`` (doctor); ``sensor_note`` is added to the end
    of ``--sensor``'s help.
    """
    chosen = names or tuple(_SENSOR_OPTIONS)
    unknown = set(chosen) - set(_SENSOR_OPTIONS)
    if unknown:
        raise ValueError(f"no sensor option {sorted(unknown)}; known: {list(_SENSOR_OPTIONS)}")
    decorators = []
    for name, (declarations, keywords) in _SENSOR_OPTIONS.items():  # the table's order, always
        if name not in chosen:
            continue
        if name == "orientation":
            keywords = _ORIENTATION[orientation]
        elif name == "sensor" and sensor_note:
            keywords = dict(keywords, help=keywords["help"].rstrip(".") + f"; {sensor_note}")
        decorators.append(click.option(*declarations, **keywords))

    def apply(command):
        for decorator in reversed(decorators):  # click lists options in decorator order, top first
            command = decorator(command)
        return command

    return apply
